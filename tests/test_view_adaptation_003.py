"""Paper 003's training procedure: the stages of Algorithm 1, their options, and the two-view layout.

Tiny runs (SynthReID ``tiny``, 32x16 images, 2 batches per epoch) of the ``view_adaptation``
recipe, each a few seconds on one CPU core.
"""

from __future__ import annotations

import json

import pytest
import torch

from reid.data.synthreid import PRESETS, generate
from reid.engine import Callback, train
from reid.errors import ConfigError
from reid.models import build_model
from reid.recipes import SCALES, load_recipe

TINY = {
    "train.batches_per_epoch": 2, "eval.batch_size": 64, "input.height": 32, "input.width": 16,
    "model.small_width": 8, "sampler.p": 4, "sampler.s": 2,
    "loss.finetune_epochs": 1, "loss.similarity_epochs": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **PRESETS["tiny"])


def run(root, out, *, epochs=3, overrides=None, callbacks=None):
    from reid.engine.trainer import Trainer
    from reid.engine.data import load_training_data

    cfg = load_recipe("view_adaptation", "smoke", {**TINY, "train.epochs": epochs, **(overrides or {})})
    data = load_training_data(cfg, "synthreid", root, progress=False)
    trainer = Trainer(cfg, data, out, progress=False, callbacks=callbacks)
    results = trainer.fit()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return trainer, results, log


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_recipe_follows_section_iv_b():
    for scale in SCALES:
        cfg = load_recipe("view_adaptation", scale)
        # "we do not perform data augmentation"
        assert cfg["input"]["flip"] is False and cfg["input"]["random_erasing"] == 0.0, scale
        assert cfg["loss"]["negative_hinge"] == "anchor" and cfg["loss"]["finetune_epochs"] >= 1, scale
    full = load_recipe("view_adaptation", "full")
    stages = full["loss"]["finetune_epochs"] + full["loss"]["similarity_epochs"]
    assert full["train"]["epochs"] > stages  # the adversarial stage runs


def test_three_stages_and_what_each_one_trains(tiny_root, tmp_path):
    snaps = {}

    def keep(trainer, epoch):
        snaps[epoch] = {name: snapshot(getattr(trainer.model, name)) for name in ("ms", "mt", "ds", "dd")}

    trainer, _, log = run(tiny_root, tmp_path / "run", callbacks=[Callback(on_epoch_end=keep)])
    assert [r["stage"] for r in log] == [0.0, 1.0, 2.0]
    # stage 0 (Alg. 1 line 2): identity soft-max on both mappings, Ds and Dd untouched
    assert "identity" in log[0] and "id_accuracy_s" in log[0] and "view_discriminator" not in log[0]
    assert trainer.objective.id_heads[0].out_features == trainer.data.info.num_classes
    first = snaps[1]
    assert "contrastive" in log[1] and "view_discriminator" in log[2]
    assert changed(first["ms"], snaps[2]["ms"]) and changed(first["ds"], snaps[2]["ds"])
    assert not changed(first["dd"], snaps[2]["dd"])  # Dd only moves in stage 2
    assert changed(snaps[2]["dd"], snaps[3]["dd"])


def test_stage_zero_leaves_the_discriminators_alone(tiny_root, tmp_path):
    snaps = {}

    def keep(trainer, epoch, iteration):
        if iteration == 1:  # after the first step; the model was initialised from the seed only
            snaps["after"] = {name: snapshot(getattr(trainer.model, name)) for name in ("ms", "ds", "dd")}

    trainer, _, _ = run(tiny_root, tmp_path / "run", epochs=1, callbacks=[Callback(on_step=keep)])
    from reid.engine.trainer import seed_everything

    seed_everything(0)
    fresh = build_model("view_adaptation", **{k: v for k, v in trainer.cfg["model"].items() if k != "name"})
    assert changed(snapshot(fresh.ms), snaps["after"]["ms"])
    for name in ("ds", "dd"):
        assert not changed(snapshot(getattr(fresh, name)), snaps["after"][name]), name


@pytest.mark.parametrize("stage_schedule, factors", [("restart", [1, 1, 1]), ("continue", [1, 0.1, 0.01])])
def test_learning_rate_schedule_restarts_in_each_stage(tiny_root, tmp_path, stage_schedule, factors):
    over = {"schedule.step_size": 1, "loss.stage_schedule": stage_schedule}
    _, results, log = run(tiny_root, tmp_path / "run", overrides=over)
    base = results["recipe"]["optimizer"]["lr"]
    assert [r["lr"] for r in log] == pytest.approx([base * f for f in factors])


@pytest.mark.parametrize("update", ["both", "gallery"])
def test_gallery_only_update_holds_the_probe_mapping(tiny_root, tmp_path, update):
    snaps = {}

    def keep(trainer, epoch):
        snaps[epoch] = {name: snapshot(getattr(trainer.model, name)) for name in ("ms", "mt")}

    run(tiny_root, tmp_path / "run", overrides={"loss.update": update}, callbacks=[Callback(on_epoch_end=keep)])
    assert changed(snaps[2]["mt"], snaps[3]["mt"])  # stage 2 adapts Mt in both settings
    assert changed(snaps[2]["ms"], snaps[3]["ms"]) == (update == "both")


def test_shared_mapping_is_the_siamese_baseline(tiny_root, tmp_path):
    model = build_model("view_adaptation", ms="small_resnet", mt="small_resnet", small_width=8, shared=True)
    assert model.ms is model.mt and model.shared
    assert len(model.mapping_parameters()) == len(list(model.ms.parameters()))
    x = torch.randn(2, 3, 32, 16)
    torch.testing.assert_close(model(x, 0).features, model(x, 1).features)
    trainer, _, log = run(tiny_root, tmp_path / "run", overrides={"model.shared": True})
    assert trainer.model.shared and len(trainer.objective.id_heads) == 1 and [r["stage"] for r in log] == [0, 1, 2]
    with pytest.raises(ConfigError, match="shared"):
        run(tiny_root, tmp_path / "bad", overrides={"model.shared": True, "loss.update": "gallery"})
    with pytest.raises(ConfigError, match="model.ms"):
        build_model("view_adaptation", ms="vgg_m", mt="vgg16", shared=True)


def test_two_view_layout_with_the_single_shot_protocol(tiny_root, tmp_path):
    over = {"data.layout": "two_view", "eval.protocol": "single_shot"}
    trainer, results, _ = run(tiny_root, tmp_path / "run", overrides=over)
    ds = trainer.data.dataset
    assert {r.camid for r in ds.train} == {0, 1} and len(ds.train) == 2 * len({r.pid for r in ds.train})
    assert len(ds.query) == len(ds.gallery) == PRESETS["tiny"]["two_view_ids"] // 2
    m = results["metrics"]
    assert m["protocol"] == "single_shot" and m["num_probes"] == len(ds.query) and 0 <= m["rank1"] <= m["rank5"] <= 1
    with pytest.raises(ConfigError, match="data.layout"):
        load_recipe("view_adaptation", overrides={"data.layout": "viper"})
