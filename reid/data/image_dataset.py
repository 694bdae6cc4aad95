"""A torch ``Dataset`` over :class:`~reid.data.records.Record` lists, with an optional
decoded-image cache.

Decoding JPEGs is often the slowest part of a re-ID input pipeline: a GPU consumes a
batch of small crops faster than a few CPU workers decode them. :class:`DecodedCache`
keeps every image decoded once — as a ``uint8`` tensor, optionally already resized, so
128x64 RGB costs 24 KiB and all of Market-1501's 32k boxes about 0.8 GB — and the
random augmentations still run per epoch on the cached pixels.
"""

from __future__ import annotations

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


class ImageDataset(Dataset):
    """Images of ``records`` as ``(image, pid, camid, index)`` items.

    Args:
        records: the split to read (e.g. ``dataset.train``); items follow its order.
        transform: applied to the decoded ``uint8`` tensor ``(3, H, W)``, e.g.
            :func:`reid.data.transforms.build_transforms`; ``None`` returns that tensor.
        cache: ``None`` (decode on every access), ``"memory"`` (a :class:`DecodedCache`
            at native size) or a :class:`DecodedCache` instance (e.g. resized, preloaded).

    ``index`` is the item's position in ``records``, so features computed in batches can be
    put back in order and samplers can address items by position.
    """

    def __init__(self, records: Sequence[Record], transform: Callable | None = None,
                 cache: DecodedCache | str | None = None):
        self.records = [Record(*r) for r in records]
        self.transform = transform
        if cache == "memory":
            cache = DecodedCache()
        elif cache is not None and not isinstance(cache, DecodedCache):
            raise ConfigError(f"ImageDataset: cache={cache!r}; use None, 'memory' or a DecodedCache instance")
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
