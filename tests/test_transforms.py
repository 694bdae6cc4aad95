"""Transforms and the image dataset (decoding, cache, clear errors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid.data import DecodedCache, ImageDataset, Record, build_transforms
from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reid.errors import ConfigError, DatasetError


@pytest.fixture
def image_files(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        array = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
        array[:, :32] = 0                        # a left/right asymmetry to see flips
        path = tmp_path / f"{i + 1:04d}_c{i + 1}s1_000100_01.png"
        Image.fromarray(array).save(path)
        records.append(Record(str(path), i + 1, i))
    return records


def test_eval_transform_resizes_normalises_and_is_deterministic():
    image = Image.new("RGB", (64, 128), color=(255, 0, 128))
    t = build_transforms(256, 128, train=False)
    out = t(image)
    assert out.shape == (3, 256, 128) and out.dtype == torch.float32
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out.mean(dim=(1, 2)), expected, atol=1e-4)
    assert torch.equal(t(image), out)


def test_train_transform_flips_and_erases():
    torch.manual_seed(0)
    tensor = torch.zeros(3, 128, 64, dtype=torch.uint8)
    tensor[:, :, 32:] = 255
    flip = build_transforms(128, 64, train=True, flip=True)
    lefts = {float(flip(tensor)[0, :, :32].mean() > 0) for _ in range(20)}
    assert lefts == {0.0, 1.0}                   # sometimes flipped, sometimes not
    plain = build_transforms(128, 64, train=True, flip=False)
    assert torch.equal(plain(tensor), build_transforms(128, 64, train=False)(tensor))
    erase = build_transforms(128, 64, train=True, flip=False, random_erasing=1.0)
    assert (erase(tensor) != plain(tensor)).any()
    padded = build_transforms(128, 64, train=True, flip=False, pad=10)
    assert padded(tensor).shape == (3, 128, 64)


@pytest.mark.parametrize("bad", [dict(random_erasing=1.5), dict(pad=-1), dict(std=(1.0, 0.0, 1.0))])
def test_bad_transform_options(bad):
    with pytest.raises(ConfigError):
        build_transforms(128, 64, train=True, **bad)


def test_image_dataset_items(image_files):
    ds = ImageDataset(image_files, transform=build_transforms(64, 32, train=False))
    image, pid, camid, index = ds[2]
    assert image.shape == (3, 64, 32) and (pid, camid, index) == (3, 2, 2)
    raw = ImageDataset(image_files)[0][0]
    assert raw.dtype == torch.uint8 and raw.shape == (3, 128, 64)
    assert ds.pids == [1, 2, 3] and ds.camids == [0, 1, 2]


def test_decoded_cache_matches_decoding_and_decodes_once(image_files, monkeypatch):
    import reid.data.image_dataset as module

    cache = DecodedCache(size=(64, 32)).preload(image_files)
    assert len(cache) == 3 and cache.nbytes() == 3 * 3 * 64 * 32
    monkeypatch.setattr(module, "read_image", lambda path: pytest.fail("decoded again"))
    ds = ImageDataset(image_files, transform=build_transforms(64, 32, train=False), cache=cache)
    cached = ds[1][0]
    monkeypatch.undo()
    fresh = ImageDataset(image_files, transform=build_transforms(64, 32, train=False))[1][0]
    assert torch.allclose(cached, fresh, atol=0.05)
    memory = ImageDataset(image_files, cache="memory")
    assert torch.equal(memory[0][0], ImageDataset(image_files)[0][0]) and len(memory.cache) == 1


def test_missing_or_corrupt_files_name_the_file(image_files, tmp_path):
    broken = tmp_path / "0009_c1s1_000001_01.jpg"
    broken.write_bytes(b"not a jpeg")
    missing = tmp_path / "0010_c1s1_000001_01.jpg"
    ds = ImageDataset([Record(str(broken), 9, 0), Record(str(missing), 10, 0)])
    with pytest.raises(DatasetError, match="0009_c1s1_000001_01.jpg"):
        ds[0]
    with pytest.raises(DatasetError, match="not found: .*0010_c1s1_000001_01.jpg"):
        ds[1]
    with pytest.raises(ConfigError):
        ImageDataset(image_files, cache="disk")
