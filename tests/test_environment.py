"""The book's environment: pyproject.toml's ranges, the lock file and environment.yml must agree,
and the installed torch / torchvision pair must work."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from reid.engine.provenance import _locked_versions, environment_lock

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return reqs


def _lock_pins() -> dict[str, str]:
    return {_canonical(k): v for k, v in _locked_versions(LOCK.read_text()).items()}


def test_lock_is_compiled_by_pip_tools_from_pyproject_with_every_extra():
    header = LOCK.read_text().splitlines()[:6]
    command = next(line for line in header if "pip-compile" in line and "--output-file" in line)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra in project["optional-dependencies"]:
        assert f"--extra={extra}" in command, f"make lock must compile the {extra!r} extra"
    assert "pyproject.toml" in command and "requirements-pins.in" in command


def test_every_pyproject_requirement_is_locked_inside_its_range():
    pins = _lock_pins()
    problems = []
    for req in _pyproject_requirements():
        version = pins.get(_canonical(req.name))
        if version is None:
            problems.append(f"{req.name} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} is outside pyproject's {req.specifier}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_torch_and_torchvision_are_pinned_as_one_pair():
    pins = _lock_pins()
    wanted = {}
    for line in (ROOT / "requirements-pins.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            wanted[_canonical(name)] = version
    assert set(wanted) == {"torch", "torchvision"}
    assert {k: pins[k] for k in wanted} == wanted


def test_pyproject_keeps_ranges_for_library_users():
    for req in _pyproject_requirements():
        assert not any(s.operator == "==" for s in req.specifier), f"{req} pins an exact version in pyproject.toml"


def test_environment_yml_installs_the_lock_then_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    header = LOCK.read_text().splitlines()[1]
    assert python.split("=")[1] in header, "environment.yml's Python must be the one the lock was compiled for"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-r requirements-lock.txt", "--no-deps -e ."]


def test_environment_lock_reports_hash_and_mismatches(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("pyyaml==0.0.1\n    # via reid-book\nnot-installed-anywhere==1.0\n")
    info = environment_lock(lock)
    assert len(info["sha256"]) == 64 and info["packages"] == 2
    assert any(m.startswith("pyyaml: ") for m in info["mismatches"])
    assert "not-installed-anywhere: missing != 1.0" in info["mismatches"]
    assert environment_lock(tmp_path / "absent.txt")["sha256"] is None


def test_installed_torchvision_loads_its_compiled_operators():
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


@pytest.mark.skipif(not LOCK.is_file(), reason="no lock file")
def test_this_environment_is_the_locked_one():
    """`make test` runs in the venv `make` installed from the lock: anything else is a drift."""
    assert environment_lock()["mismatches"] == []
