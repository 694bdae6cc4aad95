"""Conformance of the loaders with the real datasets' files (``../shared/realdata``).

The reference folder holds the real image *lists*, list files, protocol/attribute ``.mat`` files
and 18 real Market-1501 crops, but not the image folders. Each test therefore materialises the
real filenames as zero-byte files in a temporary copy of the toolkit layout and runs the real
loader on it (listing never decodes an image), then checks the counts the datasets' own
documentation gives (see ``../shared/realdata/README.md``). Nothing is copied into the repository.

Skipped, with the reason, where the folder is absent (a plain clone); ``REID_REALDATA`` points
elsewhere.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from reid.data.datasets import load_dataset, read_attribute_mat
from reid.data.datasets.base import PID_CAMERA_PATTERN

REALDATA = Path(
    os.environ.get("REID_REALDATA")
    or Path(__file__).resolve().parents[2] / "shared" / "realdata"
)

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        not REALDATA.is_dir(),
        reason=f"real-format reference files not found at {REALDATA} (set REID_REALDATA)",
    ),
]


@pytest.fixture
def scratch(tmp_path):
    """A scratch folder for ~10^5 placeholder files: in RAM (/dev/shm) where available.

    Creating that many files on a busy disk takes tens of seconds; on tmpfs about one.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="reid-conformance-", dir=shm))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path


def materialise(folder: Path, relative_paths) -> int:
    """Create zero-byte files at ``folder / path`` for each listed path; return how many."""
    base = str(folder)
    made_dirs: set[str] = set()
    count = 0
    for relative in relative_paths:
        path = os.path.join(base, relative)
        parent = os.path.dirname(path)
        if parent not in made_dirs:
            os.makedirs(parent, exist_ok=True)
            made_dirs.add(parent)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        count += 1
    return count


def read_csv(path: Path) -> list[tuple[int, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [(int(pid), relative) for pid, relative in csv.reader(handle)]


def build_from_csv(root: Path, sub: str, csvs: list[Path]) -> tuple[Path, list[tuple[int, str]]]:
    """Materialise every path of the csv lists below ``root / sub``; return folder and rows."""
    rows = [row for path in csvs for row in read_csv(path)]
    folder = root / sub
    materialise(folder, (relative for _, relative in rows))
    return folder, rows


# --------------------------------------------------------------------------------------------
# Market-1501 and DukeMTMC-reID: every real filename through the loader
# --------------------------------------------------------------------------------------------


def test_market1501_counts_from_the_real_file_lists(scratch):
    names = ("train", "query", "test")
    csvs = [REALDATA / "market1501" / f"market1501_{n}.csv" for n in names]
    _, rows = build_from_csv(scratch, "market1501/Market-1501-v15.09.15", csvs)
    data = load_dataset("market1501", scratch, attributes=False)
    stats = data.statistics()
    assert (stats["train"]["images"], stats["train"]["ids"]) == (12936, 751)
    assert (stats["query"]["images"], stats["query"]["ids"]) == (3368, 750)
    gallery = stats["gallery"]
    assert gallery["images"] == 19732
    assert (gallery["junk"], gallery["distractors"]) == (3819, 2798)
    assert gallery["images"] - gallery["junk"] - gallery["distractors"] == 13115
    assert gallery["ids"] == 750
    assert all(s["cameras"] == 6 for s in stats.values())
    assert data.num_train_pids == 751 and sorted({r.pid for r in data.train}) == list(range(751))
    # the pid our parser reads from every filename equals the list's pid column
    listed = {Path(rel).name: pid for pid, rel in rows}
    parsed = {Path(r.path).name: r.pid for r in data.query + data.gallery}
    assert all(listed[name] == pid for name, pid in parsed.items())
    raw_train = {Path(r.path).name: data.train_raw_pids[r.pid] for r in data.train}
    assert all(listed[name] == pid for name, pid in raw_train.items())


def test_dukemtmc_counts_from_the_real_file_lists(scratch):
    csvs = [REALDATA / "dukemtmc" / f"dukeMTMC_{n}.csv" for n in ("train", "query", "test")]
    _, rows = build_from_csv(scratch, "dukemtmc/DukeMTMC-reID", csvs)
    data = load_dataset("dukemtmc", scratch, attributes=False)
    stats = data.statistics()
    assert (stats["train"]["images"], stats["train"]["ids"]) == (16522, 702)
    assert (stats["query"]["images"], stats["query"]["ids"]) == (2228, 702)
    assert (stats["gallery"]["images"], stats["gallery"]["ids"]) == (17661, 1110)
    assert all(s["cameras"] == 8 for s in stats.values())
    listed = {Path(rel).name: pid for pid, rel in rows}
    assert all(listed[Path(r.path).name] == r.pid for r in data.query + data.gallery)


# --------------------------------------------------------------------------------------------
# MSMT17: the real list files, with every listed image materialised
# --------------------------------------------------------------------------------------------


def test_msmt17_counts_from_the_real_list_files(scratch):
    source = REALDATA / "msmt17"
    folder = scratch / "msmt17" / "MSMT17_V1"
    folder.mkdir(parents=True)
    lines = {}
    for split in ("train", "val", "query", "gallery"):
        shutil.copyfile(source / f"list_{split}.txt", folder / f"list_{split}.txt")
        lines[split] = (source / f"list_{split}.txt").read_text().split()[::2]
        image_dir = "train" if split in ("train", "val") else "test"
        materialise(folder / image_dir, lines[split])
    counts = {split: len(paths) for split, paths in lines.items()}
    assert counts == {"train": 30248, "val": 2373, "query": 11659, "gallery": 82161}

    data = load_dataset("msmt17", scratch)  # verify_files: every listed image is checked
    stats = data.statistics()
    assert stats["train"]["images"] == 30248 + 2373 and stats["train"]["ids"] == 1041
    assert (stats["query"]["images"], stats["gallery"]["images"]) == (11659, 82161)
    assert stats["query"]["ids"] == stats["gallery"]["ids"] == 3060
    assert all(s["cameras"] == 15 for s in stats.values())
    assert sorted({r.camid for r in data.gallery}) == list(range(15))
    # test labels restart at 0
    test_ids = sorted({r.pid for r in data.query + data.gallery})
    assert test_ids == list(range(3060))
    only_train = load_dataset("msmt17", scratch, include_val=False, verify_files=False)
    assert len(only_train.train) == 30248 and only_train.num_train_pids == 1041


# --------------------------------------------------------------------------------------------
# CUHK03 767/700
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("labeled", (7368, 1400, 5328)), ("detected", (7365, 1400, 5332))],
)
def test_cuhk03_new_protocol_from_the_real_mat_files(scratch, variant, expected):
    import scipy.io

    name = f"cuhk03_new_protocol_config_{variant}.mat"
    folder = scratch / "cuhk03"
    folder.mkdir()
    shutil.copyfile(REALDATA / "cuhk03" / name, folder / name)
    mat = scipy.io.loadmat(str(folder / name))
    files = [str(cell[0][0]) for cell in mat["filelist"]]
    materialise(folder / f"images_{variant}", files)

    data = load_dataset("cuhk03", scratch, variant=variant)
    sizes = (len(data.train), len(data.query), len(data.gallery))
    assert sizes == expected and sum(sizes) == len(files)
    assert data.num_train_pids == 767
    test_ids = {r.pid for r in data.query} | {r.pid for r in data.gallery}
    assert len(test_ids) == 700 and {r.pid for r in data.query} == test_ids
    assert not test_ids & set(data.train_raw_pids)
    assert {r.camid for r in data.query} == {0, 1}
    # the filename's view field agrees with camId for every record
    view = re.compile(r"^\d_\d{3}_([12])_\d{2}\.png$")
    assert all(
        int(view.match(Path(r.path).name).group(1)) - 1 == r.camid
        for r in data.query + data.gallery
    )


# --------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------


def test_market_attribute_file():
    table = read_attribute_mat(REALDATA / "market1501" / "market_attribute.mat", "market1501")
    assert (len(table.train.pids), len(table.test.pids)) == (751, 750)
    assert table.train.values.shape == (751, 27) and table.invalid == ()
    age = table.names.index("age")
    assert set(table.train.values[:, age].tolist()) <= {0, 1, 2, 3}
    others = [i for i, n in enumerate(table.names) if n != "age"]
    assert set(table.train.values[:, others].ravel().tolist()) <= {0, 1}
    assert table.train.pids[0] == 2 and table.test.pids[0] == 1  # '0002', '0001'
    # train ids are Market's training identities (the csv list)
    train_ids = {pid for pid, _ in read_csv(REALDATA / "market1501" / "market1501_train.csv")}
    assert set(table.train.pids.tolist()) == train_ids
    # reading by name: the raw row of 'up' sits at a different position in train and test
    import scipy.io

    raw = scipy.io.loadmat(str(REALDATA / "market1501" / "market_attribute.mat"))
    train, test = (raw["market_attribute"][split][0, 0] for split in ("train", "test"))
    assert train.dtype.names != test.dtype.names
    up = table.names.index("up")
    assert (table.test.values[:, up] == test["up"][0, 0].ravel().astype(int) - 1).all()
    assert (table.train.values[:, up] == train["up"][0, 0].ravel().astype(int) - 1).all()


def test_duke_attribute_file():
    table = read_attribute_mat(REALDATA / "dukemtmc" / "duke_attribute.mat", "dukemtmc")
    assert (len(table.train.pids), len(table.test.pids)) == (702, 1110)
    assert table.num_attributes == 23
    assert table.invalid == (("train", 370, "top", 0), ("train", 679, "top", 0))
    assert table.as_dict(370, "train")["top"] == -1
    top = table.names.index("top")
    valid = table.train.values[:, top]
    assert set(valid.tolist()) == {-1, 0, 1} and (valid == -1).sum() == 2
    test_ids = {pid for pid, _ in read_csv(REALDATA / "dukemtmc" / "dukeMTMC_test.csv")}
    assert set(table.test.pids.tolist()) == test_ids


# --------------------------------------------------------------------------------------------
# The 18 real crops
# --------------------------------------------------------------------------------------------


def test_real_market_crops_decode_parse_and_load(tmp_path):
    from PIL import Image

    images = REALDATA / "images"
    crops = sorted(images.glob("market1501_bounding_box_*/*.jpg"))
    assert len(crops) == 18
    for crop in crops:
        assert PID_CAMERA_PATTERN.match(crop.name), crop.name
        with Image.open(crop) as image:
            image.load()
            assert image.size == (64, 128) and image.mode == "RGB"
    # the same crops as a (tiny) Market tree, read by the loader
    root = tmp_path / "Market-1501-v15.09.15"
    for split in ("train", "test"):
        shutil.copytree(images / f"market1501_bounding_box_{split}", root / f"bounding_box_{split}")
    shutil.copytree(images / "market1501_bounding_box_test", root / "query")
    data = load_dataset("market1501", tmp_path)
    assert (len(data.train), len(data.gallery)) == (5, 13)
    assert {r.camid for r in data.gallery} == {0, 1, 2, 3, 4, 5}
    assert {data.train_raw_pids[r.pid] for r in data.train} == {22, 27, 32, 48, 65}
