r"""Poly-1 cross-entropy (Leng et al. 2022): cross-entropy plus :math:`\epsilon(1 - p_t)`.

For a row with softmax :math:`p` of logits :math:`z` and a target distribution
:math:`y` (one-hot labels or probabilities, optionally label-smoothed to
:math:`(1-\sigma) y + \sigma / C`), let :math:`p_t = \sum_c y_c p_c`, the
probability the model gives the target. Poly-1 is the first term of the
Taylor series of cross-entropy in :math:`1 - p_t`, re-weighted:

.. math:: L = \mathrm{CE}(z, y) + \epsilon\,(1 - p_t).

Gradient of the poly term. :math:`\partial p_c/\partial z_j = p_c(\delta_{cj} - p_j)`, so

.. math::

    \frac{\partial p_t}{\partial z_j} = y_j p_j - p_t p_j, \qquad
    \frac{\partial\, \epsilon(1 - p_t)}{\partial z} = -\epsilon\,(y \odot p - p_t\, p)
      = \epsilon\, p \odot (p_t - y).

The cross-entropy term is :func:`crossent.softmax_cross_entropy` itself
(same ``weight``/``label_smoothing`` semantics, same arithmetic), so
``epsilon=0`` is exactly that loss.

Numerics. Because :math:`\sum_c p_c = 1`,
:math:`1 - p_t = \sum_c p_c (1 - y_c)`, a sum of non-negative terms that keeps
its relative accuracy as :math:`p_t \to 1` (for labels this is
:math:`\sigma(1 - 1/C)\,p_y + (1 - \sigma/C)(1 - p_y)` with :math:`1 - p_y` the
other classes' total probability). The poly term is bounded
(:math:`p_t \in [0, 1]`), so the loss is infinite exactly where cross-entropy is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import LossValue, Reduction
from .._validation import check_finite_scalar, check_scalar
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import label_terms, label_values, prepare, row_softmax_terms
from .cross_entropy import _gather_label_weight, _softmax_cross_entropy, class_weight_rows

__all__ = [
    "poly1_cross_entropy",
    "poly1_cross_entropy_grad",
    "poly1_cross_entropy_value_and_grad",
    "Poly1CrossEntropyLoss",
]


def _poly1_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    epsilon: float = 1.0,
    label_smoothing: float = 0.0,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    axis: int = -1,
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    batch = prepare(
        logits, target, axis=axis, reduction=reduction, ignore_index=ignore_index,
        sample_weight=sample_weight,
    )
    epsilon = check_finite_scalar(epsilon, "epsilon")
    smoothing = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    class_weight = class_weight_rows(weight, batch)
    scores, n_classes, dtype = batch.scores, batch.n_classes, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows

    # Step 1: the CE term, per row, and the gradient of its sum -- softmax_cross_entropy itself,
    # so the two can never drift apart (at the price of a second softmax pass).
    ce_losses, ce_grad = _softmax_cross_entropy(
        logits, target, weight=weight, sample_weight=sample_weight, ignore_index=ignore_index,
        label_smoothing=smoothing, reduction="none", axis=axis, compute_grad=compute_grad,
    )
    # softmax_cross_entropy's denominator: s_n w_{n,y_n} for labels, s_n for probabilities.
    if batch.labels is not None:
        denominator_weight = row_weight * _gather_label_weight(class_weight, batch.labels)
    else:
        denominator_weight = row_weight

    # Step 2: p_t and 1 - p_t. With sum_c p_c = 1, 1 - p_t = sum_c p_c (1 - y_c): a sum of
    # non-negative terms, accurate however close p_t is to 1 (1 - p_t itself would cancel).
    probs, shift, log_sum = row_softmax_terms(scores)
    has_mass = ~np.isneginf(log_sum)  # a row of only -inf logits has p = 0, so p_t = 0
    if batch.labels is not None:
        _, _, one_minus_p = label_terms(scores, batch.labels, probs, shift, log_sum)
        p_label = label_values(probs, batch.labels)
        p_target = (1 - smoothing) * p_label + smoothing / n_classes
        # y_c = (1 - sigma) [c = y] + sigma / C: 1 - y_y = sigma (1 - 1/C), 1 - y_c = 1 - sigma/C
        one_minus_target = (
            smoothing * (1 - 1 / n_classes) * p_label + (1 - smoothing / n_classes) * one_minus_p
        )
    else:
        smoothed = batch.target_matrix()  # the probabilities (no labels)
        if smoothing > 0:
            smoothed = (1 - smoothing) * smoothed + smoothing / n_classes
        p_target = np.sum(smoothed * probs, axis=1)
        one_minus_target = np.sum(probs * (1 - smoothed), axis=1)
    one_minus_target = np.where(has_mass, one_minus_target, 1).astype(dtype, copy=False)

    # Step 3: l_n = CE_n + epsilon d_n (1 - p_t): the poly term carries the row's weight d_n,
    # so the mean is a weighted mean of both terms (scaling every weight leaves it unchanged).
    poly_weight = (epsilon * denominator_weight).astype(dtype, copy=False)
    poly_losses = poly_weight * one_minus_target
    losses = ce_losses + batch.restore_rows(poly_losses)
    denominator = float(np.sum(denominator_weight, dtype=np.float64))
    value = reduce(losses, batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 4: d(poly)/dz = epsilon d_n p * (p_t - y), added to CE's gradient, times 1/D once.
    grad = probs
    if batch.labels is not None:
        grad *= (poly_weight * (p_target - smoothing / n_classes))[:, None]
        grad[np.arange(batch.n_rows), batch.labels] -= poly_weight * (1 - smoothing) * p_label
    else:
        grad *= p_target[:, None] - smoothed
        grad *= poly_weight[:, None]
    grad = ce_grad + batch.restore_grad(grad)
    grad *= gradient_scale(batch.reduction, denominator)
    return value, grad


def poly1_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    epsilon: float = 1.0,
    label_smoothing: float = 0.0,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Poly-1 cross-entropy :math:`\mathrm{CE} + \epsilon(1 - p_t)` from logits (Leng et al. 2022).

    For row :math:`n` with softmax :math:`p_n`, target distribution :math:`y_n`
    (one-hot of the label, or the probability row; with ``label_smoothing``
    :math:`\sigma` replaced by :math:`(1-\sigma) y_n + \sigma/C`), row weight
    :math:`d_n` and :math:`p_{t,n} = \sum_c y_{nc} p_{nc}`:

    .. math::

        L_n = \mathrm{CE}_n + \epsilon\, d_n (1 - p_{t,n}),

        \frac{\partial L_n}{\partial z_n} = \frac{\partial\,\mathrm{CE}_n}{\partial z_n}
            - \epsilon\, d_n\,(y_n \odot p_n - p_{t,n}\, p_n),

    where :math:`\mathrm{CE}_n` is the per-row loss of
    :func:`crossent.softmax_cross_entropy` with the same ``weight``,
    ``sample_weight``, ``ignore_index`` and ``label_smoothing`` (bit for bit:
    ``epsilon=0`` is that function). The row weight is softmax_cross_entropy's:
    :math:`d_n = s_n w_{n,y_n}` for class labels and :math:`d_n = s_n` for
    probabilities (:math:`s_n` the ``sample_weight``, :math:`w` the ``weight``),
    so the mean below is a weighted mean of both terms.

    Reduction: ``"sum"`` adds the :math:`L_n`; ``"mean"`` divides both terms by
    softmax_cross_entropy's denominator :math:`D`: :math:`\sum_n s_n` over the
    non-ignored rows when ``weight`` is None (the number of non-ignored rows
    without ``sample_weight``); with ``weight``, :math:`\sum_n w_{n,y_n} s_n` for
    class labels and :math:`\sum_n s_n` for probabilities. :math:`D = 0` gives
    ``0.0`` with a zero gradient.

    :math:`1 - p_t` is computed as :math:`\sum_c p_c (1 - y_c)` (see the module
    docstring), never as ``1 - p_t`` after rounding.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes; the loss is ``+inf`` exactly where cross-entropy is, with a
        finite gradient.
    target : array_like
        Integer dtype: class labels with ``logits``' shape minus the class
        axis, each in ``[0, C)`` or equal to ``ignore_index``. Floating dtype:
        probabilities with ``logits``' shape (rows >= 0 summing to 1), as in
        :func:`crossent.softmax_cross_entropy`.
    epsilon : float, default 1.0
        Coefficient of :math:`1 - p_t`; any finite real. The paper tunes it per
        task and its reference code notes ``epsilon >= -1`` (below -1 the
        leading polynomial coefficient :math:`1 + \epsilon` of the loss in
        :math:`1 - p_t` is negative, so the loss no longer decreases
        monotonically in :math:`p_t`); crossent does not enforce that bound.
    label_smoothing : float in [0, 1], default 0
    weight : array_like, optional
        Class weights (C,) or per-sample-per-class weights broadcastable to
        ``logits``, as in :func:`crossent.softmax_cross_entropy`; CE term only.
    sample_weight : array_like, optional
        One finite weight >= 0 per row; scales both terms.
    ignore_index : int, optional
        Label whose rows give 0 loss, 0 gradient and leave the denominator
        (class labels only).
    reduction : {"mean", "sum", "none"}, default "mean"
    axis : int, default -1
        The class axis of ``logits``.

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of the row shape for ``"none"``.

    Shapes
    ------
    logits (N, C) with target (N,) labels or (N, C) probabilities; in general
    logits (d0, ..., C, ..., dk) with labels (d0, ..., dk).

    Examples
    --------
    p_t = 0.5: log 2 + 1 * 0.5

    >>> import numpy as np
    >>> from crossent.losses.poly1 import poly1_cross_entropy, poly1_cross_entropy_grad
    >>> logits = np.log(np.array([[0.5, 0.25, 0.25]]))
    >>> round(float(poly1_cross_entropy(logits, np.array([0]))), 6)
    1.193147
    >>> np.round(poly1_cross_entropy_grad(logits, np.array([0])), 4)
    array([[-0.75 ,  0.375,  0.375]])
    """
    return _poly1_cross_entropy(
        logits, target, epsilon=epsilon, label_smoothing=label_smoothing, weight=weight,
        sample_weight=sample_weight, ignore_index=ignore_index, reduction=reduction, axis=axis,
        compute_grad=False,
    )[0]


poly1_cross_entropy_grad = grad_function(poly1_cross_entropy, _poly1_cross_entropy)
poly1_cross_entropy_value_and_grad = value_and_grad_function(poly1_cross_entropy, _poly1_cross_entropy)


class Poly1CrossEntropyLoss(Loss):
    """:func:`crossent.poly1_cross_entropy` with fixed options.

    ``Poly1CrossEntropyLoss(epsilon=1.0, label_smoothing=0.0, weight=None,
    ignore_index=None, reduction="mean", axis=-1)``; ``sample_weight`` is given per call.
    """

    function = staticmethod(poly1_cross_entropy)
    implementation = staticmethod(_poly1_cross_entropy)
