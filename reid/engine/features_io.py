"""A run's query/gallery features in files that other re-ID tools read, and back.

``features.pt`` (written by :class:`reid.engine.trainer.Trainer`) is read with
``torch.load(..., weights_only=True)``: it holds only tensors, strings, numbers and lists, so
loading a run someone else sent you cannot execute code.

For checking our numbers with the evaluators people already trust, :func:`export_features`
writes the layout of Person_reID_baseline_pytorch's ``pytorch_result.mat``, whose evaluation
scripts (and many forks) read these six names:

==================  ==========================  =====================================
key                 shape / type                meaning
==================  ==========================  =====================================
``query_f``         ``(Q, D)`` float32          query embeddings
``query_label``     ``(1, Q)`` int              identity (``0`` distractor, ``-1`` junk)
``query_cam``       ``(1, Q)`` int              camera id (only compared for equality)
``gallery_f``       ``(G, D)`` float32          gallery embeddings
``gallery_label``   ``(1, G)`` int
``gallery_cam``     ``(1, G)`` int
==================  ==========================  =====================================

plus, when known, ``query_path`` / ``gallery_path`` (image files), ``metric`` and ``normalize``
(how this run ranks). ``.npz`` files use the same keys with 1-D label arrays. Embeddings are
exported as the run ranks them: L2-normalised when the run's metric is cosine or its recipe
normalises, raw otherwise. (Person_reID_baseline_pytorch's ``evaluate_gpu.py`` ranks by the dot
product, which equals our ranking only for normalised embeddings.)

:func:`read_features` reads either format (ours or another toolkit's) into the dict that
:func:`reid.engine.evaluation.metrics_from_features` takes, and :func:`write_rank_list` writes
each query's top-k gallery images with their distances and whether each is a true match.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid.errors import ConfigError

__all__ = ["FORMATS", "load_run_features", "export_features", "read_features", "write_rank_list"]

#: File formats of :func:`export_features` / :func:`read_features`.
FORMATS = ("mat", "npz")
_REQUIRED = ("query_f", "query_label", "query_cam", "gallery_f", "gallery_label", "gallery_cam")


def load_run_features(run_dir: str | Path) -> dict[str, Any]:
    """The ``features.pt`` of a finished run, loaded without unpickling arbitrary objects."""
    path = Path(run_dir) / "features.pt"
    if not path.is_file():
        raise ConfigError(f"no features.pt in {run_dir}: it is not a finished run (train it to the end "
                          "with `reid train`, or resume it with --resume).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, foreign pickle, …: one clear line
        raise ConfigError(f"{path} cannot be read as a reid features file ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}); re-create it with `reid train --resume` "
                          "or re-train the run.") from None


def _ranked_embeddings(feats: dict, split: str) -> np.ndarray:
    x = feats[split].float()
    if feats.get("metric") == "cosine" or feats.get("normalize"):
        x = torch.nn.functional.normalize(x, dim=1)
    return x.numpy().astype(np.float32)


def export_features(run_dir: str | Path, out: str | Path, *, fmt: str | None = None, overwrite: bool = False) -> Path:
    """Write a finished run's features to ``out`` (``.mat`` or ``.npz``; see the module docstring)."""
    out = Path(out)
    fmt = fmt or out.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown feature format {fmt!r}; use --format mat or --format npz "
                          "(or an output file ending in .mat / .npz).")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another path or pass --overwrite to replace it.")
    feats = load_run_features(run_dir)
    data: dict[str, Any] = {}
    for split in ("query", "gallery"):
        data[f"{split}_f"] = _ranked_embeddings(feats, split)
        data[f"{split}_label"] = feats[f"{split}_pids"].numpy().astype(np.int64)
        data[f"{split}_cam"] = feats[f"{split}_camids"].numpy().astype(np.int64)
        if f"{split}_paths" in feats:
            data[f"{split}_path"] = np.array(feats[f"{split}_paths"], dtype=str)  # a char matrix in .mat
    data["metric"] = feats.get("metric", "euclidean")
    data["normalize"] = bool(feats.get("normalize", False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        if fmt == "mat":
            import scipy.io

            mat = {k: (v.reshape(1, -1) if k.endswith(("_label", "_cam")) else v) for k, v in data.items()}
            mat["normalize"] = int(mat["normalize"])
            with open(tmp, "wb") as fh:
                scipy.io.savemat(fh, mat, do_compression=True)
        else:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **data)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _text(value: Any) -> str:
    arr = np.asarray(value)
    return str(arr.reshape(-1)[0]) if arr.size else ""


def read_features(path: str | Path) -> dict[str, Any]:
    """Read a ``.mat`` / ``.npz`` feature file (ours or another toolkit's) into the dict that
    :func:`reid.engine.evaluation.metrics_from_features` takes."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such feature file: {path}")
    fmt = path.suffix.lstrip(".").lower()
    try:
        if fmt == "mat":
            import scipy.io

            raw = scipy.io.loadmat(path)
        elif fmt == "npz":
            with np.load(path, allow_pickle=False) as npz:
                raw = {k: npz[k] for k in npz.files}
        else:
            raise ConfigError(f"{path}: unknown feature file type {path.suffix!r}; use .mat or .npz.")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{path} cannot be read as a {fmt} file ({type(exc).__name__}: {exc}).") from None
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}: a feature file needs {', '.join(_REQUIRED)} "
                          "(the layout of Person_reID_baseline_pytorch's pytorch_result.mat).")
    feats: dict[str, Any] = {}
    for split in ("query", "gallery"):
        f = np.asarray(raw[f"{split}_f"], dtype=np.float32)
        labels = np.asarray(raw[f"{split}_label"]).reshape(-1)
        cams = np.asarray(raw[f"{split}_cam"]).reshape(-1)
        if f.ndim != 2 or len(labels) != len(f) or len(cams) != len(f):
            raise ConfigError(f"{path}: {split}_f is {f.shape} but {split}_label has {len(labels)} and "
                              f"{split}_cam {len(cams)} entries; they must describe the same images.")
        for name, arr in ((f"{split}_label", labels), (f"{split}_cam", cams)):
            if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ConfigError(f"{path}: {name} must hold integers (identities / cameras).")
        if not np.all(np.isfinite(f)):
            raise ConfigError(f"{path}: {split}_f contains NaN or infinite values.")
        feats[split] = torch.from_numpy(f)
        feats[f"{split}_pids"] = torch.from_numpy(labels.astype(np.int64))
        feats[f"{split}_camids"] = torch.from_numpy(cams.astype(np.int64))
        if f"{split}_path" in raw:
            feats[f"{split}_paths"] = [str(p).strip() for p in np.asarray(raw[f"{split}_path"]).reshape(-1)]
    feats["metric"] = _text(raw["metric"]).strip() if "metric" in raw else None
    feats["normalize"] = bool(np.asarray(raw["normalize"]).reshape(-1)[0]) if "normalize" in raw else None
    return feats


def write_rank_list(feats: dict, dist: torch.Tensor, out: str | Path, *, k: int = 10, overwrite: bool = False) -> Path:
    """Each query's top-``k`` gallery images (Market rule: same-identity same-camera images and junk
    left out, as the metrics do) as CSV rows ``query, query_pid, query_cam, rank, gallery,
    gallery_pid, gallery_cam, distance, match``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another path or pass --overwrite to replace it.")
    if k < 1:
        raise ConfigError(f"--top must be a positive integer, got {k}.")
    q_pids, g_pids = feats["query_pids"].numpy(), feats["gallery_pids"].numpy()
    q_cams, g_cams = feats["query_camids"].numpy(), feats["gallery_camids"].numpy()
    q_names = feats.get("query_paths") or [f"query[{i}]" for i in range(len(q_pids))]
    g_names = feats.get("gallery_paths") or [f"gallery[{j}]" for j in range(len(g_pids))]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["query", "query_pid", "query_cam", "rank", "gallery", "gallery_pid", "gallery_cam",
                             "distance", "match"])
            for i in range(len(q_pids)):
                row = dist[i].double().numpy()
                ignored = (g_pids == -1) | ((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
                masked = np.where(ignored, np.inf, row)
                top = min(k, int((~ignored).sum()))
                # the k smallest without sorting the whole gallery; ties broken by gallery order
                near = np.argpartition(masked, top - 1)[:top] if top else np.zeros(0, np.int64)
                order = near[np.lexsort((near, masked[near]))]
                for rank, j in enumerate(order, 1):
                    writer.writerow([q_names[i], int(q_pids[i]), int(q_cams[i]), rank, g_names[j], int(g_pids[j]),
                                     int(g_cams[j]), f"{row[j]:.6g}", int(g_pids[j] == q_pids[i])])
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
