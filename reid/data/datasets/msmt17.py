"""MSMT17 (Wei, Zhang, Gao and Tian, "Person Transfer GAN to Bridge Domain Gap for Person
Re-Identification", CVPR 2018).

126,441 boxes of 4,101 identities from 15 cameras (12 outdoor, 3 indoor) on a campus, over four
days. The split is given by list files, one image per line as ``<pid dir>/<filename> <label>``::

    0000/0000_045_12_0303morning_0006_2.jpg 0

* ``list_train.txt`` (30,248) and ``list_val.txt`` (2,373) together are the paper's training set
  (32,621 boxes, 1,041 identities, labels ``0..1040``); by default both are used for training
  (``include_val=True``). torchreid trains on ``list_train.txt`` alone unless ``combineall`` is
  set; pass ``include_val=False`` to reproduce that.
* ``list_query.txt`` (11,659) and ``list_gallery.txt`` (82,161) cover the 3,060 test identities,
  whose labels **restart at 0** (``0..3059``). Query and gallery keep these raw labels; they share
  numbers with training labels but never meet them in one ranking.
* The camera is the third ``_``-separated field of the filename (``..._12_...`` = camera 12),
  ``1..15``; ``camid`` is 0-based.

Versions: ``MSMT17_V1`` keeps images in ``train/`` and ``test/``; ``MSMT17_V2`` (faces masked)
in ``mask_train_v2/`` and ``mask_test_v2/``; the list files are identical in format.
"""

from __future__ import annotations

import os
from pathlib import Path

from reid.data.datasets.base import (
    DatasetInfo,
    ReIDDataset,
    check_files_exist,
    locate_root_variants,
)
from reid.data.records import Record
from reid.errors import ConfigError

INFO = DatasetInfo(
    name="msmt17",
    title="MSMT17",
    reference=(
        'L. Wei, S. Zhang, W. Gao, Q. Tian, "Person Transfer GAN to Bridge Domain Gap for Person '
        'Re-Identification", CVPR 2018'
    ),
    source="the MSMT17 archive (MSMT17_V1.tar.gz or MSMT17_V2.tar.gz), obtained from the "
    "authors by signing the MSMT17 release agreement",
    layout="""
        msmt17/MSMT17_V1/     (or MSMT17_V1/, or --root is it; V2 likewise)
            train/0000/0000_045_12_0303morning_0006_2.jpg ...   (V2: mask_train_v2/)
            test/0000/0000_000_01_0303morning_0015_0.jpg ...    (V2: mask_test_v2/)
            list_train.txt  list_val.txt  list_query.txt  list_gallery.txt
    """,
)

#: Image folders per version: (train, test).
IMAGE_DIRS: dict[str, tuple[str, str]] = {
    "V1": ("train", "test"),
    "V2": ("mask_train_v2", "mask_test_v2"),
}
LIST_FILES = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
NUM_CAMERAS = 15


def _candidates(version: str) -> tuple[str, ...]:
    return (f"msmt17/MSMT17_{version}", f"MSMT17_{version}", "msmt17", "MSMT17", "")


def parse_list_file(path: Path, image_dir: Path, info: DatasetInfo = INFO) -> list[Record]:
    """Records of an MSMT17 list file; a malformed line raises naming the file and line number."""
    records = []
    base = str(image_dir)  # string joins: pathlib is the bottleneck on 100k-line lists
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise info.error(
                    f"line {number} of {path} is not UTF-8 text ({raw[:40]!r}); the list files are plain text: "
                    "re-extract them from the MSMT17 archive."
                ) from None
            if not line:
                continue
            parts = line.split()
            try:
                relative, label = parts
                pid = int(label)
                camera = int(os.path.basename(relative).split("_")[2])
            except (ValueError, IndexError):
                raise info.error(
                    f"line {number} of {path} is {line!r}; expected "
                    "'<pid>/<pid>_<idx>_<camera>_<date>_<frame>_<n>.jpg <label>'."
                ) from None
            if not 1 <= camera <= NUM_CAMERAS or pid < 0:
                raise info.error(
                    f"line {number} of {path} names camera {camera} and label {pid}; expected "
                    f"a camera in 1..{NUM_CAMERAS} and a label >= 0."
                )
            records.append(Record(os.path.join(base, relative), pid, camera - 1))
    if not records:
        raise info.error(f"the list file {path} is empty.")
    return records


def load_msmt17(
    root: str | os.PathLike[str] | None,
    *,
    version: str = "auto",
    include_val: bool = True,
    relabel: bool = True,
    verify_files: bool = True,
) -> ReIDDataset:
    """Load MSMT17 V1 or V2 from its list files.

    Args:
        root: the ``MSMT17_V1``/``MSMT17_V2`` folder or a folder containing it.
        version: ``"V1"``, ``"V2"`` or ``"auto"`` (V1 if found, else V2).
        include_val: train on ``list_train.txt`` + ``list_val.txt`` (the paper's 32,621 images).
        relabel: map training labels to ``0..N-1`` (they already are; kept for uniformity).
        verify_files: check that every listed image exists (one directory scan per identity
            folder), so a partial extraction fails here and not inside an image reader.
    """
    key = version if version == "auto" else version.upper()
    versions = {"auto": ("V1", "V2"), "V1": ("V1",), "V2": ("V2",)}.get(key)
    if versions is None:
        raise ConfigError(f"version={version!r} is not one of 'auto', 'V1', 'V2'.")
    variants = [(_candidates(v), (*LIST_FILES, *IMAGE_DIRS[v])) for v in versions]
    index, folder = locate_root_variants(root, INFO, variants)
    return _load_version(folder, versions[index], include_val, relabel, verify_files)


def _load_version(
    folder: Path, version: str, include_val: bool, relabel: bool, verify_files: bool
) -> ReIDDataset:
    train_dir, test_dir = (folder / d for d in IMAGE_DIRS[version])
    lists = {"train": train_dir, "val": train_dir, "query": test_dir, "gallery": test_dir}
    if not include_val:
        del lists["val"]
    parsed = {}
    for split, image_dir in lists.items():
        list_file = folder / f"list_{split}.txt"
        parsed[split] = parse_list_file(list_file, image_dir)
        if verify_files:
            check_files_exist((r.path for r in parsed[split]), INFO, list_file)
    train = parsed["train"] + parsed.get("val", [])
    query, gallery = parsed["query"], parsed["gallery"]
    dataset = ReIDDataset.from_records(
        "msmt17", train, query, gallery, relabel_train=relabel, root=folder, info=INFO
    )
    dataset.notes.update(version=version, include_val=include_val)
    return dataset
