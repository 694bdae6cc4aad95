"""Recipes resolve at both scales; bad keys and values fail before any work, naming the fix."""

from __future__ import annotations

import json
import pytest

from reid.errors import ConfigError
from reid.recipes import RECIPES, load_recipe, parse_override

PAPER_OF = {
    "smc_ecd": "000",
    "adaptive_margin": "001",
    "support_neighbor": "002",
    "view_adaptation": "003",
    "joint_am_triplet": "004",
}


@pytest.mark.parametrize("name", RECIPES)
@pytest.mark.parametrize("scale", ["smoke", "full"])
def test_every_recipe_resolves(name, scale):
    cfg = load_recipe(name, scale)
    assert cfg["recipe"] == name and cfg["scale"] == scale and cfg["paper"] == PAPER_OF[name]
    assert cfg["loss"]["name"] in cfg["choices"]["loss.name"]
    if scale == "smoke":
        assert cfg["data"]["synth_preset"] == "smoke"
        assert cfg["model"].get("weights") in (None, "none") and cfg["model"].get("mt_weights") is None
        assert cfg["input"]["height"] * cfg["input"]["width"] <= 128 * 64


def test_full_scale_is_the_papers_schedule():
    p000 = load_recipe("smc_ecd", "full")
    assert (p000["optimizer"]["lr"], p000["optimizer"]["momentum"], p000["optimizer"]["weight_decay"]) == (1e-3, 0.9, 5e-4)
    assert p000["optimizer"]["new_layer_lr_mult"] == 10
    assert (p000["schedule"]["step_size"], p000["schedule"]["unit"], p000["train"]["iterations"]) == (9000, "iteration", 15000)
    assert (p000["sampler"]["batch_size"], p000["input"]["height"], p000["input"]["width"]) == (16, 224, 224)
    p001 = load_recipe("adaptive_margin", "full")
    assert p001["optimizer"]["lr"] == 0.01 and (p001["input"]["height"], p001["input"]["width"]) == (230, 80)
    assert p001["sampler"]["name"] == "anchor_pairs" and p001["model"]["init"] == "paper"
    p002 = load_recipe("support_neighbor", "full")
    assert (p002["sampler"]["p"], p002["sampler"]["k"], p002["optimizer"]["name"], p002["optimizer"]["lr"]) == (32, 4, "adam", 2e-4)
    assert p002["schedule"]["name"] == "exponential" and p002["input"]["flip"]
    p003 = load_recipe("view_adaptation", "full")
    assert p003["sampler"]["p"] * p003["sampler"]["s"] == 128 and p003["optimizer"]["lr"] == 1e-3
    assert (p003["schedule"]["step_size"], p003["schedule"]["gamma"]) == (10, 0.1)
    p004 = load_recipe("joint_am_triplet", "full")
    assert (p004["sampler"]["p"], p004["sampler"]["k"], p004["train"]["epochs"]) == (4, 8, 150)
    assert p004["schedule"]["milestones"] == [90, 130] and p004["schedule"]["warmup_epochs"] == 20
    assert (p004["loss"]["gamma"], p004["loss"]["lam"], p004["model"]["attribute_q"]) == (0.43, 0.25, 16)
    assert p004["model"]["last_stride"] == 1 and p004["model"]["neck"] == "bn" and p004["input"]["random_erasing"] > 0


@pytest.mark.parametrize(
    "name, variants",
    [
        ("smc_ecd", ["softmax", "center", "gcl", "smc", "smc_ecd"]),
        ("adaptive_margin", ["contrastive", "adaptive", "triplet"]),
        ("support_neighbor", ["batch_hard", "support_neighbor"]),
        ("view_adaptation", ["adaptive", "plain"]),
        ("joint_am_triplet", ["AM0", "AM", "BH", "AM0BH", "AMBH", "AM0BH1", "AM0BHsp", "AM0BH_Attr"]),
    ],
)
def test_ablation_variants_are_selectable(name, variants):
    for variant in variants:
        assert load_recipe(name, overrides={"loss.name": variant})["loss"]["name"] == variant


def test_overrides_change_values_with_types():
    cfg = load_recipe("smc_ecd", overrides={"loss.name": "center", "loss.lam": 0.1, "sampler.batch_size": 8})
    assert cfg["loss"]["name"] == "center" and cfg["loss"]["lam"] == 0.1 and cfg["sampler"]["batch_size"] == 8
    cfg = load_recipe("view_adaptation", overrides={"loss.adversarial": False})
    assert cfg["loss"]["adversarial"] is False
    # switching the backbone keeps the options the new model shares and validates the rest
    cfg = load_recipe("joint_am_triplet", "full", overrides={"model.name": "small_resnet", "model.width": 8})
    assert cfg["model"]["name"] == "small_resnet" and cfg["model"]["width"] == 8 and cfg["model"]["neck"] == "bn"


def test_parse_override():
    assert parse_override("loss.lam=1e-3") == ("loss.lam", 1e-3)
    assert parse_override("model.weights=none") == ("model.weights", "none")
    assert parse_override("model.weights=null") == ("model.weights", None)
    assert parse_override("schedule.milestones=[3, 5]") == ("schedule.milestones", [3, 5])
    assert parse_override("loss.adversarial=false") == ("loss.adversarial", False)
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("loss.lam")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss.lamda": 0.1}, r"unknown key 'loss.lamda'; valid keys: .*loss.lam\b"),
        ({"optimiser.lr": 0.1}, r"unknown key 'optimiser.lr'.*valid sections: .*optimizer"),
        ({"model.depth": 3}, r"unknown key 'model.depth' for model 'small_resnet'; valid keys: .*model.width"),
        ({"loss.name": "arcface"}, r"loss.name='arcface' is not valid; choose one of: softmax, gcl, center, smc, smc_ecd"),
        ({"optimizer.lr": -1.0}, r"optimizer.lr must be > 0"),
        ({"optimizer.lr": "fast"}, r"optimizer.lr must be a float"),
        ({"sampler.batch_size": 2.5}, r"sampler.batch_size must be an integer"),
        ({"input.flip": "yes"}, r"input.flip must be true or false"),
        ({"input.random_erasing": 1.5}, r"random_erasing must lie in \[0, 1\] \(a probability\)"),
        ({"eval.metric": "manhattan"}, r"eval.metric='manhattan' is not valid"),
        ({"loss.lam": None}, r"loss.lam cannot be empty"),
        ({"train.epochs": None, "train.iterations": None}, r"neither train.epochs nor train.iterations"),
    ],
)
def test_bad_overrides_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe("smc_ecd", "smoke", overrides)


def test_other_bad_inputs():
    with pytest.raises(ConfigError, match="unknown recipe 'arcface'; choose one of smc_ecd"):
        load_recipe("arcface")
    with pytest.raises(ConfigError, match="unknown scale 'huge'"):
        load_recipe("smc_ecd", "huge")
    with pytest.raises(ConfigError, match="part CNN is built for a fixed input size"):
        load_recipe("adaptive_margin", overrides={"input.height": 230})
    with pytest.raises(ConfigError, match="overrides must be a dict"):
        load_recipe("smc_ecd", overrides=["loss.lam=1"])


def test_learning_rate_schedules_follow_the_papers():
    from reid.engine.schedule import check_schedule, lr_factor

    s000 = load_recipe("smc_ecd", "full")["schedule"]  # x0.1 every 9000 iterations
    assert [lr_factor(s000, 1e-3, 0, it) for it in (0, 8999, 9000, 14999)] == pytest.approx([1, 1, 0.1, 0.1])
    s002 = load_recipe("support_neighbor", "full")["schedule"]  # 2e-4 until epoch 75, then 0.001^(...)
    assert lr_factor(s002, 2e-4, 74, 0) == 1.0 and lr_factor(s002, 2e-4, 800, 0) == pytest.approx(1e-3)
    assert lr_factor(s002, 2e-4, 437, 0) == pytest.approx(0.001 ** ((437 - 75) / 725))
    s003 = load_recipe("view_adaptation", "full")["schedule"]  # /10 every 10 epochs
    assert [lr_factor(s003, 1e-3, e, 0) for e in (0, 9, 10, 25)] == pytest.approx([1, 1, 0.1, 0.01])
    s004 = load_recipe("joint_am_triplet", "full")["schedule"]  # 1e-5 -> 1e-3 over 20 epochs; x0.1 at 90, 130
    lrs = [1e-3 * lr_factor(s004, 1e-3, e, 0) for e in (0, 10, 20, 89, 90, 129, 130, 149)]
    assert lrs == pytest.approx([1e-5, 1e-5 + 0.5 * (1e-3 - 1e-5), 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    with pytest.raises(ConfigError, match="schedule.milestones"):
        check_schedule({**s004, "milestones": [130, 90]}, 1e-3)
    with pytest.raises(ConfigError, match="schedule.end must be > schedule.start"):
        check_schedule({**s002, "start": 900}, 2e-4)


@pytest.mark.parametrize(
    "key, inside, outside",
    [
        ("optimizer.momentum", [0.0, 0.9], [1.0, -0.1]),
        ("input.random_erasing", [0.0, 1.0], [1.5, -0.5]),
        ("loss.alpha", [1.0, 0.5], [0.0, 1.5]),
        ("schedule.gamma", [1.0, 0.1], [0.0, 2.0]),
    ],
)
def test_bounded_keys_accept_their_range_and_refuse_outside(key, inside, outside):
    from reid.recipes import RANGES

    recipe = "smc_ecd"
    assert key in RANGES
    for value in inside:
        assert load_recipe(recipe, "smoke", {key: value}) is not None
    for value in outside:
        with pytest.raises(ConfigError, match=rf"{key} must lie in"):
            load_recipe(recipe, "smoke", {key: value})


def test_a_recipe_stored_before_keys_existed_compares_equal_to_its_resumption():
    # a checkpoint / results.json written before data.layout, eval.protocol and loss.gather existed
    from reid.recipes import KEYS_ADDED_LATER, comparable

    cfg = load_recipe("smc_ecd", "smoke")
    old = json.loads(json.dumps(cfg))
    for section, key in KEYS_ADDED_LATER:
        old[section].pop(key)
    old["runtime"] = {"num_workers": 7}  # speed options never matter
    assert comparable(old) == comparable(cfg)
    old["loss"]["gather"] = False  # an explicit, different value does
    assert comparable(old) != comparable(cfg)
