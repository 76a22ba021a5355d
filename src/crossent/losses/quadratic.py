r"""The quadratic cost (mean squared error on the output activations), from logits.

This is the cost cross-entropy is classically compared against (Nielsen,
*Neural Networks and Deep Learning*, ch. 3): with output activations :math:`a`
and target :math:`y`,

.. math:: L_n = \tfrac12 \sum_c (a_{nc} - y_{nc})^2 .

The factor :math:`\tfrac12` cancels the 2 of the derivative (Nielsen's
convention; PyTorch's ``mse_loss`` has no :math:`\tfrac12`).

Derivation of the gradients (per row, weights aside):

* ``activation="sigmoid"``, :math:`a = \sigma(z)` element-wise: each element is
  its own term :math:`\tfrac12(a - y)^2` and
  :math:`\partial L / \partial z = (a - y)\,\sigma'(z) = (a - y)\, a (1 - a)`.
  The factor :math:`\sigma'(z) \le 1/4` vanishes for a saturated unit -- a
  confidently *wrong* output learns slowly. Cross-entropy's gradient is
  :math:`a - y`: the :math:`\sigma'` cancels, which is Nielsen's point.
* ``activation="softmax"``, :math:`a = \mathrm{softmax}(z)`, Jacobian
  :math:`\partial a_c / \partial z_j = a_c(\delta_{cj} - a_j)`:

  .. math::

      \frac{\partial L}{\partial z_j} = \sum_c (a_c - y_c)\, a_c (\delta_{cj} - a_j)
          = a_j\Big[(a_j - y_j) - \sum_c (a_c - y_c)\, a_c\Big].

Accuracy: the residual :math:`a - y` is formed without cancellation where the
target is 0 or 1. For a class label, :math:`a_y - 1 = -\sum_{c \ne y} a_c`; for
the sigmoid, :math:`a - y = (1 - y)\,\sigma(z) - y\,\sigma(-z)`, and
:math:`1 - a = \sigma(-z)` is evaluated directly, so a saturated unit keeps
its tiny gradient instead of rounding it to 0.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import FloatArray, LossValue, Reduction
from .._validation import (
    _describe,
    _first_position,
    as_float_array,
    check_axis,
    check_finite_nonnegative,
    check_ignore_index,
    check_not_empty,
    check_probabilities,
    check_reduction,
)
from ..functional import sigmoid
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import prepare, row_softmax

__all__ = [
    "mean_squared_error",
    "mean_squared_error_grad",
    "mean_squared_error_value_and_grad",
    "MeanSquaredErrorLoss",
]

ACTIVATIONS = ("softmax", "sigmoid")


def _check_activation(activation: object) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        expected = ", ".join(repr(a) for a in ACTIVATIONS)
        raise ValueError(f"activation must be one of {expected}, got {_describe(activation)}")
    return activation


def _softmax_squared_error(
    logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None, ignore_index: int | None, reduction: str,
    axis: int, compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    batch = prepare(
        logits, target, axis=axis, reduction=reduction, ignore_index=ignore_index,
        sample_weight=sample_weight,
    )
    dtype = batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows

    # Step 1: a = softmax(z) and the residual r = a - y.
    probs, lse = row_softmax(batch.scores)
    if batch.labels is not None:
        rows = np.arange(batch.n_rows)
        residual = probs.copy()
        residual[rows, batch.labels] = 0
        rest = residual.sum(axis=1)  # sum of a_c over c != y, i.e. 1 - a_y without cancellation
        # a row that is entirely -inf has a = 0, so its residual at y is -1, not -rest
        residual[rows, batch.labels] = np.where(np.isneginf(lse), -1, -rest).astype(dtype, copy=False)
    else:
        residual = probs - batch.probabilities

    # Step 2: L_n = w_n / 2 * sum_c r_c^2.
    losses = row_weight * (0.5 * np.square(residual).sum(axis=1))
    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: dL/dz_j = w_n a_j (r_j - sum_c r_c a_c), times 1/D once for the mean.
    projection = (residual * probs).sum(axis=1)
    residual -= projection[:, None]
    grad = probs
    grad *= residual
    grad *= row_weight[:, None]
    grad *= gradient_scale(batch.reduction, denominator)
    return value, batch.restore_grad(grad)


def _binary_target(target: ArrayLike, shape: tuple, batch_shape: tuple, dtype: DTypeLike) -> np.ndarray:
    """Sigmoid targets: logits' shape, floating in [0, 1] or integer / bool 0 and 1."""
    if isinstance(target, (str, bytes)) or target is None:
        raise TypeError(f"target must be an array of 0/1 labels or probabilities, got {target!r}")
    array = np.asarray(target)
    kind = array.dtype.kind
    if kind not in "iufb":
        raise TypeError(
            f"target must hold 0/1 labels or floating probabilities, got dtype {array.dtype}"
        )
    if array.shape != shape:
        hint = (
            "; class labels need activation='softmax' (or one-hot encode them)"
            if array.shape == batch_shape and kind in "iu"
            else ""
        )
        raise ValueError(
            f"target for activation='sigmoid' must have the logits' shape {shape} (one "
            f"target per element), got {array.shape}{hint}"
        )
    if kind in "iu":
        bad = (array != 0) & (array != 1)
        if bad.any():
            position = _first_position(bad)
            raise ValueError(
                f"target with an integer dtype must hold 0 or 1 for activation='sigmoid'; "
                f"found {int(array[position])} at position {position}"
            )
    elif kind == "f":
        check_probabilities(array, "target", None, normalised=False)
    return array.astype(dtype, copy=False)


def _element_weight(
    sample_weight: ArrayLike | None, shape: tuple, batch_shape: tuple, axis: int, dtype: DTypeLike
) -> FloatArray | None:
    """Per-element weights from a per-row (``batch_shape``) or per-element (``shape``) array."""
    if sample_weight is None:
        return None
    weights = as_float_array(sample_weight, "sample_weight")
    if weights.shape == batch_shape:
        weights = np.expand_dims(weights, axis)
    elif weights.shape != shape:
        raise ValueError(
            f"sample_weight for activation='sigmoid' must have one weight per row, shape "
            f"{batch_shape}, or one per element, shape {shape}; got {weights.shape}"
        )
    check_finite_nonnegative(weights, "sample_weight")
    return np.broadcast_to(weights.astype(dtype, copy=False), shape)


def _sigmoid_squared_error(
    logits: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None, ignore_index: int | None, reduction: str,
    axis: int, compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    z = as_float_array(logits, "logits")
    check_not_empty(z, "logits")
    axis = check_axis(axis, z.ndim)
    reduction = check_reduction(reduction)
    if check_ignore_index(ignore_index) is not None:
        raise ValueError(
            "ignore_index applies to activation='softmax' with class labels only; with "
            "activation='sigmoid' give the elements to skip sample_weight=0"
        )
    dtype = z.dtype
    batch_shape = z.shape[:axis] + z.shape[axis + 1 :]
    y = _binary_target(target, z.shape, batch_shape, dtype)
    weight = _element_weight(sample_weight, z.shape, batch_shape, axis, dtype)

    # Step 1: a = sigmoid(z), 1 - a = sigmoid(-z), and r = a - y = (1 - y) a - y (1 - a).
    a = sigmoid(z)
    one_minus_a = sigmoid(-z)
    residual = (1 - y) * a - y * one_minus_a

    # Step 2: one term per element, l = w / 2 * r^2; the mean divides by sum(w).
    losses = 0.5 * np.square(residual)
    if weight is None:
        denominator = float(z.size)
    else:
        losses = losses * weight
        denominator = float(np.sum(weight, dtype=np.float64))
    value = reduce(losses, reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: dl/dz = w r a (1 - a) -- the sigma'(z) factor cross-entropy cancels.
    grad = residual * a * one_minus_a
    if weight is not None:
        grad *= weight
    grad *= gradient_scale(reduction, denominator)
    return value, grad.astype(dtype, copy=False)


def _mean_squared_error(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    activation: str = "softmax",
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    axis: int = -1,
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    implementation = (
        _softmax_squared_error if _check_activation(activation) == "softmax" else _sigmoid_squared_error
    )
    return implementation(
        logits, target, sample_weight=sample_weight, ignore_index=ignore_index,
        reduction=reduction, axis=axis, compute_grad=compute_grad,
    )


def mean_squared_error(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    activation: Literal["softmax", "sigmoid"] = "softmax",
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Quadratic cost :math:`\tfrac12\lVert a - y\rVert^2` on softmax or sigmoid outputs, from logits.

    ``activation="softmax"`` (multi-class, one term per row):

    .. math::

        L_n = \frac{s_n}{2}\sum_c (a_{nc} - y_{nc})^2, \quad a_n = \mathrm{softmax}(z_n),
        \qquad
        \frac{\partial L_n}{\partial z_{nj}}
            = s_n\, a_{nj}\Big[(a_{nj} - y_{nj}) - \sum_c (a_{nc} - y_{nc})\, a_{nc}\Big],

    with :math:`y_n` = ``onehot(label)`` or the probability target.

    ``activation="sigmoid"`` (element-wise, e.g. multi-label; one term per element):

    .. math::

        l_i = \frac{w_i}{2}(a_i - y_i)^2, \quad a_i = \sigma(z_i),
        \qquad
        \frac{\partial l_i}{\partial z_i} = w_i (a_i - y_i)\, a_i (1 - a_i).

    The :math:`\tfrac12` (Nielsen's convention) cancels the 2 of the
    derivative. The sigmoid gradient carries :math:`\sigma'(z) = a(1-a)`, which
    is tiny for a saturated unit even when it is wrong -- the learning
    slowdown that cross-entropy (gradient :math:`a - y`) removes.

    Reduction (:mod:`crossent._reduction`): ``"sum"`` adds the terms; ``"mean"``
    divides by :math:`D = \sum d`. Softmax: :math:`d_n = s_n` per row (the
    number of rows without ``sample_weight``; ignored rows have
    :math:`d_n = 0`) -- Nielsen's :math:`\frac{1}{2n}\sum_x \lVert y - a\rVert^2`,
    whereas PyTorch's ``mse_loss`` would also divide by C. Sigmoid:
    :math:`d_i = w_i` per element (the number of elements without
    ``sample_weight``), so the mean is ``0.5 * torch.nn.functional.mse_loss(sigmoid(z), y)``.
    If :math:`D = 0` the mean is ``0.0`` with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores (class axis ``axis`` for the softmax). ``-inf``
        entries are fine: activations are bounded, so the loss is always finite.
    target : array_like
        ``"softmax"``: integer class labels (``logits``' shape minus the class
        axis, in ``[0, C)`` or ``ignore_index``) or floating probabilities of
        ``logits``' shape (rows summing to 1). ``"sigmoid"``: ``logits``' shape,
        floating in [0, 1], or integer / bool holding 0 and 1.
    activation : {"softmax", "sigmoid"}, default "softmax"
    sample_weight : array_like, optional
        Finite weights >= 0. ``"softmax"``: one per row (``logits``' shape minus
        the class axis). ``"sigmoid"``: one per row (applied to each of the
        row's C elements, so each counts C times in the mean's denominator) or
        one per element (``logits``' shape).
    ignore_index : int, optional
        ``"softmax"`` with class labels only: rows with this label contribute 0
        loss, 0 gradient and leave the mean's denominator. ``"sigmoid"`` raises
        a ValueError (give ``sample_weight=0`` instead).
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns one loss per row (softmax) or per element (sigmoid).
    axis : int, default -1
        The class axis of ``logits`` (for the sigmoid: the axis a per-row
        ``sample_weight`` is spread along).

    Returns
    -------
    numpy scalar of ``logits``' dtype, or for ``"none"`` an array of the row
    shape (softmax) or of ``logits``' shape (sigmoid).

    Shapes
    ------
    softmax: logits (N, C) with target (N,) labels or (N, C) probabilities;
    sigmoid: logits and target (N, C). In general the class axis may be anywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.quadratic import mean_squared_error, mean_squared_error_grad
    >>> logits = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(mean_squared_error(logits, np.array([1]))), 4)
    0.1056
    >>> np.round(mean_squared_error_grad(logits, np.array([1])), 4)
    array([[ 0.0905, -0.1327,  0.0422]])

    A saturated, wrong sigmoid unit barely moves (cross-entropy's gradient would be ~1):

    >>> mean_squared_error_grad(np.array([10.0]), np.array([0]), activation="sigmoid")
    array([4.53937469e-05])
    """
    return _mean_squared_error(
        logits, target, activation=activation, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, axis=axis, compute_grad=False,
    )[0]


mean_squared_error_grad = grad_function(mean_squared_error, _mean_squared_error)
mean_squared_error_value_and_grad = value_and_grad_function(mean_squared_error, _mean_squared_error)


class MeanSquaredErrorLoss(Loss):
    """:func:`crossent.mean_squared_error` with fixed options.

    ``MeanSquaredErrorLoss(activation="softmax", ignore_index=None,
    reduction="mean", axis=-1)``; ``sample_weight`` is given per call.
    """

    function = staticmethod(mean_squared_error)
    implementation = staticmethod(_mean_squared_error)
