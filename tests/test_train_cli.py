"""`reid train` / `reid evaluate` in-process through reid.cli.main: runs, and clear errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from reid.cli import main
from reid.data.synthreid import PRESETS, generate

TINY = [
    "--set", "input.height=32", "--set", "input.width=16", "--set", "model.width=8",
    "--set", "sampler.p=4", "--set", "sampler.k=2", "--set", "loss.k=4",
    "--set", "train.batches_per_epoch=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **PRESETS["tiny"])


def test_train_then_evaluate(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--recipe", "support_neighbor", "--dataset", "synthreid", "--root", str(tiny_root),
            "--epochs", "1", "--seed", "2", "--out", str(out), "--no-progress", *TINY]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "support_neighbor on synthreid (smoke): rank-1" in printed and str(out) in printed
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 2 and results["recipe"]["loss"]["k"] == 4 and results["epochs"] == 1
    # --resume on a finished run reports it complete and touches nothing
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert main([*argv, "--resume"]) == 0
    assert "already complete" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before
    assert main(["evaluate", "--run", str(out), "--protocol", "market_mq", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"] == "market_mq"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--set", "loss.sigmaa=3"], "unknown key 'loss.sigmaa'"),
        (["--set", "loss.k"], "--set expects key=value"),
        (["--set", "sampler.p=50"], "impossible P x K batch"),
        (["--set", "loss.name=arcface"], "loss.name='arcface' is not valid"),
        (["--set", "optimizer.lr=-1"], "optimizer.lr must be > 0"),
    ],
)
def test_bad_settings_exit_2_with_one_line(tiny_root, tmp_path, capsys, extra, message):
    argv = ["train", "--recipe", "support_neighbor", "--root", str(tiny_root), "--out", str(tmp_path / "r"),
            "--no-progress", *TINY, *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("reid: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_missing_data_and_runs_exit_2(tmp_path, capsys):
    assert main(["train", "--recipe", "smc_ecd", "--dataset", "market1501", "--root", str(tmp_path / "none")]) == 2
    assert "reid: error:" in capsys.readouterr().err
    assert main(["train", "--recipe", "smc_ecd", "--dataset", "market1501"]) == 2
    assert "--root is required" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "none")]) == 2
    assert "not a finished run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--recipe", "arcface"],
        ["train", "--recipe", "smc_ecd", "--scale", "huge"],
        ["train", "--recipe", "smc_ecd", "--epochs", "0"],
        ["train", "--recipe", "smc_ecd", "--device", "tpu"],
        ["train"],
    ],
)
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err
