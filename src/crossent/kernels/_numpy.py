r"""NumPy twins of the compiled kernels: the readable specification, and the ``numpy`` backend.

Each function here takes exactly the arguments of its compiled twin in
:mod:`crossent.kernels._numba` and returns exactly what the dispatcher in
:mod:`crossent.kernels` returns, computed with whole-array NumPy operations.
The compiled kernels must agree with these to a few ulps (``tests/test_kernels.py``).
"""

from __future__ import annotations

import numpy as np

from ..losses._classification import (
    label_negative_log_likelihood,
    negative_log_probabilities,
    row_softmax_terms,
    times,
    weighted_sum,
)


def softmax_cross_entropy_label_rows(logits, labels, sample_weight, class_weight, smoothing, z_loss, scale, out):
    r"""Per-row loss and scaled gradient of softmax cross-entropy with class labels.

    For row :math:`n` with label :math:`y_n`, sample weight :math:`s_n`, class
    weights :math:`w_{n\cdot}` (one row shared by all, or one per row),
    smoothing :math:`\varepsilon`, z-loss :math:`\lambda` and
    :math:`d_n = s_n w_{n y_n}`:

    .. math::

        L_n &= (1-\varepsilon)\, d_n (-\log p_{n y_n})
              + \tfrac{\varepsilon}{C} s_n \sum_c w_{nc} (-\log p_{nc})
              + \lambda d_n \ell_n^2 \\
        G_n &= \mathrm{scale}\,\Big[\big(m_n + 2\lambda d_n \ell_n\big) p_n - q_n\Big],
        \quad q_{nc} = (1-\varepsilon) d_n [c = y_n] + \tfrac{\varepsilon}{C} s_n w_{nc},
        \quad m_n = \textstyle\sum_c q_{nc}

    Parameters
    ----------
    logits : ndarray (M, C), float32 or float64, C-contiguous
    labels : ndarray (M,) of intp, each in [0, C) (ignored rows carry a valid
        placeholder label and ``sample_weight`` 0)
    sample_weight : ndarray (M,) of the logits' dtype, or shape (0,) for all ones
    class_weight : ndarray (1, C) shared or (M, C) per row, or shape (1, 0) for none
    smoothing, z_loss, scale : float
        ``scale`` multiplies the gradient (``1 / D`` for the mean, else 1).
    out : ndarray (M, C) or None
        Where to write the gradient; may be ``logits`` itself.

    Returns
    -------
    losses : ndarray (M,) float64
    grad : ndarray (M, C)
        ``out`` when given.
    """
    n_rows, n_classes = logits.shape
    rows = np.arange(n_rows)
    sample = sample_weight if sample_weight.shape[0] else np.ones(n_rows, logits.dtype)
    weights = class_weight if class_weight.shape[1] else None

    probs, shift, log_sum = row_softmax_terms(logits)
    log_sum_exp = shift + log_sum
    finite_log_sum_exp = np.where(np.isneginf(log_sum_exp), 0, log_sum_exp)
    if weights is None:
        denominator_weight = sample
    else:
        denominator_weight = sample * (weights[0, labels] if weights.shape[0] == 1 else weights[rows, labels])
    losses = (1 - smoothing) * times(denominator_weight, label_negative_log_likelihood(logits, labels, shift, log_sum))
    target_mass = (1 - smoothing) * denominator_weight
    if smoothing > 0:
        smooth_weight = np.broadcast_to(sample[:, None] * (1 if weights is None else weights), logits.shape)
        losses = losses + smoothing / n_classes * weighted_sum(
            smooth_weight, negative_log_probabilities(logits, shift, log_sum)
        )
        target_mass = target_mass + smoothing / n_classes * smooth_weight.sum(axis=1)
    if z_loss > 0:
        losses = losses + z_loss * times(denominator_weight, np.square(log_sum_exp))

    grad = probs
    grad *= (target_mass + 2 * z_loss * denominator_weight * finite_log_sum_exp)[:, None]
    grad[rows, labels] -= (1 - smoothing) * denominator_weight
    if smoothing > 0:
        grad -= smoothing / n_classes * smooth_weight
    grad *= scale
    if out is not None:
        np.copyto(out, grad)
        grad = out
    return losses.astype(np.float64), grad


def softmax_cross_entropy_probability_rows(
    logits, target, sample_weight, class_weight, smoothing, z_loss, scale, out
):
    r"""Per-row loss and scaled gradient of softmax cross-entropy with probability targets.

    With :math:`q_{nc} = s_n w_{nc} \big((1-\varepsilon) t_{nc} + \varepsilon / C\big)`
    and :math:`m_n = \sum_c q_{nc}`:

    .. math::

        L_n = \sum_c q_{nc} (-\log p_{nc}) + \lambda s_n \ell_n^2, \qquad
        G_n = \mathrm{scale}\,\big[(m_n + 2\lambda s_n \ell_n)\, p_n - q_n\big]

    (a zero :math:`q_{nc}` contributes 0 even where :math:`p_{nc} = 0`).
    Arguments as :func:`softmax_cross_entropy_label_rows`, with ``target`` an
    (M, C) array of probabilities in place of the labels.
    """
    n_rows, n_classes = logits.shape
    sample = sample_weight if sample_weight.shape[0] else np.ones(n_rows, logits.dtype)
    probs, shift, log_sum = row_softmax_terms(logits)
    log_sum_exp = shift + log_sum
    finite_log_sum_exp = np.where(np.isneginf(log_sum_exp), 0, log_sum_exp)
    smoothed = target if smoothing == 0 else (1 - smoothing) * target + smoothing / n_classes
    effective = sample[:, None] * smoothed
    if class_weight.shape[1]:
        effective = effective * class_weight
    losses = weighted_sum(effective, negative_log_probabilities(logits, shift, log_sum))
    if z_loss > 0:
        losses = losses + z_loss * times(sample, np.square(log_sum_exp))
    grad = probs
    grad *= (effective.sum(axis=1) + 2 * z_loss * sample * finite_log_sum_exp)[:, None]
    grad -= effective
    grad *= scale
    if out is not None:
        np.copyto(out, grad)
        grad = out
    return losses.astype(np.float64), grad


def sigmoid_binary_cross_entropy_elements(logits, target, positive_weight, weight, scale, out):
    r"""Loss and scaled gradient of every element of flat arrays: sigmoid binary cross-entropy.

    .. math::

        l = w\,[p\,y\,\mathrm{softplus}(-x) + (1-y)\,\mathrm{softplus}(x)], \qquad
        \frac{\partial l}{\partial x} = w\,[(1-y)\,\sigma(x) - p\,y\,\sigma(-x)]

    ``positive_weight`` (p) and ``weight`` (w) are flat arrays, or shape (0,) for 1;
    a zero coefficient contributes 0 even where softplus is infinite. Returns
    ``(losses, scale * gradient)`` in the logits' dtype.
    """
    from ..losses.binary import _logistic_parts

    softplus_pos, softplus_neg, sigmoid_pos, sigmoid_neg = _logistic_parts(logits)
    positive_part = target * positive_weight if positive_weight.shape[0] else target
    negative_part = 1 - target
    losses = times(positive_part, softplus_neg) + times(negative_part, softplus_pos)
    grad = negative_part * sigmoid_pos - positive_part * sigmoid_neg
    if weight.shape[0]:
        losses = times(weight, losses)
        grad = grad * weight
    grad *= scale
    if out is not None:
        np.copyto(out, grad)
        grad = out
    return losses, grad
