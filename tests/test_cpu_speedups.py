"""The CUDA path's speed machinery, exercised on the CPU wherever torch supports it.

* the decoded-image cache shared by ``DataLoader`` workers (:class:`~reid.data.image_dataset.PackedImages`);
* ``num_workers > 0`` through the trainer;
* channels-last tensors through every network of the full recipes (and under bf16 autocast);
* ``torch.compile`` of a (tiny) backbone, where a C++ compiler is present;
* ``runtime.speedups_on_cpu``: the trainer's bf16 autocast + channels-last switched on for the CPU.

bf16 autocast through every loss is in ``test_loss_inputs.py``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from reid.data import ImageDataset, PackedImages
from reid.data.datasets import load_dataset
from reid.data.synthreid import PRESETS, generate
from reid.data.transforms import build_transforms
from reid.engine import train
from reid.models import build_model

TINY = {
    "train.batches_per_epoch": 2, "eval.batch_size": 64, "input.height": 32, "input.width": 16,
    "model.width": 8, "sampler.p": 4, "sampler.k": 2, "schedule.warmup_epochs": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **PRESETS["tiny"])


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_DATA_HOME", str(tmp_path / "data_home"))
    return tmp_path / "data_home"


def _items(dataset, workers):
    loader = DataLoader(dataset, batch_size=5, num_workers=workers, shuffle=False)
    return torch.cat([batch[0] for batch in loader])


# -- the shared decoded-image cache ----------------------------------------------------------------


def test_packed_images_give_the_pixels_of_per_item_decoding(tiny_root, tmp_path, data_home):
    records = load_dataset("synthreid", tiny_root).train
    for size in ((256, 128), (64, 32)):  # native size kept (128x64 <= 256x128) / resized once
        packed = PackedImages.build(records, size)
        assert packed.folder.parent == data_home / "decoded" and len(packed) == len(records)
        assert packed.shape[2:] == ((128, 64) if size == (256, 128) else size)
        transform = build_transforms(*size, train=False)
        assert torch.equal(_items(ImageDataset(records, transform, cache=packed), 0),
                           _items(ImageDataset(records, transform), 0))  # fmt: skip
    again = PackedImages.build(records, (64, 32))
    assert again.folder == packed.folder  # content-addressed: found, not rebuilt


def test_workers_read_the_shared_pixels_and_never_decode(tiny_root, tmp_path, data_home):
    copy = shutil.copytree(tiny_root, tmp_path / "copy")
    records = load_dataset("synthreid", copy).train
    transform = build_transforms(64, 32, train=False)
    expected = _items(ImageDataset(records, transform), 0)
    packed = PackedImages.build(records, (64, 32))
    shutil.rmtree(copy)  # from now on, a worker that decoded an image would fail
    dataset = ImageDataset(records, transform, cache=packed)
    assert torch.equal(_items(dataset, 2), expected)
    assert len(pickle.dumps(dataset)) < 20_000 < packed.nbytes()  # workers get the path, not the pixels


def test_the_cache_key_follows_the_files(tiny_root, tmp_path, data_home):
    copy = shutil.copytree(tiny_root, tmp_path / "copy")
    records = load_dataset("synthreid", copy).train
    before = PackedImages.key(records, (64, 32))
    assert PackedImages.key(records, (64, 32)) == before and PackedImages.key(records, (32, 16)) != before
    path = records[0].path
    os.utime(path, ns=(0, 0))  # a replaced image (new mtime) is a different cache
    assert PackedImages.key(records, (64, 32)) != before


def test_a_killed_build_leaves_nothing_half_written(tiny_root, tmp_path, data_home, monkeypatch):
    import reid.data.image_dataset as image_dataset

    records = load_dataset("synthreid", tiny_root).train
    real = image_dataset.read_image
    calls = []

    def read_then_die(path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(image_dataset, "read_image", read_then_die)
    with pytest.raises(KeyboardInterrupt):
        PackedImages.build(records, (64, 32))
    assert not any((data_home / "decoded").iterdir())
    monkeypatch.setattr(image_dataset, "read_image", real)
    assert len(PackedImages.build(records, (64, 32))) == len(records)


def test_training_with_workers_uses_the_shared_cache_and_is_reproducible(tiny_root, tmp_path, data_home):
    kw = dict(dataset="synthreid", root=tiny_root, epochs=2, progress=False,
              overrides={**TINY, "runtime.num_workers": 2})  # fmt: skip
    a = train("joint_am_triplet", out=tmp_path / "a", **kw)
    b = train("joint_am_triplet", out=tmp_path / "b", **kw)
    assert len(list((data_home / "decoded").iterdir())) == 1  # decoded once, shared by both runs' workers
    wa, wb = (torch.load(r / "model.pt", weights_only=True) for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((a / "results.json").read_text())["recipe"]["runtime"]["num_workers"] == 2


# -- channels-last, bf16 autocast, torch.compile ---------------------------------------------------

#: (model name, options, input height x width): every network of the full recipes, weights none,
#: at a small input where the network allows one (the part CNN is built for 230 x 80).
NETWORKS = [
    ("resnet50", {"weights": None, "last_stride": 2, "neck": "none", "num_classes": 5}, (64, 32)),
    ("resnet50", {"weights": None, "last_stride": 1, "neck": "bn"}, (64, 32)),
    ("part_cnn", {"residual_blocks": 4, "batch_norm": True, "init": "paper"}, (230, 80)),
    ("view_adaptation", {"ms": "vgg_m", "mt": "vgg16"}, (64, 64)),
]


@pytest.mark.parametrize("name, options, size", NETWORKS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(NETWORKS)])
def test_channels_last_and_bf16_through_every_full_network(name, options, size):
    torch.manual_seed(0)
    model = build_model(name, **options).eval()
    images = torch.randn(2, 3, *size)
    views = [0, 1] if getattr(model, "asymmetric", False) else [None]
    with torch.no_grad():
        for view in views:
            def run(x, view=view):
                return (model(x) if view is None else model(x, view)).features

            reference = run(images)
            model.to(memory_format=torch.channels_last)
            fast = run(images.contiguous(memory_format=torch.channels_last))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = run(images.contiguous(memory_format=torch.channels_last))
            model.to(memory_format=torch.contiguous_format)
            assert torch.allclose(fast, reference, rtol=1e-4, atol=1e-4)
            scale = reference.abs().max()
            assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
            assert (low.float() - reference).abs().max() <= 0.05 * scale + 1e-3  # bf16: ~3 significant digits


def _has_cxx() -> bool:
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++", "clang++") if c)


@pytest.mark.slow
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on the CPU needs a C++ compiler")
def test_torch_compile_of_a_backbone_on_the_cpu(tiny_root, tmp_path):
    """The trainer's compile path (``Module.compile``) on a small backbone, trained and evaluated.

    64 x 32 inputs: with 32 x 16 (2 x 1 feature maps in the last stage) inductor's CPU backward
    of this network corrupts the heap and aborts the process (torch 2.14; a torch bug, not ours).
    """
    run = train("joint_am_triplet", dataset="synthreid", root=tiny_root, out=tmp_path / "run", epochs=1, progress=False,
                overrides={**TINY, "input.height": 64, "input.width": 32, "runtime.speedups_on_cpu": True,
                           "runtime.compile": True, "runtime.amp": False, "runtime.channels_last": False})  # fmt: skip
    results = json.loads((run / "results.json").read_text())
    assert results["recipe"]["runtime"]["compile"] is True and 0 <= results["metrics"]["mAP"] <= 1
    weights = torch.load(run / "model.pt", weights_only=True)
    assert not any("_orig_mod" in k for k in weights)  # checkpoints stay loadable without torch.compile


def test_speedups_on_cpu_run_the_cuda_path_and_default_runs_do_not(tiny_root, tmp_path):
    from reid.engine import Callback

    seen = {}

    def on_step(trainer, epoch, it):
        seen.setdefault("amp", trainer.amp)
        seen.setdefault("channels_last", trainer.channels_last)
        p = next(p for p in trainer.model.parameters() if p.dim() == 4)
        seen.setdefault("weights_channels_last", p.is_contiguous(memory_format=torch.channels_last))

    common = dict(dataset="synthreid", root=tiny_root, epochs=1, progress=False, callbacks=[Callback(on_step=on_step)])
    fast = train("smc_ecd", out=tmp_path / "fast", **common,
                 overrides={"train.batches_per_epoch": 2, "input.height": 32, "input.width": 16, "model.width": 8,
                            "sampler.batch_size": 8, "runtime.speedups_on_cpu": True})  # fmt: skip
    assert seen == {"amp": True, "channels_last": True, "weights_channels_last": True}
    log = json.loads((fast / "log.jsonl").read_text().splitlines()[0])
    assert torch.isfinite(torch.tensor(log["loss"]))
    seen.clear()
    train("smc_ecd", out=tmp_path / "default", **common,
          overrides={"train.batches_per_epoch": 2, "input.height": 32, "input.width": 16, "model.width": 8,
                     "sampler.batch_size": 8})  # fmt: skip
    assert seen == {"amp": False, "channels_last": False, "weights_channels_last": False}
