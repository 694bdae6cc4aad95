"""3DPeS (Baltieri, Vezzani and Cucchiara, "3DPeS: 3D People Dataset for Surveillance and
Forensics", ACM workshop on Human Gesture and Behavior Understanding, 2011).

1,011 snapshots of 192 persons from 8 outdoor cameras with strongly different viewpoints, 2 to 26
images per person. The re-ID snapshot archive unpacks to one folder of ``.bmp`` crops, ``RGB/``.

**What this loader accepts** (the layout of open-reid and of Xiao et al.'s DGD code, the
toolkits that ship a 3DPeS reader): ``3DPeS/RGB/*.bmp`` where the first two ``_``-separated
fields of a name are the person and the camera (``<person>_<camera>_<anything>.bmp``); any
further fields are ignored. ``.png``/``.jpg`` are accepted too.

**Two views.** 3DPeS has 8 cameras, but its protocol (paper 001 follows Xiong et al., ECCV 2014:
"half of the persons are used for training and the rest for testing") is a two-view one. As in
open-reid, each person's cameras are shuffled (seeded) and split in two halves: the first
``floor(n / 2)`` cameras form view 0 and the rest view 1. A person seen by a single camera has no
view 0; such persons are kept for training only and never drawn as test identities.
``num_test=None`` tests on half of the two-view persons (rounded down); 10 seeded splits.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict

import numpy as np

from reid.data.datasets.base import (
    DatasetInfo,
    TwoViewDataset,
    locate_root,
    parse_filename,
    random_splits,
    scan_folder,
)
from reid.data.records import Record

INFO = DatasetInfo(
    name="threedpes",
    title="3DPeS",
    reference=(
        'D. Baltieri, R. Vezzani, R. Cucchiara, "3DPeS: 3D People Dataset for Surveillance and '
        'Forensics", ACM J-HGBU workshop 2011'
    ),
    source="the 3DPeS re-identification snapshots (3DPeS_ReId_Snap.zip) from the 3DPeS page of "
    "the ImageLab group, University of Modena and Reggio Emilia",
    layout="""
        3dpes/3DPeS/RGB/                        (or 3DPeS/RGB/, RGB/, or --root is the RGB folder)
            <person>_<camera>_<...>.bmp          e.g. 1_1_0001.bmp, 1_3_0002.bmp, ...
    """,
)

CANDIDATES: tuple[str, ...] = ("3dpes/3DPeS/RGB", "3DPeS/RGB", "3dpes/RGB", "RGB", "")
NAME_PATTERN = re.compile(r"^(\d+)_(\d+)(?:_.*)?\.(?:bmp|png|jpe?g)$", re.IGNORECASE)


def assign_views(
    cameras_of: dict[int, list[int]], seed: int
) -> dict[tuple[int, int], int]:
    """``(pid, camera) -> view`` (0/1): each person's cameras shuffled, first half view 0."""
    rng = np.random.default_rng(seed)
    views = {}
    for pid in sorted(cameras_of):
        cameras = rng.permutation(sorted(cameras_of[pid])).tolist()
        half = len(cameras) // 2
        for i, camera in enumerate(cameras):
            views[(pid, camera)] = 0 if i < half else 1
    return views


def load_threedpes(
    root: str | os.PathLike[str] | None,
    *,
    num_test: int | None = None,
    num_splits: int = 10,
    split: int = 0,
    seed: int = 0,
    relabel: bool = True,
) -> TwoViewDataset:
    """Load 3DPeS as a two-view dataset (seeded camera halves, seeded identity splits)."""
    folder = locate_root(root, INFO, CANDIDATES, ("*_*.*",))
    parsed = []
    cameras_of: dict[int, set[int]] = defaultdict(set)
    for path in scan_folder(folder, INFO):
        person, camera = (int(g) for g in parse_filename(path, NAME_PATTERN, INFO).groups())
        parsed.append((path, person, camera))
        cameras_of[person].add(camera)
    views = assign_views({p: sorted(c) for p, c in cameras_of.items()}, seed)
    records = [Record(str(path), pid, views[(pid, cam)]) for path, pid, cam in parsed]
    two_view = sorted(p for p, c in cameras_of.items() if len(c) >= 2)
    single = sorted(p for p, c in cameras_of.items() if len(c) < 2)
    if num_test is None:
        num_test = len(two_view) // 2
    splits = random_splits(two_view, num_test=num_test, num_splits=num_splits, seed=seed)
    for s in splits:  # single-camera persons can only ever train
        s["train"] = sorted(s["train"] + single)
    dataset = TwoViewDataset.build(
        "threedpes", records, splits, split_index=split, relabel_train=relabel, root=folder,
        info=INFO,
    )
    dataset.notes.update(single_camera_persons=len(single))
    return dataset
