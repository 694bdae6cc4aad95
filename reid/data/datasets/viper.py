"""VIPeR (Gray, Brennan and Tao, "Evaluating Appearance Models for Recognition, Reacquisition,
and Tracking", PETS 2007; Gray and Tao, ECCV 2008).

632 identities, one 48x128 image per camera: ``cam_a/`` and ``cam_b/``, 632 ``.bmp`` files each,
named ``<index>_<angle>.bmp`` (the viewpoint angle in degrees). Both folders list the same persons
in the same order, so -- as torchreid and open-reid do -- the i-th file of ``cam_a`` (sorted by
name) and the i-th file of ``cam_b`` show person ``i``; raw pids are ``0..631``. ``camid`` 0 is
camera A, 1 camera B.

Protocol: 10 random halves, 316 training and 316 test identities (the default); camera A
images are the probes, camera B the gallery (single-shot, CMC averaged over the splits).
Paper 003 further holds out 100 of the 316 training identities for validation (216/100/316),
which a recipe can carve from ``splits[i]["train"]``.
"""

from __future__ import annotations

import os

from reid.data.datasets.base import (
    DatasetInfo,
    TwoViewDataset,
    locate_root,
    random_splits,
    scan_folder,
)
from reid.data.records import Record

INFO = DatasetInfo(
    name="viper",
    title="VIPeR",
    reference=(
        'D. Gray, S. Brennan, H. Tao, "Evaluating Appearance Models for Recognition, '
        'Reacquisition, and Tracking", PETS 2007'
    ),
    source="VIPeR.v1.0.zip from the VIPeR page of UC Santa Cruz (Hai Tao's group)",
    layout="""
        viper/VIPeR/                           (or VIPeR/, viper/, or --root is it)
            cam_a/000_45.bmp ... (632 images)
            cam_b/000_45.bmp ... (632 images, same persons in the same order)
    """,
)

CANDIDATES: tuple[str, ...] = ("viper/VIPeR", "VIPeR", "viper", "")
REQUIRED: tuple[str, ...] = ("cam_a", "cam_b")


def load_viper(
    root: str | os.PathLike[str] | None,
    *,
    num_test: int | None = None,
    num_splits: int = 10,
    split: int = 0,
    seed: int = 0,
    relabel: bool = True,
) -> TwoViewDataset:
    """Load VIPeR as a two-view dataset with ``num_splits`` seeded splits of ``num_test`` ids.

    ``num_test=None`` tests on half of the identities (316 of VIPeR's 632).
    """
    folder = locate_root(root, INFO, CANDIDATES, REQUIRED)
    cam_a = scan_folder(folder / "cam_a", INFO)
    cam_b = scan_folder(folder / "cam_b", INFO)
    if len(cam_a) != len(cam_b):
        raise INFO.error(
            f"cam_a has {len(cam_a)} images and cam_b {len(cam_b)}; VIPeR pairs the i-th image "
            "of each camera, so both must hold one image per person."
        )
    records = [Record(str(p), pid, 0) for pid, p in enumerate(cam_a)]
    records += [Record(str(p), pid, 1) for pid, p in enumerate(cam_b)]
    if num_test is None:
        num_test = len(cam_a) // 2
    splits = random_splits(range(len(cam_a)), num_test=num_test, num_splits=num_splits, seed=seed)
    return TwoViewDataset.build(
        "viper", records, splits, split_index=split, relabel_train=relabel, root=folder, info=INFO
    )
