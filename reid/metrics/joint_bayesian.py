"""Joint Bayesian metric (Chen, Cao, Wang, Wen, Sun, "Bayesian Face Revisited", ECCV 2012).

Paper 000, Table VI learns it on the training features of the softmax / SMC / SMC+ECD networks
and ranks the test set with it instead of the cosine similarity.

Model: a (centred) feature is ``x = mu + eps`` with identity part ``mu ~ N(0, S_mu)`` and
within-identity variation ``eps ~ N(0, S_eps)``, independent. Learning (Sec. 3.2, EM with the
closed-form E-step): for an identity with ``m`` images ``x_1..x_m``

    F = S_eps^-1,   G_m = -(m S_mu + S_eps)^-1 S_mu S_eps^-1,
    E[mu]    = S_mu (F + m G_m) sum_j x_j,
    E[eps_j] = x_j + S_eps G_m sum_k x_k,

then ``S_mu = cov(E[mu])`` over identities and ``S_eps = cov(E[eps])`` over images, repeated
until the matrices stop changing. Initialisation: between-class and within-class covariances.

Verification score (Eq. 4-5): the log-likelihood ratio of "same" vs "different" identity,

    r(x1, x2) = x1' A x1 + x2' A x2 - 2 x1' G x2,
    A = (S_mu + S_eps)^-1 - (F + G),   F = S_eps^-1,   G = -(2 S_mu + S_eps)^-1 S_mu S_eps^-1,

larger is more similar. :meth:`JointBayesian.distance` returns ``-r`` for ``rank_metrics``.
Features are centred with the training mean and optionally reduced by PCA first (the original
uses PCA on high-dimensional features; 2048-d pool5 features estimated from 12,936 images are
fine without it). A small ridge ``eps * mean(diag)`` keeps the covariances invertible.
"""

from __future__ import annotations

from typing import Any

import torch

from reid.errors import ConfigError
from reid.metrics.validation import as_labels, check_features

__all__ = ["JointBayesian"]


class JointBayesian:
    """Fit with :meth:`fit`, then :meth:`similarity` / :meth:`distance` between feature sets."""

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-6, pca_dim: int | None = None,
                 eps: float = 1e-6):
        self.max_iter, self.tol, self.pca_dim, self.eps = max_iter, tol, pca_dim, eps
        self.n_iter_: int = 0

    # ------------------------------------------------------------------------------ learning
    def _prepare(self, x: Any) -> torch.Tensor:
        t = torch.as_tensor(x).detach().to(torch.float64).cpu()
        if t.dim() != 2:
            raise ConfigError(f"features must be (num_samples, dim), got shape {tuple(t.shape)}.")
        check_features(t, "features")
        if not hasattr(self, "mean_"):
            raise ConfigError("JointBayesian is not fitted yet; call .fit(train_features, train_pids).")
        if t.shape[1] != self.mean_.shape[0]:
            raise ConfigError(
                f"features have dimension {t.shape[1]} but the model was fitted on {self.mean_.shape[0]}.")
        t = t - self.mean_
        return t @ self.projection_ if self.projection_ is not None else t

    def _ridge(self, s: torch.Tensor) -> torch.Tensor:
        s = 0.5 * (s + s.t())
        return s + self.eps * s.diagonal().mean().clamp(min=1e-12) * torch.eye(len(s), dtype=s.dtype)

    def fit(self, features: Any, pids: Any) -> "JointBayesian":
        x = torch.as_tensor(features).detach().to(torch.float64).cpu()
        labels = torch.from_numpy(as_labels(pids, "pids"))
        if x.dim() != 2 or len(labels) != len(x):
            raise ConfigError("fit expects features (n, d) and one pid per row.")
        check_features(x, "features")
        _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        if len(counts) < 2 or int((counts > 1).sum()) < 1:
            raise ConfigError("Joint Bayesian needs at least two identities and one with 2+ images.")
        self.mean_ = x.mean(0)
        x = x - self.mean_
        self.projection_ = None
        if self.pca_dim is not None and self.pca_dim < x.shape[1]:
            _, _, v = torch.linalg.svd(x, full_matrices=False)
            self.projection_ = v[: self.pca_dim].t().contiguous()
            x = x @ self.projection_
        n, d = x.shape
        k = len(counts)
        m = counts.to(torch.float64)
        sums = torch.zeros(k, d, dtype=x.dtype).index_add_(0, inverse, x)
        means = sums / m[:, None]
        s_mu = self._ridge(means.t() @ means / k)
        resid = x - means[inverse]
        s_eps = self._ridge(resid.t() @ resid / n)

        sizes = torch.unique(counts)
        for it in range(self.max_iter):
            f = torch.linalg.inv(s_eps)
            mu = torch.empty(k, d, dtype=x.dtype)
            shift = torch.empty(k, d, dtype=x.dtype)  # S_eps G_m sum_k x_k, per identity
            for size in sizes.tolist():
                sel = counts == size
                g = -torch.linalg.solve(size * s_mu + s_eps, s_mu @ f)
                mu[sel] = sums[sel] @ (s_mu @ (f + size * g)).t()
                shift[sel] = sums[sel] @ (s_eps @ g).t()
            eps_ = x + shift[inverse]
            new_mu = self._ridge(mu.t() @ mu / k)
            new_eps = self._ridge(eps_.t() @ eps_ / n)
            change = max(
                float((new_mu - s_mu).norm() / s_mu.norm()),
                float((new_eps - s_eps).norm() / s_eps.norm()),
            )
            s_mu, s_eps = new_mu, new_eps
            self.n_iter_ = it + 1
            if change < self.tol:
                break
        self.s_mu_, self.s_eps_ = s_mu, s_eps
        f = torch.linalg.inv(s_eps)
        g = -torch.linalg.solve(2 * s_mu + s_eps, s_mu @ f)
        self.A_ = torch.linalg.inv(s_mu + s_eps) - (f + g)
        self.G_ = g
        return self

    # ------------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def similarity(self, x: Any, y: Any) -> torch.Tensor:
        """Log-likelihood ratio ``r(x_i, y_j)`` for all pairs (larger = same identity more likely)."""
        a = self._prepare(x)
        b = self._prepare(y)
        qa = ((a @ self.A_) * a).sum(1)
        qb = ((b @ self.A_) * b).sum(1)
        return qa[:, None] + qb[None, :] - 2.0 * (a @ self.G_) @ b.t()

    def distance(self, x: Any, y: Any) -> torch.Tensor:
        """``-similarity``: smaller is closer, ready for :func:`reid.metrics.rank_metrics`."""
        return -self.similarity(x, y)
