"""Batch samplers: which images go into one mini-batch.

All three are *batch samplers* (``DataLoader(dataset, batch_sampler=...)``): each yields
a list of dataset indices, laid out in a documented order so a loss can reshape the
batch's features without carrying extra structure through the ``DataLoader``.

* :class:`PKSampler` — P identities x K images (Hermans et al. 2017's batch for the
  batch-hard triplet; papers 002 and 004, and the centre losses of paper 000).
* :class:`AnchorPairSampler` — paper 001's anchor-based units: A probe-view anchors,
  each with M positives and N negatives from the gallery view.
* :class:`CrossViewPairSampler` — paper 003's SP batches of probe-view and gallery-view
  images, from which all cross-view pairs are formed.

Every sampler is reproducible: batches depend only on ``seed`` and the epoch
(``set_epoch(e)`` selects an epoch; each iteration then moves on to the next one).

**Several processes** (``rank``, ``world_size``; :mod:`reid.engine.distributed`): every rank
draws the *same* global batch from the same seeded generator and keeps its own contiguous share
of whole blocks (identities of a P x K batch, anchor units, SP identities), so the union of the
ranks' batches is the one-process batch, no identity is split across ranks, and the global
batch keeps the paper's size. The number of blocks must divide by the world size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from reid.errors import ConfigError

__all__ = ["PKSampler", "AnchorPairSampler", "CrossViewPairSampler"]


def _draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct members of ``pool``, or with replacement when it has fewer than ``k``."""
    return rng.choice(pool, size=k, replace=pool.size < k)


def _group(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted distinct labels and, for each, the indices that carry it."""
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    return values, np.split(order, starts[1:])


class _EpochSampler:
    """Shared epoch bookkeeping: batches come from a generator seeded by ``(seed, 0, epoch)``."""

    def __init__(self, seed: int, num_batches: int | None, rank: int = 0, world_size: int = 1):
        if num_batches is not None and num_batches < 1:
            raise ConfigError(f"{type(self).__name__}: num_batches={num_batches} must be >= 1 (or None for one epoch)")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"{type(self).__name__}: rank={rank} must lie in [0, world_size={world_size})")
        self.seed = int(seed)
        self.epoch = 0
        self._num_batches = num_batches
        self.rank, self.world_size = int(rank), int(world_size)

    def _check_units(self, units: int, what: str) -> None:
        """A batch of ``units`` blocks (identities, anchor units) must split evenly over the ranks."""
        if units % self.world_size:
            raise ConfigError(f"{type(self).__name__}: {what}={units} is not divisible by the world size "
                              f"{self.world_size}; each process takes whole blocks of the global batch, so "
                              f"choose {what} as a multiple of {self.world_size}")

    def _local(self, batch: list[int], units: int) -> list[int]:
        """This rank's share of a global batch of ``units`` equal blocks: blocks
        ``[rank * units / W, (rank + 1) * units / W)``; the whole batch in one process."""
        if self.world_size == 1:
            return batch
        size = len(batch) // units * (units // self.world_size)
        return batch[self.rank * size:(self.rank + 1) * size]

    @property
    def local_units(self) -> int:
        return self._units() // self.world_size

    def _units(self) -> int:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield epoch ``epoch``'s batches (reproducible reshuffles)."""
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        """The generator of the current epoch; the next iteration moves on to the next epoch."""
        rng = np.random.default_rng([self.seed, 0, self.epoch])
        self.epoch += 1
        return rng

    def __len__(self) -> int:
        return self._num_batches if self._num_batches is not None else self._default_batches()

    def _default_batches(self) -> int:
        raise NotImplementedError


class PKSampler(_EpochSampler):
    """P identities x K images per batch (the "RandomIdentitySampler" of the toolkits).

    Each batch draws ``p`` distinct identities uniformly, then ``k`` images of each:
    distinct images while the identity has ``k`` or more, with replacement otherwise
    (Hermans, Beyer, Leibe, *In Defense of the Triplet Loss*, 2017, Sec. 3; the batch of
    papers 002 (P x Q), 004 (P=4, K=8) and the centre losses of 000). Within an epoch,
    an identity's images are taken in a shuffled cycle, so frequent identities show
    different images in different batches.

    Layout: ``[id_1 x k, id_2 x k, ..., id_p x k]`` — features reshape to ``(p, k, d)``.

    Args:
        pids: identity of every dataset item (any integers).
        p, k: identities per batch and images per identity.
        seed: fixes the batches of every epoch.
        num_batches: batches per epoch; default ``len(pids) // (p * k)`` (at least 1), i.e.
            about one pass over the data.

    Raises:
        ConfigError: if there are fewer than ``p`` identities, or ``p``/``k`` < 1.
    """

    def __init__(self, pids: Sequence[int], p: int, k: int, *, seed: int = 0, num_batches: int | None = None,
                 rank: int = 0, world_size: int = 1):
        super().__init__(seed, num_batches, rank, world_size)
        self.pids = np.asarray(pids, dtype=np.int64)
        if p < 1 or k < 1:
            raise ConfigError(f"PKSampler: p={p} and k={k} must both be >= 1 (e.g. p=16, k=4)")
        self.identities, self._members = _group(self.pids)
        if self.identities.size < p:
            raise ConfigError(
                f"PKSampler: a batch needs p={p} distinct identities but the data has only "
                f"{self.identities.size}; lower p to at most {self.identities.size} (e.g. --p/--batch-ids) "
                "or use a dataset with more training identities")
        self.p, self.k = int(p), int(k)
        self._check_units(self.p, "p")

    def _units(self) -> int:
        return self.p

    def _default_batches(self) -> int:
        return max(1, self.pids.size // (self.p * self.k))

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        cycles = [rng.permutation(m) for m in self._members]
        cursor = np.zeros(len(cycles), dtype=np.int64)
        for _ in range(len(self)):
            batch = []
            for i in rng.choice(len(cycles), size=self.p, replace=False):
                members = cycles[i]
                if members.size < self.k:
                    batch.extend(_draw(rng, members, self.k).tolist())
                    continue
                take = np.take(members, np.arange(cursor[i], cursor[i] + self.k), mode="wrap")
                cursor[i] += self.k
                batch.extend(take.tolist())
            yield self._local(batch, self.p)


def _views(pids: np.ndarray, camids: np.ndarray, probe_cam: int | None, gallery_cam: int | None,
           rng: np.random.Generator) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each identity seen in both views: (probe-view indices, gallery-view indices).

    With fixed cameras the views are those cameras (two-view datasets: VIPeR, CUHK01,
    PRID2011). With ``None`` each identity gets its own random camera pair, drawn once, as
    paper 003 does on multi-camera sets ("for each person we randomly select two cameras
    to be the probe and gallery views", Sec. IV-B).
    """
    views = {}
    for pid, members in zip(*_group(pids)):
        if probe_cam is not None and gallery_cam is not None:
            a, b = (probe_cam, gallery_cam)
        else:
            cams = np.unique(camids[members])
            if cams.size < 2:
                continue
            a, b = rng.choice(cams, size=2, replace=False)
        probe, gallery = members[camids[members] == a], members[camids[members] == b]
        if probe.size and gallery.size:
            views[int(pid)] = (probe, gallery)
    return views


def _check_views(name: str, views: dict, probe_cam, gallery_cam, needed: int) -> None:
    if probe_cam is None or gallery_cam is None:
        if (probe_cam is None) != (gallery_cam is None):
            raise ConfigError(f"{name}: give both probe_cam and gallery_cam, or neither (random pair per identity)")
    elif probe_cam == gallery_cam:
        raise ConfigError(f"{name}: probe_cam and gallery_cam are both {probe_cam}; pairs must cross views")
    if len(views) < needed:
        where = (f"cameras {probe_cam} and {gallery_cam}" if probe_cam is not None else "two cameras")
        raise ConfigError(f"{name}: needs at least {needed} identities seen in {where}, found {len(views)}; "
                          "check probe_cam/gallery_cam against the dataset's camera ids (0-based) "
                          "or lower the batch size")


#: How :class:`AnchorPairSampler` picks the two views on a multi-camera set (no fixed cameras).
ANCHOR_VIEWS = ("anchor", "epoch", "fixed")


class AnchorPairSampler(_EpochSampler):
    """Anchor-based mini-batches of paper 001 (Wang et al. 2018, Sec. 5, Algorithm 2, Fig. 6).

    "We randomly find a subset of images in the probe view, where each image is called an
    anchor. Then, we randomly find M corresponding positives and N negatives for each anchor
    in the gallery view." One batch holds ``anchors`` (A) such units; the paper's pairs are
    (anchor, positive) and (anchor, negative), A x (M + N) of them.

    Layout of a batch (length ``A * (1 + M + N)``)::

        [a_1, p_1,1 .. p_1,M, n_1,1 .. n_1,N,  a_2, p_2,1 ..,  ...]

    so features reshape to ``(A, 1 + M + N, d)``; :meth:`split` does it and
    :meth:`pair_index` lists the (i, j, same) pairs in batch positions.

    Positives are the anchor identity's gallery-view images (with replacement when there
    are fewer than M — single-shot sets such as VIPeR/PRID2011 have one); negatives are
    gallery-view images of N distinct other identities (with replacement across identities
    if fewer exist). An epoch uses every eligible anchor image once. The paper gives no
    values for A, M, N.

    **Views.** With ``probe_cam``/``gallery_cam`` given (two-camera sets: PRID2011, CUHK01,
    VIPeR) the views are those cameras, as in the paper. A multi-camera set (Market-1501,
    3DPeS) has no probe and gallery view; the paper does not say how it formed pairs there.
    ``views`` chooses:

    * ``"anchor"`` (default): every image of an identity seen by two or more cameras is an
      anchor once per epoch; its "gallery view" is every *other* camera, so positives are the
      identity's images from the other cameras and each negative is another identity's image
      from a camera other than the anchor's. Every cross-camera positive pair can be drawn.
    * ``"epoch"``: each identity gets a random (probe, gallery) camera pair, redrawn every
      epoch; anchors come from its probe camera only.
    * ``"fixed"``: the same, but the camera pair is drawn once for the whole run (the earlier
      behaviour, and paper 003's reading). It wastes data: on the smoke SynthReID set 431
      of the 784 training images appear in 8 epochs, and only 18% of the cross-camera
      positive pairs (unordered; 9% of the ordered anchor -> positive pairs) can ever be drawn.

    Args:
        pids, camids: labels of every dataset item (0-based cameras).
        anchors, positives, negatives: A, M, N.
        probe_cam, gallery_cam: the two views; ``None`` for both: a multi-camera set, see
            ``views``.
        views: ``"anchor"``, ``"epoch"`` or ``"fixed"`` (ignored when the cameras are given).
        seed, num_batches: as in :class:`PKSampler` (default ``#anchors // A``).
    """

    def __init__(self, pids: Sequence[int], camids: Sequence[int], *, anchors: int, positives: int, negatives: int,
                 probe_cam: int | None = 0, gallery_cam: int | None = 1, views: str = "anchor", seed: int = 0,
                 num_batches: int | None = None, rank: int = 0, world_size: int = 1):
        super().__init__(seed, num_batches, rank, world_size)
        if min(anchors, positives, negatives) < 1:
            raise ConfigError(f"AnchorPairSampler: anchors={anchors}, positives={positives}, negatives={negatives} "
                              "must all be >= 1")
        if views not in ANCHOR_VIEWS:
            raise ConfigError(f"AnchorPairSampler: views={views!r} is not one of {', '.join(ANCHOR_VIEWS)} "
                              "(anchor: every image an anchor, partners from the other cameras)")
        self.pids, self.camids = np.asarray(pids, dtype=np.int64), np.asarray(camids, dtype=np.int64)
        self.probe_cam, self.gallery_cam = probe_cam, gallery_cam
        self.a, self.m, self.n = int(anchors), int(positives), int(negatives)
        self._check_units(self.a, "anchors")
        self.mode = "cameras" if probe_cam is not None and gallery_cam is not None else views
        self.views = _views(self.pids, self.camids, probe_cam, gallery_cam, np.random.default_rng([seed, 1]))
        _check_views("AnchorPairSampler", self.views, probe_cam, gallery_cam, 2)
        # every identity seen by two or more cameras, with its images (the "anchor" and "epoch" modes)
        self._members = {}
        for pid, members in zip(*_group(self.pids)):
            if np.unique(self.camids[members]).size > 1:
                self._members[int(pid)] = members
        if self.mode == "anchor":
            self._view_pids = np.array(sorted(self._members))
            self._anchor_pool = np.concatenate([self._members[p] for p in self._view_pids])
        else:  # anchors from each identity's probe view; "epoch" redraws the views, keeping their sizes' order
            self._view_pids = np.array(sorted(self.views))
            self._anchor_pool = np.concatenate([self.views[p][0] for p in self._view_pids])

    def _default_batches(self) -> int:
        return max(1, self._anchor_pool.size // self.a)

    def _epoch_views(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """This epoch's anchor pool and views (``"epoch"`` redraws each identity's camera pair)."""
        if self.mode != "epoch":
            return self._anchor_pool, self.views
        views = _views(self.pids, self.camids, None, None, rng)
        return np.concatenate([views[p][0] for p in sorted(views)]), views

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        pool, views = self._epoch_views(rng)
        order = np.concatenate([rng.permutation(pool) for _ in range(-(-len(self) * self.a // pool.size))])
        for b in range(len(self)):
            batch = []
            for anchor in order[b * self.a:(b + 1) * self.a].tolist():
                pid = int(self.pids[anchor])
                others = self._view_pids[self._view_pids != pid]
                negative_ids = _draw(rng, others, self.n)
                batch.append(anchor)
                if self.mode == "anchor":  # the gallery view of this anchor: every other camera
                    cam = self.camids[anchor]
                    own = self._members[pid]
                    batch.extend(_draw(rng, own[self.camids[own] != cam], self.m).tolist())
                    for q in negative_ids.tolist():  # every such identity has a camera other than ``cam``
                        theirs = self._members[q]
                        batch.append(int(rng.choice(theirs[self.camids[theirs] != cam])))
                else:
                    batch.extend(_draw(rng, views[pid][1], self.m).tolist())
                    batch.extend(int(rng.choice(views[int(q)][1])) for q in negative_ids)
            yield self._local(batch, self.a)

    def _units(self) -> int:
        return self.a

    def split(self, x):
        """Batch-ordered ``x`` (tensor/array with leading size ``A(1+M+N)``) ->
        ``(anchors (A, ...), positives (A, M, ...), negatives (A, N, ...))``."""
        units = x.reshape(self.local_units, 1 + self.m + self.n, *x.shape[1:])
        return units[:, 0], units[:, 1:1 + self.m], units[:, 1 + self.m:]

    def pair_index(self) -> np.ndarray:
        """``(A(M+N), 3)`` int array of (anchor position, partner position, same) per pair."""
        unit = 1 + self.m + self.n
        start = np.arange(self.local_units)[:, None] * unit  # this rank's units
        partner = start + np.arange(1, unit)[None, :]
        same = np.broadcast_to(np.arange(1, unit) <= self.m, partner.shape)
        anchor = np.broadcast_to(start, partner.shape)
        return np.stack([anchor.ravel(), partner.ravel(), same.ravel().astype(np.int64)], axis=1)


class CrossViewPairSampler(_EpochSampler):
    """SP batches for paper 003's similarity discriminator (Wu et al., Sec. III-D, IV-B).

    The paper follows MTMCT (Ristani & Tomasi 2018) to build "SP batches": "during a
    training epoch each identity is selected into its batch, and the remaining P - 1 batch
    identities are selected at random. And S samples for each identity are also selected
    at random." Here the S samples are split evenly between the probe view and the gallery
    view (S/2 each, drawn with replacement when a view has fewer), so every batch yields
    P·S/2 x P·S/2 cross-view pairs of which P·(S/2)² are positive. The paper's batch is
    128 images (e.g. P=32, S=4); it does not give P and S.

    Layout (length ``P * S``)::

        [id_1: S/2 probe-view, S/2 gallery-view,  id_2: ..., ...]

    :meth:`split` returns ``(probe (P, S/2, ...), gallery (P, S/2, ...))``; all probe x
    gallery pairs with ``same = (row identity == column identity)`` is what the adaptive
    weighted loss (Eq. 5) consumes. One epoch = one batch per eligible identity.

    Args:
        pids, camids: labels of every dataset item (0-based cameras).
        p: identities per batch (P); s: images per identity (S, even).
        probe_cam, gallery_cam: the two views; ``None`` for both picks a random camera
            pair per identity once (the paper's setting on CUHK03/Market/Duke).
        seed, num_batches: as in :class:`PKSampler`.
    """

    def __init__(self, pids: Sequence[int], camids: Sequence[int], *, p: int, s: int, probe_cam: int | None = 0,
                 gallery_cam: int | None = 1, seed: int = 0, num_batches: int | None = None,
                 rank: int = 0, world_size: int = 1):
        super().__init__(seed, num_batches, rank, world_size)
        if p < 2 or s < 2 or s % 2:
            raise ConfigError(f"CrossViewPairSampler: p={p}, s={s}; need p >= 2 identities and an even s >= 2 "
                              "images per identity (half per view), e.g. p=32, s=4 for the paper's 128")
        self.pids, self.camids = np.asarray(pids, dtype=np.int64), np.asarray(camids, dtype=np.int64)
        self.views = _views(self.pids, self.camids, probe_cam, gallery_cam, np.random.default_rng([seed, 1]))
        _check_views("CrossViewPairSampler", self.views, probe_cam, gallery_cam, p)
        self.p, self.s = int(p), int(s)
        self._check_units(self.p, "p")
        self._view_pids = np.array(sorted(self.views))

    def _default_batches(self) -> int:
        return self._view_pids.size

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng()
        n = self._view_pids.size
        seeds = np.concatenate([rng.permutation(n) for _ in range(-(-len(self) // n))])[:len(self)]
        half = self.s // 2
        for first in seeds.tolist():
            rest = rng.choice(np.delete(np.arange(n), first), size=self.p - 1, replace=False)
            batch = []
            for i in [first, *rest.tolist()]:
                probe, gallery = self.views[int(self._view_pids[i])]
                batch.extend(_draw(rng, probe, half).tolist())
                batch.extend(_draw(rng, gallery, half).tolist())
            yield self._local(batch, self.p)

    def _units(self) -> int:
        return self.p

    def split(self, x):
        """Batch-ordered ``x`` -> ``(probe (P, S/2, ...), gallery (P, S/2, ...))``."""
        units = x.reshape(self.local_units, self.s, *x.shape[1:])
        return units[:, : self.s // 2], units[:, self.s // 2:]

    def view_labels(self) -> np.ndarray:
        """0 (probe view) / 1 (gallery view) for every batch position (the view
        discriminator's targets, Eq. 1)."""
        return np.tile(np.repeat([0, 1], self.s // 2), self.local_units)
