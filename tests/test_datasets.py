"""Real-dataset loaders on tiny fixtures written in the real on-disk formats."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

import fixtures_datasets as fx
from reid.data.datasets import (
    DATASETS,
    TwoViewDataset,
    dataset_options,
    load_dataset,
    multi_query_groups,
    read_attribute_mat,
)
from reid.data.datasets.base import random_splits, relabel
from reid.data.records import Record
from reid.errors import ConfigError, DatasetError


def pids(records):
    return sorted({r.pid for r in records})


def assert_relabelled(dataset):
    assert pids(dataset.train) == list(range(dataset.num_train_pids))
    assert len(dataset.train_raw_pids) == dataset.num_train_pids


# --------------------------------------------------------------------------------------------
# Market-1501
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub", ["market1501/Market-1501-v15.09.15", "Market-1501-v15.09.15", "market1501", ""]
)
def test_market_accepts_toolkit_layouts(tmp_path, sub):
    folder = fx.write_market(tmp_path, sub)
    dataset = load_dataset("market1501", tmp_path)
    assert dataset.root == folder
    assert len(dataset.train) == len(fx.MARKET_TRAIN)  # Thumbs.db ignored


def test_market_records_statistics_and_relabelling(tmp_path):
    fx.write_market(tmp_path)
    data = load_dataset("market1501", tmp_path)
    assert_relabelled(data)
    assert data.train_raw_pids == (2, 7)
    first = data.train[0]
    assert isinstance(first, Record) and Path(first.path).name == "0002_c1s1_000451_03.jpg"
    assert (first.pid, first.camid) == (0, 0)  # c1 -> camid 0
    assert {r.camid for r in data.train} == {0, 1, 2, 5}
    # query/gallery keep raw ids, junk (-1) and distractors (0) included
    assert pids(data.query) == [1, 3]
    assert pids(data.gallery) == [-1, 0, 1, 3]
    stats = data.statistics()
    assert stats["train"] == {"ids": 2, "images": 5, "cameras": 4, "junk": 0, "distractors": 0}
    assert stats["gallery"] == {"ids": 2, "images": 7, "cameras": 5, "junk": 2, "distractors": 1}
    table = data.format_statistics()
    lines = table.splitlines()
    assert lines[0].split() == ["market1501", "ids", "images", "cameras", "junk", "distractors"]
    assert lines[2].split() == ["train", "2", "5", "4", "0", "0"]
    assert len({len(line) for line in lines}) == 1  # aligned


def test_market_relabel_false_keeps_raw_ids(tmp_path):
    fx.write_market(tmp_path)
    data = load_dataset("market1501", tmp_path, relabel=False)
    assert pids(data.train) == [2, 7]


def test_market_multi_query_groups(tmp_path):
    fx.write_market(tmp_path)
    data = load_dataset("market1501", tmp_path)
    # gt_bbox images of non-query identities (0002) are dropped
    assert {r.pid for r in data.multi_query} == {1, 3}
    groups = multi_query_groups(data.query, data.multi_query)
    names = [[Path(data.multi_query[i].path).name for i in g] for g in groups]
    assert names[0] == ["0001_c1s1_001051_00.jpg", "0001_c1s1_001076_00.jpg"]  # same id + cam
    assert names[1] == ["0001_c2s1_000301_00.jpg"]
    assert load_dataset("market1501", tmp_path, multi_query=False).multi_query is None


def test_market_attributes_auto_required_and_path(tmp_path):
    folder = fx.write_market(tmp_path)
    assert load_dataset("market1501", tmp_path).attributes is None
    with pytest.raises(DatasetError, match="market_attribute.mat"):
        load_dataset("market1501", tmp_path, attributes=True)
    # the attribute project's folder one level above the dataset is found automatically
    fx.write_attribute_mat(
        folder.parent / "Market-1501_Attribute" / "market_attribute.mat", "market1501", [2, 7],
        [1, 3],
    )
    table = load_dataset("market1501", tmp_path).attributes
    assert table.names[:3] == ("gender", "hair", "up") and table.num_attributes == 27
    data = load_dataset("market1501", tmp_path, attributes=True)
    raw = data.train_raw_pids  # attributes are looked up by raw id after relabelling
    assert data.attributes.lookup(raw, "train").shape == (2, 27)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"bounding_box_train/0002_x1.jpg": 1}, "0002_x1.jpg"),
        ({"bounding_box_train/0002_c7s1_000451_03.jpg": 1}, "camera 7"),
        ({"bounding_box_train/-1_c1s1_000451_03.jpg": 1}, "junk/distractor"),
    ],
)
def test_market_malformed_content_names_the_file(tmp_path, files, message):
    folder = fx.write_market(tmp_path)
    for name in files:
        fx.touch(folder / name)
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("market1501", tmp_path)
    assert "Expected layout" in str(err.value)


def test_market_empty_folder_is_a_clear_error(tmp_path):
    folder = fx.write_market(tmp_path)
    for path in (folder / "query").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match="contains no images"):
        load_dataset("market1501", tmp_path)


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"synthreid"}))
def test_missing_or_empty_root_names_the_layout(tmp_path, name):
    with pytest.raises(DatasetError) as missing:
        load_dataset(name, tmp_path / "absent")
    assert "does not exist" in str(missing.value)
    with pytest.raises(DatasetError) as empty:
        load_dataset(name, tmp_path)
    text = str(empty.value)
    assert "Expected layout" in text and "Looked for the dataset in" in text
    assert "Where the data comes from" in text and str(tmp_path) in text
    with pytest.raises(DatasetError, match="no root was given"):
        load_dataset(name, None)


# --------------------------------------------------------------------------------------------
# DukeMTMC-reID and attributes
# --------------------------------------------------------------------------------------------


def test_duke_records_and_no_special_labels(tmp_path):
    fx.write_duke(tmp_path)
    data = load_dataset("dukemtmc", tmp_path)
    assert_relabelled(data)
    assert data.train_raw_pids == (1, 8)
    assert {r.camid for r in data.train} == {1, 4, 0, 7}
    stats = data.statistics()
    assert stats["gallery"]["ids"] == 3 and stats["gallery"]["junk"] == 0
    assert "junk" not in data.format_statistics()


def test_duke_attributes_invalid_top_and_flipped_coding(tmp_path):
    folder = fx.write_duke(tmp_path)
    fx.write_attribute_mat(
        folder / "duke_attribute.mat", "dukemtmc", [1, 8, 370], [2, 5, 19],
        overrides={("train", "top", 370): 0, ("train", "top", 1): 1, ("train", "top", 8): 2},
    )
    table = load_dataset("dukemtmc", tmp_path).attributes
    assert table.invalid == (("train", 370, "top", 0),)
    top = table.names.index("top")
    assert table.lookup([1, 8, 370], "train")[:, top].tolist() == [1, 0, -1]  # 1 = short
    assert table.as_dict(1, "train")["top"] == 1


def test_attributes_are_read_by_name_not_position(tmp_path):
    path = fx.write_attribute_mat(tmp_path / "m.mat", "market1501", [2, 7, 10], [1, 3])
    table = read_attribute_mat(path, "market1501")
    for split, ids in (("train", [2, 7, 10]), ("test", [1, 3])):
        values = table.lookup(ids, split)
        for column, name in enumerate(table.names):
            expected = fx.attribute_values(name, ids).astype(int) - 1
            assert values[:, column].tolist() == expected.tolist(), (split, name)
    assert table.train.pids.tolist() == [2, 7, 10]
    with pytest.raises(KeyError, match="identity 99"):
        table.lookup([99], "train")


def test_market_up_and_duke_top_share_one_convention(tmp_path):
    market = read_attribute_mat(
        fx.write_attribute_mat(tmp_path / "m.mat", "market1501", [2], [1],
                               overrides={("train", "up", 2): 2}),  # raw 2 = short sleeves
        "market1501",
    )
    duke = read_attribute_mat(
        fx.write_attribute_mat(tmp_path / "d.mat", "dukemtmc", [2], [1],
                               overrides={("train", "top", 2): 1}),  # raw 1 = short top
        "dukemtmc",
    )
    assert market.as_dict(2, "train")["up"] == duke.as_dict(2, "train")["top"] == 1


@pytest.mark.parametrize("problem", ["missing field", "not a mat file", "missing file"])
def test_malformed_attribute_file_names_the_file(tmp_path, problem):
    path = tmp_path / "market_attribute.mat"
    if problem == "missing field":
        fx.write_attribute_mat(path, "market1501", [2], [1], drop=["hat"])
    elif problem == "not a mat file":
        path.write_text("not a mat file")
    with pytest.raises(DatasetError, match="market_attribute.mat") as err:
        read_attribute_mat(path, "market1501")
    if problem == "missing field":
        assert "hat" in str(err.value)


# --------------------------------------------------------------------------------------------
# MSMT17
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt17_versions_lists_and_cameras(tmp_path, version):
    folder = fx.write_msmt(tmp_path, version)
    data = load_dataset("msmt17", tmp_path)
    assert data.root == folder and data.notes["version"] == version
    assert len(data.train) == 5 and data.num_train_pids == 3  # train + val
    assert [r.camid for r in data.train] == [11, 11, 6, 3, 14]  # camera field - 1
    assert pids(data.query) == [0, 1] and pids(data.gallery) == [0, 1]  # test labels from 0
    image_dir = "train" if version == "V1" else "mask_train_v2"
    assert Path(data.train[0].path).parent.parent.name == image_dir
    assert len(load_dataset("msmt17", tmp_path, include_val=False).train) == 3


def test_msmt17_explicit_version_and_errors(tmp_path):
    fx.write_msmt(tmp_path, "V2")
    with pytest.raises(DatasetError, match="MSMT17_V1"):
        load_dataset("msmt17", tmp_path, version="V1")
    assert load_dataset("msmt17", tmp_path, version="v2").notes["version"] == "V2"
    with pytest.raises(ConfigError, match="V3"):
        load_dataset("msmt17", tmp_path, version="V3")


def test_msmt17_missing_image_and_malformed_line(tmp_path):
    folder = fx.write_msmt(tmp_path)
    (folder / "test" / "0000" / "0000_008_01_0303morning_0019_2.jpg").unlink()
    with pytest.raises(DatasetError, match="list_gallery.txt") as err:
        load_dataset("msmt17", tmp_path)
    assert "0000_008_01_0303morning_0019_2.jpg" in str(err.value)
    assert len(load_dataset("msmt17", tmp_path, verify_files=False).gallery) == 3
    (folder / "list_query.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg\n")
    with pytest.raises(DatasetError, match="line 1 of .*list_query.txt"):
        load_dataset("msmt17", tmp_path, verify_files=False)


# --------------------------------------------------------------------------------------------
# CUHK03
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["labeled", "detected"])
def test_cuhk03_new_protocol(tmp_path, variant):
    fx.write_cuhk03(tmp_path)
    data = load_dataset("cuhk03", tmp_path, variant=variant)
    n_images = 48 if variant == "labeled" else 47
    assert len(data.train) + len(data.query) + len(data.gallery) == n_images
    assert data.num_train_pids == 8 and len(pids(data.query)) == 4
    assert not set(pids(data.query)) & set(data.train_raw_pids)
    # 1-based train_idx: the first training record is filelist[0]
    assert Path(data.train[0].path).name == "1_001_1_01.png"
    assert Path(data.train[0].path).parent.name == f"images_{variant}"
    assert {r.camid for r in data.query} == {0, 1}
    assert data.notes == {"variant": variant, "protocol": "new"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop": ["train_idx"]}, "lacks the variable"),
        ({"index_shift": 1000}, "1-based indices"),
    ],
)
def test_cuhk03_malformed_mat_names_the_file(tmp_path, kwargs, message):
    folder = fx.write_cuhk03(tmp_path)
    fx.write_new_protocol_mat(
        folder / "cuhk03_new_protocol_config_labeled.mat", fx.cuhk03_names(), num_train_ids=8,
        **kwargs,
    )
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("cuhk03", tmp_path)
    assert "cuhk03_new_protocol_config_labeled.mat" in str(err.value)


def test_cuhk03_new_protocol_missing_image(tmp_path):
    folder = fx.write_cuhk03(tmp_path)
    (folder / "images_labeled" / "2_006_2_07.png").unlink()
    with pytest.raises(DatasetError, match="2_006_2_07.png"):
        load_dataset("cuhk03", tmp_path)


def test_cuhk03_classic_from_torchreid_json(tmp_path):
    fx.write_cuhk03(tmp_path)
    data = load_dataset("cuhk03", tmp_path, protocol="classic", split=1)
    assert isinstance(data, TwoViewDataset)
    assert data.notes["splits_source"].endswith("splits_classic_labeled.json")
    assert [s["test"] for s in data.splits] == [[1002, 2005], [1001, 2003], [1006, 2006]]
    assert len(data.splits[0]["train"]) == 10  # 12 identities - 2 test
    assert pids(data.query) == pids(data.gallery) == [1001, 2003]
    assert {r.camid for r in data.query} == {0} and {r.camid for r in data.gallery} == {1}
    assert data.num_train_pids == 10
    assert len(data.records) == 48 and {r.camid for r in data.records} == {0, 1}
    with pytest.raises(ConfigError, match="split=3 is out of range"):
        data.select_split(3)


def test_cuhk03_classic_random_fallback_warns_and_is_seeded(tmp_path):
    fx.write_cuhk03(tmp_path, classic_json=False)
    # The fixture has 12 identities, fewer than the 100 test ids of the protocol.
    with pytest.raises(ConfigError, match="num_test=100"):
        load_dataset("cuhk03", tmp_path, protocol="classic")
    folder = tmp_path / "cuhk03" / "images_labeled"
    fx.touch_all(folder, (f"3_{p:03d}_{v}_01.png" for p in range(1, 120) for v in (1, 2)))
    with pytest.warns(UserWarning, match="seeded random"):
        a = load_dataset("cuhk03", tmp_path, protocol="classic", seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = load_dataset("cuhk03", tmp_path, protocol="classic", seed=3)
        c = load_dataset("cuhk03", tmp_path, protocol="classic", seed=4)
    assert len(a.splits) == 20 and all(len(s["test"]) == 100 for s in a.splits)
    assert a.splits == b.splits and a.splits != c.splits


def test_cuhk03_bad_options(tmp_path):
    fx.write_cuhk03(tmp_path)
    with pytest.raises(ConfigError, match="variant"):
        load_dataset("cuhk03", tmp_path, variant="manual")
    with pytest.raises(ConfigError, match="protocol"):
        load_dataset("cuhk03", tmp_path, protocol="np")


# --------------------------------------------------------------------------------------------
# Two-view benchmarks
# --------------------------------------------------------------------------------------------


def check_two_view(data, *, num_test):
    assert isinstance(data, TwoViewDataset)
    assert {r.camid for r in data.records} == {0, 1}
    for split in data.splits:
        assert not set(split["train"]) & set(split["test"])
        assert len(split["test"]) == num_test
    test = set(data.splits[data.split_index]["test"])
    assert {r.pid for r in data.query} == test and all(r.camid == 0 for r in data.query)
    assert test <= {r.pid for r in data.gallery} and all(r.camid == 1 for r in data.gallery)
    assert_relabelled(data)
    assert set(data.train_raw_pids) == set(data.splits[data.split_index]["train"])


def test_cuhk01(tmp_path):
    fx.write_cuhk01(tmp_path)
    data = load_dataset("cuhk01", tmp_path, num_test=5, num_splits=3, split=2)
    check_two_view(data, num_test=5)
    assert len(data.records) == 48 and len(data.splits) == 3 and data.split_index == 2
    by_name = {Path(r.path).name: r for r in data.records}
    assert by_name["0003002.png"] == Record(by_name["0003002.png"].path, 3, 0)
    assert by_name["0003003.png"].camid == 1
    assert len(data.query) == len(data.gallery) == 10  # 2 images per view
    fx.touch(tmp_path / "cuhk01" / "campus" / "0001005.png")
    with pytest.raises(DatasetError, match="0001005.png"):
        load_dataset("cuhk01", tmp_path, num_test=5)


def test_viper_pairs_sorted_files_and_splits_are_seeded(tmp_path):
    fx.write_viper(tmp_path)
    data = load_dataset("viper", tmp_path)
    check_two_view(data, num_test=5)  # default: half of the identities
    assert len(data.splits) == 10 and data.statistics()["query"]["images"] == 5
    same = load_dataset("viper", tmp_path)
    other = load_dataset("viper", tmp_path, seed=1)
    assert data.splits == same.splits and data.splits != other.splits
    for i in range(3):
        switched = data.select_split(i)
        check_two_view(switched, num_test=5)
    fx.touch(tmp_path / "viper" / "VIPeR" / "cam_b" / "999_0.bmp")
    with pytest.raises(DatasetError, match="cam_a has 10 images and cam_b 11"):
        load_dataset("viper", tmp_path)


def test_prid2011_shared_persons_and_distractors(tmp_path):
    fx.write_prid(tmp_path, cam_a=14, cam_b=20)
    data = load_dataset("prid2011", tmp_path, num_test=5)
    assert data.notes["shared_persons"] == 14  # numbers in both cameras
    check_two_view(data, num_test=5)
    a_only = [r for r in data.records if r.pid > 749]
    assert a_only == []  # no camera-A-only persons in this small fixture
    extra = {r.pid for r in data.gallery} - set(data.splits[0]["test"])
    assert extra == set(range(15, 21))  # camera-B-only persons 15..20 are gallery distractors
    plain = load_dataset("prid2011", tmp_path, num_test=5, gallery_distractors=False)
    assert {r.pid for r in plain.gallery} == set(plain.splits[0]["test"])


def test_prid2011_camera_a_only_persons_get_distinct_ids(tmp_path):
    folder = fx.write_prid(tmp_path, cam_a=203, cam_b=205)
    data = load_dataset("prid2011", tmp_path, num_test=100)
    assert data.notes["shared_persons"] == 200
    a_only = sorted(r.pid for r in data.records if r.camid == 0 and r.pid > 200)
    assert a_only == [750, 751, 752]  # person_0201..0203 of camera A
    assert {r.pid for r in data.gallery} - set(data.splits[0]["test"]) == {201, 202, 203, 204, 205}
    fx.touch(folder / "cam_a" / "person_1.png")
    with pytest.raises(DatasetError, match="person_1.png"):
        load_dataset("prid2011", tmp_path)


def test_threedpes_views_from_cameras(tmp_path):
    fx.write_threedpes(tmp_path)
    data = load_dataset("threedpes", tmp_path, num_splits=4)
    two_view = [p for p, cams in fx.THREEDPES_CAMERAS.items() if len(cams) > 1]
    check_two_view(data, num_test=len(two_view) // 2)
    assert data.notes["single_camera_persons"] == 1
    assert all(5 in s["train"] for s in data.splits)  # single-camera person never tested
    # one camera never spans two views; views are seeded
    views = {}
    for r in data.records:
        name = Path(r.path).name
        views.setdefault(tuple(name.split("_")[:2]), set()).add(r.camid)
    assert all(len(v) == 1 for v in views.values())
    again = load_dataset("threedpes", tmp_path, num_splits=4)
    assert [r.camid for r in again.records] == [r.camid for r in data.records]


@pytest.mark.parametrize(
    ("writer", "name"),
    [(fx.write_cuhk01, "cuhk01"), (fx.write_viper, "viper"), (fx.write_threedpes, "threedpes")],
)
def test_two_view_roots_can_point_at_the_folder_itself(tmp_path, writer, name):
    folder = writer(tmp_path, sub="data")
    data = load_dataset(name, folder, num_test=2)
    assert data.root == folder


# --------------------------------------------------------------------------------------------
# Shared helpers and the registry
# --------------------------------------------------------------------------------------------


def test_relabel_and_random_splits():
    records = [Record("a", 9, 0), Record("b", 4, 1), Record("c", 9, 1)]
    relabelled, raw = relabel(records)
    assert [r.pid for r in relabelled] == [1, 0, 1] and raw == (4, 9)
    splits = random_splits(range(10), num_test=3, num_splits=2, seed=0)
    assert splits == random_splits(range(10), num_test=3, num_splits=2, seed=0)
    assert all(sorted(s["train"] + s["test"]) == list(range(10)) for s in splits)
    with pytest.raises(ConfigError, match="num_test=10"):
        random_splits(range(10), num_test=10, num_splits=1, seed=0)


def test_registry_names_options_and_errors(tmp_path):
    assert set(DATASETS) == {
        "market1501", "dukemtmc", "cuhk03", "msmt17", "cuhk01", "viper", "prid2011",
        "threedpes", "synthreid", "market_layout",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="known datasets: market1501, dukemtmc"):
        load_dataset("market", tmp_path)
    with pytest.raises(ConfigError, match="accepted: relabel, attributes, multi_query"):
        load_dataset("market1501", tmp_path, split=3)
    assert "protocol" in dataset_options("cuhk03")
    fx.write_market(tmp_path)
    assert load_dataset("Market1501", tmp_path).name == "market1501"


# --------------------------------------------------------------------------------------------
# SynthReID end to end
# --------------------------------------------------------------------------------------------

HAVE_SYNTHREID = importlib.util.find_spec("reid.data.synthreid") is not None


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    if not HAVE_SYNTHREID:
        pytest.skip("reid.data.synthreid does not exist yet (data-synth's module)")
    from reid.data.synthreid import generate

    return generate(tmp_path_factory.mktemp("synth") / "root", num_ids=16, seed=0, progress=False)


def test_synthreid_market_layout_end_to_end(synth_root):
    data = load_dataset("synthreid", synth_root)
    assert_relabelled(data)
    stats = data.statistics()
    assert stats["train"]["ids"] + stats["query"]["ids"] == 16  # disjoint halves
    assert not {r.pid for r in data.query} & set(data.train_raw_pids)
    assert stats["gallery"]["junk"] > 0 and stats["gallery"]["distractors"] > 0
    assert data.multi_query and all(g for g in multi_query_groups(data.query, data.multi_query))
    table = data.attributes
    assert table is not None and table.num_attributes == 27
    assert set(table.train.pids.tolist()) == set(data.train_raw_pids)
    assert set(table.test.pids.tolist()) == {r.pid for r in data.query}
    assert ((table.train.values >= 0) & (table.train.values <= 3)).all()
    # the images are real: the first one decodes
    from PIL import Image

    with Image.open(data.train[0].path) as image:
        assert image.size == (64, 128)


def test_synthreid_two_view_layout(synth_root):
    data = load_dataset("synthreid", synth_root, layout="two_view", num_splits=2)
    check_two_view(data, num_test=8)
    assert data.name == "synthreid" and len(data.records) == 32


def test_synthreid_root_none_uses_the_cached_preset(synth_root, monkeypatch):
    import reid.data.synthreid as synthreid

    calls = []

    def fake_ensure(preset, seed=0, root=None, **kwargs):
        calls.append((preset, seed))
        return synth_root

    monkeypatch.setattr(synthreid, "ensure", fake_ensure)
    data = load_dataset("synthreid", None, seed=0)
    assert calls == [("smoke", 0)] and data.root == synth_root


def test_synthreid_bad_root_and_layout(tmp_path):
    with pytest.raises(DatasetError, match="reid data synth"):
        load_dataset("synthreid", tmp_path)
    with pytest.raises(ConfigError, match="layout"):
        load_dataset("synthreid", tmp_path, layout="cuhk")


def test_every_loader_returns_int_records(tmp_path):
    fx.write_market(tmp_path)
    data = load_dataset("market1501", tmp_path)
    for record in data.train + data.query + data.gallery:
        assert type(record.pid) is int and type(record.camid) is int
        assert isinstance(record.path, str)
    assert np.array([r.pid for r in data.gallery]).dtype.kind == "i"
