"""CUHK03 (Li, Zhao, Xiao and Wang, "DeepReID: Deep Filter Pairing Neural Network for Person
Re-identification", CVPR 2014), in its two evaluation protocols.

1,467 identities from 5 pairs of disjoint cameras on the CUHK campus, each identity seen by the
two cameras of one pair, up to 5 images per camera, in two versions: **labeled** (hand-drawn
boxes, 14,096 images) and **detected** (DPM boxes, 14,097 images).

The official release is one MATLAB v7.3 (HDF5) file, ``cuhk03_release/cuhk-03.mat``. The
re-ID toolkits (torchreid, fast-reid) extract it once into PNG folders named
``<pair>_<person:03d>_<view>_<image:02d>.png`` (``1_001_1_01.png``: camera pair 1, person 1 of
that pair, view 1 = the pair's first camera, image 1; images 1-5 are view 1, 6-10 view 2), and
that extracted layout is what this loader reads -- it never needs to decode the HDF5 file.

**767/700 protocol** (``protocol="new"``, default; Zhong, Zheng, Cao and Li, "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017): the MAT v5 files
``cuhk03_new_protocol_config_{labeled,detected}.mat`` hold ``filelist`` (PNG names as above),
``labels`` (identities ``1..1467``), ``camId`` (1 or 2: the view within the pair) and **1-based**
``train_idx`` / ``query_idx`` / ``gallery_idx``. 767 training and 700 test identities, disjoint;
labeled: 7,368 / 1,400 / 5,328 images, detected: 7,365 / 1,400 / 5,332.
Query and gallery keep the raw labels; ``camid = camId - 1``.

**Classic protocol** (``protocol="classic"``; Li et al. 2014): 20 random partitions with 100 test
identities each and the rest (1,367) for training; at test time one camera of each test identity
is the probe and the other the gallery (paper 002 follows it: "20 partitions ... 100 persons for
testing"). This is the two-view single-shot setting, so the dataset is a
:class:`~reid.data.datasets.base.TwoViewDataset`: all images with ``camid`` 0/1 (the view),
``.splits`` (20 x ``{"train", "test"}``), ``query`` = view-0 and ``gallery`` = view-1 images of
the chosen split's test identities. Raw identities are ``pair * 1000 + person`` (``1_001`` ->
1001), unique across camera pairs.

Where the 20 partitions come from (first that exists; recorded in ``notes["splits_source"]``):

1. ``splits_classic_{labeled,detected}.json`` written by torchreid's extraction (the official
   ``testsets`` of ``cuhk-03.mat``; the test identities are read from the query file names, the
   JSON's absolute paths are not trusted);
2. ``cuhk03_release/cuhk-03.mat`` itself, read with ``h5py`` **only if h5py is already
   installed** (it is not a dependency of this project);
3. otherwise 20 seeded random partitions of 100 identities (``seed``), with a warning: the same
   protocol, not the same partitions as published numbers.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import scipy.io

from reid.data.datasets.base import (
    DatasetInfo,
    ReIDDataset,
    TwoViewDataset,
    check_files_exist,
    locate_root,
    parse_filename,
    random_splits,
    scan_folder,
)
from reid.data.records import Record
from reid.errors import ConfigError

INFO = DatasetInfo(
    name="cuhk03",
    title="CUHK03",
    reference=(
        'W. Li, R. Zhao, T. Xiao, X. Wang, "DeepReID: Deep Filter Pairing Neural Network for '
        'Person Re-identification", CVPR 2014; 767/700 protocol: Z. Zhong et al., "Re-ranking '
        'Person Re-identification with k-reciprocal Encoding", CVPR 2017'
    ),
    source=(
        "cuhk03_release.zip (cuhk-03.mat) from the CUHK03 page of Xiaogang Wang's group, extracted "
        "to PNG folders by torchreid/fast-reid; the 767/700 .mat files from the person-re-ranking "
        "repository (CUHK03 new protocol)"
    ),
    layout="""
        cuhk03/                                (or CUHK03/, or --root is it)
            images_labeled/1_001_1_01.png ...  (torchreid's extraction of cuhk-03.mat)
            images_detected/1_001_1_01.png ...
            cuhk03_new_protocol_config_labeled.mat     (767/700 protocol)
            cuhk03_new_protocol_config_detected.mat
            splits_classic_labeled.json        (optional, classic 20 splits)
            splits_classic_detected.json       (optional)
            cuhk03_release/cuhk-03.mat         (optional, read only if h5py is installed)
    """,
)

CANDIDATES: tuple[str, ...] = ("cuhk03", "CUHK03", "")
VARIANTS: tuple[str, ...] = ("labeled", "detected")
PROTOCOLS: tuple[str, ...] = ("new", "classic")

#: ``<pair>_<person>_<view>_<image>.png`` of the toolkits' extracted folders.
NAME_PATTERN = re.compile(r"^([1-5])_(\d{3})_([12])_(\d{2})\.png$")
NEW_PROTOCOL_KEYS = ("filelist", "labels", "camId", "train_idx", "query_idx", "gallery_idx")
NUM_CLASSIC_SPLITS = 20
NUM_CLASSIC_TEST_IDS = 100


def classic_pid(pair: int, person: int) -> int:
    """Raw identity of the classic protocol: unique over the 5 camera pairs (``1_001`` -> 1001)."""
    return pair * 1000 + person


def read_new_protocol(
    mat_path: Path, image_dir: Path, info: DatasetInfo = INFO
) -> tuple[list[Record], list[Record], list[Record]]:
    """Train/query/gallery records (raw labels) of a ``cuhk03_new_protocol_config_*.mat`` file."""
    try:
        mat = scipy.io.loadmat(str(mat_path))
    except Exception as err:  # scipy raises several types for non-MAT content
        raise info.error(f"{mat_path} is not a readable MAT v5 file ({err}).") from err
    missing = [k for k in NEW_PROTOCOL_KEYS if k not in mat]
    if missing:
        raise info.error(f"{mat_path} lacks the variable(s) {', '.join(missing)}.")
    try:
        names = [str(np.ravel(cell)[0]) for cell in np.ravel(mat["filelist"])]
    except IndexError as err:
        raise info.error(f"{mat_path}: filelist is not a cell array of file names.") from err
    labels = np.ravel(mat["labels"]).astype(np.int64)
    cams = np.ravel(mat["camId"]).astype(np.int64)
    if not len(names) == len(labels) == len(cams) or not names:
        raise info.error(
            f"{mat_path}: filelist ({len(names)}), labels ({len(labels)}) and camId "
            f"({len(cams)}) must have the same non-zero length."
        )
    if not np.isin(cams, (1, 2)).all():
        raise info.error(f"{mat_path}: camId must be 1 or 2, found {sorted(set(cams.tolist()))}.")
    records = [
        Record(str(image_dir / name), int(pid), int(cam) - 1)
        for name, pid, cam in zip(names, labels, cams, strict=True)
    ]
    subsets = []
    for key in ("train_idx", "query_idx", "gallery_idx"):
        idx = np.ravel(mat[key]).astype(np.int64)
        if idx.size == 0 or idx.min() < 1 or idx.max() > len(records):
            raise info.error(
                f"{mat_path}: {key} must hold 1-based indices in 1..{len(records)} "
                f"(found {idx.min() if idx.size else 'none'}..{idx.max() if idx.size else ''})."
            )
        subsets.append([records[i - 1] for i in idx])  # MATLAB indices are 1-based
    return subsets[0], subsets[1], subsets[2]


def scan_classic_records(image_dir: Path, info: DatasetInfo = INFO) -> list[Record]:
    """All images of an extracted folder with classic raw ids and the view as camid (0/1)."""
    records = []
    for path in scan_folder(image_dir, info, extensions=(".png",)):
        pair, person, view, _ = (int(g) for g in parse_filename(path, NAME_PATTERN, info).groups())
        records.append(Record(str(path), classic_pid(pair, person), view - 1))
    return records


def read_classic_splits_json(path: Path, info: DatasetInfo = INFO) -> list[dict[str, list[int]]]:
    """Test identities of torchreid's ``splits_classic_*.json`` (train = all other identities)."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
        tests = []
        for split in content:
            ids = set()
            for item in split["query"]:
                name = os.path.basename(str(item[0]))
                match = parse_filename(name, NAME_PATTERN, info)
                pair, person = int(match.group(1)), int(match.group(2))
                ids.add(classic_pid(pair, person))
            tests.append(sorted(ids))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise info.error(
            f"{path} is not a torchreid classic-split file (a list of {{'train', 'query', "
            f"'gallery'}} dicts): {type(err).__name__}: {err}"
        ) from err
    if not tests or not all(tests):
        raise info.error(f"{path} holds no non-empty split.")
    return [{"test": t} for t in tests]


def read_classic_splits_mat(path: Path) -> list[dict[str, list[int]]] | None:
    """The 20 ``testsets`` of the HDF5 ``cuhk-03.mat`` if ``h5py`` is installed, else ``None``.

    Each ``testsets`` cell is a ``100 x 2`` array of 1-based ``(pair, person)`` rows (stored
    transposed in HDF5). Not exercised by the test suite (h5py is not a dependency).
    """
    try:
        import h5py  # optional: only used when the user already has it
    except ImportError:
        return None
    with h5py.File(path, "r") as mat:
        splits = []
        for ref in np.ravel(mat["testsets"][()]):
            rows = np.asarray(mat[ref][()]).T.astype(np.int64)
            splits.append({"test": sorted(classic_pid(int(p), int(q)) for p, q in rows)})
    return splits


def load_cuhk03(
    root: str | os.PathLike[str] | None,
    *,
    variant: str = "labeled",
    protocol: str = "new",
    split: int = 0,
    seed: int = 0,
    relabel: bool = True,
    verify_files: bool = True,
) -> ReIDDataset:
    """Load CUHK03.

    Args:
        root: the toolkits' ``cuhk03`` folder or a folder containing it.
        variant: ``"labeled"`` (hand-drawn boxes) or ``"detected"`` (DPM boxes).
        protocol: ``"new"`` (767/700) or ``"classic"`` (20 splits of 100 test identities).
        split: classic split index (``0..19``); ignored by the new protocol.
        seed: seed of the random classic splits, used only when no official splits are found.
        relabel: map training identities to ``0..N-1``.
        verify_files: new protocol -- check every image named in the .mat file exists.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"variant={variant!r} is not one of {', '.join(VARIANTS)}.")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}.")
    image_dir_name = f"images_{variant}"
    if protocol == "new":
        mat_name = f"cuhk03_new_protocol_config_{variant}.mat"
        folder = locate_root(root, INFO, CANDIDATES, (image_dir_name, mat_name))
        train, query, gallery = read_new_protocol(folder / mat_name, folder / image_dir_name)
        if verify_files:
            check_files_exist((r.path for r in train + query + gallery), INFO, folder / mat_name)
        dataset = ReIDDataset.from_records(
            "cuhk03", train, query, gallery, relabel_train=relabel, root=folder, info=INFO
        )
        dataset.notes.update(variant=variant, protocol=protocol)
        return dataset

    folder = locate_root(root, INFO, CANDIDATES, (image_dir_name,))
    records = scan_classic_records(folder / image_dir_name)
    all_ids = sorted({r.pid for r in records})
    json_path = folder / f"splits_classic_{variant}.json"
    mat_path = folder / "cuhk03_release" / "cuhk-03.mat"
    tests = None
    if json_path.is_file():
        tests, source = read_classic_splits_json(json_path), str(json_path)
    elif mat_path.is_file():
        tests, source = read_classic_splits_mat(mat_path), str(mat_path)
    if tests is None:
        splits = random_splits(
            all_ids, num_test=NUM_CLASSIC_TEST_IDS, num_splits=NUM_CLASSIC_SPLITS, seed=seed
        )
        source = f"random (seed={seed})"
        warnings.warn(
            f"CUHK03 classic protocol: no splits_classic_{variant}.json (and no readable "
            f"cuhk-03.mat with h5py) in {folder}; using {NUM_CLASSIC_SPLITS} seeded random "
            f"partitions of {NUM_CLASSIC_TEST_IDS} test identities, not the published ones.",
            stacklevel=2,
        )
    else:
        known = set(all_ids)
        unknown = sorted({p for t in tests for p in t["test"]} - known)
        if unknown:
            raise INFO.error(
                f"{source} names test identities without images in {folder / image_dir_name} "
                f"(e.g. {unknown[:3]}); splits and image folder do not belong together."
            )
        splits = [
            {"train": sorted(known - set(t["test"])), "test": t["test"]} for t in tests
        ]
    dataset = TwoViewDataset.build(
        "cuhk03",
        records,
        splits,
        split_index=split,
        relabel_train=relabel,
        root=folder,
        info=INFO,
    )
    dataset.notes.update(variant=variant, protocol=protocol, splits_source=source)
    return dataset
