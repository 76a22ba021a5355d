"""Deliberately naive float64 references: explicit loops over rows and classes, ``math`` only.

These restate the documented formulas as plainly as possible so that the
vectorised library code is checked against something independent of it.
"""

from __future__ import annotations

import math


def logsumexp_row(row) -> float:
    values = [float(v) for v in row]
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def softmax_row(row) -> list[float]:
    lse = logsumexp_row(row)
    if lse == -math.inf:
        return [0.0 for _ in row]
    return [math.exp(float(v) - lse) for v in row]


def neg_log_prob(row, c) -> float:
    """-log softmax(row)[c], +inf when row[c] is -inf."""
    if float(row[c]) == -math.inf:
        return math.inf
    return logsumexp_row(row) - float(row[c])


def _class_weight(weight, n, c):
    if weight is None:
        return 1.0
    if len(weight) and not hasattr(weight[0], "__len__"):
        return float(weight[c])
    return float(weight[n][c])


def softmax_cross_entropy(
    logits,
    target,
    *,
    weight=None,
    sample_weight=None,
    ignore_index=None,
    label_smoothing=0.0,
    z_loss=0.0,
    reduction="mean",
):
    """Reference for (N, C) logits; ``target`` is a list of labels or of probability rows.

    Returns ``(value, gradient)`` with the gradient as nested lists.
    """
    n_rows, n_classes = len(logits), len(logits[0])
    labels = not hasattr(target[0], "__len__")
    eps = label_smoothing
    losses, denominators, grads = [], [], []
    for n in range(n_rows):
        row = [float(v) for v in logits[n]]
        s = 1.0 if sample_weight is None else float(sample_weight[n])
        p = softmax_row(row)
        lse = logsumexp_row(row)
        if labels and ignore_index is not None and target[n] == ignore_index:
            losses.append(0.0)
            denominators.append(0.0)
            grads.append([0.0] * n_classes)
            continue
        q = [0.0] * n_classes  # effective weighted target
        if labels:
            y = int(target[n])
            d = s * _class_weight(weight, n, y)
            for c in range(n_classes):
                q[c] = (1 - eps) * d * (c == y) + eps / n_classes * s * _class_weight(weight, n, c)
        else:
            d = s
            for c in range(n_classes):
                t = (1 - eps) * float(target[n][c]) + eps / n_classes
                q[c] = s * _class_weight(weight, n, c) * t
        loss = 0.0
        for c in range(n_classes):
            if q[c] != 0:
                loss += q[c] * neg_log_prob(row, c)
        if z_loss:
            loss += z_loss * d * lse * lse
        losses.append(loss)
        denominators.append(d)
        total_q = math.fsum(q)
        grads.append(
            [(total_q + 2 * z_loss * d * lse) * p[c] - q[c] for c in range(n_classes)]
        )
    return _reduce(losses, denominators, grads, reduction)


def nll_loss(log_probs, target, *, weight=None, sample_weight=None, ignore_index=None, reduction="mean"):
    n_rows, n_classes = len(log_probs), len(log_probs[0])
    losses, denominators, grads = [], [], []
    for n in range(n_rows):
        y = int(target[n])
        grad_row = [0.0] * n_classes
        if ignore_index is not None and y == ignore_index:
            losses.append(0.0)
            denominators.append(0.0)
            grads.append(grad_row)
            continue
        d = (1.0 if sample_weight is None else float(sample_weight[n])) * _class_weight(weight, n, y)
        losses.append(-d * float(log_probs[n][y]))
        denominators.append(d)
        grad_row[y] = -d
        grads.append(grad_row)
    return _reduce(losses, denominators, grads, reduction)


def _reduce(losses, denominators, grads, reduction):
    if reduction == "none":
        return losses, grads
    total = math.fsum(losses)
    if reduction == "sum":
        return total, grads
    denominator = math.fsum(denominators)
    if denominator == 0:
        return 0.0, [[0.0 for _ in row] for row in grads]
    return total / denominator, [[g / denominator for g in row] for row in grads]


def entropy(p, base=None) -> float:
    h = -math.fsum(x * math.log(x) for x in p if x > 0)
    return h / math.log(base) if base else h


def cross_entropy(p, q, base=None) -> float:
    terms = []
    for a, b in zip(p, q):
        if a > 0:
            terms.append(math.inf if b == 0 else -a * math.log(b))
    h = math.fsum(terms)
    return h / math.log(base) if base else h
