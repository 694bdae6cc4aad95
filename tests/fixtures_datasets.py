"""Tiny dataset trees in the real on-disk formats, for the loader tests.

Each ``write_*`` function builds one dataset below ``root`` exactly as the toolkits leave it on
disk -- real filenames, real ``.mat`` variable/struct layouts (written with
``scipy.io.savemat``), real list-file syntax -- but with a handful of zero-byte images: the
loaders list and parse, they never decode. Counts are returned so tests can assert against them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.io


def touch(path: Path) -> Path:
    """Create an empty file (and its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def touch_all(folder: Path, names: Iterable[str]) -> list[Path]:
    return [touch(folder / name) for name in names]


# --------------------------------------------------------------------------------------------
# Market-1501 / DukeMTMC-reID
# --------------------------------------------------------------------------------------------

#: Market-1501 fixture: 2 train ids (3 cameras), 2 test ids, junk and distractors in the gallery.
MARKET_TRAIN = [
    "0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0002_c3s1_000776_01.jpg",
    "0007_c1s1_000801_01.jpg", "0007_c6s4_069056_02.jpg",
]  # fmt: skip
MARKET_QUERY = ["0001_c1s1_001051_00.jpg", "0001_c2s1_000301_00.jpg", "0003_c3s1_000551_00.jpg"]
MARKET_GALLERY = [
    "0001_c1s1_001101_01.jpg", "0001_c4s6_000810_02.jpg", "0003_c5s1_001426_01.jpg",
    "0003_c3s1_000576_03.jpg", "-1_c1s1_000401_03.jpg", "-1_c2s1_000451_04.jpg",
    "0000_c1s1_000151_01.jpg",
]  # fmt: skip
MARKET_GT_BBOX = [
    "0001_c1s1_001051_00.jpg", "0001_c1s1_001076_00.jpg", "0001_c2s1_000301_00.jpg",
    "0003_c3s1_000551_00.jpg", "0002_c1s1_000451_00.jpg",
]  # fmt: skip


def write_market(root: Path, sub: str = "market1501/Market-1501-v15.09.15") -> Path:
    """A Market-1501 tree at ``root / sub`` (extra files that loaders must ignore included)."""
    folder = root / sub if sub else root
    touch_all(folder / "bounding_box_train", MARKET_TRAIN)
    touch_all(folder / "query", MARKET_QUERY)
    touch_all(folder / "bounding_box_test", MARKET_GALLERY)
    touch_all(folder / "gt_bbox", MARKET_GT_BBOX)
    touch(folder / "bounding_box_train" / "Thumbs.db")  # ignored: not an image
    return folder


DUKE_TRAIN = ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0008_c1_f0047210.jpg",
              "0008_c8_f0170543.jpg"]  # fmt: skip
DUKE_QUERY = ["0005_c2_f0046985.jpg", "0019_c1_f0051470.jpg"]
DUKE_GALLERY = ["0005_c5_f0051781.jpg", "0019_c2_f0055712.jpg", "0002_c1_f0044158.jpg"]


def write_duke(root: Path, sub: str = "dukemtmc/DukeMTMC-reID") -> Path:
    folder = root / sub if sub else root
    touch_all(folder / "bounding_box_train", DUKE_TRAIN)
    touch_all(folder / "query", DUKE_QUERY)
    touch_all(folder / "bounding_box_test", DUKE_GALLERY)
    return folder


# --------------------------------------------------------------------------------------------
# Attribute .mat files
# --------------------------------------------------------------------------------------------

#: Field orders of the published files (they differ between splits; readers must use names).
MARKET_TRAIN_ORDER = (
    "age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown", "downgray",
    "downgreen", "downpink", "downpurple", "downwhite", "downyellow", "upblack", "upblue",
    "upgreen", "upgray", "uppurple", "upred", "upwhite", "upyellow", "clothes", "down", "up",
    "hair", "hat", "gender",
)  # fmt: skip
MARKET_TEST_ORDER = (
    "age", "backpack", "bag", "handbag", "clothes", "down", "up", "hair", "hat", "gender",
    "upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen",
    "downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray", "downblue",
    "downgreen", "downbrown",
)  # fmt: skip
DUKE_TRAIN_ORDER = (
    "backpack", "bag", "handbag", "boots", "gender", "hat", "shoes", "top", "downblack",
    "downwhite", "downred", "downgray", "downblue", "downgreen", "downbrown", "upblack",
    "upwhite", "upred", "uppurple", "upgray", "upblue", "upgreen", "upbrown",
)  # fmt: skip
DUKE_TEST_ORDER = (
    "boots", "shoes", "top", "gender", "hat", "backpack", "bag", "handbag", "downblack",
    "downwhite", "downred", "downgray", "downblue", "downgreen", "downbrown", "upblack",
    "upwhite", "upred", "upgray", "upblue", "upgreen", "uppurple", "upbrown",
)  # fmt: skip


def attribute_values(name: str, pids: Sequence[int]) -> np.ndarray:
    """Deterministic raw codes (1/2, age 1..4) for a fixture: a function of name and pid."""
    codes = 4 if name == "age" else 2
    salt = sum(map(ord, name))
    return np.array([1 + (pid * 7 + salt) % codes for pid in pids], dtype=np.uint8)


def write_attribute_mat(
    path: Path,
    dataset: str,
    train_pids: Sequence[int],
    test_pids: Sequence[int],
    *,
    overrides: dict[tuple[str, str, int], int] | None = None,
    drop: Sequence[str] = (),
) -> Path:
    """Write ``market_attribute.mat`` / ``duke_attribute.mat`` in the published struct layout.

    ``overrides[(split, attribute, pid)] = raw`` plants specific codes (e.g. Duke's invalid 0);
    ``drop`` removes fields to produce a malformed file.
    """
    orders = {
        "market1501": ("market_attribute", MARKET_TRAIN_ORDER, MARKET_TEST_ORDER),
        "dukemtmc": ("duke_attribute", DUKE_TRAIN_ORDER, DUKE_TEST_ORDER),
    }
    key, train_order, test_order = orders[dataset]
    overrides = overrides or {}

    def split(name: str, order: Sequence[str], pids: Sequence[int]) -> dict:
        fields = {}
        for attribute in order:
            if attribute in drop:
                continue
            row = attribute_values(attribute, pids)
            for i, pid in enumerate(pids):
                row[i] = overrides.get((name, attribute, pid), row[i])
            fields[attribute] = row.reshape(1, -1)
        index = np.empty((1, len(pids)), dtype=object)
        for i, pid in enumerate(pids):
            index[0, i] = f"{pid:04d}"
        fields["image_index"] = index
        return fields

    content = {"train": split("train", train_order, train_pids),
               "test": split("test", test_order, test_pids)}
    if dataset == "dukemtmc":  # the Duke file stores train first, Market test first
        top = {"train": content["train"], "test": content["test"]}
    else:
        top = {"test": content["test"], "train": content["train"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {key: top})
    return path


# --------------------------------------------------------------------------------------------
# MSMT17
# --------------------------------------------------------------------------------------------

MSMT_LISTS = {
    "list_train.txt": ["0000/0000_045_12_0303morning_0006_2.jpg 0",
                       "0000/0000_046_12_0303morning_0006_2_ex.jpg 0",
                       "0001/0001_010_07_0303morning_0008_2.jpg 1"],
    "list_val.txt": ["0001/0001_013_04_0303morning_0020_2.jpg 1",
                     "0002/0002_014_15_0303noon_0020_2.jpg 2"],
    "list_query.txt": ["0000/0000_000_01_0303morning_0015_0.jpg 0",
                       "0001/0001_019_07_0303morning_0020_1.jpg 1"],
    "list_gallery.txt": ["0000/0000_008_01_0303morning_0019_2.jpg 0",
                         "0000/0000_025_14_0303morning_0243_1.jpg 0",
                         "0001/0001_009_03_0303afternoon_0019_2.jpg 1"],
}  # fmt: skip


def write_msmt(root: Path, version: str = "V1", sub: str | None = None) -> Path:
    """An MSMT17 tree (list files + zero-byte images) at ``root / sub``."""
    folder = root / (f"msmt17/MSMT17_{version}" if sub is None else sub)
    if version == "V1":
        train_dir, test_dir = "train", "test"
    else:
        train_dir, test_dir = "mask_train_v2", "mask_test_v2"
    for list_name, lines in MSMT_LISTS.items():
        touch(folder / list_name).write_text("\n".join(lines) + "\n")
        image_dir = train_dir if list_name in ("list_train.txt", "list_val.txt") else test_dir
        touch_all(folder / image_dir, (line.split()[0] for line in lines))
    return folder


# --------------------------------------------------------------------------------------------
# CUHK03
# --------------------------------------------------------------------------------------------


def cuhk03_names(pairs: int = 2, persons: int = 6, per_view: int = 2) -> list[str]:
    """Extracted-image names ``<pair>_<person>_<view>_<image>.png`` (images 1-5 view 1)."""
    return [
        f"{pair}_{person:03d}_{view}_{image:02d}.png"
        for pair in range(1, pairs + 1)
        for person in range(1, persons + 1)
        for view in (1, 2)
        for image in (range(1, per_view + 1) if view == 1 else range(6, 6 + per_view))
    ]


def write_new_protocol_mat(
    path: Path,
    names: Sequence[str],
    *,
    num_train_ids: int,
    drop: Sequence[str] = (),
    index_shift: int = 0,
) -> dict[str, int]:
    """A ``cuhk03_new_protocol_config_*.mat`` with the real variables and 1-based indices.

    Identities are numbered globally ``1..``; the first ``num_train_ids`` train, the others are
    split into query (first image of each view) and gallery (the rest).
    """
    keys = sorted({tuple(n.split("_")[:2]) for n in names})
    label_of = {k: i + 1 for i, k in enumerate(keys)}
    labels = np.array([label_of[tuple(n.split("_")[:2])] for n in names], dtype=np.uint16)
    cams = np.array([int(n.split("_")[2]) for n in names], dtype=np.uint8)
    train_idx, query_idx, gallery_idx, seen = [], [], [], set()
    for i, (label, cam) in enumerate(zip(labels, cams, strict=True)):
        if label <= num_train_ids:
            train_idx.append(i + 1)
        elif (label, cam) not in seen:
            seen.add((label, cam))
            query_idx.append(i + 1)
        else:
            gallery_idx.append(i + 1)
    filelist = np.empty((len(names), 1), dtype=object)
    for i, name in enumerate(names):
        filelist[i, 0] = name
    content = {
        "camId": cams.reshape(-1, 1),
        "filelist": filelist,
        "labels": labels.reshape(-1, 1),
        "query_idx": (np.array(query_idx, dtype=np.uint16) + index_shift).reshape(-1, 1),
        "gallery_idx": np.array(gallery_idx, dtype=np.uint16).reshape(-1, 1),
        "train_idx": np.array(train_idx, dtype=np.uint16).reshape(-1, 1),
    }
    for key in drop:
        content.pop(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), content)
    return {"train": len(train_idx), "query": len(query_idx), "gallery": len(gallery_idx),
            "train_ids": num_train_ids, "test_ids": len(keys) - num_train_ids}


def write_cuhk03(root: Path, *, classic_json: bool = True, num_train_ids: int = 8) -> Path:
    """torchreid's extracted CUHK03 layout: both image folders, both .mat files, classic JSON."""
    folder = root / "cuhk03"
    names = cuhk03_names()
    for variant in ("labeled", "detected"):
        # detected misses one image, as the real detected set differs from the labeled one
        variant_names = names if variant == "labeled" else names[:-1]
        touch_all(folder / f"images_{variant}", variant_names)
        write_new_protocol_mat(
            folder / f"cuhk03_new_protocol_config_{variant}.mat",
            variant_names,
            num_train_ids=num_train_ids,
        )
        if classic_json:
            # torchreid's JSON: absolute paths from the machine that extracted the data
            splits = []
            for test in (["1_002", "2_005"], ["1_001", "2_003"], ["1_006", "2_006"]):
                query = [[f"/old/machine/cuhk03/images_{variant}/{n}", 0, 0]
                         for n in variant_names if n[:5] in test]
                splits.append({"train": [], "query": query, "gallery": query})
            (folder / f"splits_classic_{variant}.json").write_text(json.dumps(splits))
    return folder


# --------------------------------------------------------------------------------------------
# Two-view benchmarks
# --------------------------------------------------------------------------------------------


def write_cuhk01(root: Path, persons: int = 12, sub: str = "cuhk01/campus") -> Path:
    folder = root / sub if sub else root
    touch_all(folder, (f"{p:04d}{i:03d}.png" for p in range(1, persons + 1) for i in range(1, 5)))
    return folder


def write_viper(root: Path, persons: int = 10, sub: str = "viper/VIPeR") -> Path:
    folder = root / sub if sub else root
    angles = (0, 45, 90, 135, 180)
    indices = [3 * p for p in range(persons)]  # VIPeR's indices are not contiguous
    touch_all(folder / "cam_a", (f"{i:03d}_{angles[i % 5]}.bmp" for i in indices))
    touch_all(folder / "cam_b", (f"{i:03d}_{angles[(i + 2) % 5]}.bmp" for i in indices))
    return folder


def write_prid(root: Path, cam_a: int = 14, cam_b: int = 20) -> Path:
    """PRID2011 single-shot: ``person_NNNN.png`` in both cameras (the real set: 385 / 749).

    Numbers up to 200 present in both cameras are the same person, as in the real dataset.
    """
    folder = root / "prid2011" / "prid_2011" / "single_shot"
    touch_all(folder / "cam_a", (f"person_{n:04d}.png" for n in range(1, cam_a + 1)))
    touch_all(folder / "cam_b", (f"person_{n:04d}.png" for n in range(1, cam_b + 1)))
    return folder


#: 3DPeS fixture: person -> cameras (person 5 is seen by a single camera).
THREEDPES_CAMERAS = {1: [1, 2], 2: [1, 3, 4], 3: [2, 5], 4: [6, 7, 8, 1], 5: [3], 6: [2, 4],
                     7: [1, 8], 8: [5, 6]}  # fmt: skip


def write_threedpes(root: Path, sub: str = "3dpes/3DPeS/RGB") -> Path:
    folder = root / sub if sub else root
    names = [
        f"{pid}_{cam}_{frame:04d}.bmp"
        for pid, cams in THREEDPES_CAMERAS.items()
        for cam in cams
        for frame in (1, 2)
    ]
    touch_all(folder, names)
    return folder
