"""SynthReID: determinism, on-disk formats, split rules, attributes, and the properties the
book relies on (difficulty matters; same-camera images of different people look alike)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from reid.data import synthreid
from reid.errors import ConfigError

MARKET_NAME = re.compile(r"(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg")
VIPER_NAME = re.compile(r"(\d{3,})_(0|90|180)\.bmp")
REAL_ATTRIBUTES = Path(__file__).resolve().parents[2] / "shared/realdata/market1501/market_attribute.mat"
TINY = synthreid.PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return synthreid.generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **TINY)


def parse(folder: Path):
    """(pid, camid 0-based) of every Market-named image in ``folder``."""
    labels = []
    for path in sorted(folder.iterdir()):
        match = MARKET_NAME.fullmatch(path.name)
        assert match, f"bad Market file name {path.name}"
        labels.append((int(match.group(1)), int(match.group(2)) - 1))
    return np.array(labels)


def pixels(folder: Path):
    """Downsampled pixels (32x16x3) and labels of a folder's images."""
    paths = sorted(folder.iterdir())
    images = np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255 for p in paths])
    small = images.reshape(len(paths), 32, 4, 16, 4, 3).mean(axis=(2, 4)).reshape(len(paths), -1)
    labels = parse(folder)
    return small, labels[:, 0], labels[:, 1]


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tiny, tmp_path):
    again = synthreid.generate(tmp_path / "again", seed=0, progress=False, **TINY)
    assert files_of(again) == files_of(tiny)
    other = synthreid.generate(tmp_path / "other", seed=1, progress=False, **TINY)
    assert files_of(other) != files_of(tiny)


def test_market_layout_and_names(tiny):
    for folder in ("bounding_box_train", "bounding_box_test", "query", "gt_bbox"):
        assert (tiny / folder).is_dir()
        parse(tiny / folder)  # every name parses
    image = Image.open(next((tiny / "query").iterdir()))
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 128)
    test = parse(tiny / "bounding_box_test")
    assert (test[:, 0] == 0).sum() == TINY["num_distractors"]
    assert (test[:, 0] == -1).sum() == TINY["num_junk"]
    # queries are hand-drawn boxes (detection number 00) copied from gt_bbox
    for path in (tiny / "query").iterdir():
        assert path.name.endswith("_00.jpg")
        assert (tiny / "gt_bbox" / path.name).read_bytes() == path.read_bytes()


def test_splits_cameras_and_queries(tiny):
    train, test, query = (parse(tiny / f) for f in ("bounding_box_train", "bounding_box_test", "query"))
    train_ids, test_ids = set(train[:, 0]), set(test[:, 0]) - {0, -1}
    assert not train_ids & test_ids
    assert len(train_ids) == (TINY["num_ids"] + 1) // 2 and len(test_ids) == TINY["num_ids"] // 2
    cameras = defaultdict(set)
    for pid, cam in np.concatenate([train, test]):
        cameras[pid].add(cam)
    for pid in train_ids | test_ids:
        assert 2 <= len(cameras[pid]) <= min(6, TINY["num_cameras"])
    # one query per test identity per camera it appears in, each with a cross-camera match
    assert sorted(map(tuple, query)) == sorted({(p, c) for p, c in test if p > 0})
    assert all(len(cameras[p] - {c}) >= 1 for p, c in query)


def test_attribute_mat_mirrors_market_layout(tiny):
    mat = scipy.io.loadmat(tiny / "market_attribute.mat")
    top = mat["market_attribute"]
    assert top.shape == (1, 1) and top.dtype.names == ("test", "train")
    manifest = json.loads((tiny / "synthreid.json").read_text())
    for split, order in (("train", synthreid.MARKET_ATTRIBUTES), ("test", synthreid._MARKET_TEST_ORDER)):
        struct = top[0, 0][split][0, 0]
        assert struct.dtype.names == (*order, "image_index")   # the real file's field order
        index = [str(cell[0]) for cell in struct["image_index"][0]]
        expected = [f"{i['pid']:04d}" for i in manifest["identities"] if i["split"] == split]
        assert index == expected
        for name in order:
            row = struct[name]
            assert row.dtype == np.uint8 and row.shape == (1, len(index))
            assert set(np.unique(row)) <= ({1, 2, 3, 4} if name == "age" else {1, 2})
        ids = [i for i in manifest["identities"] if i["split"] == split]
        assert [i["market_attributes"]["gender"] for i in ids] == struct["gender"][0].tolist()
        # one upper and one lower colour per identity
        ups = np.stack([struct[n][0] for n in order if n.startswith("up") and n != "up"])
        assert ((ups == 2).sum(0) == 1).all()


@pytest.mark.realdata
def test_attribute_mat_matches_the_real_file(tiny):
    if not REAL_ATTRIBUTES.is_file():
        pytest.skip(f"real-format reference file absent: {REAL_ATTRIBUTES}")
    ours = scipy.io.loadmat(tiny / "market_attribute.mat")["market_attribute"]
    real = scipy.io.loadmat(REAL_ATTRIBUTES)["market_attribute"]
    assert ours.dtype.names == real.dtype.names
    for split in ("train", "test"):
        a, b = ours[0, 0][split][0, 0], real[0, 0][split][0, 0]
        assert a.dtype.names == b.dtype.names
        for name in a.dtype.names:
            assert a[name].dtype == b[name].dtype and a[name].shape[0] == b[name].shape[0] == 1
        assert type(a["image_index"][0, 0][0]) is type(b["image_index"][0, 0][0])


def test_two_view_variant(tiny):
    a = sorted(p.name for p in (tiny / "two_view/cam_a").iterdir())
    b = sorted(p.name for p in (tiny / "two_view/cam_b").iterdir())
    assert len(a) == len(b) == TINY["two_view_ids"]
    assert all(VIPER_NAME.fullmatch(n) for n in a + b)
    assert [n.split("_")[0] for n in a] == [n.split("_")[0] for n in b]
    assert Image.open(tiny / "two_view/cam_a" / a[0]).format == "BMP"


def test_manifest_counts_match_files(tiny):
    manifest = json.loads((tiny / "synthreid.json").read_text())
    assert manifest["version"] == synthreid.VERSION and manifest["seed"] == 0
    for folder in ("bounding_box_train", "bounding_box_test", "query", "gt_bbox"):
        assert manifest["counts"][folder] == len(list((tiny / folder).iterdir()))
    assert len(manifest["identities"]) == TINY["num_ids"]
    first = manifest["identities"][0]
    assert {"pid", "split", "cameras", "market_attributes", "appearance"} <= set(first)
    assert len(manifest["cameras"]) == TINY["num_cameras"]


def test_same_camera_images_of_different_people_look_alike(tiny):
    """Paper 000's viewpoint problem, on raw pixels: a different person in the probe's own
    camera is closer than the same person in another camera, and the nearest wrong match
    of a query comes from its own camera far more often than chance."""
    x, pid, cam = pixels(tiny / "bounding_box_train")
    dist = ((x[:, None] - x[None]) ** 2).sum(-1)
    same_id, same_cam = pid[:, None] == pid[None], cam[:, None] == cam[None]
    assert dist[~same_id & same_cam].mean() < dist[same_id & ~same_cam].mean()

    q, qp, qc = pixels(tiny / "query")
    g, gp, gc = pixels(tiny / "bounding_box_test")
    d = ((q[:, None] - g[None]) ** 2).sum(-1)
    wrong = (gp[None] != qp[:, None]) & (gp[None] != -1)
    nearest_wrong = np.where(wrong, d, np.inf).argmin(1)
    from_own_camera = (gc[nearest_wrong] == qc).mean()
    assert from_own_camera > 0.6 > 1 / TINY["num_cameras"]


def test_difficulty_increases_cross_camera_change(tmp_path):
    """Nuisance strength shows up where it should: the same person across cameras drifts
    apart (relative to different people within a camera) as difficulty grows."""
    def drift(difficulty):
        root = synthreid.generate(tmp_path / f"d{difficulty}", seed=3, difficulty=difficulty, progress=False,
                                  **{**TINY, "two_view_ids": 0, "num_junk": 0, "num_distractors": 0})
        x, pid, cam = pixels(root / "bounding_box_train")
        dist = ((x[:, None] - x[None]) ** 2).sum(-1)
        same_id, same_cam = pid[:, None] == pid[None], cam[:, None] == cam[None]
        return dist[same_id & ~same_cam].mean() / dist[~same_id & same_cam].mean()

    easy, hard = drift(0.0), drift(1.0)
    assert hard > 1.5 * easy


def test_generate_refuses_to_overwrite_and_cleans_up_on_failure(tmp_path, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        synthreid.generate(tmp_path / "full", progress=False, **TINY)

    def interrupted(root, *args, **kwargs):
        (root / "bounding_box_train" / "half_written.jpg").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthreid, "_render_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        synthreid.generate(tmp_path / "new", progress=False, **TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]   # nothing half-written left


def test_ensure_generates_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_DATA_HOME", str(tmp_path / "home"))
    root = synthreid.ensure("tiny", seed=0, progress=False)
    assert root == tmp_path / "home" / "synthreid" / f"tiny-seed0-{synthreid.cache_key('tiny', 0)}"
    assert (root / "synthreid.json").is_file()
    monkeypatch.setattr(synthreid, "generate", lambda *a, **k: pytest.fail("regenerated a cached dataset"))
    assert synthreid.ensure("tiny", seed=0) == root
    with pytest.raises(ConfigError, match="unknown preset"):
        synthreid.ensure("huge")


def test_cache_key_changes_with_one_generator_constant():
    """A changed generator must never find an old set: the cache folder hashes the source."""
    source = Path(synthreid.__file__).read_bytes()
    assert synthreid.cache_key("tiny", 0) == synthreid.cache_key("tiny", 0, source=source)
    edited = source.replace(b"_BG_SPAN = 4", b"_BG_SPAN = 5", 1)
    assert edited != source
    assert synthreid.cache_key("tiny", 0, source=edited) != synthreid.cache_key("tiny", 0)


def test_ensure_with_other_sizes_is_its_own_cached_set(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_DATA_HOME", str(tmp_path / "home"))
    root = synthreid.ensure("tiny", seed=0, progress=False, num_ids=6, num_cameras=2)
    assert root.name.startswith("tiny-6ids-2cameras-seed0-")
    manifest = json.loads((root / "synthreid.json").read_text())
    assert manifest["params"]["num_ids"] == 6 and manifest["params"]["num_cameras"] == 2
    assert manifest["params"]["two_view_ids"] == 6   # capped at the number of identities
    assert synthreid.cache_key("tiny", 0, num_ids=6) != synthreid.cache_key("tiny", 0)


def test_cache_key_changes_with_preset_parameters_and_seed(monkeypatch):
    key = synthreid.cache_key("tiny", 0)
    assert synthreid.cache_key("tiny", 1) != key
    monkeypatch.setitem(synthreid.PRESETS, "tiny", {**synthreid.PRESETS["tiny"], "num_junk": 9})
    assert synthreid.cache_key("tiny", 0) != key


@pytest.mark.parametrize("bad", [dict(num_ids=1), dict(num_cameras=1), dict(difficulty=1.5),
                                 dict(images_per_camera=(3, 2)), dict(two_view_ids=99)])
def test_bad_parameters_raise_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        synthreid.generate(tmp_path / "x", progress=False, **{**TINY, **bad})
    assert not (tmp_path / "x").exists()
