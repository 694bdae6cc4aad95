"""The paper-scale path, proven on the CPU: every recipe's **full** scale, dry-run for 2 iterations.

``reid train --scale full --max-iterations 2`` runs the real thing — ResNet-50 / VGG-M + VGG-16 /
the part-based CNN at the paper's input size, the paper's sampler, optimiser, learning-rate
schedule, checkpoint, evaluation and ``results.json`` — on a small SynthReID set in the
Market-1501 layout (64 identities: the papers' P x K batches need 32 training identities). Only
the number of iterations and the data size are small.

ImageNet weights cannot be downloaded here, so a state dict of the right architecture (random
initialisation, torchvision's own layout) is written under the exact file name torchvision's
weights API expects, in a temporary ``TORCH_HOME``: the real offline loading path runs.

This group is marked ``full_dry_run`` (``make test-full``); it takes minutes and several GB of
memory per run (batch 128 through ResNet-50 / VGG-16 on the CPU), so ``make test`` leaves it out.
The checks that full runs stop *before any work* when weights or data are missing are fast and run
in every ``make test``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from reid.data.synthreid import generate
from reid.engine import train
from reid.errors import DatasetError, WeightsError
from reid.recipes import RECIPES, load_recipe

REPO = Path(__file__).resolve().parents[1]
#: The torchvision networks the full recipes load ImageNet weights for.
IMAGENET = {"resnet50": "ResNet50_Weights.IMAGENET1K_V1", "vgg16": "VGG16_Weights.IMAGENET1K_V1"}


def _needs_imagenet(recipe: str) -> list[str]:
    from reid.engine.trainer import _pretrained_weights

    return sorted({arch for arch, spec in _pretrained_weights(load_recipe(recipe, "full")["model"])
                   if isinstance(spec, str) and spec.lower() == "imagenet"})  # fmt: skip


def write_fake_imagenet(torch_home: Path, archs=tuple(IMAGENET)) -> dict[str, Path]:
    """torchvision's ``<arch>(weights=None).state_dict()`` at ``$TORCH_HOME/hub/checkpoints/<file>``."""
    import torchvision
    from torchvision.models import get_weight

    from reid.models.weights import hub_checkpoint_path

    paths = {}
    for arch in archs:
        name = Path(get_weight(IMAGENET[arch]).url).name
        path = torch_home / "hub" / "checkpoints" / name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(0)
            torch.save(getattr(torchvision.models, arch)(weights=None).state_dict(), path)
        paths[arch] = path
    assert all(hub_checkpoint_path(get_weight(IMAGENET[a]).url).name == p.name for a, p in paths.items())
    return paths


@pytest.fixture(scope="module")
def fake_torch_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("torch_home")
    return home, write_fake_imagenet(home)


@pytest.fixture(scope="module")
def dry_root(tmp_path_factory):
    """64 identities, 2 cameras: 32 training ids (P = 32 batches), ~170 query + gallery images."""
    return generate(tmp_path_factory.mktemp("dry") / "synth", seed=0, num_ids=64, num_cameras=2,
                    images_per_camera=(1, 2), hand_drawn_per_camera=(1, 1), num_distractors=4, num_junk=4,
                    two_view_ids=8, progress=False)  # fmt: skip


@pytest.mark.full_dry_run
@pytest.mark.parametrize("recipe", RECIPES)
def test_full_recipe_dry_run_end_to_end(recipe, dry_root, fake_torch_home, tmp_path, monkeypatch):
    home, weights = fake_torch_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    run_dir = train(recipe, dataset="synthreid", root=dry_root, scale="full", max_iterations=2,
                    out=tmp_path / recipe, progress=False)  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    full = load_recipe(recipe, "full")
    assert results["scale"] == "full" and results["dry_run"] is True and results["max_iterations"] == 2
    assert results["iterations"] == 2 and results["epochs"] == 1
    for section in ("model", "input", "sampler", "optimizer", "schedule", "loss"):  # the paper's recipe, untouched
        assert results["recipe"][section] == json.loads(json.dumps(full[section])), section
    m = results["metrics"]
    assert m["num_query"] > 0 and m["num_gallery"] > 0 and 0.0 <= m["mAP"] <= 1.0
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["iteration"] == 2 and torch.isfinite(torch.tensor(log[0]["loss"]))
    feats = torch.load(run_dir / "features.pt", weights_only=False)
    assert feats["query"].shape[0] == m["num_query"] and torch.isfinite(feats["query"]).all()
    # the ImageNet file was really loaded: two small steps keep the weights next to the file's
    model = torch.load(run_dir / "model.pt", weights_only=True)
    for arch in _needs_imagenet(recipe):
        state = torch.load(weights[arch], weights_only=True)
        key = "conv1.weight" if arch == "resnet50" else "features.0.weight"
        mine = [v for k, v in model.items() if k.endswith(key) and v.shape == state[key].shape]
        assert mine and any(torch.allclose(v, state[key], atol=5e-3) for v in mine), (arch, key)


# -- missing inputs stop before any work (fast: part of every `make test`) -----------------------


def _params_files():
    """The chapters' paper-scale parameter files that train one recipe (papermill -f)."""
    out = []
    for path in sorted((REPO / "params").glob("*.full.yaml")):
        name = path.name.removesuffix(".full.yaml")
        if name in RECIPES:
            out.append(pytest.param(name, yaml.safe_load(path.read_text()), id=name))
    return out


def _forbid_work(monkeypatch):
    import reid.data.synthreid
    import reid.engine.trainer
    import reid.models

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the missing input was reported")

    monkeypatch.setattr(reid.models, "build_model", no_work)
    monkeypatch.setattr(reid.data.synthreid, "generate", no_work)
    return reid.engine.trainer


@pytest.mark.parametrize("recipe, params", _params_files())
def test_full_run_without_imagenet_weights_stops_before_any_work(recipe, params, tmp_path, monkeypatch):
    if not _needs_imagenet(recipe):
        pytest.skip(f"{recipe}'s full recipe starts from random initialisation")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    trainer_module = _forbid_work(monkeypatch)
    monkeypatch.setattr(trainer_module, "load_training_data", lambda *a, **k: pytest.fail("data loaded first"))
    with pytest.raises(WeightsError, match=r"ImageNet weights for \w+ .* are not in the torch hub cache"):
        train(recipe, dataset=params["dataset"], root=tmp_path / "data", scale=params["scale"],
              out=tmp_path / "run", progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe, params", _params_files())
def test_full_run_without_its_dataset_stops_before_any_work(recipe, params, tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    for arch in _needs_imagenet(recipe):  # present, so that the dataset is what is missing
        from torchvision.models import get_weight

        path = home / "hub" / "checkpoints" / Path(get_weight(IMAGENET[arch]).url).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # resolve_weights only checks that the file is there
    _forbid_work(monkeypatch)
    missing = tmp_path / "datasets"  # params say ~/datasets; a folder that surely does not exist here
    with pytest.raises(DatasetError, match=rf"the root {missing} does not exist"):
        train(recipe, dataset=params["dataset"], root=missing, scale=params["scale"], out=tmp_path / "run",
              progress=False)  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_the_cli_says_it_in_one_line(tmp_path, monkeypatch, capsys):
    from reid.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    code = main(["train", "--recipe", "joint_am_triplet", "--scale", "full", "--dataset", "market1501",
                 "--root", str(tmp_path), "--max-iterations", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "resnet50-0676ba61.pth" in err


# -- the chapters' paper-scale parameter files through papermill (make test-full) -----------------


def _chapter_params_files():
    """Every params/<chapter>*.full.yaml of a training chapter (the scoreboard trains nothing)."""
    return [pytest.param(path, id=path.name.removesuffix(".full.yaml"))
            for path in sorted((REPO / "params").glob("*.full.yaml")) if not path.name.startswith("scoreboard")]


@pytest.mark.full_dry_run
@pytest.mark.parametrize("path", _chapter_params_files())
def test_chapter_params_file_runs_end_to_end_as_a_dry_run(path, dry_root, fake_torch_home, tmp_path, monkeypatch):
    """``papermill -f params/<chapter>.full.yaml`` with only the data (a small SynthReID set in the
    same layout), the device (CPU) and the length (``max_iterations=2``) changed: every variant the
    file lists trains at the paper's scale, and the whole chapter executes after it."""
    import papermill as pm

    from reid.data.datasets import dataset_name

    home, _ = fake_torch_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    params = yaml.safe_load(path.read_text())
    chapter = path.name.split(".")[0]
    assert params["scale"] == "full" and params.get("device") in (None, "cuda", "cpu")
    if "dataset" in params:
        dataset_name(params["dataset"])  # the file names a real dataset the loaders know
    if "max_iterations" not in _defaults(chapter):
        pytest.skip(f"{chapter} has no max_iterations parameter: it trains no recipe of its own")
    params.update(dataset="synthreid", data_root=str(dry_root), device="cpu", out_dir=str(tmp_path / "runs"),
                  max_iterations=2)
    pm.execute_notebook(str(REPO / "notebooks" / f"{chapter}.ipynb"), str(tmp_path / f"{chapter}.ipynb"),
                        parameters=params, cwd=str(REPO / "notebooks"), progress_bar=False, kernel_name="python3")
    results = sorted((tmp_path / "runs").rglob("results.json"))
    assert results, "the chapter trained nothing"
    for r in results:
        data = json.loads(r.read_text())
        assert data["scale"] == "full" and data["dry_run"] is True, r


def _defaults(chapter: str) -> set[str]:
    import jupytext

    nb = jupytext.read(REPO / "notebooks" / f"{chapter}.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line and not line.startswith("#")}
