"""Naive float64 references for SimLoss, Cauchy-Schwarz, softmax ranking and the quadratic cost.

Deliberately slow and literal: explicit Python loops over rows and classes, the
``math`` module, probabilities computed first and the formulas of the papers
applied to them (no log-sum-exp tricks), gradients from the chain rule through
the softmax Jacobian ``dp_c/dz_j = p_c (delta_cj - p_j)`` rather than from the
library's simplified forms. Inputs are 2-D: rows x classes (or lists x items).

Every function returns ``(value, grad)`` with the library's reduction
contract: per-row losses ``l_n`` and denominator weights ``d_n``; "mean" is
``sum l / sum d`` (0 with zero gradient when ``sum d == 0``), "none" returns
the per-row losses and the gradient of their sum.
"""

from __future__ import annotations

import math


def _softmax(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def _finish(losses, grads, denominators, reduction):
    """Apply the reduction contract to per-row losses / gradient rows."""
    if reduction == "none":
        return losses, grads
    total = math.fsum(losses)
    if reduction == "sum":
        return total, grads
    denominator = math.fsum(denominators)
    if denominator == 0:
        return 0.0, [[0.0] * len(row) for row in grads]
    return total / denominator, [[g / denominator for g in row] for row in grads]


def _one_hot(label, n_classes):
    return [1.0 if c == label else 0.0 for c in range(n_classes)]


def sim_loss(logits, labels, similarity, sample_weight=None, ignore_index=None, reduction="mean"):
    """l = -log sum_c S[y, c] p_c; dl/dz_j = -(sum_c S[y, c] dp_c/dz_j) / sum_c S[y, c] p_c."""
    losses, grads, denominators = [], [], []
    for n, row in enumerate(logits):
        n_classes = len(row)
        weight = 1.0 if sample_weight is None else float(sample_weight[n])
        if ignore_index is not None and labels[n] == ignore_index:
            losses.append(0.0)
            grads.append([0.0] * n_classes)
            denominators.append(0.0)
            continue
        y = int(labels[n])
        p = _softmax(row)
        mass = math.fsum(similarity[y][c] * p[c] for c in range(n_classes))
        losses.append(weight * -math.log(mass))
        grad_row = []
        for j in range(n_classes):
            dmass = math.fsum(
                similarity[y][c] * p[c] * ((1.0 if c == j else 0.0) - p[j]) for c in range(n_classes)
            )
            grad_row.append(weight * -dmass / mass)
        grads.append(grad_row)
        denominators.append(weight)
    return _finish(losses, grads, denominators, reduction)


def cauchy_schwarz(logits, target, sample_weight=None, ignore_index=None, reduction="mean"):
    """l = -log(t.p / (|t| |p|)); gradient through the softmax Jacobian.

    ``target`` is a list of integer labels or a list of probability rows.
    """
    losses, grads, denominators = [], [], []
    for n, row in enumerate(logits):
        n_classes = len(row)
        weight = 1.0 if sample_weight is None else float(sample_weight[n])
        if isinstance(target[n], (list, tuple)):
            t = [float(v) for v in target[n]]
        else:
            if ignore_index is not None and target[n] == ignore_index:
                losses.append(0.0)
                grads.append([0.0] * n_classes)
                denominators.append(0.0)
                continue
            t = _one_hot(int(target[n]), n_classes)
        p = _softmax(row)
        dot = math.fsum(t[c] * p[c] for c in range(n_classes))
        t_norm = math.sqrt(math.fsum(v * v for v in t))
        p_square = math.fsum(v * v for v in p)
        losses.append(weight * -math.log(dot / (t_norm * math.sqrt(p_square))))
        grad_row = []
        for j in range(n_classes):
            jac = [p[c] * ((1.0 if c == j else 0.0) - p[j]) for c in range(n_classes)]
            ddot = math.fsum(t[c] * jac[c] for c in range(n_classes))
            dsquare = math.fsum(2 * p[c] * jac[c] for c in range(n_classes))
            grad_row.append(weight * (-ddot / dot + 0.5 * dsquare / p_square))
        grads.append(grad_row)
        denominators.append(weight)
    return _finish(losses, grads, denominators, reduction)


def softmax_ranking(scores, labels, mask=None, reduction="mean"):
    """Per list: valid items only; q = y / sum y; l = -sum q log p; grad = p - q (0 if sum y = 0)."""
    losses, grads, denominators = [], [], []
    for n, row in enumerate(scores):
        size = len(row)
        valid = [True] * size if mask is None else [bool(v) for v in mask[n]]
        items = [i for i in range(size) if valid[i]]
        total = math.fsum(float(labels[n][i]) for i in items)
        if total == 0:
            losses.append(0.0)
            grads.append([0.0] * size)
            denominators.append(0.0)
            continue
        p_valid = _softmax([row[i] for i in items])
        p = [0.0] * size
        for k, i in enumerate(items):
            p[i] = p_valid[k]
        q = [float(labels[n][i]) / total if valid[i] else 0.0 for i in range(size)]
        losses.append(-math.fsum(q[i] * math.log(p[i]) for i in items if q[i] > 0))
        grads.append([p[i] - q[i] if valid[i] else 0.0 for i in range(size)])
        denominators.append(1.0)
    return _finish(losses, grads, denominators, reduction)


def squared_error_softmax(logits, target, sample_weight=None, ignore_index=None, reduction="mean"):
    """l = 1/2 sum_c (p_c - t_c)^2; dl/dz_j = sum_c (p_c - t_c) dp_c/dz_j."""
    losses, grads, denominators = [], [], []
    for n, row in enumerate(logits):
        n_classes = len(row)
        weight = 1.0 if sample_weight is None else float(sample_weight[n])
        if isinstance(target[n], (list, tuple)):
            t = [float(v) for v in target[n]]
        else:
            if ignore_index is not None and target[n] == ignore_index:
                losses.append(0.0)
                grads.append([0.0] * n_classes)
                denominators.append(0.0)
                continue
            t = _one_hot(int(target[n]), n_classes)
        p = _softmax(row)
        losses.append(weight * 0.5 * math.fsum((p[c] - t[c]) ** 2 for c in range(n_classes)))
        grad_row = []
        for j in range(n_classes):
            grad_row.append(weight * math.fsum(
                (p[c] - t[c]) * p[c] * ((1.0 if c == j else 0.0) - p[j]) for c in range(n_classes)
            ))
        grads.append(grad_row)
        denominators.append(weight)
    return _finish(losses, grads, denominators, reduction)


def squared_error_sigmoid(logits, target, element_weight=None, reduction="mean"):
    """Element-wise l = w/2 (sigma(z) - t)^2, dl/dz = w (sigma(z) - t) sigma(z) (1 - sigma(z)).

    Returns per-element losses for "none" (as nested lists of the input's 2-D shape).
    """
    losses, grads, denominators = [], [], []
    for n, row in enumerate(logits):
        loss_row, grad_row = [], []
        for c, z in enumerate(row):
            w = 1.0 if element_weight is None else float(element_weight[n][c])
            a = _sigmoid(z)
            loss_row.append(w * 0.5 * (a - float(target[n][c])) ** 2)
            grad_row.append(w * (a - float(target[n][c])) * a * (1 - a))
            denominators.append(w)
        losses.append(loss_row)
        grads.append(grad_row)
    if reduction == "none":
        return losses, grads
    flat = [v for row in losses for v in row]
    total = math.fsum(flat)
    if reduction == "sum":
        return total, grads
    denominator = math.fsum(denominators)
    if denominator == 0:
        return 0.0, [[0.0] * len(row) for row in grads]
    return total / denominator, [[g / denominator for g in row] for row in grads]
