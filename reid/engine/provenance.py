"""Where a result came from: code version, libraries, hardware — written into ``results.json``.

The notebooks and the book read numbers from ``results.json`` files, never from hand-typed
tables, so each file carries what is needed to judge and repeat the run: the resolved recipe,
the dataset (name, root, statistics), scale and seed, the git commit of the code, library
versions, the hardware, and timings.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "library_versions", "hardware", "environment_lock", "provenance", "write_json"]

#: The book's lock file (exact versions of every package; see the Makefile's ``lock`` target).
LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements-lock.txt"


def git_commit(path: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or "unknown", "dirty": bool | None}`` for the repository holding ``path``.

    ``dirty`` is about the code: changes under ``evidence/`` (the study results a running study is
    writing) do not count."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)evidence"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        return {"commit": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}  # not a git checkout (or no commit yet)


def library_versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    import reid

    versions = {
        "python": platform.python_version(),
        "reid": reid.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
    }
    if torch.cuda.is_available():
        versions["cuda"] = str(torch.version.cuda)
        versions["cudnn"] = str(torch.backends.cudnn.version())
    return versions


def _locked_versions(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def environment_lock(lock_file: str | Path | None = None) -> dict[str, Any]:
    """The lock file's SHA-256 and whether the running environment matches it.

    ``{"file", "sha256", "packages", "mismatches"}``: ``mismatches`` lists ``name: installed !=
    locked`` for every locked package installed at another version (or missing), so a run made
    outside the book's environment says so in its ``results.json``. Without a lock file (the
    library installed on its own) ``sha256`` is ``None``.
    """
    import hashlib
    from importlib import metadata

    path = Path(lock_file) if lock_file is not None else LOCK_FILE
    if not path.is_file():
        return {"file": path.name, "sha256": None, "packages": 0, "mismatches": []}
    data = path.read_bytes()
    pins = _locked_versions(data.decode("utf-8"))
    mismatches = []
    for name, version in sorted(pins.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed.split("+", 1)[0] != version:
            mismatches.append(f"{name}: {installed} != {version}")
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "packages": len(pins),
            "mismatches": mismatches}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu") -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "device": device,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    else:
        info["gpu"] = None
    return info


def provenance(device: str) -> dict[str, Any]:
    return {
        "git": git_commit(),
        "versions": library_versions(),
        "lock": environment_lock(),
        "hardware": hardware(device),
        "command": " ".join(sys.argv),
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def write_json(obj: dict, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON atomically (tmp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
