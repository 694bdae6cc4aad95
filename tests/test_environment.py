"""The two ways of installing the project must agree, and the installed pair must work."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_runtime() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(r): r.replace(" ", "") for r in data["project"]["dependencies"]}


def _environment_pip() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}


def test_environment_yml_lists_the_same_runtime_dependencies_as_pyproject():
    assert _environment_pip() == _pyproject_runtime()


def test_environment_yml_pins_python_311_and_installs_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert any(r.startswith("-e") and ".[dev]" in r for r in pip_section)


def test_torch_is_a_range_not_an_exact_pin():
    # An exact torch pin can resolve to a CPU-only build whose ABI torchvision's
    # compiled operators do not match; a range lets the index serve a matching pair.
    for spec in (_pyproject_runtime()["torch"], _pyproject_runtime()["torchvision"]):
        assert "==" not in spec and ">=" in spec


def test_installed_torchvision_loads_its_compiled_operators():
    import torch
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
