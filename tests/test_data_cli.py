"""``reid data synth`` and ``reid data check``, run in-process through ``reid.cli.main``."""

from __future__ import annotations

from reid.cli import main


def test_synth_then_check_prints_the_statistics(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--preset", "tiny", "--seed", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "bounding_box_train" in printed and str(out) in printed
    for folder in ("bounding_box_train", "bounding_box_test", "query", "gt_bbox", "two_view/cam_a"):
        assert any((out / folder).iterdir())
    assert (out / "market_attribute.mat").is_file() and (out / "synthreid.json").is_file()

    assert main(["data", "check", "--dataset", "synthreid", "--root", str(out)]) == 0
    table = capsys.readouterr().out
    for split in ("train", "query", "gallery"):
        assert split in table
    assert "ids" in table and "images" in table and "cameras" in table


def test_synth_options_override_the_preset(tmp_path, capsys):
    out = tmp_path / "custom"
    code = main(["data", "synth", "--out", str(out), "--preset", "tiny", "--ids", "6", "--cameras", "3",
                 "--difficulty", "0.2", "--no-progress"])
    assert code == 0
    import json

    manifest = json.loads((out / "synthreid.json").read_text())
    assert manifest["params"]["num_ids"] == 6 and manifest["params"]["num_cameras"] == 3
    assert manifest["params"]["difficulty"] == 0.2


def test_check_on_a_bad_root_is_one_clear_error(tmp_path, capsys):
    code = main(["data", "check", "--dataset", "market1501", "--root", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("reid: error:") and "nowhere" in err and "Traceback" not in err


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--preset", "huge"]) == 2
    assert "unknown --preset" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--difficulty", "2", "--no-progress"]) == 2
    assert "difficulty" in capsys.readouterr().err
    assert main(["data", "check", "--dataset", "synthreid", "--root", str(tmp_path), "--option", "oops"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_synth_removes_the_leftovers_of_a_killed_generation(tmp_path, capsys):
    leftover = tmp_path / ".synth.partial-999999999-0badf00d"
    (leftover / "bounding_box_train").mkdir(parents=True)
    assert main(["data", "synth", "--out", str(tmp_path / "synth"), "--preset", "tiny", "--no-progress"]) == 0
    assert not leftover.exists() and (tmp_path / "synth" / "synthreid.json").is_file()
