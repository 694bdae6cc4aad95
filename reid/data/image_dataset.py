"""A torch ``Dataset`` over :class:`~reid.data.records.Record` lists, with an optional
decoded-image cache.

Decoding JPEGs is often the slowest part of a re-ID input pipeline: a GPU consumes a
batch of small crops faster than a few CPU workers decode them. Two caches keep every image
decoded once, as ``uint8`` pixels (128x64 RGB costs 24 KiB; all of Market-1501's 12,936
training boxes 0.3 GB at that size, 1.2 GB at 256x128), and the random augmentations still
run per epoch on the cached pixels:

* :class:`DecodedCache` — a dictionary filled lazily by the process that reads the image. With
  ``num_workers=0`` (the CPU default) that is the one process; with workers, each worker
  would fill its own copy.
* :class:`PackedImages` — for ``DataLoader`` workers: every image decoded **once, in the main
  process**, into one ``(N, 3, H, W)`` ``uint8`` file that every worker memory-maps read-only.
  The operating system's page cache holds one copy whatever the number of workers (and is
  shared by DDP ranks and by later runs on the same images). The file lives in a
  content-addressed folder ``$REID_DATA_HOME/decoded/<key>``, ``key`` a hash of the image list
  (paths, sizes, modification times) and of the decode parameters (:mod:`reid.data.cache`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from reid.data.records import Record
from reid.errors import ConfigError, DatasetError


def read_image(path: str | Path) -> torch.Tensor:
    """Decode an image file to an RGB ``uint8`` tensor ``(3, H, W)``.

    Raises:
        DatasetError: naming the file, when it is missing, unreadable or not an image.
    """
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError as exc:
        raise DatasetError(f"image file not found: {path}; the dataset root is incomplete or moved — "
                           "re-extract the dataset (or regenerate SynthReID) and check --root") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot decode image file {path} ({exc}); the file is corrupt or not an image — "
                           "replace it from the original archive (or regenerate SynthReID)") from exc
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class DecodedCache:
    """Decoded ``uint8`` images kept in memory, keyed by dataset index.

    Args:
        size: ``(height, width)`` to resize to once when decoding (antialiased), or
            ``None`` to keep the native size. Resizing here to the model's input size
            moves the resize out of every epoch.

    With ``DataLoader(num_workers > 0)`` each worker process fills its own copy; call
    :meth:`preload` in the main process first to decode everything once and share the
    pixels with the workers (forked workers see the tensors copy-on-write).
    """

    def __init__(self, size: tuple[int, int] | None = None):
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ConfigError(f"DecodedCache: size={size} must be (height, width) with positive values, or None")
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self._images: dict[int, torch.Tensor] = {}

    def get(self, index: int, path: str) -> torch.Tensor:
        """The decoded image ``index`` (decoding ``path`` the first time)."""
        image = self._images.get(index)
        if image is None:
            image = read_image(path)
            if self.size is not None and tuple(image.shape[-2:]) != self.size:
                image = F.resize(image, list(self.size), antialias=True)
            self._images[index] = image
        return image

    def preload(self, records: Sequence[Record], progress: bool = False) -> DecodedCache:
        """Decode all ``records`` now (in order); returns ``self``."""
        from tqdm.auto import tqdm

        for index, record in enumerate(tqdm(records, desc="decoding", unit="img", disable=not progress)):
            self.get(index, record.path)
        return self

    def __len__(self) -> int:
        return len(self._images)

    def nbytes(self) -> int:
        """Memory held by the cached pixels, in bytes."""
        return sum(image.numel() for image in self._images.values())


class PackedImages:
    """Decoded ``uint8`` images of ``records`` in one memory-mapped ``(N, 3, H, W)`` file.

    Build with :meth:`build` (in the main process, before ``DataLoader`` workers start); items are
    then read with :meth:`get`, like :class:`DecodedCache`. Pixels are stored at the images'
    native size when they all share one that is no larger than ``size`` (Market-1501's 128x64:
    lossless and 4x smaller than 256x128; the transform's resize then runs per item), otherwise
    resized once to ``size`` with the same antialiased resize the transforms use (a resize to
    the size an image already has is a no-op, so the pixels a transform sees are the same either
    way).

    Pickling keeps only the file's path, so workers started with ``spawn`` / ``forkserver`` map
    the same file instead of receiving a copy of the pixels.
    """

    FORMAT = 1  # bump when the file layout changes

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            self.shape = tuple(int(x) for x in meta["shape"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"decoded-image cache {self.folder} is unreadable ({exc}); delete that folder.") from None
        self._pixels: np.ndarray | None = None

    @property
    def pixels(self) -> np.ndarray:
        if self._pixels is None:  # mapped on first use, in whichever process uses it
            self._pixels = np.memmap(self.folder / "pixels.u8", dtype=np.uint8, mode="r", shape=self.shape)
        return self._pixels

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "shape": self.shape}

    def __setstate__(self, state: dict) -> None:
        self.folder, self.shape, self._pixels = state["folder"], state["shape"], None

    def get(self, index: int, path: str | None = None) -> torch.Tensor:
        """Image ``index`` as a ``uint8`` tensor ``(3, H, W)`` (a copy: transforms may write to it)."""
        return torch.from_numpy(np.array(self.pixels[index]))

    def __len__(self) -> int:
        return self.shape[0]

    def nbytes(self) -> int:
        """Size of the pixel file, in bytes (one copy, however many processes map it)."""
        return int(np.prod(self.shape))

    @staticmethod
    def key(records: Sequence[Record], size: tuple[int, int]) -> str:
        """Content hash of the image list (paths, byte sizes, mtimes) and the decode parameters."""
        from reid.data.cache import content_key, library_fingerprint

        stats = []
        for record in records:
            st = os.stat(record[0])
            stats.append((str(record[0]), st.st_size, st.st_mtime_ns))
        params = {"images": stats, "size": list(size), "format": PackedImages.FORMAT,
                  "libraries": library_fingerprint("pillow", "torch", "torchvision")}  # fmt: skip
        return content_key(sources=[], params=params)

    @classmethod
    def build(cls, records: Sequence[Record], size: tuple[int, int], *, root: str | Path | None = None,
              progress: bool = False) -> PackedImages:
        """The packed cache of ``records`` at ``size`` under ``$REID_DATA_HOME/decoded``, decoded now
        if no earlier run left it there. Written to a temporary sibling and renamed, so a killed
        build never leaves a half-written cache (its leftovers are removed by the next build)."""
        from tqdm.auto import tqdm

        from reid.data.cache import data_home
        from reid.files import partial_name, remove_stale_partials

        if not records:
            raise ConfigError("PackedImages: no images to pack.")
        size = (int(size[0]), int(size[1]))
        folder = data_home(root) / "decoded" / cls.key(records, size)
        if (folder / "meta.json").is_file():
            return cls(folder)
        remove_stale_partials(folder)
        stored = _stored_size(records, size)
        shape = (len(records), 3, *stored)
        tmp = partial_name(folder, uuid.uuid4().hex[:8])
        tmp.mkdir(parents=True)
        try:
            pixels = np.memmap(tmp / "pixels.u8", dtype=np.uint8, mode="w+", shape=shape)
            for index, record in enumerate(tqdm(records, desc="decoding once", unit="img", disable=not progress)):
                image = read_image(record[0])
                if tuple(image.shape[-2:]) != stored:
                    image = F.resize(image, list(stored), antialias=True)
                pixels[index] = image.numpy()
            pixels.flush()
            del pixels
            (tmp / "meta.json").write_text(json.dumps({"shape": shape, "count": len(records), "size": size}))
            try:
                os.rename(tmp, folder)
            except OSError:
                if not (folder / "meta.json").is_file():  # not a concurrent build that finished first
                    raise
        finally:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return cls(folder)


def _stored_size(records: Sequence[Record], size: tuple[int, int]) -> tuple[int, int]:
    """The images' common native (height, width) if there is one no larger than ``size``, else ``size``."""
    native = set()
    for record in records:
        try:
            with Image.open(record[0]) as image:  # reads the header only
                native.add((image.height, image.width))
        except (OSError, SyntaxError, ValueError):
            return size  # read_image() will name the bad file while decoding
        if len(native) > 1:
            return size
    h, w = next(iter(native))
    return (h, w) if h * w <= size[0] * size[1] else size


class ImageDataset(Dataset):
    """Images of ``records`` as ``(image, pid, camid, index)`` items.

    Args:
        records: the split to read (e.g. ``dataset.train``); items follow its order.
        transform: applied to the decoded ``uint8`` tensor ``(3, H, W)``, e.g.
            :func:`reid.data.transforms.build_transforms`; ``None`` returns that tensor.
        cache: ``None`` (decode on every access), ``"memory"`` (a :class:`DecodedCache`
            at native size), a :class:`DecodedCache` instance (e.g. resized, preloaded) or a
            :class:`PackedImages` built from the same ``records`` (shared by worker processes).

    ``index`` is the item's position in ``records``, so features computed in batches can be
    put back in order and samplers can address items by position.
    """

    def __init__(self, records: Sequence[Record], transform: Callable | None = None,
                 cache: DecodedCache | PackedImages | str | None = None):
        self.records = [Record(*r) for r in records]
        self.transform = transform
        if cache == "memory":
            cache = DecodedCache()
        elif cache is not None and not isinstance(cache, (DecodedCache, PackedImages)):
            raise ConfigError(f"ImageDataset: cache={cache!r}; use None, 'memory', a DecodedCache or PackedImages")
        if isinstance(cache, PackedImages) and len(cache) != len(self.records):
            raise ConfigError(f"ImageDataset: the packed cache holds {len(cache)} images, the records {len(self.records)}; "
                              "build it from the same records.")
        self.cache = cache

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        path, pid, camid = self.records[index]
        image = self.cache.get(index, path) if self.cache is not None else read_image(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, pid, camid, index

    @property
    def pids(self) -> list[int]:
        """Identity of every item (for samplers)."""
        return [r.pid for r in self.records]

    @property
    def camids(self) -> list[int]:
        """Camera of every item (for samplers)."""
        return [r.camid for r in self.records]
