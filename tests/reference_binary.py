"""Naive float64 references for the binary losses and kl_div: explicit loops, ``math`` only.

Each function takes NumPy arrays (weights already of any broadcastable shape)
and returns ``(value, gradient)`` with the gradient as a nested float64 array.
They follow the textbook formulas literally (``p = sigmoid(x)``,
``1 - p_t``, ``log(p)``) so they share no code or algebra with the library.
"""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _log_sigmoid(x: float) -> float:
    # log(1 / (1 + e^{-x})) written for both signs so that moderate |x| is exact
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


def _elements(shape, *arrays):
    """Broadcast optional arrays to ``shape`` (None -> ones) and loop over every index."""
    full = [np.ones(shape) if a is None else np.broadcast_to(np.asarray(a, dtype=np.float64), shape)
            for a in arrays]
    for index in np.ndindex(*shape):
        yield (index,) + tuple(float(a[index]) for a in full)


def _reduce(losses: np.ndarray, grad: np.ndarray, reduction: str, denominator: float):
    total = 0.0
    for index in np.ndindex(*losses.shape):
        total += float(losses[index])
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return total, grad
    return total / denominator, grad / denominator


def sigmoid_binary_cross_entropy(x, y, weight=None, pos_weight=None, label_smoothing=0.0,
                                 reduction="mean"):
    x = np.asarray(x, dtype=np.float64)
    losses = np.zeros(x.shape)
    grad = np.zeros(x.shape)
    for index, xi, yi, wi, pwi in _elements(x.shape, x, y, weight, pos_weight):
        yi = yi * (1.0 - label_smoothing) + label_smoothing / 2.0
        # -[pw*y*log(sigmoid(x)) + (1-y)*log(1 - sigmoid(x))], with 1 - sigmoid(x) = sigmoid(-x)
        losses[index] = -wi * (pwi * yi * _log_sigmoid(xi) + (1.0 - yi) * _log_sigmoid(-xi))
        p = _sigmoid(xi)
        # d/dx log(sigmoid(x)) = 1 - p, d/dx log(sigmoid(-x)) = -p
        grad[index] = -wi * (pwi * yi * (1.0 - p) - (1.0 - yi) * p)
    return _reduce(losses, grad, reduction, x.size)


def binary_cross_entropy(p, y, weight=None, reduction="mean"):
    p = np.asarray(p, dtype=np.float64)
    losses = np.zeros(p.shape)
    grad = np.zeros(p.shape)
    for index, pi, yi, wi in _elements(p.shape, p, y, weight):
        log_p = math.log(pi) if pi > 0 else -math.inf
        log_q = math.log(1.0 - pi) if pi < 1 else -math.inf
        losses[index] = -wi * (yi * max(log_p, -100.0) + (1.0 - yi) * max(log_q, -100.0))
        g = 0.0
        if log_p > -100.0:
            g -= wi * yi / pi
        if log_q > -100.0:
            g += wi * (1.0 - yi) / (1.0 - pi)
        grad[index] = g
    return _reduce(losses, grad, reduction, p.size)


def sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, weight=None, reduction="mean"):
    x = np.asarray(x, dtype=np.float64)
    losses = np.zeros(x.shape)
    grad = np.zeros(x.shape)
    use_alpha = alpha is not None and alpha >= 0
    for index, xi, yi, wi in _elements(x.shape, x, y, weight):
        p = _sigmoid(xi)
        ce = -(yi * _log_sigmoid(xi) + (1.0 - yi) * _log_sigmoid(-xi))
        p_t = p * yi + (1.0 - p) * (1.0 - yi)
        one_minus = 1.0 - p_t
        alpha_t = alpha * yi + (1.0 - alpha) * (1.0 - yi) if use_alpha else 1.0
        losses[index] = wi * alpha_t * ce * one_minus**gamma
        # product rule: d ce/dx = p - y, d(1 - p_t)/dx = (1 - 2y) p (1 - p)
        d_ce = p - yi
        d_one_minus = (1.0 - 2.0 * yi) * p * (1.0 - p)
        d_focal = gamma * one_minus ** (gamma - 1.0) * d_one_minus if gamma != 0 else 0.0
        grad[index] = wi * alpha_t * (d_ce * one_minus**gamma + ce * d_focal)
    return _reduce(losses, grad, reduction, x.size)


def kl_div(x, t, log_target=False, reduction="batchmean"):
    x = np.asarray(x, dtype=np.float64)
    losses = np.zeros(x.shape)
    grad = np.zeros(x.shape)
    for index, xi, ti in _elements(x.shape, x, t):
        if log_target:
            q = math.exp(ti)
            losses[index] = q * (ti - xi) if q > 0 else 0.0
            grad[index] = -q
        else:
            losses[index] = ti * (math.log(ti) - xi) if ti > 0 else 0.0
            grad[index] = -ti
    if reduction == "batchmean":
        return _reduce(losses, grad, "mean", x.shape[0] if x.ndim else 1)
    return _reduce(losses, grad, reduction, x.size)
