"""End-to-end training on a tiny SynthReID set: every recipe, provenance, determinism, resume.

Each run uses the recipe's smoke scale shrunk further by ``TINY`` (test-only overrides: tiny
images, a couple of batches per epoch), so a run takes a few seconds on one CPU core.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from reid.data.synthreid import PRESETS, generate
from reid.engine import Callback, evaluate, train
from reid.errors import ConfigError, DatasetError
from reid.recipes import RECIPES

COMMON = {"train.batches_per_epoch": 2, "eval.batch_size": 64}
TINY = {
    "smc_ecd": {"input.height": 32, "input.width": 16, "model.width": 8, "sampler.batch_size": 8},
    "adaptive_margin": {
        "input.height": 60, "input.width": 24, "model.height": 60, "model.width": 24,
        "sampler.anchors": 2, "sampler.positives": 1, "sampler.negatives": 2,
    },
    "support_neighbor": {
        "input.height": 32, "input.width": 16, "model.width": 8, "sampler.p": 4, "sampler.k": 2, "loss.k": 4,
    },
    "view_adaptation": {
        "input.height": 32, "input.width": 16, "model.small_width": 8, "sampler.p": 4, "sampler.s": 2,
        "loss.finetune_epochs": 0, "loss.similarity_epochs": 1,
    },
    "joint_am_triplet": {
        "input.height": 32, "input.width": 16, "model.width": 8, "sampler.p": 4, "sampler.k": 2,
        "schedule.warmup_epochs": 1,
    },
}  # fmt: skip


class Interrupted(Exception):
    """Stands in for a kill: raised from inside the training loop."""


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **PRESETS["tiny"])


def run(recipe, root, out, *, epochs=2, overrides=None, **kw):
    return train(
        recipe, dataset="synthreid", root=root, out=out, epochs=epochs, progress=False,
        overrides={**COMMON, **TINY[recipe], **(overrides or {})}, **kw,
    )  # fmt: skip


def weights(run_dir):
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_and_evaluates(recipe, tiny_root, tmp_path):
    run_dir = run(recipe, tiny_root, tmp_path / recipe)
    results = json.loads((run_dir / "results.json").read_text())
    m = results["metrics"]
    for key in ("rank1", "rank5", "rank10", "mAP", "mAP_trapezoid", "mINP"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["rank1"] <= m["rank5"] <= m["rank10"] and m["mAP_trapezoid"] <= m["mAP"] + 1e-12
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and log[-1]["iteration"] == 4
    assert all(math.isfinite(r["loss"]) and r["images_per_second"] > 0 for r in log)
    feats = torch.load(run_dir / "features.pt", weights_only=False)
    assert feats["query"].shape[0] == m["num_query"] == len(feats["query_paths"])
    assert feats["gallery"].shape == (m["num_gallery"], feats["query"].shape[1])
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "model.pt").is_file()
    if recipe == "view_adaptation":  # stage 1 (Ds) in epoch 1, alternating Dd / mappings in epoch 2
        assert [r["stage"] for r in log] == [1.0, 2.0] and "view_discriminator" in log[1]
    # evaluate() recomputes the same numbers from features.pt
    again = evaluate(run_dir)
    assert again["mAP"] == pytest.approx(m["mAP"]) and again["rank1"] == pytest.approx(m["rank1"])


def test_results_json_carries_provenance(tiny_root, tmp_path):
    attr = {"loss.name": "AM0BH_Attr", "model.width": 16, "model.attribute_q": 2}  # 27 x 2 of 128 dims
    run_dir = run("joint_am_triplet", tiny_root, tmp_path / "run", seed=3, overrides=attr)
    r = json.loads((run_dir / "results.json").read_text())
    assert r["recipe"]["recipe"] == "joint_am_triplet" and r["recipe"]["loss"]["name"] == "AM0BH_Attr"
    assert r["recipe"]["model"]["width"] == 16  # the resolved recipe, overrides applied
    assert r["scale"] == "smoke" and r["seed"] == 3 and r["device"] == "cpu"
    assert r["dataset"]["name"] == "synthreid" and r["dataset"]["root"] == str(tiny_root)
    assert r["dataset"]["statistics"]["train"]["ids"] == PRESETS["tiny"]["num_ids"] // 2
    assert "commit" in r["git"]  # a sha, or "unknown" outside a git checkout
    assert {"python", "torch", "torchvision", "numpy", "reid"} <= set(r["versions"])
    assert r["hardware"]["cpu_cores"] >= 1 and "cpu" in r["hardware"] and "gpu" in r["hardware"]
    assert r["timings"]["train_images_per_second"] > 0 and r["epochs"] == 2
    assert r["final_log"]["epoch"] == 2 and "attr" in r["final_log"]  # the attribute-head loss
    feats = torch.load(run_dir / "features.pt", weights_only=False)  # Sec. 4.2: retrieval on f_theta_id
    assert feats["feature"] == "id_features" and feats["query"].shape[1] == 128 - 27 * 2
    assert r["metrics"]["metric"] == "cosine"
    mq = evaluate(run_dir, protocol="market_mq")
    assert mq["protocol"] == "market_mq" and (run_dir / "eval-market_mq.json").is_file()
    rr = evaluate(run_dir, rerank=True)
    assert rr["rerank"] and 0 <= rr["mAP"] <= 1 and (run_dir / "eval-market_sq-rerank.json").is_file()
    ss = evaluate(run_dir, protocol="single_shot")
    assert 0 <= ss["rank1"] <= ss["rank5"] <= 1 and ss["repeats"] == 10


def _interrupt_at(iteration):
    def on_step(trainer, epoch, it):
        if it == iteration:
            raise Interrupted(f"killed at iteration {it}")

    return Callback(on_step=on_step)


@pytest.mark.parametrize("recipe", ["joint_am_triplet", "smc_ecd"])
def test_deterministic_and_resume_gives_the_same_weights(recipe, tiny_root, tmp_path):
    """Same seed -> identical weights; killed mid-epoch 2 + resume -> identical to uninterrupted.

    joint_am_triplet exercises Adam, warm-up, flip and random erasing (RNG); smc_ecd exercises
    SGD momentum and the camera sub-centres (buffers moved by an update rule).
    """
    full = run(recipe, tiny_root, tmp_path / "full", epochs=3)
    killed = tmp_path / "killed"
    with pytest.raises(Interrupted):
        run(recipe, tiny_root, killed, epochs=3, callbacks=[_interrupt_at(3)])  # 1st step of epoch 2
    state = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1 and state["iteration"] == 2 and not (killed / "results.json").exists()
    resumed = run(recipe, tiny_root, killed, epochs=3, resume=True)
    assert_same_weights(full, resumed)
    final_full = torch.load(full / "checkpoint.pt", weights_only=False)
    final_resumed = torch.load(resumed / "checkpoint.pt", weights_only=False)
    for key, value in final_full["objective"].items():  # centres, attribute tables, AM weights
        assert torch.equal(value, final_resumed["objective"][key]), key
    log = [json.loads(x)["epoch"] for x in (resumed / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3]
    a = json.loads((full / "results.json").read_text())["metrics"]
    b = json.loads((resumed / "results.json").read_text())["metrics"]
    assert a == b
    if recipe == "joint_am_triplet":
        again = run(recipe, tiny_root, tmp_path / "again", epochs=3)
        assert_same_weights(full, again)
        other = run(recipe, tiny_root, tmp_path / "other", epochs=1, seed=1)
        one = run(recipe, tiny_root, tmp_path / "one", epochs=1)
        assert not torch.equal(weights(other)["backbone.stem.0.weight"], weights(one)["backbone.stem.0.weight"])


def test_resume_refuses_a_different_configuration(tiny_root, tmp_path):
    out = tmp_path / "run"
    run("support_neighbor", tiny_root, out, epochs=1)
    with pytest.raises(ConfigError, match="finished run of a different recipe, overrides"):
        run("support_neighbor", tiny_root, out, epochs=2, resume=True, overrides={"loss.lam": 0.5})
    (out / "results.json").unlink()  # now an unfinished run: its checkpoint is compared
    with pytest.raises(ConfigError, match="checkpoint .* different recipe, overrides"):
        run("support_neighbor", tiny_root, out, epochs=2, resume=True, overrides={"loss.lam": 0.5})


def test_errors_come_before_any_work(tiny_root, tmp_path, monkeypatch):
    import reid.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the inputs were validated")

    monkeypatch.setattr(reid.models, "build_model", no_model)
    with pytest.raises(ConfigError, match=r"impossible P x K batch: sampler.p=64 .* only 8 training identities"):
        run("support_neighbor", tiny_root, tmp_path / "a", overrides={"sampler.p": 64})
    with pytest.raises(ConfigError, match="unknown key 'loss.sigmaa'"):
        run("support_neighbor", tiny_root, tmp_path / "b", overrides={"loss.sigmaa": 1.0})
    with pytest.raises(DatasetError):
        train("smc_ecd", dataset="market1501", root=tmp_path / "nowhere", out=tmp_path / "c", progress=False)
    with pytest.raises(DatasetError, match="--root is required"):
        train("smc_ecd", dataset="market1501", out=tmp_path / "d", progress=False)
    with pytest.raises(ConfigError, match="unknown dataset 'market'"):
        train("smc_ecd", dataset="market", out=tmp_path / "e", progress=False)
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        train("smc_ecd", epochs=0, out=tmp_path / "f", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            train("smc_ecd", device="cuda", out=tmp_path / "g", progress=False)
    with pytest.raises(ConfigError, match="not a finished run"):
        evaluate(tmp_path / "nowhere")
    assert not (tmp_path / "a").exists()


def test_paper000_new_layers_get_ten_times_the_learning_rate(tiny_root, tmp_path):
    from reid.engine import Trainer
    from reid.engine.data import load_training_data
    from reid.recipes import load_recipe

    cfg = load_recipe("smc_ecd", "smoke", {**COMMON, **TINY["smc_ecd"]})
    trainer = Trainer(cfg, load_training_data(cfg, "synthreid", tiny_root), tmp_path, progress=False)
    trainer._set_lr()
    groups = trainer.optimizers["main"].param_groups
    fc8 = {id(trainer.model.classifier.weight), id(trainer.model.classifier.bias)}
    lr = cfg["optimizer"]["lr"]
    for group in groups:
        is_new = {id(p) for p in group["params"]} <= fc8
        assert group["lr"] == pytest.approx(lr * (cfg["optimizer"]["new_layer_lr_mult"] if is_new else 1.0))
    assert trainer.objective.loss.centers.centers.shape[:2] == (8, 4)  # identities x cameras sub-centres
