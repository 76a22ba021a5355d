r"""Symmetric cross-entropy (Wang et al. 2019): cross-entropy plus reverse cross-entropy.

For a row with softmax :math:`p` of logits :math:`z` and a one-hot target
:math:`y` (class :math:`t`), the loss is :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}` with

.. math::

    \mathrm{CE} = -\log p_t, \qquad
    \mathrm{RCE} = -\sum_c p_c \log y_c = -A\,(1 - p_t),

because :math:`\log y_t = 0` and :math:`\log y_c = \log 0` for :math:`c \ne t`,
which the paper replaces by the constant :math:`A` (``log_zero``, :math:`A = -4`
in the paper); :math:`\sum_{c \ne t} p_c = 1 - p_t`.

Gradient. With :math:`\lambda = \log p_t`, :math:`\partial\lambda/\partial z = \mathrm{onehot}(t) - p`
and :math:`\partial(1 - p_t)/\partial\lambda = -p_t`:

.. math::

    \frac{\partial L}{\partial \lambda} = -\alpha + \beta A\, p_t, \qquad
    \frac{\partial L}{\partial z} = (\alpha - \beta A\, p_t)\,(p - \mathrm{onehot}(t)).

Numerics: :math:`1 - p_t` is the other classes' total probability and
:math:`\lambda = -((m - z_t) + \mathrm{log1p}(r))` (row maximum :math:`m`, :math:`r` the
non-maximal terms of the softmax sum), so both stay accurate as :math:`p_t \to 1` (see
:mod:`crossent.losses.focal`). A target logit of ``-inf`` makes CE (so the
loss, when :math:`\alpha > 0`) ``+inf`` and leaves the gradient finite
(:math:`p_t = 0`: the coefficient is :math:`\alpha`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import reduce
from .._typing import LossValue, Reduction
from ._api import Loss, grad_function, value_and_grad_function
from .._validation import check_finite_scalar
from ._classification import (
    label_terms,
    prepare,
    row_softmax_terms,
    scaled_probability_gradient,
    times,
)

__all__ = [
    "symmetric_cross_entropy",
    "symmetric_cross_entropy_grad",
    "symmetric_cross_entropy_value_and_grad",
    "SymmetricCrossEntropyLoss",
]


def _symmetric_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = -4.0,
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
    alpha = check_finite_scalar(alpha, "alpha", low=0.0)
    beta = check_finite_scalar(beta, "beta", low=0.0)
    log_zero = check_finite_scalar(log_zero, "log_zero", high=0.0)
    scores, dtype = batch.scores, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows: the mean's d_n

    # Step 1: log p_t and 1 - p_t, accurate also where p_t -> 1 (see _classification.label_terms).
    probs, shift, log_sum = row_softmax_terms(scores)
    _, log_p, one_minus_p = label_terms(scores, batch.class_labels(), probs, shift, log_sum)

    # Step 2: alpha * CE + beta * (-A) (1 - p_t); alpha = 0 switches CE off even where it is inf.
    row_losses = (-beta * log_zero) * one_minus_p
    if alpha != 0:
        row_losses = row_losses - alpha * log_p
    losses = times(row_weight, row_losses)
    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: dL/dz = s_n (alpha - beta A p_t)(p - onehot(t)), times 1/D once for the mean.
    p_target = np.exp(log_p)
    coefficient = (row_weight * (alpha - (beta * log_zero) * p_target)).astype(dtype, copy=False)
    return value, scaled_probability_gradient(batch, probs, coefficient, denominator)


def symmetric_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = -4.0,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Symmetric cross-entropy :math:`\alpha\,\mathrm{CE} + \beta\,\mathrm{RCE}` (Wang et al. 2019).

    For row :math:`n` with softmax :math:`p_n`, label :math:`t_n` and sample
    weight :math:`s_n`, with :math:`A` = ``log_zero``:

    .. math::

        L_n = s_n\big[-\alpha \log p_{n,t_n} - \beta A\,(1 - p_{n,t_n})\big],

        \frac{\partial L_n}{\partial z_n} = s_n\,(\alpha - \beta A\, p_{n,t_n})\,(p_n - \mathrm{onehot}(t_n)).

    The reverse cross-entropy :math:`\mathrm{RCE} = -\sum_c p_c \log y_c` of a
    one-hot label needs :math:`\log 0`, which the paper replaces by a constant
    :math:`A`; ``log_zero`` is that constant (default :math:`-4`, the paper's
    value), so :math:`\mathrm{RCE} = -A(1 - p_t)`, a scaled mean absolute
    error. The defaults ``alpha=0.1, beta=1.0`` are the paper's CIFAR-10
    setting (it uses ``alpha=6.0, beta=0.1`` for CIFAR-100).

    The widely used PyTorch reproduction (``SCELoss`` in HanxunH/SCELoss-Reproduce)
    clamps the one-hot label to ``[1e-4, 1]``, i.e. uses :math:`A = \ln 10^{-4}
    \approx -9.21` rather than :math:`-4`, and also clamps the softmax to
    ``[1e-7, 1]`` inside RCE. ``log_zero=math.log(1e-4)`` reproduces it exactly
    whenever every probability is at least ``1e-7``; crossent does not clamp
    the probabilities.

    :math:`1 - p_t` is summed from the other classes' probabilities and
    :math:`\log p_t` comes from a ``log1p`` of the non-maximal softmax terms, so both keep their
    relative accuracy as :math:`p_t \to 1`.

    Reduction: ``"sum"`` adds the :math:`L_n`; ``"mean"`` divides by
    :math:`D = \sum_n s_n` over the non-ignored rows (the number of
    non-ignored rows without ``sample_weight``). :math:`D = 0` gives ``0.0``
    with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes; a target class at ``-inf`` gives ``+inf`` when ``alpha > 0``
        (and :math:`-\beta A s_n` when ``alpha == 0``), with a finite gradient.
    target : integer array_like
        Class labels: ``logits``' shape without the class axis, each in
        ``[0, C)`` or equal to ``ignore_index``.
    alpha : float >= 0, default 0.1
        Weight of the cross-entropy term.
    beta : float >= 0, default 1.0
        Weight of the reverse cross-entropy term.
    log_zero : float <= 0, default -4.0
        The constant :math:`A` that stands for :math:`\log 0` in RCE.
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
    p_t = 0.5: 0.1 * log 2 + 4 * 0.5

    >>> import numpy as np
    >>> from crossent.losses.symmetric import symmetric_cross_entropy, symmetric_cross_entropy_grad
    >>> logits = np.log(np.array([[0.5, 0.25, 0.25]]))
    >>> round(float(symmetric_cross_entropy(logits, np.array([0]))), 6)
    2.069315
    >>> np.round(symmetric_cross_entropy_grad(logits, np.array([0])), 4)  # (0.1 + 4 * 0.5)(p - y)
    array([[-1.05 ,  0.525,  0.525]])
    """
    return _symmetric_cross_entropy(
        logits, target, alpha=alpha, beta=beta, log_zero=log_zero, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, axis=axis, compute_grad=False,
    )[0]


symmetric_cross_entropy_grad = grad_function(symmetric_cross_entropy, _symmetric_cross_entropy)
symmetric_cross_entropy_value_and_grad = value_and_grad_function(
    symmetric_cross_entropy, _symmetric_cross_entropy
)


class SymmetricCrossEntropyLoss(Loss):
    """:func:`crossent.symmetric_cross_entropy` with fixed options.

    ``SymmetricCrossEntropyLoss(alpha=0.1, beta=1.0, log_zero=-4.0, ignore_index=None,
    reduction="mean", axis=-1)``; ``sample_weight`` is given per call.
    """

    function = staticmethod(symmetric_cross_entropy)
    implementation = staticmethod(_symmetric_cross_entropy)
