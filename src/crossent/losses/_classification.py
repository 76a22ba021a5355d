"""Shared preparation for losses on class scores: validation, layout, row softmax.

Every multi-class loss accepts scores with the class axis anywhere (``axis``)
and any number of other dimensions. The public wrapper validates once, moves
the class axis last and flattens everything else into M rows, so the
computation is always on an (M, C) matrix; :meth:`ClassBatch.restore_grad` and
:meth:`ClassBatch.restore_rows` put results back into the caller's layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._reduction import gradient_scale
from .._validation import (
    as_float_array,
    check_axis,
    check_finite_nonnegative,
    check_ignore_index,
    check_labels,
    check_not_empty,
    check_probabilities,
    check_reduction,
)


@dataclass
class ClassBatch:
    """A validated batch of class scores, class axis last, flattened to rows."""

    scores: np.ndarray  # (M, C), input dtype
    labels: np.ndarray | None  # (M,) int64 with ignored rows set to 0; None for probability targets
    probabilities: np.ndarray | None  # (M, C) probability targets; None for class labels
    valid: np.ndarray | None  # (M,) bool, False for ignored rows; None when nothing is ignored
    sample_weight: np.ndarray | None  # (M,) or None
    shape: tuple[int, ...]  # the caller's input shape
    axis: int  # the caller's class axis (non-negative)
    reduction: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.scores.dtype

    @property
    def n_rows(self) -> int:
        return self.scores.shape[0]

    @property
    def n_classes(self) -> int:
        return self.scores.shape[1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]

    def class_labels(self) -> np.ndarray:
        """``labels``, for the losses that take class labels only (``prepare(..., allow_probabilities=False)``)."""
        if self.labels is None:  # prepare() rejects probabilities for those losses: not reached
            raise TypeError("this loss takes class labels, got probability targets")
        return self.labels

    def row_weight(self) -> np.ndarray:
        """``sample_weight`` times the valid mask, as an (M,) array of the input dtype."""
        weight = np.ones(self.n_rows, dtype=self.dtype)
        if self.sample_weight is not None:
            weight = weight * self.sample_weight
        if self.valid is not None:
            weight = np.where(self.valid, weight, 0).astype(self.dtype, copy=False)
        return weight

    def one_hot(self) -> np.ndarray:
        """(M, C) one-hot matrix of the labels (ignored rows point at class 0)."""
        onehot = np.zeros(self.scores.shape, dtype=self.dtype)
        onehot[np.arange(self.n_rows), self.labels] = 1
        return onehot

    def target_matrix(self) -> np.ndarray:
        """The (M, C) target distribution: one-hot labels or the probability targets."""
        return self.probabilities if self.probabilities is not None else self.one_hot()

    def restore_rows(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=self.dtype).reshape(self.batch_shape)

    def restore_grad(self, grad: np.ndarray) -> np.ndarray:
        grad = np.asarray(grad, dtype=self.dtype)
        if self.axis == len(self.shape) - 1:  # class axis already last: a reshape is the whole job
            return grad.reshape(self.shape)
        moved = self.shape[: self.axis] + self.shape[self.axis + 1 :] + (self.shape[self.axis],)
        return np.moveaxis(grad.reshape(moved), -1, self.axis)


def _to_rows(array: np.ndarray, axis: int) -> np.ndarray:
    if axis == array.ndim - 1:  # np.moveaxis would be a no-op that costs more than a small batch's loss
        return array.reshape(-1, array.shape[axis])
    return np.moveaxis(array, axis, -1).reshape(-1, array.shape[axis])


def prepare(
    scores: ArrayLike,
    target: ArrayLike,
    *,
    axis: int,
    reduction: str,
    ignore_index: int | None = None,
    sample_weight: ArrayLike | None = None,
    allow_probabilities: bool = True,
    scores_name: str = "logits",
    extra_reductions: tuple[str, ...] = (),
) -> ClassBatch:
    """Validate ``scores``/``target`` and lay them out as rows (see :class:`ClassBatch`)."""
    z = as_float_array(scores, scores_name)
    check_not_empty(z, scores_name)
    axis = check_axis(axis, z.ndim)
    reduction = check_reduction(reduction, ("mean", "sum", "none") + tuple(extra_reductions))
    ignore_index = check_ignore_index(ignore_index)
    n_classes = z.shape[axis]
    batch_shape = z.shape[:axis] + z.shape[axis + 1 :]
    if isinstance(target, (str, bytes)) or target is None:
        raise TypeError(f"target must be an array of class labels or probabilities, got {target!r}")
    target = np.asarray(target)
    labels = probabilities = valid = None
    if target.dtype.kind in "iu":
        labels = check_labels(target, batch_shape, n_classes, ignore_index).reshape(-1)
        if ignore_index is not None:
            ignored = labels == ignore_index
            if ignored.any():
                valid = ~ignored
                labels = np.where(valid, labels, 0)
    elif target.dtype.kind == "f":
        if not allow_probabilities:
            raise TypeError(
                f"target must hold integer class labels, got dtype {target.dtype}"
                + (" (convert with target.astype(int))" if target.shape == batch_shape else "")
            )
        if target.shape != z.shape:
            hint = (
                "; floating targets are probabilities with the shape of "
                f"{scores_name} -- for class labels pass an integer array (target.astype(int))"
                if target.shape == batch_shape
                else ""
            )
            raise ValueError(
                f"target of floating dtype must be probabilities with {scores_name}' shape "
                f"{z.shape}, got shape {target.shape}{hint}"
            )
        if ignore_index is not None:
            raise ValueError(
                "ignore_index applies to class-label targets only; with probability targets "
                "give the rows to skip sample_weight=0"
            )
        if target.dtype.itemsize < 4:  # float16: check (and compute) at float32 tolerance
            target = target.astype(np.float32)
        check_probabilities(target, "target", axis)
        probabilities = _to_rows(target.astype(z.dtype, copy=False), axis)
    elif target.dtype.kind == "b":
        raise TypeError(
            "target must hold integer class labels or floating probabilities, got dtype bool"
        )
    else:
        raise TypeError(
            f"target must hold integer class labels or floating probabilities, got dtype {target.dtype}"
        )
    weights = None
    if sample_weight is not None:
        weights = as_float_array(sample_weight, "sample_weight")
        if weights.shape != batch_shape:
            raise ValueError(
                f"sample_weight must have one weight per row, shape {batch_shape}, got {weights.shape}"
            )
        check_finite_nonnegative(weights, "sample_weight")
        weights = weights.astype(z.dtype, copy=False).reshape(-1)
    return ClassBatch(
        scores=_to_rows(z, axis),
        labels=labels,
        probabilities=probabilities,
        valid=valid,
        sample_weight=weights,
        shape=z.shape,
        axis=axis,
        reduction=reduction,
    )


def row_softmax_terms(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax of each row of an (M, C) matrix with its log-sum-exp split as ``shift + log_sum``.

    ``shift`` is the row maximum (0 on rows that are entirely ``-inf``) and
    ``log_sum = log(sum_c exp(z_c - shift))``. The sum is ``1 + rest`` where
    ``rest`` adds up every term but the maximum's, so ``log_sum = log1p(rest)``
    keeps its relative accuracy when one class dominates: ``-log p_y`` for the
    top class is ``log_sum`` itself (8.5e-18 for logits (40, 0, 0), not the 0 that
    ``LSE - z_y`` rounds to). Rows that are entirely ``-inf`` give ``p = 0`` and
    ``log_sum = -inf``.
    """
    rows = np.arange(scores.shape[0])
    top = np.argmax(scores, axis=1)  # one pass gives the position and, gathered, the maximum
    shift = scores[rows, top]  # a new array (fancy indexing): safe to modify
    # only a -inf maximum (a row without mass) is replaced: NaN must stay NaN and propagate.
    # The rare rows are patched in place rather than by np.where over every row: on the small
    # batches of a training step the number of NumPy calls, not the arithmetic, sets the cost.
    without_mass = shift == -np.inf
    some_without_mass = bool(without_mass.any())
    if some_without_mass:
        shift[without_mass] = 0
    exps = np.subtract(scores, shift[:, None])
    np.exp(exps, out=exps)
    peak = exps[rows, top]  # exactly 1, or 0 on a row that is entirely -inf (NaN stays NaN)
    exps[rows, top] = 0
    rest = exps.sum(axis=1)
    exps[rows, top] = peak
    log_sum = np.log1p(rest)
    total = peak + rest
    if some_without_mass:  # exactly the rows whose peak is 0
        log_sum[without_mass] = -np.inf
        total[without_mass] = 1
    exps /= total[:, None]
    return exps, shift, log_sum


def row_softmax(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of each row of an (M, C) matrix and its log-sum-exp, in one pass.

    Returns ``(p, lse)`` with ``p`` of shape (M, C) and ``lse`` of shape (M,).
    Rows that are entirely ``-inf`` give ``p = 0`` and ``lse = -inf``.
    """
    probs, shift, log_sum = row_softmax_terms(scores)
    return probs, shift + log_sum


def negative_log_probabilities(scores: np.ndarray, shift: np.ndarray, log_sum: np.ndarray) -> np.ndarray:
    """``-log softmax`` of each row, ``(shift - z) + log_sum`` (``+inf`` where ``z = -inf``).

    ``shift`` and ``log_sum`` come from :func:`row_softmax_terms`.
    """
    finite_log_sum = np.where(np.isneginf(log_sum), 0, log_sum).astype(scores.dtype, copy=False)
    return (shift[:, None] - scores) + finite_log_sum[:, None]


def label_negative_log_likelihood(
    scores: np.ndarray, labels: np.ndarray, shift: np.ndarray, log_sum: np.ndarray
) -> np.ndarray:
    """``-log softmax(z)[y]`` of every row as ``(shift - z_y) + log_sum`` (``+inf`` where ``z_y = -inf``).

    Adding the two parts in this order keeps ``log_sum`` whole when ``z_y`` is
    the maximum, however small it is (see :func:`row_softmax_terms`).
    """
    hit = label_values(scores, labels)
    with np.errstate(invalid="ignore"):  # inf + (-inf) on rows without mass; replaced below
        nll = np.subtract(shift, hit)
        nll += log_sum
    impossible = hit == -np.inf
    if impossible.any():  # rare: patch those rows instead of an np.where pass over every row
        nll[impossible] = np.inf
    return nll


def label_values(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``scores[n, labels[n]]`` for every row n."""
    return scores[np.arange(scores.shape[0]), labels]


def weighted_sum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row sums of ``weights * values`` where a zero weight contributes 0 even against ``inf``."""
    with np.errstate(invalid="ignore"):
        products = weights * values
    return np.where(weights == 0, 0, products).sum(axis=1)


def times(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights * values`` with ``0 * inf = 0`` (a row that carries no weight costs nothing)."""
    with np.errstate(invalid="ignore"):
        products = weights * values
    return np.where(weights == 0, 0, products)


def label_terms(
    scores: np.ndarray, labels: np.ndarray, probs: np.ndarray, shift: np.ndarray, log_sum: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(nll, log_p, one_minus_p)`` of the target class of every row.

    * ``nll``: :math:`-\log p_y` exactly as :func:`crossent.softmax_cross_entropy`
      computes it (``+inf`` where :math:`z_y = -\infty`), accurate in relative
      terms even when :math:`p_y` rounds to 1 (see
      :func:`~crossent.losses._classification.row_softmax_terms`);
    * ``log_p``: ``-nll``;
    * ``one_minus_p``: :math:`1 - p_y = \sum_{c \ne y} p_c`, accurate to a few ulps
      relative even where :math:`p_y` rounds to 1 (1 on rows that are entirely
      ``-inf``, which hold no probability at all).

    ``probs`` (the row softmax) is modified during the call and restored exactly.
    """
    rows = np.arange(scores.shape[0])
    nll = label_negative_log_likelihood(scores, labels, shift, log_sum)
    p_label = probs[rows, labels]
    probs[rows, labels] = 0
    one_minus_p = probs.sum(axis=1)
    probs[rows, labels] = p_label
    one_minus_p = np.where(np.isneginf(log_sum), 1, one_minus_p).astype(scores.dtype, copy=False)
    return nll, -nll, one_minus_p


def scaled_probability_gradient(
    batch: ClassBatch, probs: np.ndarray, coefficient: np.ndarray, denominator: float
) -> np.ndarray:
    """The gradient shared by every loss that is a function of ``p_y`` alone.

    For ``L_n = f(p_{n,y_n})`` the chain rule through the softmax gives
    ``dL_n/dz_n = c_n (p_n - onehot(y_n))`` with ``c_n = -p_y f'(p_y)``; the loss
    supplies ``coefficient = c`` (sample weights included). Overwrites ``probs``
    and returns the gradient in the caller's layout, times ``1/D`` once for the mean.
    """
    grad = probs
    grad *= coefficient[:, None]
    grad[np.arange(batch.n_rows), batch.labels] -= coefficient
    grad *= gradient_scale(batch.reduction, denominator)
    return batch.restore_grad(grad)
