"""Large distractor sets for gallery-size studies: SynthReID people who belong to no dataset.

Paper 002 (Fig. 4) adds Market-1501's 500,000 distractor boxes to the gallery. SynthReID's own
test split holds only a few hundred distractors, so :func:`ensure_distractors` generates a
*distractor-only* SynthReID set: the public generator (:func:`reid.data.synthreid.generate`) with
two identities (the minimum it accepts; they are not used), no junk, no two-view variant, and
``count`` distractor people, written as ordinary ``0000_c…`` JPEGs in ``bounding_box_test/``.

The set is drawn with the **same seed and camera parameters** as the dataset it extends
(``num_cameras``, ``difficulty``, image size), so its cameras — background scenes, illumination,
colour cast, blur, noise, JPEG quality — are the dataset's own cameras, as Market-1501's
distractors come from Market's cameras; its people are fresh draws. Writing images (rather than
rendering features on the fly) lets every trained model read the same files through the same
evaluation transform as the real gallery, once generated. Generation cost, measured on the book's
2-core machine: about 2.7 ms of CPU per image (1.6 ms drawing, the rest JPEG encoding and file
creation), i.e. about 23 CPU minutes and 2 GB for 500,000 images, paid once per machine.

Folders are content-addressed (:mod:`reid.data.cache`): the generator's source, the parameters
and the encoding libraries name the folder, so a changed generator never reuses a stale set. Generation is atomic (the generator writes to a temporary sibling folder).

Reading the JPEGs again for every trained model costs more than the model itself (decoding and
resizing: about 1.3 ms per image against 0.6 ms for the study-scale network's forward pass), so
:func:`distractor_inputs` decodes and resizes the set once per input size into a ``uint8`` array
``(N, 3, H, W)`` beside the images: exactly the output of the evaluation transform's first two
steps (``ToImage``, ``Resize``), so :func:`input_batches` — which applies the remaining steps
(``ToDtype``, ``Normalize``) to slices of it — gives the same tensors as the image loader.

At 500,000 people the files themselves are the slow part on a shared machine (half a million file
creations, then a second decoding pass), so :func:`render_distractor_inputs` builds the same
``uint8`` array **without writing files**: it replays the generator's own plan and per-batch random
streams (the private steps of :func:`reid.data.synthreid.generate`, which this module may not
change), encodes each distractor as the JPEG the generator would write, decodes it as the image
loader would, and resizes it — in several worker processes if asked. The array equals, bit for bit,
``distractor_inputs(ensure_distractors(...))`` (``tests/test_distractors_002.py`` checks it), so the
file path stays the reference and the fast path cannot drift from it unnoticed.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from reid.data.records import Record
from reid.errors import ConfigError, DatasetError

__all__ = ["distractor_params", "ensure_distractors", "distractor_records", "distractor_inputs", "input_batches",
           "render_distractor_inputs"]

#: Parameters of the dataset a distractor set must share (its cameras depend on these and the seed).
SHARED = ("num_cameras", "difficulty", "height", "width", "images_per_camera")


def distractor_params(dataset_root: str | Path) -> dict:
    """The seed and camera parameters of the SynthReID set at ``dataset_root`` (from its manifest)."""
    manifest = Path(dataset_root) / "synthreid.json"
    if not manifest.is_file():
        raise DatasetError(f"{dataset_root} is not a SynthReID set (no synthreid.json): generated distractors "
                           "need a SynthReID dataset to take the cameras from.")
    data = json.loads(manifest.read_text())
    params = data["params"]
    return {"seed": int(data["seed"]), **{k: params[k] for k in SHARED}}


def _key(params: dict, count: int) -> str:
    from reid.data import synthreid
    from reid.data.cache import content_key, library_fingerprint, module_source

    # the images depend on the generator and these parameters only (this module just calls it)
    return content_key(sources=[module_source(synthreid)],
                       params={"count": int(count), **params, "libraries": library_fingerprint("numpy", "scipy", "pillow")})


def ensure_distractors(dataset_root: str | Path, count: int, *, cache_root=None, progress: bool = True) -> Path:
    """Root of a cached distractor-only SynthReID set with ``count`` people, in ``dataset_root``'s cameras."""
    from reid.data import synthreid

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"distractor count must be a positive integer, got {count!r}.")
    params = distractor_params(dataset_root)
    target = synthreid.cache_dir(cache_root) / f"distractors{count}-seed{params['seed']}-{_key(params, count)}"
    if (target / "synthreid.json").is_file():
        return target
    if target.exists() and not any(target.iterdir()):
        target.rmdir()
    try:
        return synthreid.generate(
            target, num_ids=2, num_cameras=params["num_cameras"], seed=params["seed"], difficulty=params["difficulty"],
            height=params["height"], width=params["width"], images_per_camera=tuple(params["images_per_camera"]),
            num_distractors=count, num_junk=0, two_view_ids=0, progress=progress,
        )
    except (ConfigError, OSError):
        if (target / "synthreid.json").is_file():  # another process finished it first
            return target
        raise


def distractor_records(root: str | Path) -> list[Record]:
    """The distractor images (pid 0) of a set made by :func:`ensure_distractors`, in file-name order."""
    from reid.data.datasets import load_dataset

    records = [r for r in load_dataset("synthreid", root).gallery if r.pid == 0]
    if not records:
        raise DatasetError(f"{root} holds no distractor images (pid 0).")
    return sorted(records, key=lambda r: str(r.path))


#: Number of leading steps of the evaluation transform that :func:`distractor_inputs` caches.
_CACHED_STEPS = 2


def _eval_steps(height: int, width: int):
    from reid.data.transforms import build_transforms

    steps = list(build_transforms(height, width, train=False).transforms)
    names = [type(t).__name__ for t in steps]
    if names[:_CACHED_STEPS] != ["ToImage", "Resize"]:
        raise RuntimeError(f"the evaluation transform changed ({names}); update reid.data.distractors.")
    return steps[:_CACHED_STEPS], steps[_CACHED_STEPS:]


def distractor_inputs(root: str | Path, height: int, width: int, *, progress: bool = True) -> np.ndarray:
    """The distractor images of ``root`` decoded and resized to ``height x width``, as a read-only
    ``uint8`` memory map ``(N, 3, H, W)`` in :func:`distractor_records` order (built once, cached)."""
    from tqdm.auto import tqdm

    from reid.data import transforms
    from reid.data.cache import content_key, library_fingerprint, module_source
    from reid.data.image_dataset import read_image

    root = Path(root)
    key = content_key(sources=[module_source(transforms)],
                      params={"height": height, "width": width, "steps": _CACHED_STEPS,
                              "libraries": library_fingerprint("torch", "torchvision", "pillow")})
    path = root / f"inputs-{height}x{width}-{key}.npy"
    if not path.is_file():
        import torch

        records = distractor_records(root)
        head, _ = _eval_steps(height, width)
        tmp = root / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(records), 3, height, width))
            for i, record in enumerate(tqdm(records, desc="distractor inputs", unit="img", disable=not progress)):
                image = read_image(record.path)
                for step in head:
                    image = step(image)
                out[i] = torch.as_tensor(image).numpy()
            out.flush()
            del out
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return np.load(path, mmap_mode="r")


def input_batches(inputs: np.ndarray, height: int, width: int, batch_size: int = 256):
    """Yield float tensors ``(B, 3, H, W)`` ready for the model: the evaluation transform's
    remaining steps applied to consecutive slices of :func:`distractor_inputs`."""
    import torch

    _, tail = _eval_steps(height, width)
    for start in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.array(inputs[start:start + batch_size]))  # a writable copy of the slice
        for step in tail:
            batch = step(batch)
        yield torch.as_tensor(batch)


# ---------------------------------------------------------------------------- without files
def _generation(params: dict, count: int):
    """The generator's identities, cameras, plan and file names for the set :func:`ensure_distractors`
    writes (same calls, same random streams as :func:`reid.data.synthreid.generate`)."""
    from reid.data import synthreid as g

    seed = params["seed"]
    ids = g._draw_identities(np.random.default_rng([seed, g._STREAM_IDENTITIES]), 2 + count)
    cams = g._draw_cameras(np.random.default_rng([seed, g._STREAM_CAMERAS]), params["num_cameras"],
                           params["difficulty"], params["height"], params["width"])
    plan, files, _, _ = g._plan(
        np.random.default_rng([seed, g._STREAM_PLAN]), cams, num_ids=2, num_cameras=params["num_cameras"],
        difficulty=params["difficulty"], images_per_camera=tuple(params["images_per_camera"]),
        hand_drawn_per_camera=(1, 3), num_distractors=count, num_junk=0, two_view_ids=0,
        width=params["width"], height=params["height"])
    return ids, cams, plan, files


def _render_batches(plan: dict, cameras: int) -> list[tuple[int, int, np.ndarray]]:
    """``(camera, start, rows)`` of every rendering batch, in the generator's order."""
    from reid.data import synthreid as g

    cam = plan["cam"]
    order = np.argsort(cam, kind="stable")
    bounds = np.searchsorted(cam[order], np.arange(cameras + 1))
    out = []
    for c in range(cameras):
        rows_c = order[bounds[c]:bounds[c + 1]]
        out += [(c, start, rows_c[start:start + g._BATCH]) for start in range(0, rows_c.size, g._BATCH)]
    return out


#: Per-process state of the rendering workers (the plan of a 500k set takes seconds to draw).
_STATE: dict = {}


def _init_worker(params: dict, count: int, path: Path, height: int, width: int) -> None:
    import torch

    torch.set_num_threads(1)
    ids, cams, plan, files = _generation(params, count)
    _STATE.clear()
    _STATE.update(params=params, ids=ids, cams=cams, plan=plan, row_of=_rows(files), height=height, width=width,
                  head=_eval_steps(height, width)[0], out=np.load(path, mmap_mode="r+"))


def _render_worker(batches) -> int:
    """Render ``batches`` and write their distractors' inputs into the shared array; returns how many."""
    import io

    import torch
    from PIL import Image

    from reid.data import synthreid as g

    st = _STATE
    params, cams, out, row_of = st["params"], st["cams"], st["out"], st["row_of"]
    done = 0
    for c, start, rows in batches:
        images = g._render(st["ids"], cams, st["plan"], rows, c, params["height"], params["width"],
                           np.random.default_rng([params["seed"], g._STREAM_RENDER, c, start]))
        for image, i in zip(images, rows.tolist()):
            if i not in row_of:
                continue  # one of the two unused identities
            buffer = io.BytesIO()  # the JPEG the generator writes (reid.data.synthreid._save) ...
            Image.fromarray(image).save(buffer, format="JPEG", quality=int(cams["jpeg_quality"][c]))
            buffer.seek(0)
            with Image.open(buffer) as decoded:  # ... decoded as reid.data.image_dataset.read_image does
                tensor = torch.from_numpy(np.asarray(decoded.convert("RGB")).copy()).permute(2, 0, 1).contiguous()
            for step in st["head"]:
                tensor = step(tensor)
            out[row_of[i]] = torch.as_tensor(tensor).numpy()
            done += 1
    out.flush()
    return done


def _rows(files: list[str]) -> dict[int, int]:
    """Plan index -> row of the distractor array (file-name order, as :func:`distractor_records`)."""
    names = sorted((f, i) for i, f in enumerate(files) if f.startswith("bounding_box_test/0000_"))
    return {i: row for row, (_, i) in enumerate(names)}


def render_distractor_inputs(dataset_root: str | Path, count: int, height: int, width: int, *, jobs: int = 1,
                             cache_root=None, progress: bool = True) -> np.ndarray:
    """``distractor_inputs(ensure_distractors(dataset_root, count), height, width)`` without the files.

    Renders the ``count`` distractor people in memory (``jobs`` worker processes, one thread each)
    and caches the ``uint8`` array ``(count, 3, height, width)`` under the SynthReID cache
    (content-addressed like the image sets); returns it as a read-only memory map.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    from reid.data import synthreid, transforms
    from reid.data.cache import content_key, library_fingerprint, module_source

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"distractor count must be a positive integer, got {count!r}.")
    params = distractor_params(dataset_root)
    key = content_key(sources=[module_source(synthreid), module_source(transforms)],
                      params={"count": count, **params, "height": height, "width": width, "steps": _CACHED_STEPS,
                              "libraries": library_fingerprint("numpy", "scipy", "pillow", "torch", "torchvision")})
    path = synthreid.cache_dir(cache_root) / f"distractors{count}-seed{params['seed']}-inputs{height}x{width}-{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _, _, plan, files = _generation(params, count)
    if len(_rows(files)) != count:
        raise RuntimeError(f"the generator planned {len(_rows(files))} distractors, not {count}; update reid.data.distractors.")
    batches = _render_batches(plan, params["num_cameras"])
    jobs = max(1, min(int(jobs), len(batches)))
    try:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(count, 3, height, width)).flush()
        # small work units, handed out in turn: every worker stays busy, and the bar moves
        units = [batches[i:i + 8] for i in range(0, len(batches), 8)]
        init = (params, count, tmp, height, width)
        with tqdm(total=count, desc="distractors", unit="img", disable=not progress) as bar:
            if jobs == 1:
                _init_worker(*init)
                try:
                    for unit in units:
                        bar.update(_render_worker(unit))
                finally:
                    _STATE.clear()
            else:
                with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker, initargs=init) as pool:
                    for done in pool.map(_render_worker, units):
                        bar.update(done)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return np.load(path, mmap_mode="r")


def main(argv: list[str] | None = None) -> int:
    """``python -m reid.data.distractors ROOT --count N --height H --width W --jobs J``: build the
    cached inputs of :func:`render_distractor_inputs` ahead of a study (its workers then only read)."""
    import argparse
    import resource
    import time

    p = argparse.ArgumentParser(description=main.__doc__.split(":")[0])
    p.add_argument("root", help="the SynthReID dataset whose cameras the distractors share")
    p.add_argument("--count", type=int, default=500_000)
    p.add_argument("--height", type=int, required=True, help="the recipe's input.height")
    p.add_argument("--width", type=int, required=True, help="the recipe's input.width")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    args = p.parse_args(argv)
    start = time.time()
    inputs = render_distractor_inputs(args.root, args.count, args.height, args.width, jobs=args.jobs)
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    print(f"{inputs.shape} uint8 at {inputs.filename}: {cpu / 60:.1f} CPU min, {(time.time() - start) / 60:.1f} wall min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
