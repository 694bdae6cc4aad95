"""CUHK01 (Li, Zhao and Wang, "Human Reidentification with Transferred Metric Learning",
ACCV 2012).

971 identities seen by two disjoint cameras on the CUHK campus, two images per camera: 3,884
images in one folder, ``campus/``, named ``<person:04d><image:03d>.png`` (``0001001.png``).
Images ``001`` and ``002`` of a person come from camera A (mostly frontal/back views), ``003`` and
``004`` from camera B (side views); ``camid`` is 0 for A and 1 for B.

Protocols (the dataset ships no split; :func:`~reid.data.datasets.base.random_splits` draws
seeded ones, 10 by default):

* ``num_test=486``: 485 training / 486 test identities (paper 002, Table 3; the usual protocol
  of deep models, following Ahmed et al. CVPR 2015).
* ``num_test=100``: 871 training / 100 test identities (paper 001 "871 ... for training and the
  rest for testing"; paper 002, Table 4, whose text says 851 training identities -- a misprint,
  971 - 100 = 871).

Query = camera-A images, gallery = camera-B images of the test identities
(:class:`~reid.data.datasets.base.TwoViewDataset`); the single-shot protocol picks one image per
identity and view at evaluation time.
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
    name="cuhk01",
    title="CUHK01",
    reference=(
        'W. Li, R. Zhao, X. Wang, "Human Reidentification with Transferred Metric Learning", '
        "ACCV 2012"
    ),
    source="CUHK01.zip (folder campus/) from the CUHK01 page of Xiaogang Wang's group, on request",
    layout="""
        cuhk01/campus/0001001.png ... 0971004.png   (or CUHK01/campus/, campus/,
                                                    or --root is the campus folder)
    """,
)

CANDIDATES: tuple[str, ...] = ("cuhk01/campus", "CUHK01/campus", "campus", "")
NAME_PATTERN = re.compile(r"^(\d{4})(\d{3})\.png$")
IMAGES_PER_CAMERA = 2


def load_cuhk01(
    root: str | os.PathLike[str] | None,
    *,
    num_test: int = 486,
    num_splits: int = 10,
    split: int = 0,
    seed: int = 0,
    relabel: bool = True,
) -> TwoViewDataset:
    """Load CUHK01 as a two-view dataset with ``num_splits`` seeded splits of ``num_test`` ids."""
    folder = locate_root(root, INFO, CANDIDATES, ("*.png",))
    records = []
    for path in scan_folder(folder, INFO, extensions=(".png",)):
        person, image = (int(g) for g in parse_filename(path, NAME_PATTERN, INFO).groups())
        if not 1 <= image <= 2 * IMAGES_PER_CAMERA:
            raise INFO.error(f"the file {path} has image number {image}; expected 001..004.")
        records.append(Record(str(path), person, 0 if image <= IMAGES_PER_CAMERA else 1))
    splits = random_splits(
        {r.pid for r in records}, num_test=num_test, num_splits=num_splits, seed=seed
    )
    return TwoViewDataset.build(
        "cuhk01", records, splits, split_index=split, relabel_train=relabel, root=folder, info=INFO
    )
