"""Any folder in Market-1501's naming: the loader for your own data.

A dataset you collected or converted works with every command once it looks like this::

    my_data/
        bounding_box_train/0001_c1_000001.jpg ...   training images
        query/0101_c2_000311.jpg ...                probes
        bounding_box_test/0101_c1_000309.jpg ...    gallery (may hold -1 junk and 0 distractors)

Each file name starts with ``<identity>_c<camera>``; anything after that is free. Camera numbers
start at 1. They matter: the Market-1501 evaluation rule drops gallery images of the query's
identity seen by the query's own camera, so give each physical camera (or each distinct viewpoint
you want to generalise across) its own number, and never reuse one number for two cameras. A
dataset with one camera has no cross-camera matches to evaluate: re-number by recording session
instead, or evaluate with another protocol.

``reid data check --dataset market_layout --root my_data`` prints its statistics, and
``reid train --dataset market_layout --root my_data`` trains on it. For another layout, write a
loader returning a :class:`~reid.data.datasets.base.ReIDDataset` and register it with
:func:`reid.data.datasets.register_dataset`.
"""

from __future__ import annotations

import os

from reid.data.datasets.base import DatasetInfo, ReIDDataset, locate_root
from reid.data.datasets.market1501 import REQUIRED, load_market_layout

INFO = DatasetInfo(
    name="market_layout",
    title="a folder in Market-1501 naming",
    reference="your own data, named as Market-1501 names its images",
    source="your own collection (nothing is downloaded)",
    fix="rename the images as <identity>_c<camera>_<anything>.jpg (cameras numbered from 1) in the three "
        "folders, and pass the folder that holds them as the root",
    layout="""
        <root>/
            bounding_box_train/<pid>_c<camera>_....jpg ...
            query/<pid>_c<camera>_....jpg ...
            bounding_box_test/<pid>_c<camera>_....jpg ...   (-1: junk, 0: distractor)
    """,
)


def load_market_layout_folder(
    root: str | os.PathLike[str] | None,
    *,
    num_cameras: int | None = None,
    relabel: bool = True,
) -> ReIDDataset:
    """Load a Market-style folder (see the module docstring).

    Args:
        root: the folder holding ``bounding_box_train``, ``query`` and ``bounding_box_test``.
        num_cameras: the number of cameras; when given, a file naming a camera outside
            ``1..num_cameras`` is an error (a typo caught), otherwise any camera >= 1 is read.
        relabel: map training identities to ``0..N-1``.
    """
    folder = locate_root(root, INFO, ("",), REQUIRED)
    return load_market_layout(folder, INFO, num_cameras=num_cameras, relabel=relabel, multi_query=False)
