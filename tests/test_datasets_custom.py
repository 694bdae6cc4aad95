"""Users' own data: the generic Market-naming loader and register_dataset."""

from __future__ import annotations

import pytest

from reid.cli import main
from reid.data.datasets import ALIASES, DATASETS, ReIDDataset, dataset_name, load_dataset, register_dataset
from reid.data.records import Record
from reid.errors import ConfigError, DatasetError


def _tree(root, cameras=(1, 3)):
    for folder, ids in (("bounding_box_train", (1, 2, 3)), ("query", (7, 8)), ("bounding_box_test", (7, 8, -1, 0))):
        (root / folder).mkdir(parents=True)
        for pid in ids:
            for cam in cameras:
                (root / folder / f"{pid:04d}_c{cam}_frame{cam}.jpg".replace("-001", "-1")).touch()
    return root


def test_market_layout_reads_any_folder_in_market_naming(tmp_path):
    data = load_dataset("Market-Layout", _tree(tmp_path))
    assert dataset_name("market_layout") == "market_layout"
    assert sorted({r.pid for r in data.train}) == [0, 1, 2]  # relabelled
    assert {r.camid for r in data.query} == {0, 2}  # c1 -> 0, c3 -> 2
    stats = data.statistics()
    assert stats["gallery"]["junk"] == 2 and stats["gallery"]["distractors"] == 2


def test_market_layout_errors_name_the_fix(tmp_path):
    _tree(tmp_path)
    with pytest.raises(DatasetError, match="names camera 3; expected 1..2"):
        load_dataset("market_layout", tmp_path, num_cameras=2)
    (tmp_path / "query" / "seven_c1.jpg").touch()
    with pytest.raises(DatasetError, match=r"(?s)does not follow.*Fix: rename the images as <identity>_c<camera>"):
        load_dataset("market_layout", tmp_path)


def test_data_check_cli_on_a_custom_folder(tmp_path, capsys):
    assert main(["data", "check", "--dataset", "market_layout", "--root", str(_tree(tmp_path))]) == 0
    assert "market_layout" in capsys.readouterr().out
    assert main(["data", "check", "--dataset", "market_layout", "--root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_register_dataset_makes_a_loader_available_everywhere(tmp_path, monkeypatch):
    monkeypatch.setattr("reid.data.datasets.DATASETS", dict(DATASETS))
    monkeypatch.setattr("reid.data.datasets.ALIASES", dict(ALIASES))

    def load_lab(root, *, sessions: int = 1):
        train = [Record(str(tmp_path / f"t{i}.jpg"), i % 2, i % 2) for i in range(4)]
        query = [Record(str(tmp_path / "q.jpg"), 5, 0)]
        gallery = [Record(str(tmp_path / "g.jpg"), 5, 1)]
        return ReIDDataset.from_records("lab_cameras", train, query, gallery, relabel_train=True, root=tmp_path)

    register_dataset("lab_cameras", load_lab, aliases=("Lab-Cams",))
    assert dataset_name("LAB_CAMERAS") == dataset_name("lab-cams") == "lab_cameras"
    assert len(load_dataset("lab-cams", tmp_path, sessions=2).train) == 4
    with pytest.raises(ConfigError, match="does not take the option"):
        load_dataset("lab_cameras", tmp_path, colour=True)
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("lab_cameras", load_lab)
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset("market1501", load_lab)
    register_dataset("lab_cameras", load_lab, replace=True)
    for bad in ("Lab Cams", "1lab", ""):
        with pytest.raises(ConfigError, match="lower-case letters"):
            register_dataset(bad, load_lab)
    with pytest.raises(ConfigError, match="must be a function"):
        register_dataset("lab_two", "not a loader")
