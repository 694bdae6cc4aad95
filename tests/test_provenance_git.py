"""results.json's git state: the commit, and whether the *code* had uncommitted changes."""

from __future__ import annotations

import subprocess

from reid.engine.provenance import git_commit


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_dirty_means_code_changes_not_evidence_being_written(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "evidence").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "evidence" / "log.jsonl").write_text("{}\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    assert git_commit(tmp_path / "pkg") == {"commit": git_commit(tmp_path)["commit"], "dirty": False}
    (tmp_path / "evidence" / "log.jsonl").write_text("{}\n{}\n")  # a study appending to its runs
    assert git_commit(tmp_path / "pkg")["dirty"] is False
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")  # a code change, seen from any sub-folder
    assert git_commit(tmp_path / "evidence")["dirty"] is True
    assert git_commit(tmp_path)["dirty"] is True
