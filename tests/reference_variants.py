"""Deliberately naive float64 references for the softmax variants of cross-entropy.

Explicit loops over rows and classes with the ``math`` module, each formula
written as the paper states it (``1 - p``, ``p ** q``, ``(1 - p) ** (gamma - 1)``)
rather than in the library's stable forms, so that the vectorised code is
checked against something independent of it. Valid for moderate logits only
(``p`` away from 0 and 1). Every function takes (N, C) nested lists and returns
``(value, gradient)`` with the gradient as nested lists.
"""

from __future__ import annotations

import math


def _softmax(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = math.fsum(exps)
    return [e / total for e in exps], top + math.log(total)


def _reduce(losses, denominators, grads, reduction):
    if reduction == "none":
        return losses, grads
    total = math.fsum(losses)
    if reduction == "sum":
        return total, grads
    denominator = math.fsum(denominators)
    if denominator == 0:
        return 0.0, [[0.0] * len(row) for row in grads]
    return total / denominator, [[g / denominator for g in row] for row in grads]


def _label_loss(logits, target, sample_weight, ignore_index, reduction, row_loss):
    """Shared loop for losses of p_y: ``row_loss(p, y, n) -> (loss, dloss/dz_y-coefficient)``.

    ``row_loss`` returns the row's loss and the coefficient ``c`` of
    ``dL/dz = c * (p - onehot(y))``. The mean divides by the sum of sample
    weights over non-ignored rows.
    """
    losses, denominators, grads = [], [], []
    for n, row in enumerate(logits):
        row = [float(v) for v in row]
        s = 1.0 if sample_weight is None else float(sample_weight[n])
        y = int(target[n])
        if ignore_index is not None and y == ignore_index:
            losses.append(0.0)
            denominators.append(0.0)
            grads.append([0.0] * len(row))
            continue
        p, _ = _softmax(row)
        loss, coefficient = row_loss(p, y, n, row)
        losses.append(s * loss)
        denominators.append(s)
        grads.append([s * coefficient * (p[c] - (c == y)) for c in range(len(row))])
    return _reduce(losses, denominators, grads, reduction)


def _alpha(alpha, y):
    if alpha is None:
        return 1.0
    if isinstance(alpha, (int, float)):
        return float(alpha)
    return float(alpha[y])


def focal_loss(logits, target, *, gamma=2.0, alpha=None, sample_weight=None, ignore_index=None,
               reduction="mean"):
    """-alpha_y (1 - p)^gamma log p; dL/dz = alpha_y [(1-p)^g - g p (1-p)^(g-1) log p] (p - y)."""

    def row_loss(p, y, n, row):
        a = _alpha(alpha, y)
        py = p[y]
        log_p = math.log(py)
        loss = -a * (1 - py) ** gamma * log_p
        dloss_dlogp = -a * ((1 - py) ** gamma - gamma * py * (1 - py) ** (gamma - 1) * log_p)
        return loss, -dloss_dlogp

    return _label_loss(logits, target, sample_weight, ignore_index, reduction, row_loss)


def generalized_cross_entropy(logits, target, *, q=0.7, truncation=None, sample_weight=None,
                              ignore_index=None, reduction="mean"):
    """(1 - p^q)/q; dL/dz = p^q (p - y); truncated: (1 - k^q)/q with zero gradient when p <= k."""

    def row_loss(p, y, n, row):
        py = p[y]
        if truncation is not None and py <= truncation:
            return (1 - truncation**q) / q, 0.0
        return (1 - py**q) / q, py**q

    return _label_loss(logits, target, sample_weight, ignore_index, reduction, row_loss)


def symmetric_cross_entropy(logits, target, *, alpha=0.1, beta=1.0, log_zero=-4.0,
                            sample_weight=None, ignore_index=None, reduction="mean"):
    """alpha (-log p_y) + beta (-sum_c p_c log y_c), log 0 := A; dL/dz = (alpha - beta A p_y)(p - y)."""

    def row_loss(p, y, n, row):
        ce = -math.log(p[y])
        rce = 0.0
        for c in range(len(p)):
            log_label = 0.0 if c == y else log_zero
            rce -= p[c] * log_label
        return alpha * ce + beta * rce, alpha - beta * log_zero * p[y]

    return _label_loss(logits, target, sample_weight, ignore_index, reduction, row_loss)


def _weight(weight, n, c):
    if weight is None:
        return 1.0
    if not hasattr(weight[0], "__len__"):
        return float(weight[c])
    return float(weight[n][c])


def poly1_cross_entropy(logits, target, *, epsilon=1.0, label_smoothing=0.0, weight=None,
                        sample_weight=None, ignore_index=None, reduction="mean"):
    """CE (softmax_cross_entropy semantics) + epsilon s (1 - sum_c y_c p_c), y smoothed.

    CE_n = s sum_c w_c y_c (-log p_c), gradient s [(sum_c w_c y_c) p - w * y];
    poly term epsilon d (1 - p_t), gradient epsilon d p_j (p_t - y_j), with the row
    weight d = s w_y (labels) or s (probabilities); the mean divides by sum d.
    """
    n_classes = len(logits[0])
    labels = not hasattr(target[0], "__len__")
    losses, denominators, grads = [], [], []
    for n, row in enumerate(logits):
        row = [float(v) for v in row]
        s = 1.0 if sample_weight is None else float(sample_weight[n])
        if labels and ignore_index is not None and int(target[n]) == ignore_index:
            losses.append(0.0)
            denominators.append(0.0)
            grads.append([0.0] * n_classes)
            continue
        if labels:
            y_label = int(target[n])
            hard = [1.0 if c == y_label else 0.0 for c in range(n_classes)]
            denominators.append(s * _weight(weight, n, y_label))
        else:
            hard = [float(v) for v in target[n]]
            denominators.append(s)
        y = [(1 - label_smoothing) * h + label_smoothing / n_classes for h in hard]
        p, lse = _softmax(row)
        weighted = [_weight(weight, n, c) * y[c] for c in range(n_classes)]
        ce = s * math.fsum(weighted[c] * (lse - row[c]) for c in range(n_classes))
        p_t = math.fsum(y[c] * p[c] for c in range(n_classes))
        d = denominators[-1]  # the row weight, which the poly term carries too
        losses.append(ce + epsilon * d * (1 - p_t))
        mass = math.fsum(weighted)
        grads.append([
            s * (mass * p[c] - weighted[c]) + epsilon * d * p[c] * (p_t - y[c])
            for c in range(n_classes)
        ])
    return _reduce(losses, denominators, grads, reduction)
