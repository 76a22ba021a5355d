r"""Softmax cross-entropy and negative log-likelihood: value and analytic gradient.

The whole family reduces to one formula. For row :math:`n` with logits
:math:`z_n`, softmax :math:`p_n` and log-sum-exp :math:`\ell_n = \log\sum_c e^{z_{nc}}`,
let :math:`q_n` be the *effective target* (the target distribution with every
weight multiplied in). Then

.. math::

    L_n = \sum_c q_{nc}\,(\ell_n - z_{nc}) + \lambda\, d_n \ell_n^2, \qquad
    \frac{\partial L_n}{\partial z_n} = \Big(\sum_c q_{nc} + 2\lambda d_n \ell_n\Big)\, p_n - q_n

because :math:`\partial \ell_n / \partial z_n = p_n`. With a one-hot target and
no weights this is the familiar ``softmax(z) - y``. The mean divides by
:math:`D = \sum_n d_n` once (see :mod:`crossent._reduction`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import kernels
from .._reduction import gradient_scale, mean_scale, reduce
from .._typing import FloatArray, LossValue, Reduction
from .._validation import (
    as_float_array,
    broadcast_weight,
    check_out,
    check_finite_nonnegative,
    check_finite_scalar,
    check_scalar,
)
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import (
    ClassBatch,
    label_values,
    prepare,
    times,
)

__all__ = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_value_and_grad",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_value_and_grad",
    "CrossEntropyLoss",
    "NLLLoss",
]


def class_weight_rows(weight: ArrayLike | None, batch: ClassBatch, name: str = "weight") -> FloatArray | None:
    """Validate ``weight`` and return it as (C,) class weights or an (M, C) row matrix (or None).

    A 1-D weight is a class weight and must have length C. Anything else must
    broadcast to the input's shape (e.g. (N, C) per-sample-per-class weights).
    """
    if weight is None:
        return None
    array = as_float_array(weight, name)
    n_classes = batch.n_classes
    if array.ndim == 1:
        if array.shape != (n_classes,):
            raise ValueError(
                f"{name} with one dimension holds class weights and must have shape "
                f"({n_classes},), got {array.shape}"
            )
        check_finite_nonnegative(array, name)
        return array.astype(batch.dtype, copy=False)
    check_finite_nonnegative(array, name)
    full = broadcast_weight(array, batch.shape, name, batch.dtype)
    return np.moveaxis(full, batch.axis, -1).reshape(-1, n_classes)


def _gather_label_weight(class_weight: FloatArray | None, labels: NDArray[np.int64]) -> FloatArray | float:
    """Every row's weight of its label: ``w[y_n]`` (class weights) or ``w[n, y_n]`` (row weights); 1 without."""
    if class_weight is None:
        return 1.0
    if class_weight.ndim == 1:
        return class_weight[labels]
    return label_values(class_weight, labels)


def _softmax_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: str = "mean",
    axis: int = -1,
    compute_grad: bool,
    out: NDArray[Any] | None = None,
) -> tuple[LossValue, NDArray[Any] | None]:
    if out is not None:
        out = check_out(out, as_float_array(logits, "logits"))
    if (
        weight is None and sample_weight is None and ignore_index is None
        and type(label_smoothing) in (int, float) and 0 <= label_smoothing <= 1
        and type(z_loss) in (int, float) and z_loss == 0
    ):
        result = _plain_label_rows(logits, target, reduction, axis, compute_grad, float(label_smoothing), out)
        if result is not None:
            return result
    batch = prepare(
        logits, target, axis=axis, reduction=reduction, ignore_index=ignore_index,
        sample_weight=sample_weight,
    )
    smoothing = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    z_scale = check_finite_scalar(z_loss, "z_loss", low=0.0)
    class_weight = class_weight_rows(weight, batch)
    scores, n_classes, dtype = batch.scores, batch.n_classes, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows

    # The fused kernels (crossent.kernels) compute every row's loss and write the gradient
    # (sum_c q + 2 lambda d lse) p - q, scaled by 1/D; so D comes first -- it needs only the targets
    # and the weights. Class labels: q = (1 - eps) d_n onehot(y_n) + (eps / C) s_n w_n with
    # d_n = s_n w[n, y_n]; probabilities: q = s_n w_n ((1 - eps) t_n + eps / C) with d_n = s_n.
    kernel: Callable[..., tuple[NDArray[np.float64], FloatArray | None]]
    if batch.labels is not None:
        denominator_weight = row_weight * _gather_label_weight(class_weight, batch.labels)
        kernel, target_rows = kernels.softmax_cross_entropy_label_rows, batch.labels
    else:
        denominator_weight = row_weight
        kernel = kernels.softmax_cross_entropy_probability_rows
        target_rows = np.ascontiguousarray(batch.probabilities)
    denominator = float(np.sum(denominator_weight, dtype=np.float64))
    kernel_weight = np.empty((1, 0), dtype) if class_weight is None else class_weight.reshape(-1, n_classes)
    rows = np.ascontiguousarray(scores)
    losses, grad = kernel(
        rows, target_rows, row_weight, np.ascontiguousarray(kernel_weight), smoothing, z_scale,
        gradient_scale(batch.reduction, denominator), out=_rows_out(out, rows, batch.axis),
        compute_grad=compute_grad,
    )
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    return value, None if grad is None else _deliver(batch.restore_grad(grad), out)


def _rows_out(out: NDArray[Any] | None, rows: np.ndarray, axis: int) -> NDArray[Any] | None:
    """Where the kernel may write the (M, C) gradient directly: ``rows`` itself for in-place, else a view of ``out``.

    Only when the class axis is last and ``out`` is C-contiguous is ``out`` the
    rows layout; otherwise (None) the gradient goes to new memory and
    :func:`_deliver` copies it over. An ``out`` that shares memory with the
    logits in any other way is also handled by that copy.
    """
    if out is None or axis != out.ndim - 1 or not out.flags.c_contiguous:
        return None
    view = out.reshape(rows.shape)
    if view.__array_interface__["data"][0] == rows.__array_interface__["data"][0]:
        return rows  # the same memory, same layout: the in-place kernel
    return None if np.shares_memory(view, rows) else view


def _deliver(grad: np.ndarray, out: NDArray[Any] | None) -> NDArray[Any]:
    """The gradient in ``out`` when one was given (copied unless it is already there)."""
    if out is None or grad is out:
        return grad
    if not np.shares_memory(grad, out) or grad.__array_interface__ != out.__array_interface__:
        np.copyto(out, grad)
    return out


_ROW_INDICES: dict = {}  # n_rows -> read-only arange(n_rows): a training loop asks for the same few sizes


def _row_indices(n_rows: int) -> np.ndarray:
    rows = _ROW_INDICES.get(n_rows)
    if rows is None:
        if len(_ROW_INDICES) >= 32:
            _ROW_INDICES.clear()
        rows = np.arange(n_rows)
        rows.flags.writeable = False
        _ROW_INDICES[n_rows] = rows
    return rows


def _plain_label_rows(
    logits: Any, target: Any, reduction: str, axis: int, compute_grad: bool, smoothing: float,
    out: NDArray[Any] | None = None,
) -> tuple[LossValue, NDArray[Any] | None] | None:
    r"""Steps 1, 2 and 4 for (M, C) logits, class labels and every weight 1 -- a training step's case.

    With :math:`d_n = 1` and no z-loss the effective target is
    :math:`q_n = (1 - \varepsilon)\,\mathrm{onehot}(y_n) + \varepsilon / C`,
    :math:`\sum_c q_{nc} = 1`, :math:`D = M` and the gradient is
    :math:`(p_n - q_n) / M`. On a small batch the number of
    NumPy calls, not the arithmetic, sets the cost, so this path skips the
    general path's validation objects and its multiplications by weights that
    are exactly 1, and checks the labels with one minimum and one maximum.
    The fused kernel does the rest when :func:`crossent.kernels.use_compiled`
    says so; otherwise every row goes through the twin's own operations (shift by the row
    maximum, ``log1p`` of the sum without the maximum's term), so value and
    gradient are the general path's bit for bit.

    Returns None, and the caller takes the general path (which validates, and
    raises or handles the special rows), for anything else: another layout or
    dtype, labels out of range, or a row whose maximum is not finite (entirely
    ``-inf``, NaN or ``+inf``), the one case where the general path patches rows.
    """
    if type(logits) is not np.ndarray or type(target) is not np.ndarray:
        return None
    if logits.ndim != 2 or target.ndim != 1 or target.dtype.kind not in "iu":
        return None
    if logits.dtype != np.float32 and logits.dtype != np.float64:
        return None
    if type(axis) is not int or (axis != -1 and axis != 1) or type(reduction) is not str:
        return None
    n_rows, n_classes = logits.shape
    if reduction not in ("mean", "sum", "none") or target.shape[0] != n_rows or logits.size == 0:
        return None
    if target.min() < 0 or target.max() >= n_classes:  # compared in the labels' own dtype
        return None
    if kernels.use_compiled(logits.size):
        dtype = logits.dtype
        rows = np.ascontiguousarray(logits)
        losses, grad = kernels.softmax_cross_entropy_label_rows(
            rows, target, np.empty(0, dtype), np.empty((1, 0), dtype), smoothing, 0.0,
            mean_scale(n_rows) if reduction == "mean" else 1.0, out=_rows_out(out, rows, 1),
            compute_grad=compute_grad,
        )
        if grad is not None:
            grad = _deliver(grad, out)
        if reduction == "none":
            return losses.astype(dtype), grad
        total = np.add.reduce(losses)
        return dtype.type(total * mean_scale(n_rows) if reduction == "mean" else total), grad
    rows = _row_indices(n_rows)
    top = logits.argmax(axis=1)
    shift = logits[rows, top]
    if not np.isfinite(shift).all():
        return None
    probs = np.subtract(logits, shift[:, None])
    np.exp(probs, out=probs)  # every exponent <= 0; the maximum's term is exactly 1
    probs[rows, top] = 0
    rest = np.add.reduce(probs, axis=1)
    probs[rows, top] = 1
    log_sum = np.log1p(rest)
    probs /= (rest + 1)[:, None]
    losses = np.subtract(shift, logits[rows, target])  # +inf where the label's logit is -inf
    losses += log_sum
    if smoothing > 0:
        # the general path's terms in its order: (1 - eps) nll + eps / C * sum_c (-log p_c)
        neg_log_probs = np.subtract(shift[:, None], logits)
        neg_log_probs += log_sum[:, None]
        losses = (1 - smoothing) * losses + smoothing / n_classes * np.add.reduce(neg_log_probs, axis=1)
    if reduction == "none":
        value = losses
    else:
        total = np.add.reduce(losses, dtype=np.float64)
        value = logits.dtype.type(total * mean_scale(n_rows) if reduction == "mean" else total)
    if not compute_grad:
        return value, None
    if smoothing > 0:
        # sum_c q_c rounded as the general path rounds it: (1 - eps) + (eps / C) * C in the logits' dtype
        dtype = logits.dtype.type
        probs *= dtype(1 - smoothing) + dtype(smoothing / n_classes) * dtype(n_classes)
        probs[rows, target] -= 1 - smoothing
        probs -= smoothing / n_classes
    else:
        probs[rows, target] -= 1
    if reduction == "mean":
        probs *= mean_scale(n_rows)
    return value, _deliver(probs, out)


def softmax_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Cross-entropy between ``softmax(logits)`` and a target, from logits.

    For row :math:`n` with softmax :math:`p_n = \mathrm{softmax}(z_n)` and
    log-sum-exp :math:`\ell_n`:

    * class labels :math:`y_n`: :math:`L_n = w_{n,y_n} s_n (\ell_n - z_{n,y_n}) = -w_{n,y_n} s_n \log p_{n,y_n}`,
      gradient :math:`w_{n,y_n} s_n (p_n - \mathrm{onehot}(y_n))`;
    * probabilities :math:`t_n`: :math:`L_n = -s_n \sum_c w_{nc}\, t_{nc} \log p_{nc}`,
      gradient :math:`s_n \big((\sum_c w_{nc} t_{nc})\, p_n - w_n \odot t_n\big)`.

    Here :math:`w` is ``weight`` (1 if absent) and :math:`s` is ``sample_weight``
    (1 if absent). With ``label_smoothing`` :math:`\varepsilon` the target becomes
    :math:`(1-\varepsilon)\,\mathrm{onehot}(y_n) + \varepsilon / C` and class
    weights multiply both parts, as in PyTorch:
    :math:`L_n = s_n\big[(1-\varepsilon) w_{n,y_n}(-\log p_{n,y_n}) + \tfrac{\varepsilon}{C}\sum_c w_{nc}(-\log p_{nc})\big]`.
    ``z_loss`` :math:`\lambda` adds :math:`\lambda d_n \ell_n^2` (PaLM), gradient
    :math:`2\lambda d_n \ell_n p_n`, where :math:`d_n` is the row's weight below.

    Reduction (one contract, :mod:`crossent._reduction`): ``"sum"`` adds the
    :math:`L_n`; ``"mean"`` divides by :math:`D = \sum_n d_n` with
    :math:`d_n = s_n w_{n,y_n}` for class labels (PyTorch's weighted mean) and
    :math:`d_n = s_n` for probabilities (PyTorch divides by the number of rows);
    ignored rows have :math:`d_n = 0`. If :math:`D = 0` (every row ignored) the
    mean is ``0.0`` with a zero gradient -- PyTorch returns NaN there.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes (probability 0): finite loss unless the target puts mass there,
        in which case the loss is ``+inf`` and the gradient stays finite.
    target : array_like
        Integer dtype: class labels with ``logits``' shape minus the class axis,
        each in ``[0, C)`` or equal to ``ignore_index``. Floating dtype:
        probabilities with ``logits``' shape, each row >= 0 and summing to 1
        within ``sqrt(eps)`` of the dtype (times ``max(1, sqrt(C))``).
    weight : array_like, optional
        Shape (C,): class weights. Any other shape broadcastable to ``logits``
        (e.g. (N, C)): per-sample-per-class weights :math:`w_{nc}`. Finite, >= 0.
    sample_weight : array_like, optional
        One finite weight >= 0 per row: ``logits``' shape minus the class axis.
    ignore_index : int, optional
        Label value whose rows contribute 0 loss, 0 gradient and leave the
        mean's denominator. Class labels only (for probability targets use
        ``sample_weight=0``).
    label_smoothing : float in [0, 1], default 0
    z_loss : float >= 0, default 0
    reduction : {"mean", "sum", "none"}, default "mean"
    axis : int, default -1
        The class axis of ``logits`` (``axis=1`` for PyTorch's (N, C, d1, ...)).

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of the row shape for ``"none"``.

    Shapes
    ------
    logits (N, C) with target (N,) labels or (N, C) probabilities; in general
    logits (d0, ..., C, ..., dk) with labels (d0, ..., dk).

    Examples
    --------
    The cat/dog/bird example: logits (1, 2, 0.5), the true class is dog.

    >>> import numpy as np, crossent
    >>> logits = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(crossent.softmax_cross_entropy(logits, np.array([1]))), 4)
    0.4644
    >>> np.round(crossent.softmax_cross_entropy_grad(logits, np.array([1])), 4)
    array([[ 0.2312, -0.3715,  0.1402]])
    """
    return _softmax_cross_entropy(
        logits, target, weight=weight, sample_weight=sample_weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, z_loss=z_loss, reduction=reduction, axis=axis,
        compute_grad=False,
    )[0]


softmax_cross_entropy_grad = grad_function(softmax_cross_entropy, _softmax_cross_entropy)
softmax_cross_entropy_value_and_grad = value_and_grad_function(
    softmax_cross_entropy, _softmax_cross_entropy
)


def _nll_loss(
    log_probs: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    axis: int = -1,
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    batch = prepare(
        log_probs, target, axis=axis, reduction=reduction, ignore_index=ignore_index,
        sample_weight=sample_weight, allow_probabilities=False, scores_name="log_probs",
    )
    labels = batch.class_labels()
    class_weight = class_weight_rows(weight, batch)
    denominator_weight = batch.row_weight() * _gather_label_weight(class_weight, labels)
    losses = times(denominator_weight, -label_values(batch.scores, labels))
    denominator = float(np.sum(denominator_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, batch.dtype)
    if not compute_grad:
        return value, None
    grad = np.zeros_like(batch.scores)
    grad[np.arange(batch.n_rows), labels] = -denominator_weight
    grad *= gradient_scale(batch.reduction, denominator)
    return value, batch.restore_grad(grad)


def nll_loss(
    log_probs: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Negative log-likelihood of class labels given log-probabilities.

    .. math:: L_n = -w_{n,y_n}\, s_n \log q_{n,y_n}, \qquad
              \frac{\partial L_n}{\partial \log q_{nc}} = -w_{n,y_n} s_n\, [c = y_n]

    ``softmax_cross_entropy(z, y)`` equals ``nll_loss(log_softmax(z), y)``.
    Weights, ``ignore_index`` and the reduction follow
    :func:`softmax_cross_entropy` (the mean divides by :math:`\sum_n w_{n,y_n} s_n`,
    PyTorch's ``nll_loss``). ``log_probs`` is used as given: it is not
    normalised or checked to be <= 0.

    Parameters
    ----------
    log_probs : array_like, shape (..., C, ...)
        Log-probabilities, class axis ``axis``.
    target : integer array_like
        Class labels: ``log_probs``' shape minus the class axis.
    weight, sample_weight, ignore_index, reduction, axis
        As in :func:`softmax_cross_entropy`.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.nll_loss(np.log(np.array([[0.25, 0.75]])), np.array([0])))  # doctest: +ELLIPSIS
    1.386294...
    """
    return _nll_loss(
        log_probs, target, weight=weight, sample_weight=sample_weight, ignore_index=ignore_index,
        reduction=reduction, axis=axis, compute_grad=False,
    )[0]


nll_loss_grad = grad_function(nll_loss, _nll_loss)
nll_loss_value_and_grad = value_and_grad_function(nll_loss, _nll_loss)


class CrossEntropyLoss(Loss):
    """:func:`crossent.softmax_cross_entropy` with fixed options.

    ``CrossEntropyLoss(weight=None, ignore_index=None, label_smoothing=0.0,
    z_loss=0.0, reduction="mean", axis=-1)``; ``sample_weight`` is given per call.
    """

    function = staticmethod(softmax_cross_entropy)
    implementation = staticmethod(_softmax_cross_entropy)


class NLLLoss(Loss):
    """:func:`crossent.nll_loss` with fixed options (``weight``, ``ignore_index``, ``reduction``, ``axis``)."""

    function = staticmethod(nll_loss)
    implementation = staticmethod(_nll_loss)
