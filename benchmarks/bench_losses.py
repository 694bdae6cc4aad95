"""Forward + backward time of every loss in :mod:`reid.losses` at re-ID training size.

    .venv/bin/python benchmarks/bench_losses.py [--batch 128] [--dim 2048] [--classes 751]
                                                [--repeats 30] [--threads N] [--device cpu]

One training-sized batch: B = 128 features of D = 2048 (a P×K = 32×4 batch of Market-1501's
751 training identities, 6 cameras), features requiring grad. Each row times ``loss(...)`` and
``.backward()`` together (median of ``--repeats`` rounds after 3 warm-up runs, all losses timed
round-robin). The yardstick is plain cross-entropy over a 751-way linear classifier on the same features (its weights get
gradients too). Losses with their own classifier (AM, the joint losses, SMC+ECD with fc8) include
it; pair losses get 128 pairs (``f_a``, ``f_b`` both 128×2048); paper 003's similarity
discriminator gets all 128×128 probe/gallery pairs (the Euclidean distance matrix is timed with
it, ``Ds``'s MLP is not: it is a model, and its pair logits are an input here).

Budget (issue 4): pair- and neighbour-based losses cost at most 2× the yardstick; the ``budget``
column marks them ``ok`` / ``OVER``.

Figures printed on the development machine (2 CPU cores shared with other jobs — load average
≈ 9 during the run, so absolute times are inflated and vary ±30 % between runs; the ratios are
steadier), ``.venv/bin/python benchmarks/bench_losses.py --repeats 30``:

    forward+backward, B=128, D=2048, 751 classes, device=cpu, threads=1, torch 2.15.0+cu132, median of 30
    loss                                   kind             ms   x CE  budget
    cross-entropy (yardstick)              yardstick     30.17   1.00
    000 CenterLoss                         other          6.00   0.20
    000 SMCLoss                            other          8.94   0.30
    000 ECDLoss                            pair          38.15   1.26  ok
    000 SMC+ECD+softmax                    classifier    68.95   2.28
    001 ContrastiveLoss (128 pairs)        pair           1.59   0.05  ok
    001 AdaptiveMarginLoss (128 pairs)     pair           1.48   0.05  ok
    001 TripletLoss (128 triplets)         pair           5.92   0.20  ok
    002 BatchHardTripletLoss               pair           8.26   0.27  ok
    002 BatchHardTripletLoss soft          pair           7.21   0.24  ok
    002 BatchAllTripletLoss                pair          11.41   0.38  ok
    002 SupportNeighborLoss K=8            pair           7.60   0.25  ok
    002 SupportNeighborLoss K=127          pair          12.58   0.42  ok
    003 ViewDiscriminatorLoss              other          0.38   0.01
    003 ViewConfusionLoss                  other          0.22   0.01
    003 SimilarityDisc. Eq.2 (128x128)     pair           8.95   0.30  ok
    003 SimilarityDisc. Eq.5 (128x128)     pair          12.40   0.41  ok
    004 AngularMarginLoss m=0 (AM0)        classifier    44.45   1.47
    004 AngularMarginLoss m=0.5 (AM)       classifier    49.13   1.63
    004 AttributeAngularMargin (27x16)     other          7.31   0.24
    004 joint AM0BH                        classifier    56.62   1.88
    004 joint AM0BH_Attr                   classifier    49.05   1.63

Two findings behind these figures: ``SupportNeighborLoss`` at K = 127, σ = 30 took ≈ 80 ms until
its log-sum-exp stopped producing subnormal floats (see :mod:`reid.losses._numerics`), and the
angular-margin cosine is ≈ 2× cheaper with the normalisation applied to the 128×751 product
rather than to the 751×2048 weights (``AngularMarginLoss.cosine``). The angular-margin losses are
classifier losses (their cost is the yardstick's plus the normalisation), not under the budget.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from reid.losses import (
    AdaptiveMarginLoss,
    AngularMarginLoss,
    AttributeAngularMarginLoss,
    BatchAllTripletLoss,
    BatchHardTripletLoss,
    CameraCenters,
    CenterLoss,
    ContrastiveLoss,
    ECDLoss,
    SimilarityDiscriminatorLoss,
    SMCECDLoss,
    SMCLoss,
    SupportNeighborLoss,
    TripletLoss,
    ViewConfusionLoss,
    ViewDiscriminatorLoss,
    joint_loss,
)
from reid.metrics.distance import euclidean

MARKET_ATTRIBUTES = [4] + [2] * 26  # age (4 values) + 26 binary attributes


def build_cases(b: int, d: int, c: int, device: torch.device) -> list[tuple[str, str, Callable[[], torch.Tensor]]]:
    """``(name, kind, step)``; ``step()`` runs forward + backward once.

    kind: ``yardstick``; ``pair`` (pair-, triplet- and neighbour-based: the 2× budget applies);
    ``classifier`` (has its own 751-way classifier, like the yardstick); ``other``.
    """
    g = torch.Generator().manual_seed(0)
    p, k = b // 4, 4
    ids = torch.randperm(c, generator=g)[:p]
    labels = ids.repeat_interleave(k).to(device)
    camids = torch.randint(0, 6, (b,), generator=g).to(device)
    x = torch.randn(b, d, generator=g).to(device).requires_grad_()
    x2 = torch.randn(b, d, generator=g).to(device).requires_grad_()
    x3 = torch.randn(b, d, generator=g).to(device).requires_grad_()
    same = (torch.rand(b, generator=g) < 0.5).to(device)
    classifier = torch.nn.Linear(d, c).to(device)
    pair_logits = torch.randn(b, b, generator=g).to(device).requires_grad_()
    pair_same = (labels[:, None] == labels[None, :])
    view_logits_s = torch.randn(b, 2, generator=g).to(device).requires_grad_()
    view_logits_t = torch.randn(b, 2, generator=g).to(device).requires_grad_()
    attrs = torch.stack([torch.randint(0, v, (b,), generator=g) for v in MARKET_ATTRIBUTES], 1).to(device)

    def step(fn: Callable[[], torch.Tensor], *params: torch.Tensor) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            for t in params:
                t.grad = None
            loss = fn()
            loss.backward()
            return loss

        return run

    cams = CameraCenters(c, 6, d).to(device)
    with torch.no_grad():
        cams.update(x.detach(), labels, camids)
    center = CenterLoss(c, d).to(device)
    smc, ecd = SMCLoss(cams).to(device), ECDLoss(cams).to(device)
    smc_ecd = SMCECDLoss(c, 6, d).to(device)
    am0 = AngularMarginLoss(in_features=d, num_classes=c, scale=30.0, margin=0.0).to(device)
    am = AngularMarginLoss(in_features=d, num_classes=c, scale=30.0, margin=0.5).to(device)
    attr = AttributeAngularMarginLoss(MARKET_ATTRIBUTES, 30.0, 0.5).to(device)
    j_am0bh = joint_loss("AM0BH", d, c, scale=30.0).to(device)
    j_attr = joint_loss("AM0BH_Attr", d, c, scale=30.0, attribute_values=MARKET_ATTRIBUTES).to(device)
    sn8 = SupportNeighborLoss(k=8, sigma=30.0)
    sn127 = SupportNeighborLoss(k=b - 1, sigma=30.0)
    sim2, sim5 = SimilarityDiscriminatorLoss(), SimilarityDiscriminatorLoss(adaptive=True)
    fa_fb = (x, x2)

    return [
        ("cross-entropy (yardstick)", "yardstick", step(lambda: F.cross_entropy(classifier(x), labels), x, *classifier.parameters())),
        # paper 000 (losses-a)
        ("000 CenterLoss", "other", step(lambda: center(x, labels), x)),
        ("000 SMCLoss", "other", step(lambda: smc(x, labels, camids), x)),
        ("000 ECDLoss", "pair", step(lambda: ecd(x, labels, camids), x)),
        ("000 SMC+ECD+softmax", "classifier", step(lambda: smc_ecd(x, labels, camids, logits=classifier(x)), x, *classifier.parameters())),
        # paper 001 (losses-a)
        ("001 ContrastiveLoss (128 pairs)", "pair", step(lambda: ContrastiveLoss(1.0)(*fa_fb, same), *fa_fb)),
        ("001 AdaptiveMarginLoss (128 pairs)", "pair", step(lambda: AdaptiveMarginLoss()(*fa_fb, same), *fa_fb)),
        ("001 TripletLoss (128 triplets)", "pair", step(lambda: TripletLoss(1.0)(x, x2, x3), x, x2, x3)),
        # paper 002
        ("002 BatchHardTripletLoss", "pair", step(lambda: BatchHardTripletLoss(0.3)(x, labels), x)),
        ("002 BatchHardTripletLoss soft", "pair", step(lambda: BatchHardTripletLoss(0.3, soft=True)(x, labels), x)),
        ("002 BatchAllTripletLoss", "pair", step(lambda: BatchAllTripletLoss(0.3)(x, labels), x)),
        ("002 SupportNeighborLoss K=8", "pair", step(lambda: sn8(x, labels), x)),
        ("002 SupportNeighborLoss K=127", "pair", step(lambda: sn127(x, labels), x)),
        # paper 003
        ("003 ViewDiscriminatorLoss", "other", step(lambda: ViewDiscriminatorLoss()(view_logits_s, view_logits_t), view_logits_s, view_logits_t)),
        ("003 ViewConfusionLoss", "other", step(lambda: ViewConfusionLoss()(view_logits_s, view_logits_t), view_logits_s, view_logits_t)),
        ("003 SimilarityDisc. Eq.2 (128x128)", "pair", step(lambda: sim2(pair_logits, euclidean(x, x2), pair_same), x, x2, pair_logits)),
        ("003 SimilarityDisc. Eq.5 (128x128)", "pair", step(lambda: sim5(pair_logits, euclidean(x, x2), pair_same), x, x2, pair_logits)),
        # paper 004
        ("004 AngularMarginLoss m=0 (AM0)", "classifier", step(lambda: am0(x, labels), x, am0.weight)),
        ("004 AngularMarginLoss m=0.5 (AM)", "classifier", step(lambda: am(x, labels), x, am.weight)),
        ("004 AttributeAngularMargin (27x16)", "other", step(lambda: attr(x[:, : 27 * 16], attrs), x, attr.weight)),
        ("004 joint AM0BH", "classifier", step(lambda: j_am0bh(x, labels), x, *j_am0bh.parameters())),
        ("004 joint AM0BH_Attr", "classifier", step(lambda: j_attr(x, labels, attrs), x, *j_attr.parameters())),
    ]


def time_cases(cases, repeats: int, device: torch.device) -> list[float]:
    """Median seconds per case. Cases are timed round-robin (one run of each per round), so a
    burst of load from other processes hits every case alike instead of a few unlucky ones."""
    for _, _, run in cases:
        for _ in range(3):  # warm-up: allocator, lazy initialisation
            run()
    samples: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, (_, _, run) in enumerate(cases):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples[i].append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=751)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: stable figures)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    cases = build_cases(args.batch, args.dim, args.classes, device)
    print(
        f"forward+backward, B={args.batch}, D={args.dim}, {args.classes} classes, device={device}, "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}, median of {args.repeats}"
    )
    times = time_cases(cases, args.repeats, device)
    rows = [(name, kind, t) for (name, kind, _), t in zip(cases, times)]
    yardstick = next(t for _, kind, t in rows if kind == "yardstick")
    print(f"{'loss':<38} {'kind':<10} {'ms':>8} {'x CE':>6}  budget")
    for name, kind, t in rows:
        ratio = t / yardstick
        budget = ("ok" if ratio <= 2.0 else "OVER") if kind == "pair" else ""
        print(f"{name:<38} {kind:<10} {1e3 * t:>8.2f} {ratio:>6.2f}  {budget}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
