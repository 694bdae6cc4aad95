"""Market-1501 (Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015).

1,501 identities seen by 6 cameras on a university campus: 12,936 training images of 751
identities (``bounding_box_train``), 3,368 hand-drawn query boxes of 750 test identities
(``query``) and 19,732 DPM-detected gallery boxes (``bounding_box_test``) that include 3,819
*junk* boxes labelled ``-1`` (bad detections whose match neither helps nor hurts) and 2,798
*distractors* labelled ``0000`` (false detections that count as wrong matches).

Filenames encode everything: ``0002_c1s1_000451_03.jpg`` is identity 2, camera 1, sequence 1,
frame 451, 3rd box in that frame. ``camid`` is the 0-based camera (``c1`` -> 0). The official
single-query protocol ranks each query against the gallery and ignores gallery images of the
same identity from the same camera (and junk); that is the metrics' job, so here query and
gallery keep raw identities, ``-1`` and ``0`` included.

**Multi-query.** ``gt_bbox`` holds all 25,259 hand-drawn boxes. In the official multi-query
setting, a query is represented by all ``gt_bbox`` images of the same identity in the same camera
(features averaged or max-pooled). :attr:`ReIDDataset.multi_query` lists the ``gt_bbox`` images
of the query identities and :func:`multi_query_groups` maps each query to its images.
Paper 001 (Wang et al.) evaluates Market-1501 in this multi-query setting.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from reid.data.datasets.attributes import load_attributes_option
from reid.data.datasets.base import DatasetInfo, ReIDDataset, locate_root, scan_pid_camera_folder
from reid.data.records import Record

INFO = DatasetInfo(
    name="market1501",
    title="Market-1501",
    reference='L. Zheng et al., "Scalable Person Re-identification: A Benchmark", ICCV 2015',
    source=(
        "the Market-1501 project page (Liang Zheng), archive Market-1501-v15.09.15.zip; "
        "optional attributes: market_attribute.mat from the Market-1501_Attribute project "
        "(Lin et al., Pattern Recognition 2019)"
    ),
    layout="""
        market1501/Market-1501-v15.09.15/     (or Market-1501-v15.09.15/, or --root is it)
            bounding_box_train/0002_c1s1_000451_03.jpg ...
            bounding_box_test/ -1_c1s1_000401_03.jpg, 0000_c1s1_000151_01.jpg, ...
            query/0001_c1s1_001051_00.jpg ...
            gt_bbox/                            (optional: multi-query)
            market_attribute.mat                (optional; also accepted one level up)
    """,
)

#: Relative folders tried below ``root``, in order (torchreid, fast-reid, plain archive, root).
CANDIDATES: tuple[str, ...] = (
    "market1501/Market-1501-v15.09.15",
    "Market-1501-v15.09.15",
    "market1501",
    "Market-1501",
    "",
)
REQUIRED: tuple[str, ...] = ("bounding_box_train", "bounding_box_test", "query")
NUM_CAMERAS = 6
ATTRIBUTE_FILE = "market_attribute.mat"


def load_market_layout(
    folder: Path,
    info: DatasetInfo,
    *,
    num_cameras: int | None,
    relabel: bool,
    multi_query: bool,
) -> ReIDDataset:
    """Read a Market-style tree (also DukeMTMC-reID and SynthReID) into a dataset.

    Market-1501's junk (``-1``) and distractor (``0``) labels are declared so that statistics
    count them separately; the training folder holds neither.
    """
    train = scan_pid_camera_folder(folder / "bounding_box_train", info, num_cameras=num_cameras)
    query = scan_pid_camera_folder(folder / "query", info, num_cameras=num_cameras)
    gallery = scan_pid_camera_folder(folder / "bounding_box_test", info, num_cameras=num_cameras)
    special = [r for r in train if r.pid <= 0]
    if special:
        raise info.error(
            f"the training image {special[0].path} has the junk/distractor label "
            f"{special[0].pid}; bounding_box_train must hold real identities only."
        )
    mq = None
    if multi_query and (folder / "gt_bbox").is_dir():
        query_ids = {r.pid for r in query}
        mq = [
            r
            for r in scan_pid_camera_folder(folder / "gt_bbox", info, num_cameras=num_cameras)
            if r.pid in query_ids
        ]
    return ReIDDataset.from_records(
        info.name,
        train,
        query,
        gallery,
        relabel_train=relabel,
        root=folder,
        junk_pids=frozenset({-1}),
        distractor_pids=frozenset({0}),
        multi_query=mq,
        info=info,
    )


def load_market1501(
    root: str | os.PathLike[str] | None,
    *,
    relabel: bool = True,
    attributes: bool | str | os.PathLike[str] | None = None,
    multi_query: bool = True,
) -> ReIDDataset:
    """Load Market-1501.

    Args:
        root: the dataset folder, the folder containing ``Market-1501-v15.09.15``, or the
            toolkits' data root containing ``market1501/`` (see :data:`CANDIDATES`).
        relabel: map training identities to ``0..750``.
        attributes: ``None`` loads ``market_attribute.mat`` if found beside the data, ``True``
            requires it, ``False`` skips it, a path reads that file.
        multi_query: list ``gt_bbox`` images of the query identities (if the folder exists).
    """
    folder = locate_root(root, INFO, CANDIDATES, REQUIRED)
    dataset = load_market_layout(
        folder, INFO, num_cameras=NUM_CAMERAS, relabel=relabel, multi_query=multi_query
    )
    dataset.attributes = load_attributes_option(
        attributes, folder, ATTRIBUTE_FILE, "market1501", INFO
    )
    return dataset


def multi_query_groups(query: Sequence[Record], multi_query: Sequence[Record]) -> list[list[int]]:
    """For each query record, the indices of ``multi_query`` images of its identity and camera.

    This is the grouping of Market-1501's official multi-query evaluation: all hand-drawn boxes of
    a person in the query's camera form one multi-image query. A query whose group is empty
    (``gt_bbox`` missing) should fall back to the single query image.
    """
    by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, record in enumerate(multi_query):
        by_key[(record.pid, record.camid)].append(index)
    return [list(by_key.get((r.pid, r.camid), [])) for r in query]
