r"""Generalized cross-entropy (Zhang & Sabuncu 2018): the noise-robust :math:`L_q` loss.

For a row with softmax :math:`p` of logits :math:`z`, target class :math:`y` and
:math:`\lambda = \log p_y = z_y - \mathrm{LSE}(z)`:

.. math::

    L_q = \frac{1 - p_y^q}{q} = \frac{-\mathrm{expm1}(q\lambda)}{q}, \qquad q \in (0, 1].

:math:`q \to 0` gives cross-entropy :math:`-\lambda` (the Box-Cox limit) and
:math:`q = 1` the mean absolute error :math:`1 - p_y` (up to a factor 2).

Gradient. :math:`\partial L_q/\partial\lambda = -e^{q\lambda} = -p_y^q` and
:math:`\partial\lambda/\partial z = \mathrm{onehot}(y) - p`, so

.. math:: \frac{\partial L_q}{\partial z} = p_y^q\,(p - \mathrm{onehot}(y)),

cross-entropy's gradient scaled by :math:`p_y^q`: confidently wrong (possibly
mislabelled) examples pull less.

Truncated loss (the paper's :math:`L_{\mathrm{trunc}}`, threshold :math:`k`):
:math:`L_q(p_y)` where :math:`p_y > k`, the constant :math:`L_q(k)` (zero
gradient) where :math:`p_y \le k`; decided as :math:`\lambda > \log k`.

Numerics. :math:`p_y^q = \exp(q\lambda)` and ``-expm1`` keep the loss accurate
for small :math:`q` (where :math:`1 - p_y^q` cancels); :math:`\lambda` is
:math:`-((m - z_y) + \mathrm{log1p}(r))` (row maximum :math:`m`, :math:`r` the
non-maximal terms of the softmax sum), so it stays accurate as :math:`p_y \to 1`
(see :mod:`crossent.losses.focal`). The loss is bounded by :math:`1/q`: a
target logit of ``-inf`` gives exactly :math:`1/q` and a zero gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import reduce
from .._typing import LossValue, Reduction
from .._validation import check_scalar
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import (
    label_terms,
    prepare,
    row_softmax_terms,
    scaled_probability_gradient,
    times,
)

__all__ = [
    "generalized_cross_entropy",
    "generalized_cross_entropy_grad",
    "generalized_cross_entropy_value_and_grad",
    "GeneralizedCrossEntropyLoss",
]


def _generalized_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    q: float = 0.7,
    truncation: float | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    axis: int = -1,
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    batch = prepare(
        logits, target, axis=axis, reduction=reduction, ignore_index=ignore_index,
        sample_weight=sample_weight, allow_probabilities=False,
    )
    q = check_scalar(q, "q", low=0.0, high=1.0, low_inclusive=False)
    if truncation is not None:
        truncation = check_scalar(
            truncation, "truncation", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False
        )
    scores, dtype = batch.scores, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows: the mean's d_n

    # Step 1: log p_y, accurate also where p_y -> 1 (see _classification.label_terms).
    probs, shift, log_sum = row_softmax_terms(scores)
    _, log_p, _ = label_terms(scores, batch.class_labels(), probs, shift, log_sum)

    # Step 2: L_q = (1 - p^q)/q = -expm1(q log p)/q; truncated rows hold L_q(k).
    scaled_log_p = q * log_p
    row_losses = -np.expm1(scaled_log_p) / q
    coefficient = np.exp(scaled_log_p)  # p_y^q, the gradient's scale
    if truncation is not None:
        kept = ~(log_p <= math.log(truncation))  # NaN rows stay on the formula and propagate
        row_losses = np.where(kept, row_losses, -math.expm1(q * math.log(truncation)) / q)
        coefficient = np.where(kept, coefficient, 0)
    losses = times(row_weight, row_losses.astype(dtype, copy=False))
    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: dL/dz = s_n p_y^q (p - onehot(y)), times 1/D once for the mean.
    coefficient = (row_weight * coefficient).astype(dtype, copy=False)
    return value, scaled_probability_gradient(batch, probs, coefficient, denominator)


def generalized_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    q: float = 0.7,
    truncation: float | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Generalized cross-entropy :math:`L_q` of class labels, from logits (Zhang & Sabuncu 2018).

    For row :math:`n` with softmax :math:`p_n`, label :math:`y_n` and sample
    weight :math:`s_n`:

    .. math::

        L_n = s_n \frac{1 - p_{n,y_n}^q}{q}, \qquad
        \frac{\partial L_n}{\partial z_n} = s_n\, p_{n,y_n}^q\, (p_n - \mathrm{onehot}(y_n)).

    :math:`p^q` is computed as :math:`\exp(q \log p)` and :math:`1 - p^q` as
    ``-expm1(q log p)``, with :math:`\log p` accurate also as :math:`p \to 1`
    (see :mod:`crossent.losses.focal`). As
    :math:`q \to 0` the loss tends to :func:`crossent.softmax_cross_entropy`;
    :math:`q = 1` is :math:`1 - p_y`. The loss is bounded by :math:`1/q`
    (reached when the target logit is ``-inf``, with a zero gradient).

    With ``truncation`` :math:`k` (the paper's truncated loss):
    :math:`L_n = s_n L_q(p_{n,y_n})` if :math:`p_{n,y_n} > k`, else the constant
    :math:`s_n L_q(k) = s_n (1 - k^q)/q` with zero gradient.

    Reduction: ``"sum"`` adds the :math:`L_n`; ``"mean"`` divides by
    :math:`D = \sum_n s_n` over the non-ignored rows (the number of
    non-ignored rows without ``sample_weight``); truncated rows stay in
    :math:`D`. :math:`D = 0` gives ``0.0`` with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``; ``-inf`` marks impossible classes.
    target : integer array_like
        Class labels: ``logits``' shape without the class axis, each in
        ``[0, C)`` or equal to ``ignore_index``.
    q : float in (0, 1], default 0.7
        The paper's default.
    truncation : float in (0, 1), optional
        Threshold :math:`k` of the truncated loss (the paper uses 0.5).
    sample_weight : array_like, optional
        One finite weight >= 0 per row.
    ignore_index : int, optional
        Label whose rows give 0 loss, 0 gradient and leave the denominator.
    reduction : {"mean", "sum", "none"}, default "mean"
    axis : int, default -1
        The class axis of ``logits``.

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of the row shape for ``"none"``.

    Shapes
    ------
    logits (N, C) with target (N,); in general logits (d0, ..., C, ..., dk)
    with target (d0, ..., dk).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.generalized import generalized_cross_entropy
    >>> logits = np.log(np.array([[0.25, 0.75]]))
    >>> float(generalized_cross_entropy(logits, np.array([0]), q=1.0))  # 1 - p_y
    0.75
    >>> round(float(generalized_cross_entropy(logits, np.array([0]), q=0.5)), 6)  # (1 - 0.5) / 0.5
    1.0
    >>> round(float(generalized_cross_entropy(logits, np.array([0]), q=0.5, truncation=0.5)), 6)
    0.585786
    """
    return _generalized_cross_entropy(
        logits, target, q=q, truncation=truncation, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, axis=axis, compute_grad=False,
    )[0]


generalized_cross_entropy_grad = grad_function(generalized_cross_entropy, _generalized_cross_entropy)
generalized_cross_entropy_value_and_grad = value_and_grad_function(
    generalized_cross_entropy, _generalized_cross_entropy
)


class GeneralizedCrossEntropyLoss(Loss):
    """:func:`crossent.generalized_cross_entropy` with fixed options.

    ``GeneralizedCrossEntropyLoss(q=0.7, truncation=None, ignore_index=None,
    reduction="mean", axis=-1)``; ``sample_weight`` is given per call.
    """

    function = staticmethod(generalized_cross_entropy)
    implementation = staticmethod(_generalized_cross_entropy)
