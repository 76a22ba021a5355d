r"""Softmax focal loss (Lin et al. 2017): cross-entropy that down-weights easy examples.

For a row with logits :math:`z`, softmax :math:`p = \mathrm{softmax}(z)`, target
class :math:`y`, :math:`\lambda = \log p_y` and :math:`\omega = 1 - p_y`:

.. math:: L = -\alpha_y\, \omega^\gamma \lambda .

Gradient. :math:`\partial\lambda/\partial z = \mathrm{onehot}(y) - p` and
:math:`\partial\omega/\partial\lambda = -p_y`, so

.. math::

    \frac{\partial L}{\partial \lambda}
      = -\alpha_y\big(\omega^\gamma - \gamma\, p_y\, \omega^{\gamma-1} \lambda\big),
    \qquad
    \frac{\partial L}{\partial z} = \alpha_y\, g\, (p - \mathrm{onehot}(y)),
    \quad g = \omega^\gamma\Big(1 - \gamma\, p_y \frac{\lambda}{\omega}\Big).

Numerics. :math:`1 - p_y` is the sum of the other classes' probabilities,
:math:`\omega = \sum_{c \ne y} p_c`, a sum of positive terms that keeps its
relative accuracy however close :math:`p_y` is to 1. (:math:`-\mathrm{expm1}(z_y - \mathrm{LSE})`
does not: the sum inside LSE is rounded next to 1, so for logits (20, 0, 0)
it is off by 4e-7 relative, and for (40, 0, 0) it is 0 instead of 8.5e-18.)
:math:`\lambda = -((m - z_y) + \mathrm{log1p}(r))` with :math:`m` the row maximum and
:math:`r` the sum of :math:`e^{z_c - m}` over every class but the maximum's, which
is accurate as :math:`p_y \to 1` too. See
:func:`~crossent.losses._classification.label_terms`.

The factor :math:`\omega^{\gamma-1}` is infinite at :math:`\omega = 0` for :math:`\gamma < 1`,
so the gradient uses the ratio :math:`\lambda/\omega`, which tends to
:math:`-1` as :math:`\omega \to 0` (set exactly there: :math:`g = 0^\gamma \cdot (1+\gamma)`).
At the other end, a target logit of ``-inf`` gives :math:`p_y = 0`,
:math:`\lambda = -\infty`: the loss is ``+inf`` and :math:`p_y \lambda / \omega \to 0`,
so :math:`g = 1` and the gradient stays finite (the cross-entropy gradient).
With :math:`\gamma = 0` the log factor is taken exactly as
:func:`crossent.softmax_cross_entropy` computes it (:math:`\mathrm{LSE} - z_y`)
and every other factor is exactly 1: the result is that function's, bit for bit.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import reduce
from .._typing import FloatArray, LossValue, Reduction
from .._validation import as_float_array, check_finite_nonnegative, check_finite_scalar
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import (
    ClassBatch,
    label_terms,
    prepare,
    row_softmax_terms,
    scaled_probability_gradient,
    times,
)

__all__ = [
    "focal_loss",
    "focal_loss_grad",
    "focal_loss_value_and_grad",
    "FocalLoss",
]


def _alpha_of_labels(alpha: float | ArrayLike | None, batch: ClassBatch) -> FloatArray | float:
    """``alpha_y`` for every row: a scalar, or a (C,) per-class array gathered at the labels."""
    if alpha is None:
        return 1.0
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        return check_finite_scalar(alpha, "alpha", low=0.0)
    if isinstance(alpha, bool):
        raise TypeError(f"alpha must be a number or an array of class weights, got {alpha!r}")
    array = as_float_array(alpha, "alpha")
    if array.ndim == 0:
        return check_finite_scalar(array.item(), "alpha", low=0.0)
    if array.shape != (batch.n_classes,):
        raise ValueError(
            f"alpha must be a scalar or hold one weight per class, shape ({batch.n_classes},), "
            f"got {array.shape}"
        )
    check_finite_nonnegative(array, "alpha")
    return array.astype(batch.dtype, copy=False)[batch.class_labels()]


def _focal_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: float | ArrayLike | None = None,
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
    gamma = check_finite_scalar(gamma, "gamma", low=0.0)
    label_alpha = _alpha_of_labels(alpha, batch)
    scores, dtype = batch.scores, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows: the mean's d_n

    # Step 1: softmax, then -log p_y, log p_y and 1 - p_y of the target (see label_terms).
    probs, shift, log_sum = row_softmax_terms(scores)
    nll, log_p, one_minus_p = label_terms(scores, batch.class_labels(), probs, shift, log_sum)
    modulation = one_minus_p**gamma  # 0**0 == 1
    # gamma = 0 is cross-entropy: take its log term with its arithmetic, so the two agree exactly
    log_term = nll if gamma == 0 else -log_p

    # Step 2: l_n = alpha_y s_n (1 - p_y)^gamma (-log p_y); alpha stays out of the denominator.
    loss_weight = row_weight * label_alpha
    losses = times(loss_weight, modulation * log_term)
    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: g = (1-p)^gamma (1 - gamma p log(p)/(1-p)); log(p)/(1-p) -> -1 as p -> 1,
    # and p log(p)/(1-p) -> 0 as p -> 0 (the 0 * inf at log_p = -inf is a limit, not a NaN).
    if gamma == 0:
        factor = modulation
    else:
        p_target = np.exp(log_p)
        safe_denominator = np.where(one_minus_p == 0, 1, one_minus_p).astype(dtype, copy=False)
        ratio = np.where(one_minus_p == 0, -1, log_p / safe_denominator)
        ratio = np.where(p_target == 0, 0, ratio)
        factor = modulation * (1 - gamma * p_target * ratio)
    coefficient = (loss_weight * factor).astype(dtype, copy=False)

    # Step 4: dL/dz = alpha_y s_n g (p - onehot(y)), times 1/D once for the mean.
    return value, scaled_probability_gradient(batch, probs, coefficient, denominator)


def focal_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: float | ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Softmax focal loss of class labels, from logits (Lin et al. 2017, multi-class form).

    For row :math:`n` with softmax :math:`p_n`, label :math:`y_n`, sample weight
    :math:`s_n` and class weight :math:`\alpha_{y_n}`:

    .. math::

        L_n = -\alpha_{y_n} s_n\, (1 - p_{n,y_n})^\gamma \log p_{n,y_n},

        \frac{\partial L_n}{\partial z_n} = \alpha_{y_n} s_n\, g_n\, (p_n - \mathrm{onehot}(y_n)),
        \quad g_n = (1-p_{n,y_n})^\gamma - \gamma\, p_{n,y_n} (1-p_{n,y_n})^{\gamma-1} \log p_{n,y_n}.

    :math:`1 - p_{n,y}` is summed from the other classes' probabilities and
    :math:`\log p_{n,y}` comes from a ``log1p`` of the non-maximal terms, so easy
    examples (:math:`p \to 1`) keep their relative accuracy; see the module
    docstring for the limits :math:`p \to 0` and :math:`p \to 1`. ``gamma=0`` with ``alpha=None`` is
    exactly :func:`crossent.softmax_cross_entropy`.

    Reduction: ``"sum"`` adds the :math:`L_n`; ``"mean"`` divides by
    :math:`D = \sum_n s_n` over the non-ignored rows (the number of non-ignored
    rows without ``sample_weight``). ``alpha`` does **not** enter the denominator
    (unlike ``weight`` in :func:`crossent.softmax_cross_entropy`, which divides
    by :math:`\sum_n w_{y_n} s_n`): the focal paper normalises by the number of
    examples. :math:`D = 0` gives ``0.0`` with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes; a target class at ``-inf`` gives a ``+inf`` loss and a finite
        gradient.
    target : integer array_like
        Class labels: ``logits``' shape without the class axis, each in
        ``[0, C)`` or equal to ``ignore_index``.
    gamma : float >= 0, default 2.0
        Focusing parameter (the paper's default); 0 gives cross-entropy.
    alpha : float >= 0 or array_like of shape (C,), optional
        Class balance weight :math:`\alpha_y` (1 if absent), finite and >= 0.
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
    An easy example (p_y = 0.9) costs 100 times less than with cross-entropy:

    >>> import numpy as np
    >>> from crossent.losses.focal import focal_loss, focal_loss_grad
    >>> from crossent import softmax_cross_entropy
    >>> logits = np.log(np.array([[0.9, 0.05, 0.05]]))
    >>> ce = softmax_cross_entropy(logits, np.array([0]))
    >>> round(float(focal_loss(logits, np.array([0])) / ce), 12)  # (1 - 0.9)^2
    0.01
    >>> np.round(focal_loss_grad(logits, np.array([0]), gamma=0.0), 4)
    array([[-0.1 ,  0.05,  0.05]])
    """
    return _focal_loss(
        logits, target, gamma=gamma, alpha=alpha, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, axis=axis, compute_grad=False,
    )[0]


focal_loss_grad = grad_function(focal_loss, _focal_loss)
focal_loss_value_and_grad = value_and_grad_function(focal_loss, _focal_loss)


class FocalLoss(Loss):
    """:func:`crossent.focal_loss` with fixed options.

    ``FocalLoss(gamma=2.0, alpha=None, ignore_index=None, reduction="mean", axis=-1)``;
    ``sample_weight`` is given per call.
    """

    function = staticmethod(focal_loss)
    implementation = staticmethod(_focal_loss)
