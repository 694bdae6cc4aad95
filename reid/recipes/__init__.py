"""Recipes: each paper's training schedule as a small YAML file, with a smoke and a full scale.

A recipe file (``reid/recipes/<name>.yaml``) is the paper's "implementation details" paragraph
written as configuration. Its top-level sections are

``data``       which SynthReID preset to generate when no real root is given, and its layout;
               ``validation_ids`` training identities held out for validation (:mod:`reid.data.validation`)
``model``      :func:`reid.models.build_model` options (+ ``classifier``, ``attribute_q``)
``input``      image size and augmentation
``sampler``    how training batches are formed
``loss``       the loss (``name`` picks the ablation variant) and its hyper-parameters; ``gather``
               (default true): under torchrun the batch-level losses see the global batch
``optimizer``  SGD / Adam, learning rate, multipliers
``schedule``   learning-rate schedule
``train``      length (``epochs`` or ``iterations``)
``eval``       the retrieval distance; ``protocol`` (the metrics written to results.json);
               ``split`` (``test`` | ``validation``: tune on the held-out training identities, never
               on the test split); ``analyses`` (extra per-run metrics, :mod:`reid.engine.analyses`)
``runtime``    devices and speed options (never change results on CPU)
``choices``    the allowed values of keys that switch between variants

The file as written is the **full** (paper) scale; ``scales: {smoke: {...}, study: {...}}`` hold
the changes that make a CPU run of a minute or two (``smoke``) and the evidence runs of
``reid study`` (``study``). :func:`load_recipe` resolves a scale, applies user
``overrides`` (dotted keys: ``{"loss.name": "center"}``) and validates everything **before any
work starts**: an unknown key or a bad value raises :class:`~reid.errors.ConfigError` naming the
key and the valid choices.
"""

from __future__ import annotations

import json

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from reid.errors import ConfigError

__all__ = ["RECIPES", "SCALES", "KEYS_ADDED_LATER", "comparable", "load_recipe", "recipe_path", "parse_override", "flatten"]

RECIPES = ("smc_ecd", "adaptive_margin", "support_neighbor", "view_adaptation", "joint_am_triplet")
#: ``smoke``: a CPU minute or two, proves the pipeline (CI, the chapters' live cells);
#: ``study``: the evidence runs of ``reid study`` (the schedule runs its course, several seeds fit
#: in minutes on 2 cores); ``full``: the paper's own recipe (a GPU and the real dataset).
SCALES = ("smoke", "study", "full")

#: Defaults every recipe shares; a recipe file only states what it changes.
COMMON: dict[str, Any] = {
    # SynthReID preset generated when no dataset root is given; synth_ids / synth_cameras change
    # its number of identities / cameras (null: the preset's own). layout: SynthReID's Market-1501
    # folders, or its VIPeR-style two-camera folder (one image per person and view; evaluate it
    # with eval.protocol=single_shot).
    "data": {
        "synth_preset": "smoke", "synth_ids": None, "synth_cameras": None, "layout": "market",
        "validation_ids": 0,  # training identities held out as a validation split (reid.data.validation)
    },
    "input": {"height": 256, "width": 128, "flip": True, "random_erasing": 0.0},
    "train": {
        "epochs": None,  # training length in epochs ...
        "iterations": None,  # ... or in iterations (stops mid-epoch; epochs = ceil(iterations / batches))
        "batches_per_epoch": None,  # cap on batches per epoch (None: one pass over the training set)
        "grad_clip": None,  # max gradient norm (None: no clipping; no paper clips)
    },
    "eval": {
        "metric": "euclidean", "normalize": False, "batch_size": 128,
        "protocol": "market_sq",  # the metrics written to results.json (reid.engine.evaluation.PROTOCOLS)
        "split": "test",  # "validation": evaluate on the held-out training identities (data.validation_ids)
        "analyses": [],  # extra per-run metrics (reid.engine.analyses), merged into results.json
    },
    "runtime": {
        "num_workers": None,  # None: 0 on CPU (bit-reproducible), min(8, cores) on CUDA
        "amp": True,  # bf16 autocast on CUDA (ignored on CPU)
        "channels_last": True,  # on CUDA (ignored on CPU)
        "compile": False,  # torch.compile the model on CUDA
        "deterministic": True,  # torch.use_deterministic_algorithms on CPU
        "cache_images": True,  # keep decoded training images in memory (shared by the workers)
        "speedups_on_cpu": False,  # apply amp / channels_last / compile on the CPU too (no longer bit-identical)
        "sync_bn": False,  # several processes (torchrun): BatchNorm statistics over the global batch
    },
}

#: Keys every recipe's ``loss`` section gets (a section is replaced whole when its ``name``
#: changes, so these are added after the merge): ``gather`` — under torchrun, batch-level losses
#: mine the global batch gathered from every process (no effect in one process).
LOSS_DEFAULTS: dict[str, Any] = {"gather": True}

#: Allowed values for keys shared by all recipes (a recipe's ``choices`` adds its own).
COMMON_CHOICES: dict[str, list] = {
    "sampler.name": ["random", "pk", "anchor_pairs", "cross_view"],
    "optimizer.name": ["sgd", "adam"],
    "schedule.name": ["constant", "step", "exponential", "warmup_multistep"],
    "schedule.unit": ["epoch", "iteration"],
    "eval.metric": ["euclidean", "sqeuclidean", "cosine"],
    "eval.protocol": ["market_sq", "market_mq", "single_shot"],
    "data.layout": ["market", "two_view"],
    "eval.split": ["test", "validation"],
    "objective": ["classification", "pairs", "metric", "view_adaptation", "joint"],
}

#: Keys that may be ``None`` (everything else must keep its type).
NULLABLE = {
    "model.weights", "model.ms_weights", "model.mt_weights", "train.epochs", "train.iterations",
    "train.batches_per_epoch", "train.grad_clip", "runtime.num_workers", "sampler.num_batches",
    "data.synth_preset", "data.synth_ids", "data.synth_cameras", "sampler.probe_cam", "sampler.gallery_cam",
}  # fmt: skip

#: Keys that must be > 0 / >= 0 when present.
POSITIVE = {
    "input.height", "input.width", "optimizer.lr", "sampler.batch_size", "sampler.p", "sampler.k",
    "sampler.anchors", "sampler.positives", "sampler.negatives", "sampler.num_batches", "sampler.s", "train.epochs",
    "train.iterations", "train.batches_per_epoch", "eval.batch_size", "schedule.step_size",
    "data.synth_ids", "data.synth_cameras",
    "optimizer.new_layer_lr_mult", "train.grad_clip", "loss.scale", "loss.sigma", "loss.mu", "loss.k",
    "model.attribute_q", "model.width_mult", "schedule.warmup_start",
}  # fmt: skip
#: Keys that hold counts (integers, even when the recipe's default is ``null``).
INTEGER = {
    "train.epochs", "train.iterations", "train.batches_per_epoch", "sampler.num_batches", "runtime.num_workers",
    "sampler.batch_size", "sampler.p", "sampler.k", "sampler.s", "sampler.anchors", "sampler.positives", "sampler.negatives",
    "input.height", "input.width", "eval.batch_size", "data.synth_ids", "data.synth_cameras", "data.validation_ids",
}  # fmt: skip
NON_NEGATIVE = {
    "optimizer.weight_decay", "runtime.num_workers", "loss.margin", "loss.triplet_margin", "loss.lam",
    "loss.lam_ecd", "loss.gamma", "loss.attr_gamma", "loss.confusion_weight", "loss.ecd_eps",
    "loss.similarity_epochs", "schedule.warmup_epochs", "schedule.start", "data.validation_ids",
}  # fmt: skip
#: Bounded keys: ``key: (low, high, low included, high included, what the bound means)``. The loss
#: modules check their own finer limits (e.g. the angular margin below pi/2) when they are built;
#: these are refused here, before any data is loaded.
RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "optimizer.momentum": (0.0, 1.0, True, False, "SGD momentum keeps a fraction of the previous step"),
    "input.random_erasing": (0.0, 1.0, True, True, "a probability"),
    "loss.alpha": (0.0, 1.0, False, True, "the centre update rate of the centre loss"),
    "schedule.gamma": (0.0, 1.0, False, True, "the factor a step decay multiplies the learning rate by"),
}

#: ``model`` keys the engine reads itself (the rest go to :func:`reid.models.build_model`).
ENGINE_MODEL_KEYS = ("name", "classifier", "attribute_q")


#: Recipe keys added after runs were recorded, with the value that reproduces the behaviour from
#: before the key existed. A recipe stored without such a key (in a results.json or a checkpoint)
#: reads as holding that value, so a finished run is not called stale, nor a checkpoint refused,
#: only because the schema grew.
KEYS_ADDED_LATER: dict[tuple[str, str], Any] = {
    ("data", "layout"): "market", ("eval", "protocol"): "market_sq", ("loss", "gather"): True,
}


def comparable(cfg: dict) -> dict:
    """A resolved recipe as JSON stores it, minus speed-only options (``runtime``), with the
    :data:`KEYS_ADDED_LATER` filled in: equal for a run and its resumption or re-run."""
    out = json.loads(json.dumps({k: v for k, v in cfg.items() if k != "runtime"}, default=str))
    for (section, key), value in KEYS_ADDED_LATER.items():
        if isinstance(out.get(section), dict):
            out[section].setdefault(key, value)
    return out


def recipe_path(name: str) -> Path:
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    return Path(__file__).with_name(f"{name}.yaml")


def _merge(base: dict, update: dict) -> dict:
    """Deep-merge ``update`` into a copy of ``base``; a section whose ``name`` changes is replaced."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            if "name" in value and value["name"] != out[key].get("name"):
                out[key] = copy.deepcopy(value)  # a different model/loss: start that section afresh
            else:
                out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and key != "choices":
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``"loss.lam=0.1"`` -> ``("loss.lam", 0.1)`` (the value is read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. loss.name=center), got {text!r}.")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), _numeric(value)


def _numeric(value):
    """YAML 1.1 reads ``1e-3`` as a string; accept it as the number it obviously is."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(key: str, old, new):
    """``new`` converted to the type of ``old``, or a ConfigError saying what was expected."""
    new = _numeric(new)
    if new is None:
        if old is None or key in NULLABLE:
            return None
        raise ConfigError(f"{key} cannot be empty (null); give a value like {old!r}.")
    if old is None or isinstance(old, list):
        return new
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
        raise ConfigError(f"{key} must be true or false, got {new!r}.")
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(new, bool):
        if isinstance(old, int) and not float(new).is_integer():
            raise ConfigError(f"{key} must be an integer, got {new!r}.")
        return int(new) if isinstance(old, int) else float(new)
    if isinstance(old, str) and isinstance(new, (str, int, float)) and not isinstance(new, bool):
        return str(new) if not isinstance(new, str) else new
    raise ConfigError(f"{key} must be a {type(old).__name__} like {old!r}, got {new!r}.")


def _valid_model_keys(model: dict) -> list[str]:
    from reid.models import model_options

    return list(ENGINE_MODEL_KEYS) + model_options(model.get("name", ""))


def apply_overrides(cfg: dict, overrides: dict[str, Any] | None) -> dict:
    """Apply dotted-key ``overrides`` to the resolved ``cfg`` (validating each key)."""
    cfg = copy.deepcopy(cfg)
    items = list((overrides or {}).items())
    # a model change first, so that the new model's options are the valid ones
    items.sort(key=lambda kv: kv[0] != "model.name")
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"override keys are dotted strings like 'loss.name', got {key!r}.")
        parts = key.split(".")
        node = cfg
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node.get(part), dict):
                valid = sorted(k for k, v in node.items() if isinstance(v, dict) and k not in ("choices", "scales"))
                where = ".".join(parts[:depth]) or "the recipe"
                raise ConfigError(
                    f"unknown key {key!r}: {where} has no section {part!r}; valid sections: {', '.join(valid)}."
                )
            node = node[part]
        leaf = parts[-1]
        section = parts[0]
        if section == "model" and len(parts) == 2:
            valid = _valid_model_keys(cfg["model"] if leaf != "name" else {"name": value})
            if leaf not in valid:
                raise ConfigError(
                    f"unknown key {key!r} for model {cfg['model'].get('name')!r}; valid keys: "
                    f"{', '.join('model.' + k for k in valid)}."
                )
            if leaf == "name" and value != node.get("name"):
                # keep only the options the new model also has
                keep = _valid_model_keys({"name": value})
                for k in [k for k in node if k not in keep]:
                    del node[k]
            node[leaf] = _coerce(key, node.get(leaf), value) if leaf in node else _numeric(value)
            continue
        if leaf not in node or isinstance(node[leaf], dict) or leaf in ("choices", "scales"):
            valid = sorted(k for k in flatten({k: v for k, v in cfg.items() if k not in ("choices", "scales", "paper", "title")}))
            close = [v for v in valid if v.split(".")[0] == section] or valid
            raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(close)}.")
        node[leaf] = _coerce(key, node[leaf], value)
    return cfg


def validate(cfg: dict) -> None:
    """Value checks that need no data: choices, ranges, model options, training length."""
    flat = flatten({k: v for k, v in cfg.items() if k not in ("choices", "scales")})
    for key in INTEGER:
        value = flat.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"{key} must be an integer, got {value!r}.")
        section, leaf = key.split(".")
        cfg[section][leaf] = flat[key] = int(value)
    choices = {**COMMON_CHOICES, **cfg.get("choices", {})}
    for key, allowed in choices.items():
        if key in flat and flat[key] not in allowed:
            raise ConfigError(f"{key}={flat[key]!r} is not valid; choose one of: {', '.join(map(str, allowed))}.")
    for key in POSITIVE:
        value = flat.get(key)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            raise ConfigError(f"{key} must be > 0, got {value!r}.")
    for key in NON_NEGATIVE:
        value = flat.get(key)
        if value is not None and not (isinstance(value, (int, float)) and value >= 0):
            raise ConfigError(f"{key} must be >= 0, got {value!r}.")
    for key, (low, high, low_in, high_in, meaning) in RANGES.items():
        value = flat.get(key)
        if value is None:
            continue
        inside = isinstance(value, (int, float)) and not isinstance(value, bool)
        inside = inside and (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
        if not inside:
            interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
            raise ConfigError(f"{key} must lie in {interval} ({meaning}), got {value!r}.")
    train = cfg["train"]
    if train["epochs"] is None and train["iterations"] is None:
        raise ConfigError("the recipe sets neither train.epochs nor train.iterations; set one (e.g. --epochs 10).")
    model = cfg["model"]
    valid = _valid_model_keys(model)
    unknown = [k for k in model if k not in valid]
    if unknown:
        raise ConfigError(
            f"model {model.get('name')!r} has no option(s) {', '.join(unknown)}; valid: {', '.join(valid)}."
        )
    if model["name"] == "part_cnn" and (model.get("height", 230), model.get("width", 80)) != (
        cfg["input"]["height"],
        cfg["input"]["width"],
    ):
        raise ConfigError(
            "the part CNN is built for a fixed input size: set model.height/model.width equal to "
            f"input.height/input.width (got {model.get('height', 230)}x{model.get('width', 80)} vs "
            f"{cfg['input']['height']}x{cfg['input']['width']})."
        )
    from reid.engine.analyses import check_analyses

    check_analyses(cfg["eval"]["analyses"])
    if cfg["eval"]["split"] == "validation" and not cfg["data"]["validation_ids"]:
        raise ConfigError("eval.split=validation needs held-out identities: set data.validation_ids (e.g. 20).")
    for key, value in flat.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}.")


def load_recipe(name: str, scale: str = "smoke", overrides: dict[str, Any] | None = None) -> dict:
    """The resolved, validated configuration of recipe ``name`` at ``scale``.

    The result carries ``recipe`` and ``scale`` keys, so a run's ``results.json`` says exactly
    what was trained.
    """
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}.")
    with open(recipe_path(name), encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    scales = raw.pop("scales", {}) or {}
    cfg = _merge(COMMON, raw)
    if scale != "full":
        if scale not in scales:
            raise ConfigError(f"recipe {name!r} defines no {scale!r} scale; choose one of "
                              f"{', '.join(s for s in SCALES if s == 'full' or s in scales)}.")
        cfg = _merge(cfg, scales[scale])
    for key, value in LOSS_DEFAULTS.items():
        cfg["loss"].setdefault(key, value)
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError(f"overrides must be a dict of dotted keys to values, got {type(overrides).__name__}.")
    cfg = apply_overrides(cfg, overrides)
    cfg["recipe"], cfg["scale"] = name, scale
    validate(cfg)
    return cfg
