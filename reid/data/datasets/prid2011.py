"""PRID2011, single-shot images (Hirzer, Beleznai, Roth and Bischof, "Person
Re-identification by Descriptive and Discriminative Classification", SCIA 2011).

Two static outdoor cameras: ``single_shot/cam_a`` holds 385 persons and ``single_shot/cam_b`` 749
persons, one image each, ``person_0001.png`` ... . **Only the first 200 persons of each camera are
the same people**; persons 201-385 of camera A and 201-749 of camera B appear in one camera only.

Raw identities: persons ``1..200`` keep their number (seen by both cameras); camera B's persons
``201..749`` keep theirs; camera A's persons ``201..385`` become ``550..934`` (``n + 549``) so that
they do not collide with camera B's different people of the same number. 934 persons in total.

Protocol (Hirzer et al.): 10 random splits of the 200 shared persons into 100 training and 100
test persons; the probes are the camera-A images of the 100 test persons and the gallery their
camera-B images **plus** the 549 persons seen only by camera B as distractors (gallery of 649).
Set ``gallery_distractors=False`` for the 100 x 100 variant. Camera-A-only persons are in
``records`` but unused by the protocol. Paper 001 evaluates the single-shot setting "without
temporal information" this way.

Only the single-shot part is read; the ``multi_shot`` sequences are not used by the book.
"""

from __future__ import annotations

import os
import re

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
    name="prid2011",
    title="PRID2011 (single-shot)",
    reference=(
        'M. Hirzer, C. Beleznai, P. M. Roth, H. Bischof, "Person Re-identification by '
        'Descriptive and Discriminative Classification", SCIA 2011'
    ),
    source="prid_2011.zip from the PRID 2011 page of TU Graz (Institute for Computer Graphics "
    "and Vision)",
    layout="""
        prid2011/prid_2011/single_shot/        (or prid_2011/single_shot/, single_shot/,
                                                or --root is the single_shot folder)
            cam_a/person_0001.png ... person_0385.png
            cam_b/person_0001.png ... person_0749.png
    """,
)

CANDIDATES: tuple[str, ...] = (
    "prid2011/prid_2011/single_shot",
    "prid2011/single_shot",
    "prid_2011/single_shot",
    "single_shot",
    "",
)
REQUIRED: tuple[str, ...] = ("cam_a", "cam_b")
NAME_PATTERN = re.compile(r"^person_(\d{4})\.png$")
NUM_SHARED = 200
#: Offset that moves camera A's single-camera persons past camera B's 749 numbers.
CAM_A_ONLY_OFFSET = 549


def _scan_camera(folder, camid):
    records = []
    for path in scan_folder(folder, INFO, extensions=(".png",)):
        number = int(parse_filename(path, NAME_PATTERN, INFO).group(1))
        if number > NUM_SHARED and camid == 0:
            number += CAM_A_ONLY_OFFSET
        records.append(Record(str(path), number, camid))
    return records


def load_prid2011(
    root: str | os.PathLike[str] | None,
    *,
    num_test: int = 100,
    num_splits: int = 10,
    split: int = 0,
    seed: int = 0,
    gallery_distractors: bool = True,
    relabel: bool = True,
) -> TwoViewDataset:
    """Load PRID2011 single-shot: splits over the 200 shared persons, optional B-only gallery."""
    folder = locate_root(root, INFO, CANDIDATES, REQUIRED)
    cam_a = _scan_camera(folder / "cam_a", 0)
    cam_b = _scan_camera(folder / "cam_b", 1)
    shared = sorted({r.pid for r in cam_a} & {r.pid for r in cam_b})
    if not shared:
        raise INFO.error(
            f"cam_a and cam_b of {folder} share no person number 1..{NUM_SHARED}; "
            "expected person_0001.png ... in both."
        )
    shared_set = set(shared)
    records = [r for r in cam_a + cam_b if r.pid in shared_set]
    extra = [r for r in cam_b if r.pid not in shared_set] if gallery_distractors else []
    others = [r for r in cam_a + cam_b if r.pid not in shared_set]
    splits = random_splits(shared, num_test=num_test, num_splits=num_splits, seed=seed)
    dataset = TwoViewDataset.build(
        "prid2011",
        records + others,
        splits,
        split_index=split,
        relabel_train=relabel,
        gallery_extra=extra,
        root=folder,
        info=INFO,
    )
    dataset.notes.update(shared_persons=len(shared), gallery_distractors=len(extra))
    return dataset
