"""Class centres and per-camera sub-centres, moved by the centre-loss update rule.

The centre loss (Wen et al., ECCV 2016; baseline of paper 000) keeps one centre ``c_j`` per
identity. Paper 000 splits every identity into camera sub-classes and keeps one *sub-centre*
``c^(j)_y`` per (identity ``y``, camera ``j``). Both kinds of centre are **not** trained by the
optimiser: after each iteration they move toward the batch features by the same rule,
implemented once in :func:`center_update`.

When the update happens
-----------------------
Every module here that owns centres updates them **inside** ``forward`` when the module is in
training mode (``module.train()``), after the loss value has been computed from the current
centres: "each new training image is pulled toward the meta-center of its class ... The
subsequent step consists in updating the position of the correspondent sub-center" (paper 000,
Sec. III-A). So one ``forward`` in training mode is one iteration of the paper; in
``eval()`` mode nothing moves. Pass ``update_in_forward=False`` to take control and call
``update_centers(...)`` yourself (e.g. after ``backward``); the result is the same because the
update only reads ``features.detach()``. The centres are buffers, so they follow
``.to(device)`` and are saved in ``state_dict()`` (checkpoint the loss module to resume).

Several processes (torchrun)
----------------------------
Under ``torch.distributed`` the update is global: every rank gathers the (detached) features and
indices of all ranks (:func:`_global_batch`) and applies the rule once to the global batch, which
is the per-row sum of every rank's deltas and counts — so all ranks hold identical centres, the
centres a single process would hold with the whole batch. One process: nothing changes.
"""

from __future__ import annotations

import torch
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_features, check_finite, check_index, check_reduction, reduce_terms

__all__ = ["center_update", "CenterLoss", "CameraCenters"]


def _check_alpha(alpha: float) -> float:
    if not 0.0 < float(alpha) <= 1.0:
        raise ConfigError(
            f"the centre update rate alpha must lie in (0, 1], got {alpha}; the centre-loss paper "
            "uses 0.5 (alpha=1 moves a centre onto the batch mean of its class in one step when "
            "the class has many samples)."
        )
    return float(alpha)


def _global_batch(features: torch.Tensor, *index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``features`` and ``index`` tensors of every rank, concatenated (no gradient); as-is in one process."""
    from reid.engine import distributed

    if not distributed.is_distributed():
        return (features, *index)
    return tuple(distributed.gather_variable(t) for t in (features.detach(), *index))


@torch.no_grad()
def center_update(centers: torch.Tensor, features: torch.Tensor, index: torch.Tensor, alpha: float) -> torch.Tensor:
    """Move ``centers`` (an ``(N, D)`` tensor, updated **in place**) toward the batch features.

    The centre-loss update (Wen et al. 2016, Eq. 4 and Algorithm 1)::

        Δc_j = Σ_{i: index_i = j} (c_j − x_i) / (1 + n_j),      n_j = #{i : index_i = j}
        c_j  ← c_j − α · Δc_j

    The ``1 +`` in the denominator keeps a centre that received no sample unchanged (Δc_j = 0)
    and damps the step for rare classes: with one sample and α = 1 the centre moves half-way.
    For many samples and α = 1 the centre lands close to the batch mean of its class.

    ``index`` selects the row of each sample: the identity for :class:`CenterLoss`, the flat
    (identity, camera) cell ``y·K + g`` for :class:`CameraCenters`. Returns ``n`` (the
    per-row sample counts of this batch).
    """
    check_finite("the centre update", features=features)  # a non-finite batch never reaches the buffer
    x = features.detach().to(centers.dtype)
    # Only the rows present in the batch move (Δc_j = 0 elsewhere), so work on those rows alone.
    rows, inverse = torch.unique(index, return_inverse=True)
    n = torch.bincount(inverse, minlength=rows.shape[0]).to(centers.dtype)  # n_j
    c = centers[rows]
    # Σ_{i: index_i = j} (c_j − x_i), one scatter-add for the whole batch
    diff_sum = torch.zeros_like(c).index_add_(0, inverse, c[inverse] - x)
    delta = diff_sum / (1.0 + n).unsqueeze(1)  # Δc_j
    centers[rows] = c - alpha * delta  # c_j ← c_j − α Δc_j
    return torch.bincount(index, minlength=centers.shape[0]).to(centers.dtype)


class CenterLoss(nn.Module):
    """Centre loss (Wen et al. 2016), the "Center" baseline of paper 000 (Table III).

    Args:
        num_classes: number of training identities.
        feat_dim: embedding size (pool5: 2048 in paper 000).
        alpha: centre update rate α in (0, 1]. Paper 000 does not state it; 0.5 is the value of
            the centre-loss paper.
        reduction: ``"sum"`` = the Σ below, ``"mean"`` = Σ / m (Caffe's centre-loss layer also
            divides by the batch size).
        update_in_forward: move the centres inside ``forward`` in training mode (see the module
            docstring); ``False`` leaves it to :meth:`update_centers`.

    Centres start at zero, as in the centre-loss reference implementation.
    """

    centers: torch.Tensor

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        alpha: float = 0.5,
        *,
        reduction: str = "mean",
        update_in_forward: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1 or feat_dim < 1:
            raise ConfigError(f"num_classes and feat_dim must be >= 1, got {num_classes} and {feat_dim}.")
        self.num_classes = int(num_classes)
        self.feat_dim = int(feat_dim)
        self.alpha = _check_alpha(alpha)
        self.reduction = check_reduction(reduction)
        self.update_in_forward = bool(update_in_forward)
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, features=features)
        check_features(features, self.feat_dim)
        check_index(labels, self.num_classes, features.shape[0], "labels", "identities")
        centers = self.centers.to(features.dtype)[labels]  # c_{y_i}; a constant for autograd
        # L_C = ½ Σ_{i=1}^{m} ‖x_i − c_{y_i}‖²₂      (centre loss, Wen et al. Eq. 2)
        terms = 0.5 * (features - centers).pow(2).sum(dim=1)
        loss = reduce_terms(terms, self.reduction)
        if self.training and self.update_in_forward:
            self.update_centers(features, labels)
        return loss

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """One centre-loss update (:func:`center_update`) from a batch; no gradient flows."""
        check_features(features, self.feat_dim)
        check_index(labels, self.num_classes, features.shape[0], "labels", "identities")
        features, labels = _global_batch(features, labels)  # several processes: the global batch
        center_update(self.centers, features, labels, self.alpha)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, alpha={self.alpha}, reduction={self.reduction!r}"


class CameraCenters(nn.Module):
    """Per-(identity, camera) sub-centres ``c^(j)_y`` of paper 000 and which cameras were seen.

    Buffers:
        ``centers`` — ``(num_classes, num_cameras, feat_dim)``, zeros at start; sub-centre
        ``c^(j)_y`` is ``centers[y, j]``. Moved by the centre-loss rule (:func:`center_update`)
        on the flat cell ``y·K + j``: "a sub-center point of the identity y_i, calculated by
        averaging the points of y_i that are viewed under camera j" (paper 000, Eq. 2 text).
        ``seen`` — ``(num_classes, num_cameras)`` boolean: identity ``y`` has been observed under
        camera ``j``. Its row sum is ``s_y``, "the number of cameras that capture the identity".

    Which cameras count: a sub-centre enters the losses (meta-centre, class range, ECD/GCL
    distances) only once its cell has been updated at least once (``seen``); a never-visited
    sub-centre is not an average of any points. The paper defines ``s_i`` over the dataset;
    training converges to that within one epoch. To use the dataset's ``s_i`` from the first
    iteration, call :meth:`mark_seen` with all training labels and camera ids before training
    (the zero-initialised sub-centres then enter the sums at the origin until first visited).

    Camera ids are 0-based (Market ``c1`` → 0), as in :class:`reid.data.records.Record`.
    """

    centers: torch.Tensor
    seen: torch.Tensor

    def __init__(self, num_classes: int, num_cameras: int, feat_dim: int, alpha: float = 0.5) -> None:
        super().__init__()
        if num_classes < 1 or num_cameras < 1 or feat_dim < 1:
            raise ConfigError(
                "num_classes, num_cameras and feat_dim must be >= 1, got "
                f"{num_classes}, {num_cameras} and {feat_dim}."
            )
        self.num_classes = int(num_classes)
        self.num_cameras = int(num_cameras)
        self.feat_dim = int(feat_dim)
        self.alpha = _check_alpha(alpha)
        self.register_buffer("centers", torch.zeros(num_classes, num_cameras, feat_dim))
        self.register_buffer("seen", torch.zeros(num_classes, num_cameras, dtype=torch.bool))

    def check(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor | None) -> None:
        check_features(features, self.feat_dim)
        check_index(labels, self.num_classes, features.shape[0], "labels", "identities")
        if camids is not None:
            check_index(camids, self.num_cameras, features.shape[0], "camids", "cameras")

    def num_seen_cameras(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``s_y`` for every identity (or for each sample's identity when ``labels`` is given)."""
        s = self.seen.sum(dim=1)
        return s if labels is None else s[labels]

    def sub_centers(self, labels: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c^(j)_{y_i})_{j}`` as ``(m, K, D)`` and the seen mask ``(m, K)`` (float) per sample."""
        centers = self.centers if dtype is None else self.centers.to(dtype)
        return centers[labels], self.seen[labels].to(centers.dtype)

    def meta_centers(self, labels: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Meta-centre ``c^(SMC)_y = Σ_{j=1}^{s_y} c^(j)_y`` (paper 000, Eq. 2) for each label, ``(m, D)``."""
        ids, inverse = torch.unique(labels, return_inverse=True)  # each identity's sum once
        sub, mask = self.sub_centers(ids, dtype)
        return torch.einsum("ukd,uk->ud", sub, mask)[inverse]

    @torch.no_grad()
    def mark_seen(self, labels: torch.Tensor, camids: torch.Tensor) -> None:
        """Record that identity ``labels[i]`` appears under camera ``camids[i]``."""
        check_index(labels, self.num_classes, labels.shape[0], "labels", "identities")
        check_index(camids, self.num_cameras, labels.shape[0], "camids", "cameras")
        self.seen[labels, camids] = True

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor) -> None:
        """Move each sample's sub-centre ``c^(g_i)_{y_i}`` by :func:`center_update`; mark it seen."""
        self.check(features, labels, camids)
        features, labels, camids = _global_batch(features, labels, camids)  # several processes: the global batch
        flat = labels * self.num_cameras + camids  # cell (y, g) of the (N·K, D) view
        center_update(self.centers.view(-1, self.feat_dim), features, flat, self.alpha)
        self.seen[labels, camids] = True

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_cameras={self.num_cameras}, "
            f"feat_dim={self.feat_dim}, alpha={self.alpha}"
        )
