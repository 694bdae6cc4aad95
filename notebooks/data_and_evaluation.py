# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Data and evaluation
#
# Every chapter of this book trains on the same data and is scored by the same code, so this
# chapter introduces both once:
#
# 1. **SynthReID**, the procedural multi-camera dataset every default run uses: what it draws,
#    and why its cameras make the re-identification problem look like the real one.
# 2. **The real datasets' on-disk layouts**: what each loader in `reid.data.datasets` expects,
#    shown on tiny fixtures written here in the real formats.
# 3. **Every evaluation protocol the five papers use**, each computed by `reid.metrics` on small
#    worked examples: the Market-1501 junk rule, the *two* definitions of average precision that
#    circulate in the literature (side by side, and how much they differ), multi-query,
#    CUHK03's classic protocol, the two-view single-shot protocol, the camera-pair mAP matrix and
#    the "negatives of interest" of paper 000, the gallery-size curve of paper 002, k-reciprocal
#    re-ranking and the Joint Bayesian metric.
#
# No network is trained here. Where a protocol needs features we use the simplest possible
# "models": the raw pixels of a downsampled crop, and the same pixels with each camera's mean
# appearance removed. They are weak matchers, which is exactly what makes the protocols'
# differences visible. All numbers below are **SynthReID (smoke scale, CPU)** numbers of these
# pixel baselines; none of them is a Market-1501 number.

# %% tags=["parameters"]
dataset = "synthreid"  # the dataset evaluated in part 3 (any Market-layout dataset)
data_root = None  # None: the cached SynthReID set (generated on first use)
scale = "smoke"  # SynthReID size: "smoke" (100 ids) or "full" (Market-1501-sized)
device = "cpu"
seed = 0
out_dir = None  # None: a fresh temporary folder per execution; a path keeps what is written there

# %%
# %matplotlib inline
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from reid.data import synthreid
from reid.data.datasets import DATASETS, load_dataset
from reid.data.image_dataset import ImageDataset
from reid.data.transforms import build_transforms
from reid.engine import notebook_run_dir
from reid.errors import DatasetError
from reid.metrics import average_precision, pairwise_distance, rank_metrics
from reid.metrics import analysis, protocols
from reid.metrics.rerank import k_reciprocal_rerank
from reid.viz import (
    DATASET_NAMES,
    make_table,
    plot_camera_pair_matrix,
    plot_cmc,
    show_identity_grid,
    show_ranked_lists,
    show_records,
)

# One intra-op thread: bit-identical results on any machine (CI re-runs this notebook and
# compares every printed number), and no slowdown from two threads contending for two cores.
torch.set_num_threads(1)
torch.manual_seed(seed)
out = notebook_run_dir("data_and_evaluation", out_dir)
out.mkdir(parents=True, exist_ok=True)
LABEL = f"SynthReID ({scale} scale, CPU)" if dataset == "synthreid" else DATASET_NAMES.get(dataset, dataset)


def pct(x):
    """Percent with one decimal: what every printed metric in this chapter uses."""
    return round(100 * float(x), 1)


# %% [markdown]
# ## 1. SynthReID: the embedded default dataset
#
# Real re-ID datasets cannot be downloaded by this project or redistributed with it, so the
# default runs use **SynthReID** (`reid.data.synthreid`), a generator of pedestrian crops seen by
# several cameras. It is not photo-realistic, but it is built so that the papers' mechanisms
# matter on it:
#
# - each **identity** has appearance attributes mirroring Market-1501's 27 annotated ones
#   (gender, hair, sleeve and lower-body length, dress or pants, hat, backpack, bag, handbag, age,
#   upper and lower clothing colours) plus a few Market does not label (shoes, a garment pattern);
# - each **camera** has its own nuisance factors: a viewpoint distribution (front, back, side:
#   a backpack is a block from behind and two straps from the front), a background, illumination
#   gain, colour cast, gamma, blur, noise, JPEG quality, occlusions and bounding-box misalignment;
# - each identity appears in 2 to 6 cameras; train and test identities are disjoint;
# - it writes the **real Market-1501 on-disk format** (`bounding_box_train/`,
#   `bounding_box_test/` with `0000` distractors and `-1` junk, `query/`, `gt_bbox/`, the
#   attribute `.mat` file) plus a two-camera VIPeR-like variant, so the real loaders read it.
#
# The smoke preset (100 identities, 6 cameras) is generated once and cached
# (`$REID_DATA_HOME`, default `~/.cache/reid-book`).

# %%
preset = {"smoke": "smoke", "full": "market"}[scale]
synth_root = synthreid.ensure(preset, seed=seed, progress=False)
synth = load_dataset("synthreid", synth_root)
print(synth.format_statistics())

# %% [markdown]
# The statistics table counts identities, images and cameras per split, as
# `reid data check --dataset synthreid --root DIR` prints it. The gallery holds, besides the
# test identities' images, *distractors* (`0000`: people outside the dataset, ordinary wrong
# matches) and *junk* (`-1`: background and body fragments, ignored by the evaluation), in the
# proportions of Market-1501.
#
# Below, six test identities, one image per camera they were seen by (an empty cell: that camera
# never saw the person). The same person changes between cameras: viewpoint, light, colour cast,
# resolution.

# %% tags=["hide-input"]
show_identity_grid(synth.query + synth.gallery, num_ids=6, title="SynthReID: six identities across cameras")
plt.show()

# %% [markdown]
# ### The viewpoint problem: same camera, different people
#
# Paper 000 {cite:p}`borgia2018cross` (Fig. 1) starts from an observation about real camera
# networks: the false matches that a re-ID model ranks *above* the true one are very often
# taken by the **probe's own camera**, because one camera imposes its viewpoint, background and
# colour on everybody it sees. SynthReID reproduces this on purpose: camera factors are shared by
# everything a camera sees. The first row shows eight *different* people in one camera, the
# second row one person in different cameras.

# %% tags=["hide-input"]
cam0 = [r for r in synth.gallery if r.camid == 0 and r.pid > 0]
one_per_person = list({r.pid: r for r in reversed(cam0)}.values())[:8]
person = one_per_person[0].pid
across = list({r.camid: r for r in reversed([r for r in synth.gallery + synth.query if r.pid == person])}.values())
show_records(one_per_person, ncols=8, title="eight different people, all in camera c1")
plt.show()
show_records(sorted(across, key=lambda r: r.camid), ncols=8, title=f"identity {person} in every camera that saw it")
plt.show()

# %% [markdown]
# How strong the effect is will be measured in part 3 ("negatives of interest"). The cameras'
# nuisance parameters are recorded in the dataset's manifest, `synthreid.json`:

# %%
manifest = json.loads((synth_root / "synthreid.json").read_text())
views = ("front", "back", "left", "right")
camera_rows = []
for cam in manifest["cameras"]:
    row = {"camera": f"c{cam['camera']}"}
    row.update({f"P({v})": p for v, p in zip(views, cam["view_p"])})
    row.update({k: cam[k] for k in ("gain", "gamma", "blur", "noise", "occlusion", "misalign", "jpeg_quality")})
    camera_rows.append(row)
make_table(camera_rows, title="SynthReID cameras (smoke preset, seed 0): viewpoint distribution and nuisances",
           fmt="{:.2f}", formats={"noise": "{:.3f}"})

# %% [markdown]
# ### Attributes
#
# SynthReID writes an identity-level attribute file in the layout of the Market-1501 attribute
# annotation {cite:p}`lin2019improving` (`market_attribute.mat`, read by
# `reid.data.datasets.read_attribute_mat`), which paper 004 {cite:p}`sabri2022joint` trains its
# attribute heads on. Values are normalised so that `1` means the second option of the
# annotation (female, long hair, short sleeves, ..., "yes" for the colour flags); age has four
# classes. The share of identities with value 1:

# %%
attributes = synth.attributes
rows = []
for name in attributes.names:
    column = attributes.names.index(name)
    tr, te = attributes.train.values[:, column], attributes.test.values[:, column]
    if name == "age":
        share = {f"{split} (age classes 0/1/2/3)": "/".join(str(int((v == a).sum())) for a in range(4))
                 for split, v in (("train", tr), ("test", te))}
    else:
        share = {"train: % with value 1": pct((tr == 1).mean()), "test: % with value 1": pct((te == 1).mean())}
    rows.append({"attribute": name, **share})
print(f"{attributes.num_attributes} attributes, {len(attributes.train.pids)} train and "
      f"{len(attributes.test.pids)} test identities")
make_table([r for r in rows if r["attribute"] != "age"], title="SynthReID attributes (share of identities)")

# %% [markdown]
# ## 2. The real datasets: the layouts the loaders accept
#
# The loaders in `reid.data.datasets` read the folder layouts that the common re-ID toolkits
# (torchreid, fast-reid, open-reid) leave on disk, so an existing copy of a dataset works as it
# is: `load_dataset(name, root)` or `reid data check --dataset NAME --root DIR`. Each loader
# carries a description of its layout, the dataset's reference and where the data comes from;
# it is what the loader's error message prints when a folder does not fit. The table below is
# generated from those descriptions:

# %%
make_table(
    [{"--dataset": name, "dataset": info.title, "reference": info.reference}
     for name, info in ((n, __import__(f"reid.data.datasets.{n}", fromlist=["INFO"]).INFO) for n in DATASETS)],
    title="Datasets known to reid.data.datasets.load_dataset",
)

# %% [markdown]
# The loaders never decode an image while listing a dataset: everything (identity, camera,
# split) is in the file names, list files and `.mat` files. So a tree of *empty* files with the
# real names is enough to show what each loader reads. We write a tiny one per dataset below and
# load it. (The test suite does the same, with more cases, in `tests/test_datasets.py`.)

# %%
fixtures = out / "fixtures"
shutil.rmtree(fixtures, ignore_errors=True)


def touch(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).touch()


market = fixtures / "market1501" / "Market-1501-v15.09.15"
touch(market / "bounding_box_train", ["0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c1s1_000801_01.jpg",
                                      "0007_c6s4_069056_02.jpg"])
touch(market / "query", ["0001_c1s1_001051_00.jpg", "0003_c3s1_000551_00.jpg"])
touch(market / "bounding_box_test", ["0001_c4s6_000810_02.jpg", "0003_c5s1_001426_01.jpg", "0003_c3s1_000576_03.jpg",
                                     "-1_c1s1_000401_03.jpg", "0000_c1s1_000151_01.jpg"])
duke = fixtures / "dukemtmc" / "DukeMTMC-reID"
touch(duke / "bounding_box_train", ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0008_c1_f0047210.jpg"])
touch(duke / "query", ["0005_c2_f0046985.jpg"])
touch(duke / "bounding_box_test", ["0005_c5_f0051781.jpg", "0002_c1_f0044158.jpg"])
msmt = fixtures / "msmt17" / "MSMT17_V1"
msmt_lists = {
    "train": ["0000/0000_045_12_0303morning_0006_2.jpg 0", "0001/0001_002_05_0303morning_0012_0.jpg 1"],
    "val": ["0000/0000_046_01_0303morning_0007_0.jpg 0"],
    "query": ["0000/0000_000_01_0303morning_0015_0.jpg 0"],
    "gallery": ["0000/0000_001_07_0303afternoon_0301_1.jpg 0", "0001/0001_003_15_0304noon_0001_0.jpg 1"],
}
for split, lines in msmt_lists.items():
    folder = msmt / ("train" if split in ("train", "val") else "test")
    touch(folder, [])
    for line in lines:
        touch(folder / line.split()[0].split("/")[0], [line.split()[0].split("/")[1]])
    (msmt / f"list_{split}.txt").write_text("\n".join(lines) + "\n")
touch(fixtures / "viper" / "VIPeR" / "cam_a", [f"{i:03d}_{a}.bmp" for i, a in zip(range(6), (0, 45, 90, 0, 180, 45))])
touch(fixtures / "viper" / "VIPeR" / "cam_b", [f"{i:03d}_{a}.bmp" for i, a in zip(range(6), (90, 90, 0, 180, 0, 135))])
touch(fixtures / "cuhk01" / "campus", [f"{p:04d}{i:03d}.png" for p in range(1, 7) for i in range(1, 5)])
touch(fixtures / "prid2011" / "prid_2011" / "single_shot" / "cam_a", [f"person_{i:04d}.png" for i in range(1, 9)])
touch(fixtures / "prid2011" / "prid_2011" / "single_shot" / "cam_b", [f"person_{i:04d}.png" for i in range(1, 13)])
touch(fixtures / "3dpes" / "3DPeS" / "RGB", [f"{p}_{c}_{k:04d}.bmp" for p in range(1, 7) for c, k in ((1, 1), (3, 2), (5, 3))])

small_splits = {"cuhk01": {"num_test": 3}, "prid2011": {"num_test": 4}}  # the defaults (486, 100) need the full sets
for name in ("market1501", "dukemtmc", "msmt17", "viper", "cuhk01", "prid2011", "threedpes"):
    ds = load_dataset(name, fixtures, **small_splits.get(name, {}))
    print(f"{name}: read from {ds.root.relative_to(fixtures.resolve()) if ds.root.is_absolute() else ds.root}")
    print(ds.format_statistics(), end="\n\n")

# %% [markdown]
# CUHK03 {cite:p}`li2014deepreid` is read from the toolkits' PNG extraction of `cuhk-03.mat`
# together with the `.mat` files of the 767/700 protocol {cite:p}`zhong2017reranking` (or the
# classic 20 splits); its layout, as the loader describes it:

# %%
print(__import__("reid.data.datasets.cuhk03", fromlist=["INFO"]).INFO.layout.strip("\n"))

# %% [markdown]
# A folder that does not fit fails early with one message that names the problem, every path
# tried, the expected layout, where the data comes from and the fix; never with an `assert` or a
# crash in an image reader later:

# %%
empty = out / "not-a-dataset"
empty.mkdir(exist_ok=True)
try:
    load_dataset("market1501", empty)
except DatasetError as error:
    print(str(error).replace(str(empty.resolve()), "runs/data_and_evaluation/not-a-dataset"))

# %% [markdown]
# ## 3. Evaluation protocols
#
# All five papers report the **cumulative matching characteristic** (CMC: the fraction of
# queries whose first true match is within the top *r*) and, for the large datasets, the **mean
# average precision** (mAP). The code is `reid.metrics`; its functions name, in their docstrings,
# the paper tables they reproduce. This part runs each of them on small, inspectable inputs.
#
# ### 3.1 The Market-1501 rule
#
# For each query, the gallery entries with the *same identity and the same camera* are removed
# before ranking (finding the same person in the same camera is too easy), and so are the junk
# entries (identity `-1`); distractors (identity `0`) stay as ordinary wrong matches. A query
# without any remaining true match is skipped. A hand-made example: one query of identity 7 seen
# by camera c1, and a gallery of eight images sorted by distance.

# %%
g_pids = np.array([7, -1, 3, 7, 0, 7, 5, 7])
g_cams = np.array([0, 1, 2, 2, 3, 1, 4, 0])
dist = np.arange(len(g_pids), dtype=float)[None, :]  # gallery already in ranked order
status = ["removed: same id, same camera" if p == 7 and c == 0 else "removed: junk (-1)" if p == -1
          else "true match" if p == 7 else "distractor (kept, wrong)" if p == 0 else "wrong match"
          for p, c in zip(g_pids, g_cams)]
display_rows = [{"position": i + 1, "identity": int(p), "camera": f"c{c + 1}", "status": s}
                for i, (p, c, s) in enumerate(zip(g_pids, g_cams, status))]
rm = rank_metrics(dist, np.array([7]), g_pids, np.array([0]), g_cams, max_rank=5)
make_table(display_rows, title="one query (identity 7, camera c1) and its ranked gallery")

# %%
print("CMC@1..5:", [pct(c) for c in rm.cmc], "| AP (step):", pct(rm.mAP), "| valid queries:", rm.num_valid)

# %% [markdown]
# After the rule the ranking is *wrong, true, distractor, true, wrong, ...*: the first true match
# is at rank 2 (CMC@1 = 0), and the two true matches sit at positions 2 and 4. Removing, not
# counting, the same-camera match at position 1 is what makes a ranking "cross-camera".
#
# ### 3.2 Two definitions of average precision
#
# Different toolkits report different mAP for the *same* ranking, because two AP definitions are
# in use. With the *m* true matches of a query at 1-based ranks $r_1 < \dots < r_m$ and the
# precision $P(k)$ = (true matches among the first $k$) / $k$:
#
# - **step** (non-interpolated) AP: $\mathrm{AP} = \frac1m \sum_i P(r_i) = \frac1m \sum_i \frac{i}{r_i}$,
#   the mean precision at each true match. This is what scikit-learn's `average_precision_score`
#   and the common PyTorch re-ID toolkits compute.
# - **trapezoid** AP: the official Market-1501 evaluation code {cite:p}`zheng2015scalable`
#   averages, at each recall step, the precision at the match with the precision just before it:
#   $\mathrm{AP} = \frac1m \sum_i \frac12\left(\frac{i-1}{r_i-1} + \frac{i}{r_i}\right)$ with
#   $\frac{0}{0} := 1$. Papers evaluated with the official code (papers 000, 001 and 002, by our
#   reading of their text) report this one.
#
# The trapezoid value is never larger: every true match that follows a wrong one loses half of
# the precision jump. A ranking of ten with true matches at ranks 1, 3, 6 and 10:

# %%
ranks = np.array([1, 3, 6, 10])  # 1-based ranks of the true matches
rows = []
for i, r in enumerate(ranks, start=1):
    before = 1.0 if r == 1 else (i - 1) / (r - 1)
    rows.append({"match": i, "rank": int(r), "precision just before": before, "precision at the match": i / r,
                 "step term": i / r, "trapezoid term": (before + i / r) / 2})
ap_step = average_precision(ranks - 1, ap="step")  # reid.metrics takes 0-based positions
ap_trap = average_precision(ranks - 1, ap="trapezoid")
make_table(rows, title="one query, four true matches in ten", fmt="{:.3f}",
           note=f"AP (step) = {ap_step:.4f}; AP (trapezoid) = {ap_trap:.4f}; difference {100 * (ap_step - ap_trap):.1f} points.")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
recall = np.arange(len(ranks) + 1) / len(ranks)
prec_at = np.concatenate([[1.0], np.arange(1, len(ranks) + 1) / ranks])
prec_before = np.concatenate([[1.0], [1.0 if r == 1 else (i - 1) / (r - 1) for i, r in enumerate(ranks, 1)]])
for ax, kind in zip(axes, ("step", "trapezoid")):
    for k in range(len(ranks)):
        xs = [recall[k], recall[k + 1]]
        ys = [prec_at[k + 1]] * 2 if kind == "step" else [prec_before[k + 1], prec_at[k + 1]]
        ax.fill_between(xs, ys, alpha=0.35, color="tab:blue" if kind == "step" else "tab:orange")
        ax.plot(xs, ys, color="black", lw=1)
    ax.set_title(f"{kind} AP = area = {average_precision(ranks - 1, ap=kind):.3f}")
    ax.set_xlabel("recall")
axes[0].set_ylabel("precision")
plt.tight_layout()
plt.show()

# %% [markdown]
# On a whole evaluation the gap depends on how good the model is: a perfect ranking has no gap,
# and the gap grows as true matches slide down the list. We make features of controlled quality
# on the SynthReID test split (each identity gets a random centre; each image is its centre
# plus Gaussian noise of scale $\sigma$; distractors and junk get features of their own) and
# evaluate them with both definitions under the Market-1501 rule:

# %%
data = synth if dataset == "synthreid" and data_root is None else load_dataset(dataset, data_root)
q_pids = np.array([r.pid for r in data.query])
q_cams = np.array([r.camid for r in data.query])
gal_pids = np.array([r.pid for r in data.gallery])
gal_cams = np.array([r.camid for r in data.gallery])

rng = np.random.default_rng(seed)
dim = 32
all_ids = np.unique(np.concatenate([q_pids, gal_pids]))
centre = {int(p): rng.normal(size=dim) for p in all_ids}
base_q = np.stack([centre[int(p)] for p in q_pids])
# every distractor/junk image is its own "person": it gets a fresh centre
base_g = np.stack([centre[int(p)] if p > 0 else rng.normal(size=dim) for p in gal_pids])
noise_q, noise_g = rng.normal(size=base_q.shape), rng.normal(size=base_g.shape)
sweep = []
for sigma in (0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0):
    d = pairwise_distance(torch.tensor(base_q + sigma * noise_q), torch.tensor(base_g + sigma * noise_g))
    step = rank_metrics(d, q_pids, gal_pids, q_cams, gal_cams, ap="step")
    trap = rank_metrics(d, q_pids, gal_pids, q_cams, gal_cams, ap="trapezoid")
    sweep.append({"noise sigma": sigma, "rank-1": pct(step.rank1), "mAP (step)": pct(step.mAP),
                  "mAP (trapezoid)": pct(trap.mAP), "difference": round(pct(step.mAP) - pct(trap.mAP), 1)})
make_table(sweep, title=f"step vs trapezoid mAP on synthetic features, {LABEL} labels", formats={"noise sigma": "{:.1f}"})

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot([r["mAP (step)"] for r in sweep], [r["difference"] for r in sweep], marker="o")
ax.set_xlabel("mAP, step definition (%)")
ax.set_ylabel("step - trapezoid (points)")
ax.set_title("the AP-definition gap shrinks as the model improves")
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The gap peaks for mediocre models (here up to about two points, as large as many of the
# improvements the papers report) and vanishes for strong ones (mAP above 90%). The
# engine therefore records both in every `results.json` (`mAP` = step, `mAP_trapezoid`), and
# the chapters say which one a paper's number should be compared with.
#
# ### 3.3 Two pixel baselines, and the viewpoint problem measured
#
# From here on the features are the raw pixels of each crop, downsampled to 32×16 and normalised
# as the models' inputs are (`reid.data.transforms.build_transforms`): no learning at all.

# %%
def pixel_features(records, height=32, width=16):
    """Flattened normalised pixels of each record's image, in order (a no-learning baseline)."""
    images = ImageDataset(records, build_transforms(height, width, train=False))
    return torch.stack([images[i][0].flatten() for i in range(len(images))])


qf, gf = pixel_features(data.query), pixel_features(data.gallery)
trainf = pixel_features(data.train)
raw = protocols.market_single_query(qf, gf, q_pids, gal_pids, q_cams, gal_cams)
print(f"raw pixels, {LABEL}, Market-1501 single query: rank-1 {pct(raw.rank1)}%, mAP {pct(raw.mAP)}%, "
      f"mINP {pct(raw.mINP)}%, {raw.num_valid} valid queries")

# %% [markdown]
# Raw pixels are useless under the Market-1501 rule. The reason is the viewpoint problem of part 1,
# which paper 000 measures with its **negatives of interest** (Fig. 1, Table V): the wrong matches
# in a probe's top-*k* list that were shot by the probe's own camera
# (`reid.metrics.analysis.negatives_of_interest`). A matcher blind to cameras would draw them at
# the rate at which the probe's camera appears among its gallery negatives:

# %%
d_raw = pairwise_distance(qf, gf)
noi_raw = analysis.negatives_of_interest(d_raw, q_pids, gal_pids, q_cams, gal_cams, k=10)
negative = (gal_pids[None, :] != q_pids[:, None]) & (gal_pids[None, :] != -1)
chance = (negative & (gal_cams[None, :] == q_cams[:, None])).sum(1) / negative.sum(1)
print(f"top-10 wrong matches shot by the probe's own camera: {noi_raw.percent:.1f}% "
      f"(chance: the probe's camera holds {pct(chance[raw.valid].mean())}% of its gallery negatives)")
show_ranked_lists(data.query, data.gallery, d_raw, k=8, num_queries=3,
                  title=f"raw pixels, {LABEL}: top-8 (green = same person); the camera labels repeat the query's")
plt.show()

# %% [markdown]
# Almost every wrong match in the top ten comes from the probe's camera: raw pixels match the
# camera (its background, light and colour cast), not the person. A crude fix, and our second
# baseline, removes each camera's mean appearance, estimated on that camera's *training* images,
# from every feature (cameras are known at test time). It is still no learning about people:

# %%
train_cams = np.array([r.camid for r in data.train])
cam_mean = {int(c): trainf[train_cams == c].mean(0) for c in np.unique(train_cams)}


def camera_normalised(features, cams):
    """Subtract each image's camera mean (estimated on the training images of that camera)."""
    return features - torch.stack([cam_mean.get(int(c), torch.zeros_like(features[0])) for c in cams])


qn, gn = camera_normalised(qf, q_cams), camera_normalised(gf, gal_cams)
d_norm = pairwise_distance(qn, gn)
base = rank_metrics(d_norm, q_pids, gal_pids, q_cams, gal_cams)
base_trap = rank_metrics(d_norm, q_pids, gal_pids, q_cams, gal_cams, ap="trapezoid")
noi_norm = analysis.negatives_of_interest(d_norm, q_pids, gal_pids, q_cams, gal_cams, k=10)
make_table(
    [{"features": "raw pixels", "rank-1": pct(raw.rank1), "mAP (step)": pct(raw.mAP),
      "mAP (trapezoid)": pct(protocols.market_single_query(qf, gf, q_pids, gal_pids, q_cams, gal_cams, ap="trapezoid").mAP),
      "negatives of interest (%)": noi_raw.percent},
     {"features": "camera-normalised pixels", "rank-1": pct(base.rank1), "mAP (step)": pct(base.mAP),
      "mAP (trapezoid)": pct(base_trap.mAP), "negatives of interest (%)": noi_norm.percent}],
    title=f"two no-learning baselines, {LABEL}, Market-1501 single query",
)

# %% tags=["hide-input"]
show_ranked_lists(data.query, data.gallery, d_norm, k=8, num_queries=3,
                  title=f"camera-normalised pixels, {LABEL}: top-8 (green = same person)")
plt.show()

# %% [markdown]
# Paper 000 condenses this into two **figures of merit** (Table V), comparing a loss *L* with the
# softmax baseline:
# $F_{\mathrm{rank1}} = \frac{\mathrm{Neg}(\text{baseline}) - \mathrm{Neg}(L)}{\mathrm{rank1}(L) - \mathrm{rank1}(\text{baseline})}$
# (×100, and likewise with mAP): how many points of negatives of interest disappear per point of
# accuracy gained (`reid.metrics.analysis.figures_of_merit`; see the {doc}`../book/errata` page
# for why the paper's own Table V cannot be recomputed from its other tables). With raw pixels as
# the baseline and camera normalisation as the "loss":

# %%
fom = analysis.figures_of_merit((raw, noi_raw), (base, noi_norm))
print(f"F_rank1 = {fom['F_rank1']:.1f}, F_mAP = {fom['F_mAP']:.1f}")

# %% [markdown]
# The **camera-pair mAP matrix** of paper 000 (Fig. 10) locates the remaining difficulty: cell
# (X, Y) is the mAP of the probes of camera X when only their true matches in camera Y count
# (`reid.metrics.analysis.camera_pair_map`; the diagonal is empty because same-camera matches
# are removed by the Market-1501 rule). Some camera pairs (similar viewpoints, similar light) are
# far easier than others:

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
for ax, (name, d) in zip(axes, (("raw pixels", d_raw), ("camera-normalised pixels", d_norm))):
    pairs = analysis.camera_pair_map(d, q_pids, gal_pids, q_cams, gal_cams)
    plot_camera_pair_matrix(pairs.map, ax=ax, title=f"camera-pair mAP (%), {name}")
fig.suptitle(LABEL, fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The rest of this part uses the camera-normalised pixels as "the model".
#
# ### 3.4 Multi-query
#
# Market-1501 also defines a *multi-query* setting: a query is represented by all hand-drawn
# boxes of that identity in that camera (`gt_bbox/`), merged into one feature by max or average
# pooling. Paper 000 (Table IV, max pooling) and paper 002 (Table 1, "MQ") report it.
# `reid.metrics.protocols.market_multi_query` pools the features and then applies the
# single-query rule to the same gallery.

# %%
mq_records = data.multi_query or []
mq_rows = [{"setting": "single query", "rank-1": pct(base.rank1), "mAP": pct(base.mAP)}]
if mq_records:
    x_cams = np.array([r.camid for r in mq_records])
    xn = camera_normalised(pixel_features(mq_records), x_cams)
    x_pids = np.array([r.pid for r in mq_records])
    for pooling in ("max", "avg"):
        mq = protocols.market_multi_query(qn, gn, q_pids, gal_pids, q_cams, gal_cams, pooling=pooling,
                                          extra_features=xn, extra_pids=x_pids, extra_camids=x_cams)
        mq_rows.append({"setting": f"multi query ({pooling} pooling over {len(mq_records)} gt_bbox images)",
                        "rank-1": pct(mq.rank1), "mAP": pct(mq.mAP)})
make_table(mq_rows, title=f"camera-normalised pixels, {LABEL}")

# %% [markdown]
# ### 3.5 Two-view single-shot protocols: VIPeR, CUHK01, PRID2011, 3DPeS and CUHK03 classic
#
# The small two-camera datasets are evaluated differently: identities are split at random into
# training and test halves, probes come from camera A and the gallery from camera B, the gallery
# holds **one image per identity**, and the CMC is averaged over random draws and splits
# (`reid.metrics.protocols.two_view_single_shot`; paper 001 on PRID2011, CUHK01 and 3DPeS, paper
# 003 on VIPeR). SynthReID's `two_view/` variant has the VIPeR layout (one image per person and
# view). Raw pixels, on its 10 random splits:

# %%
two_view = load_dataset("synthreid", synth_root, layout="two_view")
tv_records = two_view.records
tv_feats = pixel_features(tv_records)
tv_pids = np.array([r.pid for r in tv_records])
tv_cams = np.array([r.camid for r in tv_records])


def split_inputs(test_ids):
    """(dist, probe_pids, gallery_pids) of one split's test identities: view A against view B."""
    probe = np.isin(tv_pids, test_ids) & (tv_cams == 0)
    gallery = np.isin(tv_pids, test_ids) & (tv_cams == 1)
    return pairwise_distance(tv_feats[probe], tv_feats[gallery]), tv_pids[probe], tv_pids[gallery]


viper_like = protocols.two_view_single_shot([split_inputs(s["test"]) for s in two_view.splits], repeats=10, seed=seed)
print(f"raw pixels, SynthReID two_view ({scale} scale, CPU), {len(two_view.splits)} splits of "
      f"{len(two_view.splits[0]['test'])} test identities: "
      + ", ".join(f"rank-{r} {pct(viper_like.rank(r))}%" for r in (1, 5, 10, 20)))

# %% [markdown]
# The same raw pixels that scored 0% rank-1 under the Market-1501 rule reach a respectable rank-1
# here, because every gallery image comes from the same camera B: the camera look-alikes that
# defeated them cannot compete. And with one gallery image per identity among 50, rank 20 covers
# 40% of the gallery. A paper's VIPeR rank-1 and its Market-1501 rank-1 are different quantities.
#
# CUHK03's classic protocol {cite:p}`li2014deepreid` is the same idea with 20 splits of 100 test
# identities and up to five images per identity and view, so *which* gallery image is drawn
# matters. Paper 000 ranks every view-A image against 50 random galleries per split
# (`cuhk03_classic(..., probe="all", repeats=50)`); paper 002 draws one probe and one gallery
# image per identity once (`probe="one", repeats=1`). On the two SynthReID test cameras that
# share the most identities, with the camera-normalised pixels:

# %%
test_pids = np.concatenate([q_pids, gal_pids])
test_cams = np.concatenate([q_cams, gal_cams])
test_feats = torch.cat([qn, gn])
people = test_pids > 0
seen = {int(c): set(test_pids[people & (test_cams == c)].tolist()) for c in np.unique(test_cams[people])}
cam_a, cam_b = max(((a, b) for a in seen for b in seen if a < b), key=lambda ab: len(seen[ab[0]] & seen[ab[1]]))
shared = np.array(sorted(seen[cam_a] & seen[cam_b]))
probe = np.isin(test_pids, shared) & (test_cams == cam_a)
gallery = np.isin(test_pids, shared) & (test_cams == cam_b)
pair = [(pairwise_distance(test_feats[probe], test_feats[gallery]), test_pids[probe], test_pids[gallery])]
rows = []
for label, kw in (("all probes, 50 random galleries (paper 000)", dict(probe="all", repeats=50)),
                  ("one probe, one gallery draw (paper 002)", dict(probe="one", repeats=1))):
    res = protocols.cuhk03_classic(pair, seed=seed, **kw)
    rows.append({"protocol": label, "rank-1": pct(res.rank1), "rank-5": pct(res.rank(5)),
                 "probes per draw": res.num_probes, "draws": res.repeats})
make_table(rows, title=f"CUHK03-classic style, cameras c{cam_a + 1} -> c{cam_b + 1}, {len(shared)} identities, {LABEL}")

# %% [markdown]
# Paper 002's reading ranks one probe per identity against one gallery draw: its rank-1 moves in
# steps of one identity and depends on which images happened to be drawn. Paper 000's reading
# averages every probe over 50 gallery draws. Both are called "the CUHK03 protocol", and for the
# same features they can differ by several points.

# %% [markdown]
# ### 3.6 Gallery size (paper 002)
#
# Paper 002 (Fig. 4) adds up to 500,000 distractors to the Market-1501 gallery and shows that
# its loss degrades more slowly than the triplet loss. `reid.metrics.analysis.gallery_size_curve`
# adds random distractors progressively (nested galleries). SynthReID's distractor images
# (identity `0000`) play that role here:

# %%
is_distractor = gal_pids == 0
n_dis = int(is_distractor.sum())
curve = analysis.gallery_size_curve(
    qn, gn[~is_distractor], gn[is_distractor], q_pids, gal_pids[~is_distractor], q_cams, gal_cams[~is_distractor],
    num_distractors=[0, n_dis // 4, n_dis // 2, n_dis], seed=seed,
)
make_table([{"distractors added": p["num_distractors"], "gallery size": p["gallery_size"],
             "rank-1": pct(p["rank1"]), "mAP": pct(p["mAP"])} for p in curve],
           title=f"camera-normalised pixels, {LABEL}: metrics as distractors join the gallery")

# %% [markdown]
# ### 3.7 k-reciprocal re-ranking
#
# Paper 002 (Table 1) also reports its numbers after **k-reciprocal re-ranking**
# {cite:p}`zhong2017reranking`: a gallery image that is among the query's *k* nearest neighbours
# *and* has the query among its own is likely a true match; the final distance mixes the
# original one with a Jaccard distance between these neighbourhoods
# (`reid.metrics.rerank.k_reciprocal_rerank`, defaults $k_1=20$, $k_2=6$, $\lambda=0.3$).

# %%
rr = rank_metrics(k_reciprocal_rerank(qn, gn), q_pids, gal_pids, q_cams, gal_cams)
make_table(
    [{"distance": "Euclidean", "rank-1": pct(base.rank1), "mAP": pct(base.mAP)},
     {"distance": "k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)", "rank-1": pct(rr.rank1), "mAP": pct(rr.mAP)}],
    title=f"camera-normalised pixels, {LABEL}",
)

# %% [markdown]
# ### 3.8 Joint Bayesian metric
#
# Paper 000 (Table VI) replaces the distance between features by a **Joint Bayesian**
# similarity {cite:p}`chen2012bayesian` learned on the training features: each feature is
# modelled as an identity part plus within-identity variation, both Gaussian, and two features
# are compared by the log-likelihood ratio of "same identity" against "different identities"
# (`reid.metrics.joint_bayesian.JointBayesian`, EM as in the original paper). Learned on the
# training images' *raw* pixels (reduced to 64 dimensions by PCA fitted on the training images, so
# that the covariances are well conditioned; the same reduction with the Euclidean distance is
# the control):

# %%
from sklearn.decomposition import PCA  # noqa: E402

from reid.metrics.joint_bayesian import JointBayesian  # noqa: E402

train_pids = np.array([r.pid for r in data.train])
jb = JointBayesian(pca_dim=64).fit(trainf, train_pids)
jbm = rank_metrics(jb.distance(qf, gf), q_pids, gal_pids, q_cams, gal_cams)
pca = PCA(n_components=64, svd_solver="full").fit(trainf.numpy())
pcam = rank_metrics(pairwise_distance(torch.from_numpy(pca.transform(qf.numpy())), torch.from_numpy(pca.transform(gf.numpy()))),
                    q_pids, gal_pids, q_cams, gal_cams)
make_table(
    [{"metric on raw pixels": "Euclidean", "rank-1": pct(raw.rank1), "mAP": pct(raw.mAP)},
     {"metric on raw pixels": "Euclidean on 64-d PCA (fitted on train)", "rank-1": pct(pcam.rank1), "mAP": pct(pcam.mAP)},
     {"metric on raw pixels": "Joint Bayesian on 64-d PCA (fitted on train)", "rank-1": pct(jbm.rank1), "mAP": pct(jbm.mAP)}],
    title=LABEL,
)

# %% [markdown]
# The Joint Bayesian model learns from the training identities which directions of the feature
# space vary *within* a person (here: everything a camera changes) and discounts them. That is
# the same job the losses of the following chapters do inside the network, and it is why paper
# 000 reports it as a complement to its loss.

# %% [markdown]
# ## Summary
#
# - SynthReID writes the Market-1501 format, with cameras whose shared nuisances make
#   same-camera strangers look alike, the failure mode paper 000 targets.
# - The loaders read the toolkits' layouts and fail with one actionable message.
# - The protocols differ enough that numbers from different protocols, or from the two AP
#   definitions, must never be compared directly. Each chapter states its protocol and AP
#   definition next to every number.
