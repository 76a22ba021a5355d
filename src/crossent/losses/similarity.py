r"""SimLoss (Kobs et al. 2020): cross-entropy that gives credit for near misses.

A (C, C) class-similarity matrix :math:`S` with entries in [0, 1] and
:math:`S_{cc} = 1` says how acceptable predicting class :math:`c` is when the
truth is :math:`y`. The loss of a row is

.. math::

    L_n = -\log \sum_c S_{y_n c}\, p_{nc}, \qquad p_n = \mathrm{softmax}(z_n).

Derivation (stable form and gradient). With :math:`\ell(v) = \log\sum_c e^{v_c}`,
:math:`\log \sum_c S_{yc} p_c = \log \sum_c e^{z_c + \log S_{yc}} - \ell(z)`, so

.. math::

    L_n = \ell(z_n) - \ell(z_n + \log S_{y_n}), \qquad
    \frac{\partial L_n}{\partial z_n} = \mathrm{softmax}(z_n) - \mathrm{softmax}(z_n + \log S_{y_n})

because :math:`\partial \ell(v) / \partial v = \mathrm{softmax}(v)` and
:math:`\log S_{yc}` does not depend on :math:`z`. Entries with :math:`S_{yc} = 0`
become :math:`\log 0 = -\infty`, i.e. masked classes, which the ``-inf``-safe
:func:`~crossent.losses._classification.row_softmax_terms` handles. With
:math:`S = I` the second log-sum-exp is exactly :math:`z_{n,y_n}` and the
second softmax exactly ``onehot(y_n)``: SimLoss *is* softmax cross-entropy,
bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import LossValue, Reduction
from .._validation import _describe, as_float_array
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import prepare, row_softmax_terms, times

__all__ = [
    "sim_loss",
    "sim_loss_grad",
    "sim_loss_value_and_grad",
    "SimLoss",
]


def _log_similarity(similarity: ArrayLike, n_classes: int, dtype: DTypeLike) -> np.ndarray:
    """Validate ``similarity`` and return ``log S`` in ``dtype`` (``-inf`` where S is 0)."""
    if similarity is None:
        raise TypeError("similarity must be a (C, C) array of class similarities, got None")
    matrix = as_float_array(similarity, "similarity")
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(
            f"similarity must have shape ({n_classes}, {n_classes}) (C x C for the logits' "
            f"{n_classes} classes), got {matrix.shape}"
        )
    outside = ~((matrix >= 0) & (matrix <= 1))  # also catches nan
    if outside.any():
        row, column = (int(i) for i in np.unravel_index(int(np.argmax(outside)), matrix.shape))
        raise ValueError(
            f"similarity entries must lie in [0, 1]; found {matrix[row, column].item()!r} at "
            f"position ({row}, {column})"
        )
    diagonal = np.diagonal(matrix)
    if not (diagonal == 1).all():
        c = int(np.argmax(diagonal != 1))
        raise ValueError(
            f"similarity must have 1 on its diagonal (a class is fully similar to itself); "
            f"found similarity[{c}, {c}] = {_describe(diagonal[c].item())}"
        )
    with np.errstate(divide="ignore"):  # log 0 = -inf marks classes that earn no credit
        return np.log(matrix.astype(dtype, copy=False))


def _sim_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    similarity: ArrayLike,
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
    log_similarity = _log_similarity(similarity, batch.n_classes, batch.dtype)
    scores, labels, dtype = batch.scores, batch.class_labels(), batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows

    # Step 1: softmax and log-sum-exp of z (the model's distribution).
    # Both log-sum-exps are kept as shift + log_sum (see row_softmax_terms) and the
    # difference is taken as (shift - credited_shift) + (log_sum - credited_log_sum): for
    # S = I that is exactly softmax_cross_entropy's (shift - z_y) + log_sum.
    probs, shift, log_sum = row_softmax_terms(scores)

    # Step 2: softmax and log-sum-exp of z + log S[y] (the credited mass). S[y, y] = 1
    # keeps the true class in, so this is -inf only when every credited class has z = -inf.
    credited, credited_shift, credited_log_sum = row_softmax_terms(
        scores + log_similarity[labels]
    )
    finite_log_sum = np.where(np.isneginf(log_sum), 0, log_sum).astype(dtype, copy=False)
    credited_lse = credited_shift + credited_log_sum
    with np.errstate(invalid="ignore"):
        losses = np.where(
            credited_lse == -np.inf,
            np.inf,
            (shift - credited_shift) + (finite_log_sum - credited_log_sum),
        )
    losses = times(row_weight, losses)

    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 3: dL/dz = w * (softmax(z) - softmax(z + log S[y])). Where no credited class
    # has any mass the loss is +inf; the second softmax is then taken as onehot(y) --
    # the same finite gradient softmax_cross_entropy gives for a -inf target logit.
    no_mass = credited_lse == -np.inf
    if no_mass.any():
        rows = np.flatnonzero(no_mass)
        credited[rows, labels[rows]] = 1
    weight = row_weight[:, None]
    grad = probs * weight - credited * weight  # same operations as cross_entropy for S = I
    grad *= gradient_scale(batch.reduction, denominator)
    return value, batch.restore_grad(grad)


def sim_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    similarity: ArrayLike,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""SimLoss (Kobs et al. 2020): ``-log`` of the similarity-weighted probability mass.

    For row :math:`n` with softmax :math:`p_n = \mathrm{softmax}(z_n)`, label
    :math:`y_n` and class-similarity matrix :math:`S`:

    .. math::

        L_n = -s_n \log \sum_c S_{y_n c}\, p_{nc}
            = s_n\big[\ell(z_n) - \ell(z_n + \log S_{y_n})\big],

        \frac{\partial L_n}{\partial z_n}
            = s_n\big[\mathrm{softmax}(z_n) - \mathrm{softmax}(z_n + \log S_{y_n})\big],

    where :math:`\ell` is log-sum-exp and :math:`s_n` is ``sample_weight`` (1
    if absent). Classes with :math:`S_{yc} = 0` get :math:`\log 0 = -\infty` and
    drop out of the second log-sum-exp. ``similarity = identity`` gives exactly
    :func:`crossent.softmax_cross_entropy`. The loss is >= 0 and decreases as
    mass moves to classes similar to the truth, not only to the truth itself.

    Reduction (:mod:`crossent._reduction`): ``"sum"`` adds the :math:`L_n`;
    ``"mean"`` divides by :math:`D = \sum_n d_n` with :math:`d_n = s_n` (the
    number of rows without ``sample_weight``); ignored rows have :math:`d_n = 0`.
    If :math:`D = 0` the mean is ``0.0`` with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes. The loss is ``+inf`` only when every class credited for the
        label (:math:`S_{yc} > 0`) is ``-inf``; the gradient then uses
        ``onehot(y)`` for the second softmax (as
        :func:`crossent.softmax_cross_entropy` does) and stays finite.
    target : integer array_like
        Class labels: ``logits``' shape minus the class axis, each in
        ``[0, C)`` or equal to ``ignore_index``.
    similarity : array_like, shape (C, C)
        :math:`S_{yc}`: the credit for predicting class :math:`c` when the
        truth is :math:`y` (row = true class). Entries in [0, 1], diagonal
        exactly 1; need not be symmetric. Computed in ``logits``' dtype.
    sample_weight : array_like, optional
        One finite weight >= 0 per row: ``logits``' shape minus the class axis.
    ignore_index : int, optional
        Label value whose rows contribute 0 loss, 0 gradient and leave the
        mean's denominator.
    reduction : {"mean", "sum", "none"}, default "mean"
    axis : int, default -1
        The class axis of ``logits``.

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of the row shape for ``"none"``.

    Shapes
    ------
    logits (N, C), target (N,), similarity (C, C); in general logits
    (d0, ..., C, ..., dk) with target (d0, ..., dk).

    Examples
    --------
    Classes 0 and 1 are similar (0.5); predicting 1 for a true 0 earns half credit.

    >>> import numpy as np
    >>> from crossent.losses.similarity import sim_loss, sim_loss_grad
    >>> S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> logits = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(sim_loss(logits, np.array([0]), similarity=S)), 4)
    0.6061
    >>> round(float(sim_loss(logits, np.array([0]), similarity=np.eye(3))), 4)  # cross-entropy
    1.4644
    >>> np.round(sim_loss_grad(logits, np.array([0]), similarity=S), 4)
    array([[-0.1927,  0.0524,  0.1402]])
    """
    return _sim_loss(
        logits, target, similarity=similarity, sample_weight=sample_weight,
        ignore_index=ignore_index, reduction=reduction, axis=axis, compute_grad=False,
    )[0]


sim_loss_grad = grad_function(sim_loss, _sim_loss)
sim_loss_value_and_grad = value_and_grad_function(sim_loss, _sim_loss)


class SimLoss(Loss):
    """:func:`crossent.sim_loss` with fixed options.

    ``SimLoss(similarity=S, ignore_index=None, reduction="mean", axis=-1)``;
    ``sample_weight`` is given per call.
    """

    function = staticmethod(sim_loss)
    implementation = staticmethod(_sim_loss)
