"""Every user error of the CLI: exit code 2, exactly one ``reid: error:`` line on stderr, no traceback.

One parametrised table of cases (``CASES``), each a command line and the phrase its message must
contain; cases run in-process through :func:`reid.cli.main` (an unexpected exception fails the
test with its traceback), and a few also as real subprocesses of ``python -m reid``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fixtures_datasets as fx
import pytest

from reid.cli import main
from reid.data.synthreid import PRESETS, generate

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--set", "input.height=32", "--set", "input.width=16", "--set", "model.width=8",
    "--set", "sampler.p=4", "--set", "sampler.k=2", "--set", "loss.k=4", "--set", "train.batches_per_epoch=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny SynthReID root, a finished run, and small broken things to point commands at."""
    base = tmp_path_factory.mktemp("world")
    tiny = generate(base / "tiny", seed=0, progress=False, **PRESETS["tiny"])
    run = base / "finished"
    assert main(["train", "--recipe", "support_neighbor", "--root", str(tiny), "--epochs", "1", "--out", str(run),
                 "--no-progress", *TINY]) == 0  # fmt: skip
    (base / "a_file").write_text("not a folder")
    # a run whose features.pt / results.json were damaged
    for name in ("bad_features", "bad_results"):
        shutil.copytree(run, base / name)
    (base / "bad_features" / "features.pt").write_bytes(b"\x80\x02garbage")
    (base / "bad_results" / "results.json").write_text('{"recipe": ')
    # datasets with one thing wrong each
    market = fx.write_market(base / "market_no_test")
    shutil.rmtree(market / "bounding_box_test")
    msmt = fx.write_msmt(base / "msmt_latin1")
    (msmt / "list_query.txt").write_bytes("0000/0000_000_01_0303morning_0015_0.jpg 0 caf\xe9\n".encode("latin-1"))
    fx.write_viper(base / "viper_one", persons=1)
    corrupt = generate(base / "corrupt", seed=0, progress=False, **PRESETS["tiny"])
    victim = next((corrupt / "query").iterdir())
    victim.write_bytes(victim.read_bytes()[:40])  # a truncated JPEG
    return {"base": base, "tiny": tiny, "run": run, "corrupt_image": victim}


def _train(w, *extra, recipe="support_neighbor"):
    return ["train", "--recipe", recipe, "--root", str(w["tiny"]), "--epochs", "1", "--no-progress", *TINY, *extra]


CASES = {
    # -- run directories
    "out-in-proc": (lambda w: _train(w, "--out", "/proc/reid-run"), "is not writable"),
    "out-is-a-file": (lambda w: _train(w, "--out", str(w["base"] / "a_file")), "is an existing file"),
    "out-under-a-file": (lambda w: _train(w, "--out", str(w["base"] / "a_file" / "run")), "is a file, not a folder"),
    "out-holds-a-run": (lambda w: _train(w, "--out", str(w["run"])), "already holds a finished run"),
    "resume-mistyped-out": (lambda w: _train(w, "--out", str(w["base"] / "fnished"), "--resume"), "nothing to resume"),
    "resume-and-overwrite": (lambda w: _train(w, "--out", str(w["run"]), "--resume", "--overwrite"), "exclude each other"),
    "max-iterations-zero": (lambda w: _train(w, "--max-iterations", "0"), None),  # argparse: exit 2, usage + error
    # -- values a paper bounds
    "negative-margin": (lambda w: _train(w, "--out", str(w["base"] / "m"), "--set", "loss.margin=-5",
                                         "--set", "loss.name=batch_hard"), "loss.margin must be >= 0"),  # fmt: skip
    "momentum-5": (lambda w: ["train", "--recipe", "smc_ecd", "--set", "optimizer.momentum=5"],
                   "optimizer.momentum must lie in [0, 1)"),  # fmt: skip
    "alpha-above-1": (lambda w: ["train", "--recipe", "smc_ecd", "--set", "loss.alpha=1.5"],
                      "loss.alpha must lie in (0, 1]"),  # fmt: skip
    # -- training that diverges: which iteration, and what is intact
    "nan-loss": (lambda w: ["train", "--recipe", "smc_ecd", "--root", str(w["tiny"]), "--epochs", "1", "--no-progress",
                            "--out", str(w["base"] / "nan"), "--set", "optimizer.lr=1e30", "--set", "input.height=32",
                            "--set", "input.width=16", "--set", "model.width=8", "--set", "sampler.batch_size=8",
                            "--set", "train.batches_per_epoch=3"],
                 "iteration 2: SMCECDLoss: features holds"),  # fmt: skip
    # -- evaluate on damaged files
    "evaluate-corrupt-features": (lambda w: ["evaluate", "--run", str(w["base"] / "bad_features")],
                                  "cannot be read as a reid features file"),  # fmt: skip
    "evaluate-corrupt-results": (lambda w: ["evaluate", "--run", str(w["base"] / "bad_results")],
                                 "is not a results.json written by `reid train`"),  # fmt: skip
    # -- datasets
    "market-missing-test-folder": (lambda w: ["data", "check", "--dataset", "market1501", "--root",
                                              str(w["base"] / "market_no_test")], "but no bounding_box_test"),  # fmt: skip
    "msmt17-not-utf8": (lambda w: ["data", "check", "--dataset", "msmt17", "--root", str(w["base"] / "msmt_latin1")],
                        "line 1 of"),  # fmt: skip
    "viper-one-identity": (lambda w: ["data", "check", "--dataset", "viper", "--root", str(w["base"] / "viper_one")],
                           "has 1 usable identity"),  # fmt: skip
    "bad-boolean-option": (lambda w: ["data", "check", "--dataset", "synthreid", "--root", str(w["tiny"]),
                                      "--option", "relabel=maybe"], "relabel='maybe' must be true/false"),  # fmt: skip
    "decode-finds-a-corrupt-jpeg": (lambda w: ["data", "check", "--dataset", "synthreid", "--root",
                                               str(w["base"] / "corrupt"), "--decode", "--no-progress"],
                                    "1 of "),  # fmt: skip
    "synth-out-in-proc": (lambda w: ["data", "synth", "--out", "/proc/reid-synth", "--preset", "tiny", "--no-progress"],
                          "is not writable"),  # fmt: skip
    "synth-out-is-a-file": (lambda w: ["data", "synth", "--out", str(w["base"] / "a_file"), "--preset", "tiny",
                                       "--no-progress"], "is an existing file"),  # fmt: skip
    "train-alias-needs-root": (lambda w: ["train", "--recipe", "smc_ecd", "--dataset", "Market-1501"],
                               "--root is required for dataset 'market1501'"),  # fmt: skip
}


def _run_in_process(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_exit_2(case, world, capsys):
    make_argv, phrase = CASES[case]
    code, err = _run_in_process(make_argv(world), capsys)
    assert code == 2, err
    assert "Traceback" not in err
    if phrase is None:  # argparse: usage line(s) + one error line
        assert err.strip().splitlines()[-1].startswith("reid train: error:")
        return
    assert err.startswith("reid: error: ") and err.count("\n") == 1, err
    assert phrase in err, err


def test_the_old_run_is_untouched_by_every_refused_command(world):
    before = {p.name: p.read_bytes() for p in world["run"].iterdir() if p.name != ".reid.lock"}
    assert main(_train(world, "--out", str(world["run"]), "--seed", "3")) == 2
    after = {p.name: p.read_bytes() for p in world["run"].iterdir() if p.name != ".reid.lock"}
    assert after == before


def test_unreadable_dataset_folder(world, capsys, monkeypatch):
    """A PermissionError (an unprivileged user's unreadable folder; root cannot provoke one) is one line."""
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("bounding_box_train"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, err = _run_in_process(["data", "check", "--dataset", "synthreid", "--root", str(world["tiny"])], capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot be read (permission denied)" in err


def test_a_corrupt_synthreid_cache_names_the_cache_not_out(world, capsys, monkeypatch, tmp_path):
    from reid.data import synthreid

    monkeypatch.setenv("REID_DATA_HOME", str(tmp_path))
    target = synthreid.cache_dir() / f"smoke-seed0-{synthreid.cache_key('smoke', 0)}"
    target.mkdir(parents=True)
    (target / "bounding_box_train").mkdir()
    code, err = _run_in_process(["train", "--recipe", "support_neighbor", "--out", str(tmp_path / "run"),
                                 "--no-progress"], capsys)  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert f"the cached SynthReID set {target} is incomplete" in err and "--out" not in err


def test_dataset_names_are_accepted_in_every_spelling(tmp_path, capsys):
    from reid.data.datasets import dataset_name

    for spelling in ("market1501", "Market1501", "Market-1501", "MARKET_1501", "market 1501"):
        assert dataset_name(spelling) == "market1501"
    assert dataset_name("DukeMTMC-reID") == "dukemtmc" and dataset_name("3DPeS") == "threedpes"
    root = fx.write_market(tmp_path)
    assert main(["data", "check", "--dataset", "Market1501", "--root", str(root)]) == 0
    assert "market1501" in capsys.readouterr().out


SUBPROCESS_CASES = ["out-in-proc", "evaluate-corrupt-results", "bad-boolean-option", "resume-mistyped-out"]


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_user_error_through_the_real_entry_point(case, world):
    make_argv, phrase = CASES[case]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "reid", *make_argv(world)], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and phrase in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_decode_passes_on_a_clean_set(world, capsys):
    assert main(["data", "check", "--dataset", "synthreid", "--root", str(world["tiny"]), "--decode", "--no-progress"]) == 0
    stats = json.dumps(capsys.readouterr().out)
    assert "decoded all" in stats and "readable image" in stats
