"""A validation split carved from the training identities: tune there, never on the test split.

Where a paper gives no value for a hyper-parameter, the book chooses it on held-out *training*
identities. :func:`hold_out_validation` takes ``num_ids`` training identities out of the training
set (a seeded, deterministic choice that does not depend on the run's seed, so every seed and
every variant sees the same split), trains on the others, and turns the held-out images into a
query/gallery split with the Market-1501 rules:

* one query image per (identity, camera), drawn at random; the identity's other images are the
  gallery (its same-camera gallery images are then junk for that query under the Market rule,
  exactly as in Market-1501's own test set);
* only identities seen by at least two cameras give queries (a query needs a cross-camera
  match); the others stay in the gallery as plain negatives.

Recipes select it with ``data.validation_ids: N`` (held out whenever N > 0) and
``eval.split: validation`` (evaluate on it instead of the test split).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np

from reid.data.records import Record
from reid.errors import ConfigError

__all__ = ["validation_split", "hold_out_validation"]

#: The split does not depend on the run's seed: one fixed draw per dataset.
SPLIT_SEED = 0


def validation_split(train: list[Record], num_ids: int, *, seed: int = SPLIT_SEED, raw_pids=None):
    """Split relabelled training records into (rest, query, gallery, held-out labels).

    ``raw_pids[label]`` gives the identity written into the query/gallery records (positive
    integers, so never mistaken for Market's junk ``-1`` or distractor ``0``); by default
    ``label + 1``. The rest keeps the original labels (relabel them before training).
    """
    labels = sorted({r.pid for r in train})
    if isinstance(num_ids, bool) or not isinstance(num_ids, int) or num_ids < 2:
        raise ConfigError(f"data.validation_ids must be an integer >= 2 (a query needs other identities), got {num_ids!r}.")
    if num_ids > len(labels) - 2:
        raise ConfigError(f"data.validation_ids={num_ids} leaves fewer than 2 of the {len(labels)} training identities "
                          f"to train on; use at most {len(labels) - 2}.")
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(labels)[:num_ids].tolist())
    pid_of = (lambda label: int(raw_pids[label])) if raw_pids is not None and min(raw_pids) > 0 else (lambda label: label + 1)
    by_id_cam: dict[tuple[int, int], list[Record]] = defaultdict(list)
    rest = []
    for r in train:
        (by_id_cam[(r.pid, r.camid)] if r.pid in held else rest).append(r)
    cams_of: dict[int, set[int]] = defaultdict(set)
    for pid, cam in by_id_cam:
        cams_of[pid].add(cam)
    query, gallery = [], []
    for (pid, cam), records in sorted(by_id_cam.items()):
        records = sorted(records)
        pick = int(rng.integers(len(records))) if len(cams_of[pid]) > 1 else -1
        for i, r in enumerate(records):
            (query if i == pick else gallery).append(Record(r.path, pid_of(pid), r.camid))
    if not query:
        raise ConfigError(f"the {num_ids} held-out validation identities are each seen by one camera only: "
                          "no query has a cross-camera match; raise data.validation_ids.")
    return rest, query, gallery, sorted(held)


def hold_out_validation(dataset, num_ids: int, *, evaluate_on: str = "test", seed: int = SPLIT_SEED):
    """``dataset`` with ``num_ids`` training identities held out (see the module docstring).

    Training identities are relabelled ``0..N-1`` again (``train_raw_pids`` follows them, so
    attribute look-ups still work). ``evaluate_on="validation"`` replaces query/gallery by the
    held-out split; ``"test"`` keeps the test split (the model still trains on the rest only).
    """
    if evaluate_on not in ("test", "validation"):
        raise ConfigError(f"eval.split must be test or validation, got {evaluate_on!r}.")
    raw = list(dataset.train_raw_pids) if dataset.train_raw_pids else None
    rest, query, gallery, held = validation_split(list(dataset.train), num_ids, seed=seed, raw_pids=raw)
    keep = sorted({r.pid for r in rest})
    new_label = {old: new for new, old in enumerate(keep)}
    train = [Record(r.path, new_label[r.pid], r.camid) for r in rest]
    changes = {
        "train": train,
        "train_raw_pids": tuple(raw[old] for old in keep) if raw else tuple(keep),
        "notes": {**dataset.notes, "validation": {"held_out_ids": len(held), "seed": seed, "evaluated_on": evaluate_on,
                                                  "query": len(query), "gallery": len(gallery)}},
    }
    if evaluate_on == "validation":
        changes.update(query=query, gallery=gallery, multi_query=None)
    return dataclasses.replace(dataset, **changes)
