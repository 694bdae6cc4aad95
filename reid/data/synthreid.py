"""SynthReID: a procedural multi-camera person re-identification dataset.

Real re-ID datasets cannot be downloaded or redistributed here, so the book runs on people
drawn by this module. It is built so that the papers' mechanisms matter on it:

* **Identities** carry appearance attributes that mirror the 27 Market-1501 attributes
  (gender, age, hair length, sleeve length, lower-body length, dress/pants, hat, backpack,
  bag, handbag, 8 upper and 9 lower clothing colours) plus things Market does not label
  (hair colour, skin tone, body build, shoes, a texture on the upper garment: plain,
  horizontal/vertical stripes, checks, or a chest logo). Every colour is the attribute's
  palette colour plus a per-identity offset, so two people in "red" are still two shades.
* **Cameras** have their own nuisance factors: a viewpoint distribution (front / back /
  left / right; what is visible changes with it: a backpack is a block seen from behind,
  two straps from the front and a bump from the side; a logo shows only from the front;
  left and right swap from behind), a background scene, illumination gain, colour cast,
  gamma and a lighting gradient, resolution loss and blur, sensor noise, JPEG quality,
  occlusion frequency, detector (bounding-box) misalignment and distance to the people.
  Camera factors are shared by everything the camera sees, so **same-camera images of
  different people tend to look alike** — the "viewpoint problem" of paper 000 (Fig. 1:
  the false positives ranked above the true match come from the probe's own camera).
* ``difficulty`` in [0, 1] scales every nuisance (cast, gain, gamma, blur, noise,
  occlusion, misalignment, per-image colour jitter); viewpoint and background are
  structural and stay at every difficulty.

It writes the real on-disk formats, so the real loaders are exercised end to end::

    <root>/
      bounding_box_train/   0002_c1s1_000451_03.jpg …    train identities (detections)
      bounding_box_test/    0001_c1s1_001051_02.jpg …    test identities, plus
                            0000_c3s2_000151_05.jpg …    distractors (people not in the set)
                            -1_c2s1_000401_07.jpg …      junk (background, body fragments)
      query/                0001_c1s1_001051_00.jpg …    one hand-drawn box per identity per camera
      gt_bbox/              hand-drawn boxes of test identities (multi-query; includes the queries)
      market_attribute.mat  the Market-1501 attribute file layout (see below)
      two_view/cam_a/       000_0.bmp …   VIPeR-style two-camera variant (one image per view,
      two_view/cam_b/       000_90.bmp …  name = index_viewpoint-angle), for the pairwise papers
      synthreid.json        manifest: version, parameters, seed, counts, cameras, identities

Market filenames are ``PPPP_cCsS_FFFFFF_BB.jpg``: identity, 1-based camera, sequence,
frame, and detection number (``00`` for hand-drawn boxes). Identity numbers 1..N are split
at random into train and test (disjoint, train gets the odd one out as in Market's
751/750). Every identity appears in 2–6 cameras (at most ``num_cameras``).

``market_attribute.mat`` mirrors the published file exactly: a 1x1 struct
``market_attribute`` with fields ``test`` and ``train``; each a 1x1 struct of ``uint8``
1xN rows (1 = no/first value, 2 = yes/second value; age 1..4) in the *same field order
as the real file, which differs between train and test* — readers must index by name —
plus ``image_index``, a 1xN cell of 4-digit identity strings.

Determinism: a seed fixes every draw, and files (images, ``.mat`` and manifest) are
byte-identical between runs. Generation writes to a temporary sibling directory and
renames it into place, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.io
from PIL import Image
from scipy.ndimage import gaussian_filter

from reid.errors import ConfigError

__all__ = [
    "VERSION",
    "PRESETS",
    "MARKET_ATTRIBUTES",
    "generate",
    "ensure",
    "cache_dir",
    "cache_key",
    "preset_params",
]

#: Version of the on-disk layout (written into the manifest and the ``.mat`` header). The cache
#: does not rely on it: :func:`cache_key` hashes this module's source instead.
VERSION = "1.0.0"

#: Named sizes. ``tiny`` is for unit tests, ``smoke`` for CPU smoke runs of every recipe
#: (about 2k images), ``market`` matches Market-1501's size (1,501 ids, ~32k boxes in
#: train + test, 6 cameras, Market's distractor and junk counts).
PRESETS: dict[str, dict] = {
    "tiny": dict(num_ids=16, num_cameras=4, images_per_camera=(2, 3), hand_drawn_per_camera=(1, 2),
                 num_distractors=8, num_junk=8, two_view_ids=16),
    "smoke": dict(num_ids=100, num_cameras=6, images_per_camera=(2, 6), hand_drawn_per_camera=(1, 3),
                  num_distractors=100, num_junk=100, two_view_ids=100),
    "market": dict(num_ids=1501, num_cameras=6, images_per_camera=(2, 6), hand_drawn_per_camera=(1, 3),
                   num_distractors=2798, num_junk=3819, two_view_ids=632),
}

# --------------------------------------------------------------------------------------
# Attribute vocabulary
# --------------------------------------------------------------------------------------

UP_COLOURS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")
DOWN_COLOURS = ("black", "white", "pink", "purple", "yellow", "gray", "blue", "green", "brown")
_PALETTE = {
    "black": (0.10, 0.10, 0.11), "white": (0.90, 0.90, 0.87), "red": (0.78, 0.13, 0.12),
    "purple": (0.48, 0.22, 0.58), "yellow": (0.90, 0.78, 0.16), "gray": (0.50, 0.50, 0.50),
    "blue": (0.16, 0.30, 0.72), "green": (0.20, 0.55, 0.24), "pink": (0.93, 0.58, 0.68),
    "brown": (0.45, 0.30, 0.16),
}
# Rough colour frequencies of Market-1501 (summer campus: dark trousers, light tops).
_UP_PRIOR = (0.24, 0.22, 0.10, 0.05, 0.06, 0.13, 0.12, 0.08)
_DOWN_PRIOR = (0.38, 0.05, 0.03, 0.02, 0.02, 0.15, 0.22, 0.03, 0.10)
_HAIR_COLOURS = np.array([(0.07, 0.06, 0.05), (0.22, 0.14, 0.08), (0.40, 0.26, 0.13),
                          (0.78, 0.65, 0.38), (0.62, 0.62, 0.60)], dtype=np.float32)
TEXTURES = ("plain", "horizontal_stripes", "vertical_stripes", "checks", "logo")
VIEWS = ("front", "back", "left", "right")
_VIEW_ANGLE = (0, 180, 90, 90)  # VIPeR-style viewpoint angle in file names
AGES = ("young", "teenager", "adult", "old")

#: The 27 Market-1501 attributes in the field order of the published ``train`` struct
#: (``test`` uses :data:`_MARKET_TEST_ORDER`). Values: 1/2 (no/yes, or first/second value:
#: gender male/female, hair short/long, up long/short sleeve, down long/short, clothes
#: dress/pants), age 1..4 (young, teenager, adult, old).
MARKET_ATTRIBUTES = (
    "age", "backpack", "bag", "handbag",
    "downblack", "downblue", "downbrown", "downgray", "downgreen", "downpink", "downpurple",
    "downwhite", "downyellow",
    "upblack", "upblue", "upgreen", "upgray", "uppurple", "upred", "upwhite", "upyellow",
    "clothes", "down", "up", "hair", "hat", "gender",
)
_MARKET_TEST_ORDER = (
    "age", "backpack", "bag", "handbag", "clothes", "down", "up", "hair", "hat", "gender",
    "upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen",
    "downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray", "downblue",
    "downgreen", "downbrown",
)

# Random streams: one per concern, so e.g. adding distractors does not redraw identities.
_STREAM_IDENTITIES, _STREAM_CAMERAS, _STREAM_PLAN, _STREAM_RENDER = 1, 2, 3, 4
_BG_SPAN = 4  # a camera's scene is this many crops wide
_BATCH = 64  # images rendered together (one camera per batch; small batches stay in cache)


# --------------------------------------------------------------------------------------
# Identities
# --------------------------------------------------------------------------------------

def _draw_identities(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Appearance of ``n`` people as columns (arrays of length ``n``)."""
    female = rng.random(n) < 0.45
    age = rng.choice(4, size=n, p=(0.06, 0.52, 0.36, 0.06))
    height = np.array([0.80, 0.95, 1.0, 0.97])[age] * np.where(female, 0.96, 1.0) * rng.uniform(0.94, 1.06, n)
    build = np.where(female, 0.88, 1.0) * rng.uniform(0.88, 1.15, n)
    hair_long = rng.random(n) < np.where(female, 0.8, 0.08)
    hair_idx = np.where(age == 3, 4, rng.choice(4, size=n, p=(0.45, 0.3, 0.15, 0.1)))
    dress = female & (rng.random(n) < 0.25)
    up_idx = rng.choice(len(UP_COLOURS), size=n, p=_UP_PRIOR)
    down_idx = rng.choice(len(DOWN_COLOURS), size=n, p=_DOWN_PRIOR)
    texture = rng.choice(len(TEXTURES), size=n, p=(0.45, 0.2, 0.1, 0.1, 0.15))

    def shade(names_idx, names):
        base = np.array([_PALETTE[c] for c in names], dtype=np.float32)[names_idx]
        # identity-specific shade: brightness and hue offsets keep same-colour people apart
        tint = rng.normal(0.0, 0.06, (len(names_idx), 3)) + rng.normal(0.0, 0.08, (len(names_idx), 1))
        return np.clip(base + tint, 0.02, 0.98).astype(np.float32)

    def any_colour():
        return rng.uniform(0.05, 0.95, (n, 3)).astype(np.float32)

    skin_tone = rng.uniform(0.0, 1.0, n)[:, None]
    skin = ((1 - skin_tone) * np.array([0.93, 0.76, 0.64]) + skin_tone * np.array([0.42, 0.28, 0.20]))
    side = lambda: np.where(rng.random(n) < 0.5, -1.0, 1.0)  # noqa: E731  (left/right of the body)
    return {
        "female": female, "age": age, "height": height.astype(np.float32), "build": build.astype(np.float32),
        "skin": skin.astype(np.float32),
        "hair_long": hair_long, "hair_idx": hair_idx,
        "hair": np.clip(_HAIR_COLOURS[hair_idx] + rng.normal(0, 0.03, (n, 3)), 0.02, 0.98).astype(np.float32),
        "up_idx": up_idx, "up": shade(up_idx, UP_COLOURS),
        "short_sleeve": rng.random(n) < 0.6,
        "dress": dress, "short_lower": rng.random(n) < np.where(dress, 0.6, 0.3),
        "down_idx": down_idx, "down": shade(down_idx, DOWN_COLOURS),
        "texture": texture, "texture_rgb": any_colour(), "texture_freq": rng.uniform(9.0, 16.0, n).astype(np.float32),
        "hat": rng.random(n) < 0.07, "hat_rgb": any_colour(),
        "backpack": rng.random(n) < 0.25, "backpack_rgb": any_colour(),
        "bag": rng.random(n) < 0.22, "bag_rgb": any_colour(), "bag_side": side(),
        "handbag": rng.random(n) < np.where(female, 0.18, 0.05), "handbag_rgb": any_colour(), "handbag_side": side(),
        "shoes": np.where(rng.random((n, 1)) < 0.7, 0.12, 0.85).astype(np.float32) + rng.normal(0, 0.04, (n, 3)).astype(np.float32),
    }


def market_attributes(ids: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The 27 Market-1501 attribute rows (uint8, 1/2 coded; age 1..4) of an identity table."""
    yes = lambda mask: np.where(mask, 2, 1).astype(np.uint8)  # noqa: E731
    rows = {
        "age": (ids["age"] + 1).astype(np.uint8),
        "backpack": yes(ids["backpack"]), "bag": yes(ids["bag"]), "handbag": yes(ids["handbag"]),
        "clothes": np.where(ids["dress"], 1, 2).astype(np.uint8),   # 1 dress, 2 pants
        "down": yes(ids["short_lower"]),                               # 1 long, 2 short
        "up": yes(ids["short_sleeve"]),                                # 1 long sleeve, 2 short
        "hair": yes(ids["hair_long"]),                                 # 1 short, 2 long
        "hat": yes(ids["hat"]),
        "gender": yes(ids["female"]),                                  # 1 male, 2 female
    }
    rows.update({f"up{c}": yes(ids["up_idx"] == i) for i, c in enumerate(UP_COLOURS)})
    rows.update({f"down{c}": yes(ids["down_idx"] == i) for i, c in enumerate(DOWN_COLOURS)})
    return rows


# --------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------

def _draw_cameras(rng: np.random.Generator, num_cameras: int, difficulty: float, height: int,
                  width: int) -> dict[str, np.ndarray]:
    """Per-camera nuisance factors (arrays of length ``num_cameras``) and backgrounds."""
    c, d = num_cameras, difficulty
    # viewpoint: each camera mostly sees people from one side (its placement on the path)
    dominant = rng.permutation(np.resize(np.arange(4), c))
    view_p = np.full((c, 4), 0.1)
    view_p[np.arange(c), dominant] = rng.uniform(0.45, 0.75, c)
    view_p /= view_p.sum(1, keepdims=True)
    # the campus: muted colours shared by every camera's scene
    grey = rng.uniform(0.35, 0.6, (10, 1))
    palette = (grey + 0.35 * (rng.uniform(0.1, 0.9, (10, 3)) - grey)).astype(np.float32)
    return {
        "view_p": view_p,
        "traffic": rng.uniform(0.5, 1.5, c),                      # how busy the camera is
        "gain": np.exp(rng.normal(0.0, 0.35 * d, c)),
        "cast": np.exp(rng.normal(0.0, 0.22 * d, (c, 3))),       # colour cast per channel
        "gamma": np.exp(rng.normal(0.0, 0.25 * d, c)),
        "gradient": rng.normal(0.0, 0.5 * d, c),                 # lighting ramp left -> right
        "lowres": np.where(rng.random(c) < 0.6 * d, 2, 1),       # resolution loss factor
        "blur": d * rng.uniform(0.2, 1.6, c),                    # Gaussian sigma in pixels
        "noise": d * rng.uniform(0.01, 0.05, c),
        "jpeg_quality": rng.integers(70, 96, c),
        "occlusion": d * rng.uniform(0.1, 0.5, c),               # probability per image
        "misalign": d * rng.uniform(0.6, 1.4, c),                # detector quality
        "person_height": rng.uniform(0.80, 0.92, c),             # fraction of the crop height
        "bg_shift": rng.uniform(0.5, 1.0, c),                    # share of the scene crops use
        "background": np.stack([_background(rng, palette, 0.3 + 0.6 * d, height, width) for _ in range(c)]),
    }


def _background(rng: np.random.Generator, palette: np.ndarray, contrast: float, height: int,
                width: int) -> np.ndarray:
    """One camera's scene, ``(height, _BG_SPAN * width, 3)`` float32; each crop is a window.

    Colours come from a ``palette`` shared by all cameras (one campus), so cameras differ by
    layout more than by colour statistics; ``contrast`` scales how much the structures
    (poles, doors, windows, a kerb) stand out from the wall and ground.
    """
    h, w = height, _BG_SPAN * width
    y = (np.arange(h, dtype=np.float32) + 0.5)[:, None, None] / h
    x = (np.arange(w, dtype=np.float32) + 0.5)[None, :, None] / h
    pick = lambda: palette[rng.integers(len(palette))] + rng.normal(0, 0.03, 3).astype(np.float32)  # noqa: E731
    wall, ground = pick(), pick()
    horizon = rng.uniform(0.5, 0.75)
    img = np.where(y < horizon, wall * (0.9 + 0.2 * y), ground * (1.05 - 0.2 * (y - horizon)))
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(rng.integers(3, 9)):
        x0, half = rng.uniform(0, w / h), rng.uniform(0.01, 0.08)
        top, bottom = rng.uniform(0.0, 0.4), rng.uniform(horizon, 1.0)
        mask = (np.abs(x - x0) < half) & (y > top) & (y < bottom)
        img = np.where(mask, img + contrast * (pick() - img), img)
    kerb = np.abs(y - rng.uniform(horizon, 1.0)) < 0.012
    img = np.where(kerb, img + contrast * (pick() - img), img)
    # low-frequency texture so the scene is not flat
    fx, fy, phase = rng.uniform(3, 12), rng.uniform(3, 12), rng.uniform(0, 2 * np.pi)
    img *= 1.0 + 0.06 * np.sin(2 * np.pi * fx * x + phase) * np.sin(2 * np.pi * fy * y)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------
# The image plan: what to draw where, decided before any pixel is drawn
# --------------------------------------------------------------------------------------

# kinds of image (they differ in bounding-box quality and in whether a person is visible)
_DETECTION, _HAND_DRAWN, _DISTRACTOR, _JUNK, _TWO_VIEW = range(5)


def _plan(rng: np.random.Generator, cams: Mapping[str, np.ndarray], *, num_ids: int, num_cameras: int,
          difficulty: float, images_per_camera: tuple[int, int], hand_drawn_per_camera: tuple[int, int],
          num_distractors: int, num_junk: int, two_view_ids: int, width: int, height: int):
    """Decide every image: identity, camera, viewpoint, pose, box, occluder, file name.

    Returns ``(plan, files, copies, layout)``: ``plan`` holds per-image arrays, ``files``
    the relative path of each image, ``copies`` ``(src, dst)`` pairs (queries are copies
    of hand-drawn boxes, as in Market), ``layout`` the split and camera bookkeeping for the
    manifest.
    """
    n, c = num_ids, num_cameras
    pids = np.arange(1, n + 1)
    is_train = np.zeros(n, bool)
    is_train[rng.permutation(n)[: (n + 1) // 2]] = True

    # cameras per identity: 2..min(6, C), chosen by traffic (Gumbel top-k, vectorised)
    k = rng.integers(2, min(6, c) + 1, n)
    keys = np.log(cams["traffic"])[None, :] + rng.gumbel(size=(n, c))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    seen = rank < k[:, None]                                     # (n, C) identity i in camera j
    track_id, track_cam = np.nonzero(seen)                       # one track per (id, camera)
    n_det = rng.integers(images_per_camera[0], images_per_camera[1] + 1, track_id.size)
    n_hand = np.where(is_train[track_id], 0,
                      rng.integers(hand_drawn_per_camera[0], hand_drawn_per_camera[1] + 1, track_id.size))

    # one row per image; tracks keep consecutive frames
    det_track = np.repeat(np.arange(track_id.size), n_det)
    hand_track = np.repeat(np.arange(track_id.size), n_hand)
    n_tracks = track_id.size
    ident = np.concatenate([track_id[det_track], track_id[hand_track],
                            n + np.arange(num_distractors),                          # distractor people
                            n + rng.integers(0, max(num_distractors, 1), num_junk),  # junk: whatever
                            np.tile(np.arange(two_view_ids), 2)])
    cam = np.concatenate([track_cam[det_track], track_cam[hand_track],
                          rng.integers(0, c, num_distractors + num_junk),
                          np.repeat([0, 1], two_view_ids)])
    kind = np.concatenate([np.full(det_track.size, _DETECTION), np.full(hand_track.size, _HAND_DRAWN),
                           np.full(num_distractors, _DISTRACTOR), np.full(num_junk, _JUNK),
                           np.full(2 * two_view_ids, _TWO_VIEW)])
    track = np.concatenate([det_track, hand_track, n_tracks + np.arange(num_distractors + num_junk),
                            np.full(2 * two_view_ids, -1)])
    m = ident.size

    # viewpoint from the camera's distribution (inverse CDF, vectorised)
    cdf = np.cumsum(cams["view_p"], axis=1)[cam]
    view = (rng.random(m)[:, None] > cdf).sum(1).clip(0, 3)
    # bounding box: detections are sloppier than hand-drawn boxes; junk is badly off
    sloppiness = cams["misalign"][cam] * np.select([kind == _HAND_DRAWN, kind == _DISTRACTOR, kind == _JUNK],
                                                   [0.3, 1.5, 0.0], 1.0)
    dx = rng.normal(0, 0.035, m) * sloppiness
    dy = rng.normal(0, 0.03, m) * sloppiness
    scale = np.exp(rng.normal(0, 0.07, m) * sloppiness)
    junk = kind == _JUNK
    # junk: half background only, half a body fragment (box far too tight or shifted)
    visible = np.where(junk & (rng.random(m) < 0.5), 0.0, 1.0)
    scale = np.where(junk, rng.uniform(1.5, 2.6, m), scale)
    dx = np.where(junk, rng.uniform(-0.2, 0.2, m), dx)
    dy = np.where(junk, rng.uniform(0.0, 0.9, m), dy)
    occluded = rng.random(m) < cams["occlusion"][cam]
    plan = {
        "ident": ident, "cam": cam, "kind": kind, "view": view,
        "phase": rng.uniform(0, 2 * np.pi, m), "dx": dx, "dy": dy, "scale": scale, "visible": visible,
        "bg_offset": (rng.random(m) * cams["bg_shift"][cam] * (_BG_SPAN - 1) * width).astype(np.int64),
        "gain": np.exp(rng.normal(0, 0.08 * difficulty, m)),
        "colour_jitter": rng.normal(0, 0.03 * difficulty, (m, 3)),
        "occluded": occluded, "occ_side": rng.integers(0, 3, m),           # 0 bottom, 1 left, 2 right
        "occ_size": rng.uniform(0.2, 0.45, m), "occ_rgb": rng.uniform(0.05, 0.95, (m, 3)),
    }

    # Market names: frames increase within a camera, tracks get consecutive frames and a
    # sequence number s1..s6 by their position in the camera's timeline
    market = kind != _TWO_VIEW
    order = np.lexsort((rng.random(m), rng.random(n_tracks + num_distractors + num_junk + 1)[track], cam))
    order = order[market[order]]
    step = rng.integers(5, 40, order.size)
    new_track = np.r_[True, track[order][1:] != track[order][:-1]]
    step = np.where(new_track, step + rng.integers(50, 400, order.size), step)
    new_cam = np.r_[True, cam[order][1:] != cam[order][:-1]]
    frame = np.cumsum(step)
    frame -= np.maximum.accumulate(np.where(new_cam, frame - step, 0))
    if frame.size and frame.max() > 999_999:    # very large sets: keep Market's six digits
        frame = 1 + np.arange(order.size) - np.maximum.accumulate(np.where(new_cam, np.arange(order.size), 0))
    cam_start = np.maximum.accumulate(np.where(new_cam, np.arange(order.size), 0))
    cam_count = np.bincount(cam[order], minlength=c)[cam[order]]
    seq = 1 + (6 * (np.arange(order.size) - cam_start)) // cam_count
    det_no = np.where(kind[order] == _HAND_DRAWN, 0, rng.integers(1, 9, order.size))

    raw_pid = np.where(ident < n, pids[np.minimum(ident, n - 1)], 0)
    raw_pid = np.where(kind == _JUNK, -1, np.where(kind == _DISTRACTOR, 0, raw_pid))
    folder = np.select([kind == _HAND_DRAWN, (kind == _DETECTION) & is_train[np.minimum(ident, n - 1)]],
                       ["gt_bbox", "bounding_box_train"], "bounding_box_test")
    files = [""] * m
    for i, f, s, b in zip(order.tolist(), frame.tolist(), seq.tolist(), det_no.tolist()):
        pid = raw_pid[i]
        pid_str = "-1" if pid < 0 else f"{pid:04d}"
        files[i] = f"{folder[i]}/{pid_str}_c{cam[i] + 1}s{s}_{f:06d}_{b:02d}.jpg"
    two_view = np.flatnonzero(~market)
    for i in two_view.tolist():
        files[i] = f"two_view/cam_{'ab'[cam[i]]}/{ident[i]:03d}_{_VIEW_ANGLE[view[i]]}.bmp"

    # queries: the first hand-drawn box of each test track, copied into query/
    hand_rows = np.flatnonzero(kind == _HAND_DRAWN)
    first = hand_rows[np.unique(track[hand_rows], return_index=True)[1]]
    copies = [(files[i], "query/" + files[i].split("/", 1)[1]) for i in first.tolist()]

    layout = {
        "pids": pids, "is_train": is_train, "cameras": seen,
        "images_per_identity": np.bincount(ident[kind == _DETECTION], minlength=n),
    }
    return plan, files, copies, layout


# --------------------------------------------------------------------------------------
# Rendering: layered soft masks on a batch of canvases
# --------------------------------------------------------------------------------------

class _Shape(NamedTuple):
    """Coverage ``alpha`` (B, rows, cols) of a shape inside the window ``rows x cols``."""

    alpha: np.ndarray
    rows: slice
    cols: slice


class _Canvas:
    """A batch of ``B`` images drawn as layers of soft-edged shapes.

    Shapes are given in *person units*: y runs from the top of the head (0) to the soles
    (1) and x from the body's centre line, both in units of the person's height, so each
    image's person can sit at its own place and scale in the crop. Every parameter may be
    a scalar or a per-image array of shape ``(B, 1, 1)``. A shape is evaluated only inside
    the pixel window that bounds it in every image of the batch, which is what makes
    drawing fast: a leg touches a tenth of the canvas, not all of it.
    """

    def __init__(self, background: np.ndarray, top, centre, size):
        self.rgb = background                                   # (3, B, H, W) float32, planar
        _, _, self.h, self.w = background.shape
        y = ((np.arange(self.h, dtype=np.float32) + 0.5) / self.h)[None, :, None]
        x = ((np.arange(self.w, dtype=np.float32) + 0.5) / self.h)[None, None, :]
        self.top, self.centre, self.size = top, centre, size
        self.y = (y - top) / size                                # (B, H, 1)
        self.x = (x - centre) / size                             # (B, 1, W)
        self.pixels = size * self.h                              # pixels per person unit

    def _window(self, xa, xb, ya, yb) -> tuple[slice, slice]:
        """Pixel rows and columns covering person-unit box [xa, xb] x [ya, yb] in all images."""
        h = self.h
        r0 = int(np.floor(np.min((self.top + ya * self.size) * h))) - 1
        r1 = int(np.ceil(np.max((self.top + yb * self.size) * h))) + 2
        c0 = int(np.floor(np.min((self.centre + xa * self.size) * h))) - 1
        c1 = int(np.ceil(np.max((self.centre + xb * self.size) * h))) + 2
        return slice(max(r0, 0), max(min(r1, h), 0)), slice(max(c0, 0), max(min(c1, self.w), 0))

    def band(self, x0, hw, ya, yb, slope=0.0, widen=0.0) -> _Shape:
        """A quadrilateral band: centre line ``x = x0 + slope (y - ya)``, half-width
        ``hw + widen (y - ya)``, rows ``ya..yb`` (legs, arms, torso, straps, skirts)."""
        length = yb - ya
        reach = hw + np.maximum(widen * length, 0.0)
        x_end = x0 + slope * length
        rows, cols = self._window(np.minimum(x0, x_end) - reach, np.maximum(x0, x_end) + reach, ya, yb)
        y, x = self.y[:, rows], self.x[:, :, cols]
        dy = y - ya
        inside = np.minimum(hw + widen * dy - np.abs(x - (x0 + slope * dy)), np.minimum(dy, yb - y))
        return _Shape(np.clip(0.5 + inside * self.pixels, 0.0, 1.0), rows, cols)

    def ellipse(self, xc, yc, rx, ry, cut=None) -> _Shape:
        """An ellipse (head, hair, hat, shoes), optionally only its part above row ``cut``;
        the edge uses an approximate signed distance."""
        rows, cols = self._window(xc - rx, xc + rx, yc - ry, yc + ry)
        y, x = self.y[:, rows], self.x[:, :, cols]
        r = np.sqrt(((x - xc) / rx) ** 2 + ((y - yc) / ry) ** 2)
        inside = (1.0 - r) * np.minimum(rx, ry)
        if cut is not None:
            inside = np.minimum(inside, cut - y)
        return _Shape(np.clip(0.5 + inside * self.pixels, 0.0, 1.0), rows, cols)

    def paint(self, shape: _Shape, colour, where=None) -> None:
        """Alpha-blend ``colour`` ((3,B,1,1), or a (3,B,rows,cols) field over the shape's
        window) where ``shape`` covers; ``where`` (B,1,1) switches the layer on per image.
        Colours are planar so numpy's inner loops run along image rows, not over 3 channels."""
        alpha = shape.alpha
        if alpha.size == 0:
            return
        if where is not None:
            if not np.any(where):
                return
            alpha = alpha * where
        region = self.rgb[:, :, shape.rows, shape.cols]
        region += alpha * (colour - region)


def _col(a) -> np.ndarray:
    """Per-image scalar -> (B, 1, 1) for broadcasting over rows and columns."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def _rgb(a) -> np.ndarray:
    """Per-image colour (B, 3) -> planar (3, B, 1, 1)."""
    return np.asarray(a, dtype=np.float32).T[:, :, None, None]


def _draw_people(cv: _Canvas, p: Mapping[str, np.ndarray], view: np.ndarray, phase: np.ndarray) -> None:
    """Draw one person per canvas, back to front, as the viewpoint shows them."""
    front, back = _col(view == 0), _col(view == 1)
    side = _col(view >= 2)
    facing = _col(np.select([view == 2, view == 3], [-1.0, 1.0], 0.0))   # +1 walks to the right
    mirror = 1.0 - 2.0 * back                                            # left/right swap from behind
    swing = _col(np.sin(phase))
    wf = _col(p["build"]) * (1.0 - 0.38 * side)                          # narrower seen from the side
    shoulder = 0.115 * wf
    up, down, skin, hair = _rgb(p["up"]), _rgb(p["down"]), _rgb(p["skin"]), _rgb(p["hair"])
    dress, long_hair = _col(p["dress"]), _col(p["hair_long"])
    head_x = 0.012 * facing

    # behind the body: long hair seen from the front, backpack bump seen from the side
    cv.paint(cv.band(head_x, 0.062, 0.07, 0.30, widen=0.03), hair, where=long_hair * front)
    cv.paint(cv.band(-facing * (shoulder + 0.035), 0.05, 0.19, 0.45), _rgb(p["backpack_rgb"]),
             where=_col(p["backpack"]) * side)

    # legs: skin, then trousers (long or short) unless a dress covers them
    leg_x = 0.045 * wf * (1.0 - side)
    leg_slope = (0.30 * side + 0.03 * (1.0 - side)) * swing
    short_lower = _col(p["short_lower"])
    pants_end = 0.95 - 0.25 * short_lower
    for sign in (-1.0, 1.0):
        x0, slope = sign * leg_x, sign * leg_slope
        cv.paint(cv.band(x0, 0.040, 0.52, 0.95, slope=slope), skin)
        cv.paint(cv.band(x0, 0.044, 0.50, pants_end, slope=slope), down, where=1.0 - dress)
        foot_x = x0 + slope * 0.43 + 0.02 * facing
        cv.paint(cv.ellipse(foot_x, 0.955, 0.045 + 0.015 * side, 0.022), _rgb(p["shoes"]))
    cv.paint(cv.band(0.0, 0.095 * wf, 0.49, 0.58), down, where=1.0 - dress)          # hips
    dress_end = 0.88 - 0.16 * short_lower
    cv.paint(cv.band(0.0, 0.095 * wf, 0.48, dress_end, widen=0.22 * (1.0 - 0.5 * side)), down, where=dress)

    # torso with its texture; a logo is on the chest, so only the front shows it
    cv.paint(cv.band(0.0, 0.025, 0.12, 0.18), skin)                                   # neck
    torso = cv.band(0.0, shoulder, 0.16, 0.52, widen=-0.05 * wf)
    y, x = cv.y[:, torso.rows], cv.x[:, :, torso.cols]
    f, t = _col(p["texture_freq"]), _col(p["texture"])
    stripes_h, stripes_v = np.sin(2 * np.pi * f * y) > 0, np.sin(2 * np.pi * f * x) > 0
    logo = (np.abs(x) < 0.035) & (y > 0.24) & (y < 0.31) & (front > 0)
    pattern = np.where(t == 1, stripes_h, np.where(t == 2, stripes_v,
                                                   np.where(t == 3, stripes_h ^ stripes_v, (t == 4) & logo)))
    cv.paint(torso, up + pattern.astype(np.float32) * (_rgb(p["texture_rgb"]) - up))

    # backpack: a block from behind, two straps from the front
    bp, bp_rgb = _col(p["backpack"]), _rgb(p["backpack_rgb"])
    cv.paint(cv.band(0.0, 0.095 * wf, 0.19, 0.46, widen=-0.01), bp_rgb, where=bp * back)
    for sign in (-1.0, 1.0):
        cv.paint(cv.band(sign * 0.06 * wf, 0.012, 0.16, 0.36), bp_rgb, where=bp * front)

    # arms: at the sides from front/back, swinging across the body from the side
    arm_x = (shoulder + 0.028) * (1.0 - side)
    sleeve_end = 0.47 - 0.20 * _col(p["short_sleeve"])
    for sign in (-1.0, 1.0):
        slope = sign * (0.06 * (1.0 - side) + 0.35 * side * swing)
        cv.paint(cv.band(sign * arm_x, 0.027, 0.17, 0.50, slope=slope), skin)
        cv.paint(cv.band(sign * arm_x, 0.031, 0.16, sleeve_end, slope=slope), up)

    # shoulder bag: strap across the chest/back and the bag at the hip
    bag_side = _col(p["bag_side"]) * mirror
    bag, bag_rgb = _col(p["bag"]), _rgb(p["bag_rgb"])
    cv.paint(cv.band(-bag_side * 0.08 * wf, 0.011, 0.17, 0.45, slope=bag_side * 0.45 * wf), bag_rgb, where=bag)
    bag_x = np.where(side > 0, -facing * 0.05, bag_side * (shoulder + 0.02))
    cv.paint(cv.band(bag_x, 0.05, 0.42, 0.56), bag_rgb, where=bag)
    # handbag, held low at one side
    hand_x = np.where(side > 0, 0.03 * facing, _col(p["handbag_side"]) * mirror * (shoulder + 0.04))
    cv.paint(cv.band(hand_x, 0.042, 0.47, 0.60), _rgb(p["handbag_rgb"]), where=_col(p["handbag"]))

    # head: face from the front, hair everywhere from behind, a cap of hair otherwise
    cv.paint(cv.ellipse(head_x, 0.075, 0.052 + 0.006 * side, 0.068), skin)
    cv.paint(cv.band(head_x - facing * 0.025, 0.058, 0.06, 0.32, widen=0.02), hair, where=long_hair * (1.0 - front))
    cut = 0.055 * front + 0.2 * back + 0.07 * side
    cv.paint(cv.ellipse(head_x - 0.012 * facing, 0.070, 0.056, 0.072, cut=cut), hair)
    cv.paint(cv.ellipse(head_x, 0.03, 0.062, 0.035, cut=0.05), _rgb(p["hat_rgb"]), where=_col(p["hat"]))
    cv.paint(cv.band(head_x + 0.01 * facing, 0.07, 0.045, 0.058), _rgb(p["hat_rgb"]) * 0.8, where=_col(p["hat"]))


def _render(idt: Mapping[str, np.ndarray], cams: Mapping[str, np.ndarray], plan: Mapping[str, np.ndarray],
            rows: np.ndarray, camera: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Render the images ``rows`` of ``plan`` (all seen by ``camera``) as uint8 (B, H, W, 3)."""
    b = rows.size
    bg = cams["background"][camera].transpose(2, 0, 1)                     # (3, H, 2W)
    cols = plan["bg_offset"][rows][:, None] + np.arange(width)
    rgb = np.ascontiguousarray(bg[:, :, cols].transpose(0, 2, 1, 3))        # (3, B, H, W)

    person = {k: v[plan["ident"][rows]] for k, v in idt.items()}
    jitter = plan["colour_jitter"][rows]
    for key in ("up", "down", "texture_rgb"):   # small per-image colour changes (pose, light)
        person[key] = np.clip(person[key] + jitter, 0.0, 1.0)
    size = _col(cams["person_height"][camera] * person["height"] * plan["scale"][rows])
    feet = _col(0.97 + plan["dy"][rows])
    centre = _col(0.5 * width / height + plan["dx"][rows])
    cv = _Canvas(rgb, top=feet - size, centre=centre, size=size)
    shown = plan["visible"][rows] > 0
    if shown.all():
        _draw_people(cv, person, plan["view"][rows], plan["phase"][rows])
    elif shown.any():   # junk without a person keeps only its background
        drawn = _Canvas(rgb[:, shown], top=(feet - size)[shown], centre=centre[shown], size=size[shown])
        _draw_people(drawn, {k: v[shown] for k, v in person.items()}, plan["view"][rows][shown],
                     plan["phase"][rows][shown])
        rgb[:, shown] = drawn.rgb

    # occluders in crop coordinates: an object across the bottom or a post at one side
    occ = plan["occluded"][rows]
    if occ.any():
        frame = _Canvas(rgb, top=np.float32(0.0), centre=np.float32(0.0), size=np.float32(1.0))
        aspect, s, side = width / height, _col(plan["occ_size"][rows]), plan["occ_side"][rows]
        bottom = frame.band(aspect / 2, aspect, 1.0 - s, 1.1)
        post_x = np.float32(aspect) * (_col(side) != 1)
        post = frame.band(post_x, s * aspect, -0.1, 1.1)
        frame.paint(bottom, _rgb(plan["occ_rgb"][rows]), where=_col(occ & (side == 0)))
        frame.paint(post, _rgb(plan["occ_rgb"][rows]), where=_col(occ & (side != 0)))

    # the camera: resolution, blur, exposure, colour cast, gamma, lighting ramp, noise
    if cams["lowres"][camera] > 1 and height % 2 == 0 and width % 2 == 0:
        small = rgb.reshape(3, b, height // 2, 2, width // 2, 2).mean(axis=(3, 5))
        rgb = small.repeat(2, axis=2).repeat(2, axis=3)
    if cams["blur"][camera] > 0.05:
        sigma = float(cams["blur"][camera])
        rgb = gaussian_filter(rgb, sigma=(0, 0, sigma, sigma), truncate=3.0)
    ramp = 1.0 + np.float32(cams["gradient"][camera]) * (np.arange(width, dtype=np.float32) / width - 0.5)
    light = _rgb(cams["gain"][camera] * plan["gain"][rows][:, None] * cams["cast"][camera][None, :])
    # gamma through a 12-bit lookup table (a float power per pixel costs more than drawing)
    levels = np.clip(rgb * light * ramp, 0.0, 1.0)
    levels *= 4095.0
    gamma_lut = 255.0 * np.linspace(0.0, 1.0, 4096, dtype=np.float32) ** np.float32(cams["gamma"][camera])
    rgb = gamma_lut[levels.astype(np.int16)]
    # sensor noise: uniform with the camera's standard deviation (cheaper than Gaussian)
    noise = rng.random(rgb.shape, dtype=np.float32) - 0.5
    rgb += noise * np.float32(255.0 * cams["noise"][camera] * 12 ** 0.5) + 0.5
    return np.clip(rgb, 0.0, 255.0).astype(np.uint8).transpose(1, 2, 3, 0)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------

def _write_attribute_mat(path: Path, ids: Mapping[str, np.ndarray], pids: np.ndarray, is_train: np.ndarray) -> None:
    """Write ``market_attribute.mat`` in the published layout (see the module docstring)."""
    rows = market_attributes(ids)

    def split(mask, order):
        struct = {name: rows[name][mask][None, :] for name in order}
        index = np.empty((1, int(mask.sum())), dtype=object)
        for j, pid in enumerate(pids[mask].tolist()):
            index[0, j] = f"{pid:04d}"
        struct["image_index"] = index
        return struct

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"market_attribute": {"test": split(~is_train, _MARKET_TEST_ORDER),
                                                   "train": split(is_train, MARKET_ATTRIBUTES)}},
                     format="5", oned_as="row")
    data = bytearray(buffer.getvalue())
    # the 116-byte text header carries a creation time; fix it so files are reproducible
    header = f"MATLAB 5.0 MAT-file, written by reid.data.synthreid {VERSION}".encode("ascii")
    data[:116] = header.ljust(116, b" ")
    path.write_bytes(bytes(data))


def _save(array: np.ndarray, path: Path, quality: int) -> None:
    image = Image.fromarray(array)
    if path.suffix == ".jpg":
        image.save(path, format="JPEG", quality=int(quality))
    else:
        image.save(path, format="BMP")


def _rounded(value):
    """JSON-friendly, stable rounding of numpy values for the manifest."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.floating):
        return round(float(value), 4)
    return value


def _manifest(params, seed, ids, cams, layout, files, copies, two_view_ids) -> dict:
    n = params["num_ids"]
    attrs = market_attributes(ids)
    folders = [f.split("/", 1)[0] if not f.startswith("two_view") else f.rsplit("/", 1)[0] for f in files]
    counts = {folder: folders.count(folder) for folder in sorted(set(folders))}
    counts["query"] = len(copies)
    counts["train_ids"] = int(layout["is_train"].sum())
    counts["test_ids"] = int(n - layout["is_train"].sum())
    counts["distractor_images"] = params["num_distractors"]
    counts["junk_images"] = params["num_junk"]
    identities = []
    for i in range(n):
        identities.append({
            "pid": int(layout["pids"][i]),
            "split": "train" if layout["is_train"][i] else "test",
            "cameras": (np.flatnonzero(layout["cameras"][i]) + 1).tolist(),
            "detections": int(layout["images_per_identity"][i]),
            "market_attributes": {name: int(attrs[name][i]) for name in MARKET_ATTRIBUTES},
            "appearance": {
                "age": AGES[ids["age"][i]], "up_colour": UP_COLOURS[ids["up_idx"][i]],
                "down_colour": DOWN_COLOURS[ids["down_idx"][i]], "texture": TEXTURES[ids["texture"][i]],
                **{k: _rounded(ids[k][i]) for k in ("height", "build", "skin", "hair", "up", "down",
                                                    "texture_rgb", "shoes")},
            },
        })
    camera_keys = ("view_p", "traffic", "gain", "cast", "gamma", "gradient", "lowres", "blur", "noise",
                   "jpeg_quality", "occlusion", "misalign", "person_height", "bg_shift")
    return {
        "generator": "reid.data.synthreid",
        "version": VERSION,
        "seed": seed,
        "params": {k: _rounded(v) for k, v in params.items()},
        "counts": counts,
        "views": list(VIEWS),
        "cameras": [{"camera": j + 1, **{k: _rounded(cams[k][j]) for k in camera_keys}}
                    for j in range(params["num_cameras"])],
        "two_view": {"layout": "VIPeR (cam_a, cam_b; NNN_ANGLE.bmp)", "cam_a": 1, "cam_b": 2,
                     "index_to_pid": layout["pids"][:two_view_ids].tolist()},
        "identities": identities,
    }


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------

def _check(num_ids, num_cameras, difficulty, height, width, images_per_camera, hand_drawn_per_camera,
           num_distractors, num_junk, two_view_ids) -> None:
    problems = []
    if num_ids < 2:
        problems.append(f"num_ids={num_ids}: need at least 2 identities (one train, one test); pass --ids 2 or more")
    if not 2 <= num_cameras <= 9:
        problems.append(f"num_cameras={num_cameras}: need 2..9 cameras (Market names use one digit); "
                        "pass --cameras between 2 and 9")
    if not 0.0 <= difficulty <= 1.0:
        problems.append(f"difficulty={difficulty}: must lie in [0, 1]; pass e.g. --difficulty 0.5")
    if height < 16 or width < 8:
        problems.append(f"image size {height}x{width}: use at least 16x8 (default 128x64)")
    for name, (lo, hi) in (("images_per_camera", images_per_camera), ("hand_drawn_per_camera", hand_drawn_per_camera)):
        if not 1 <= lo <= hi:
            problems.append(f"{name}={(lo, hi)}: needs 1 <= low <= high, e.g. (2, 6)")
    if num_distractors < 0 or num_junk < 0:
        problems.append("num_distractors and num_junk must be >= 0")
    if not 0 <= two_view_ids <= num_ids:
        problems.append(f"two_view_ids={two_view_ids}: must lie in 0..num_ids ({num_ids})")
    if problems:
        raise ConfigError("SynthReID: " + "; ".join(problems))


def generate(out_dir, *, num_ids: int, num_cameras: int = 6, seed: int = 0, difficulty: float = 0.5,
             height: int = 128, width: int = 64, images_per_camera: tuple[int, int] = (2, 6),
             hand_drawn_per_camera: tuple[int, int] = (1, 3), num_distractors: int | None = None,
             num_junk: int | None = None, two_view_ids: int | None = None, progress: bool = True) -> Path:
    """Generate a SynthReID dataset at ``out_dir`` and return that Market-1501-layout root.

    Args:
        out_dir: where the dataset goes; must not exist yet (or be an empty directory).
        num_ids: identities, split at random into ``ceil(n/2)`` train and ``floor(n/2)`` test.
        num_cameras: cameras (2..9); each identity is seen by 2..min(6, num_cameras) of them.
        seed: fixes every random draw; the same seed gives byte-identical files.
        difficulty: nuisance strength in [0, 1] (0.5 is the calibrated default; see
            ``benchmarks/bench_synthreid.py`` for the measured baseline accuracy).
        height, width: image size in pixels (Market-1501 crops are 128x64).
        images_per_camera: (low, high) detections per identity per camera, inclusive.
        hand_drawn_per_camera: (low, high) hand-drawn boxes per test identity per camera in
            ``gt_bbox/``; the first of them is also the camera's query.
        num_distractors: ``0000`` images of people outside the dataset (default: num_ids).
        num_junk: ``-1`` images: background or body fragments (default: num_ids).
        two_view_ids: identities in the VIPeR-style ``two_view/`` variant (default:
            ``min(num_ids, 632)``, VIPeR's size); cameras 1 and 2 are its two views.
        progress: show a tqdm progress bar.

    Raises:
        ConfigError: on an invalid parameter or when ``out_dir`` already holds files.
    """
    num_distractors = num_ids if num_distractors is None else int(num_distractors)
    num_junk = num_ids if num_junk is None else int(num_junk)
    two_view_ids = min(num_ids, 632) if two_view_ids is None else int(two_view_ids)
    images_per_camera, hand_drawn_per_camera = tuple(images_per_camera), tuple(hand_drawn_per_camera)
    _check(num_ids, num_cameras, difficulty, height, width, images_per_camera, hand_drawn_per_camera,
           num_distractors, num_junk, two_view_ids)
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"SynthReID: {out} already exists and is not empty; choose a new --out directory "
                          "or delete that one first")
    params = dict(num_ids=num_ids, num_cameras=num_cameras, difficulty=float(difficulty), height=height,
                  width=width, images_per_camera=list(images_per_camera),
                  hand_drawn_per_camera=list(hand_drawn_per_camera), num_distractors=num_distractors,
                  num_junk=num_junk, two_view_ids=two_view_ids)

    ids = _draw_identities(np.random.default_rng([seed, _STREAM_IDENTITIES]), num_ids + max(num_distractors, 1))
    cams = _draw_cameras(np.random.default_rng([seed, _STREAM_CAMERAS]), num_cameras, difficulty, height, width)
    plan, files, copies, layout = _plan(
        np.random.default_rng([seed, _STREAM_PLAN]), cams, num_ids=num_ids, num_cameras=num_cameras,
        difficulty=difficulty, images_per_camera=images_per_camera, hand_drawn_per_camera=hand_drawn_per_camera,
        num_distractors=num_distractors, num_junk=num_junk, two_view_ids=two_view_ids, width=width, height=height)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        for folder in ("bounding_box_train", "bounding_box_test", "query", "gt_bbox",
                       "two_view/cam_a", "two_view/cam_b"):
            (tmp / folder).mkdir(parents=True)
        _render_all(tmp, ids, cams, plan, files, seed, height, width, progress)
        for src, dst in copies:
            shutil.copyfile(tmp / src, tmp / dst)
        _write_attribute_mat(tmp / "market_attribute.mat", {k: v[:num_ids] for k, v in ids.items()},
                             layout["pids"], layout["is_train"])
        manifest = _manifest(params, seed, ids, cams, layout, files, copies, two_view_ids)
        (tmp / "synthreid.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out.exists():
            out.rmdir()   # empty (checked above); os.replace cannot replace a directory
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _render_all(root: Path, ids, cams, plan, files, seed, height, width, progress) -> None:
    """Render and write every planned image, one camera at a time, in batches."""
    from tqdm.auto import tqdm

    cam = plan["cam"]
    order = np.argsort(cam, kind="stable")
    bounds = np.searchsorted(cam[order], np.arange(cams["gain"].size + 1))
    with tqdm(total=cam.size, desc="SynthReID", unit="img", disable=not progress) as bar:
        for c in range(cams["gain"].size):
            rows_c = order[bounds[c]:bounds[c + 1]]
            for start in range(0, rows_c.size, _BATCH):
                rows = rows_c[start:start + _BATCH]
                rng = np.random.default_rng([seed, _STREAM_RENDER, c, start])
                images = _render(ids, cams, plan, rows, c, height, width, rng)
                for image, i in zip(images, rows.tolist()):
                    _save(image, root / files[i], cams["jpeg_quality"][c])
                bar.update(rows.size)


def cache_dir(root=None) -> Path:
    """Where :func:`ensure` keeps datasets: ``root``, else ``$REID_DATA_HOME``, else
    ``~/.cache/reid-book``; SynthReID goes in its ``synthreid/`` sub-folder."""
    from reid.data.cache import data_home

    return data_home(root) / "synthreid"


def preset_params(preset: str, *, num_ids: int | None = None, num_cameras: int | None = None) -> dict:
    """The :func:`generate` parameters of ``preset``, optionally with another number of identities
    or cameras (the distractor, junk and two-view counts follow the preset, capped at ``num_ids``)."""
    if preset not in PRESETS:
        raise ConfigError(f"SynthReID: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    params = dict(PRESETS[preset])
    if num_ids is not None:
        params["num_ids"] = int(num_ids)
        params["two_view_ids"] = min(params["two_view_ids"], int(num_ids))
    if num_cameras is not None:
        params["num_cameras"] = int(num_cameras)
    return params


def cache_key(preset: str, seed: int, *, source: bytes | None = None, **changes) -> str:
    """The content hash naming a cached preset: this module's source (or ``source``, for tests),
    the generation parameters (``changes`` as for :func:`preset_params`), the seed, and the
    versions of the libraries that write the bytes."""
    from reid.data.cache import content_key, library_fingerprint, module_source

    code = module_source(sys.modules[__name__]) if source is None else source
    params = {"preset": preset, "seed": int(seed), "params": preset_params(preset, **changes),
              "libraries": library_fingerprint("numpy", "scipy", "pillow")}
    return content_key(sources=[code], params=params)


def cache_folder(preset: str = "smoke", seed: int = 0, root=None, *, num_ids: int | None = None,
                 num_cameras: int | None = None) -> Path:
    """The folder :func:`ensure` keeps a preset in: its name carries the sizes and :func:`cache_key`."""
    changes = {"num_ids": num_ids, "num_cameras": num_cameras}
    sizes = "".join(f"-{v}{k.split('_')[1]}" for k, v in changes.items() if v is not None)
    return cache_dir(root) / f"{preset}{sizes}-seed{seed}-{cache_key(preset, seed, **changes)}"


def ensure(preset: str = "smoke", seed: int = 0, root=None, *, progress: bool = True,
           num_ids: int | None = None, num_cameras: int | None = None) -> Path:
    """Return the Market-layout root of a cached SynthReID preset, generating it once.

    ``num_ids`` / ``num_cameras`` change the preset's size (see :func:`preset_params`). The dataset
    lives at ``cache_dir(root) / f"{preset}-seed{seed}-{key}"`` (plus the changed sizes), where
    ``key`` is :func:`cache_key`: a hash of this generator's source and the parameters, so a changed
    generator can never reuse a set that an older one wrote. Generation is atomic (temporary
    directory, then rename), so concurrent or interrupted calls never expose a partial set.
    """
    params = preset_params(preset, num_ids=num_ids, num_cameras=num_cameras)
    target = cache_folder(preset, seed, root, num_ids=num_ids, num_cameras=num_cameras)
    if (target / "synthreid.json").is_file():
        return target
    if target.exists() and not any(target.iterdir()):
        target.rmdir()
    try:
        return generate(target, seed=seed, progress=progress, **params)
    except (ConfigError, OSError):
        if (target / "synthreid.json").is_file():   # another process finished it first
            return target
        raise
