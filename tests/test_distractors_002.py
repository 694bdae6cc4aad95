"""Generated distractor sets (reid.data.distractors) for paper 002's gallery-size study (Fig. 4)."""

from __future__ import annotations

import json

import pytest

from reid.data import distractors, synthreid
from reid.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return synthreid.generate(tmp_path_factory.mktemp("synth") / "tiny", num_ids=6, num_cameras=3, seed=5,
                              num_distractors=2, num_junk=1, two_view_ids=0, progress=False)


def test_distractors_share_the_datasets_cameras(dataset_root, tmp_path):
    root = distractors.ensure_distractors(dataset_root, 12, cache_root=tmp_path, progress=False)
    ours, theirs = (json.loads((r / "synthreid.json").read_text()) for r in (dataset_root, root))
    assert theirs["cameras"] == ours["cameras"] and theirs["seed"] == ours["seed"] == 5
    records = distractors.distractor_records(root)
    assert len(records) == 12 and {r.pid for r in records} == {0} and {r.camid for r in records} <= {0, 1, 2}
    assert records == sorted(records, key=lambda r: str(r.path))
    # cached: the second call returns the same folder without regenerating
    mtime = (root / "synthreid.json").stat().st_mtime_ns
    assert distractors.ensure_distractors(dataset_root, 12, cache_root=tmp_path, progress=False) == root
    assert (root / "synthreid.json").stat().st_mtime_ns == mtime
    # another count is another folder
    assert distractors.ensure_distractors(dataset_root, 3, cache_root=tmp_path, progress=False) != root


def test_distractors_bad_input(dataset_root, tmp_path):
    with pytest.raises(ConfigError):
        distractors.ensure_distractors(dataset_root, 0, cache_root=tmp_path)
    with pytest.raises(DatasetError, match="SynthReID"):
        distractors.ensure_distractors(tmp_path, 5, cache_root=tmp_path)


def test_cached_inputs_equal_the_image_loader(dataset_root, tmp_path):
    import torch

    from reid.data.image_dataset import ImageDataset
    from reid.data.transforms import build_transforms

    root = distractors.ensure_distractors(dataset_root, 7, cache_root=tmp_path, progress=False)
    inputs = distractors.distractor_inputs(root, 32, 16, progress=False)
    assert inputs.shape == (7, 3, 32, 16) and inputs.dtype == "uint8"
    batches = list(distractors.input_batches(inputs, 32, 16, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    loader = ImageDataset(distractors.distractor_records(root), build_transforms(32, 16, train=False))
    expected = torch.stack([loader[i][0] for i in range(7)])
    assert torch.equal(torch.cat(batches), expected)  # bit for bit, not approximately
    # built once: a second call reads the same file
    assert len(list(root.glob("inputs-32x16-*.npy"))) == 1
    assert distractors.distractor_inputs(root, 32, 16, progress=False).filename == inputs.filename


@pytest.mark.parametrize("jobs", [1, 2])
def test_rendered_inputs_equal_the_written_images(dataset_root, tmp_path, jobs):
    # the fast path (no files) against the reference path (generate the JPEGs, decode, resize)
    files = distractors.distractor_inputs(distractors.ensure_distractors(dataset_root, 70, cache_root=tmp_path,
                                                                         progress=False), 32, 16, progress=False)
    rendered = distractors.render_distractor_inputs(dataset_root, 70, 32, 16, jobs=jobs, cache_root=tmp_path / "r",
                                                    progress=False)
    assert rendered.shape == files.shape == (70, 3, 32, 16)
    assert (rendered == files).all()  # bit for bit
    again = distractors.render_distractor_inputs(dataset_root, 70, 32, 16, cache_root=tmp_path / "r", progress=False)
    assert again.filename == rendered.filename  # cached
