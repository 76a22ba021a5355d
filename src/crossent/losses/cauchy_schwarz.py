r"""Cauchy-Schwarz divergence loss (Janocha & Czarnecki 2017), from logits.

The Cauchy-Schwarz divergence between the target distribution :math:`t` and
the prediction :math:`p = \mathrm{softmax}(z)` is

.. math::

    D_{CS}(t, p) = -\log \frac{\sum_c t_c p_c}{\lVert t \rVert_2 \, \lVert p \rVert_2} \;\ge\; 0,

zero exactly when :math:`p \propto t` (Cauchy-Schwarz inequality).

Derivation (stable form and gradient). Write :math:`\ell(v) = \log\sum_c e^{v_c}`.
Then :math:`\log \sum_c t_c p_c = \ell(z + \log t) - \ell(z)` and
:math:`\log \sum_c p_c^2 = \ell(2z) - 2\ell(z)`, so the :math:`\ell(z)` terms cancel:

.. math::

    L = \tfrac12 \ell(2z) - \ell(z + \log t) + \tfrac12 \log \sum_c t_c^2,
    \qquad
    \frac{\partial L}{\partial z} = \mathrm{softmax}(2z) - \mathrm{softmax}(z + \log t)

(:math:`\partial \ell(a z + b)/\partial z = a\,\mathrm{softmax}(a z + b)`). For a
one-hot target :math:`t = e_y`: :math:`\ell(z + \log e_y) = z_y` and the norm
term is 0, so :math:`L = \tfrac12 \ell(2z) - z_y = -\log p_y + \tfrac12 \log\sum_c p_c^2`
with gradient :math:`\mathrm{softmax}(2z) - \mathrm{onehot}(y)`. Compared with
cross-entropy (:math:`\ell(z) - z_y`, gradient :math:`p - \mathrm{onehot}(y)`) the
model's distribution is replaced by the sharper :math:`\mathrm{softmax}(2z)`.

Every log-sum-exp is taken of :math:`z - \max z` (so :math:`2z` cannot overflow);
the one of :math:`2(z - \max z)` is :math:`\log(1 + r)` with :math:`r` the sum
over all but the largest entry, evaluated with ``log1p`` so that a confident
correct prediction keeps full relative accuracy in its small loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import FloatArray, LossValue, Reduction
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import label_values, prepare, row_softmax, times

__all__ = [
    "cauchy_schwarz_loss",
    "cauchy_schwarz_loss_grad",
    "cauchy_schwarz_loss_value_and_grad",
    "CauchySchwarzLoss",
]


def _doubled_softmax(centered: np.ndarray, has_mass: np.ndarray) -> tuple[FloatArray, FloatArray]:
    """``softmax(2z)`` and ``log sum exp(2 (z - max z))`` of each row of ``centered = z - max z``.

    Rows without any finite entry (``has_mass`` False) give a zero softmax; their
    log-sum-exp is never used (the loss of such a row is ``+inf``).
    """
    n_rows = centered.shape[0]
    rows = np.arange(n_rows)
    top = np.argmax(centered, axis=1)
    exps = np.exp(2 * centered)
    exps[rows, top] = 0  # exp(0) = 1 at the maximum: split it off so log1p sees the rest
    rest = exps.sum(axis=1)
    log_sum = np.log1p(rest)
    exps[rows, top] = has_mass
    sums = rest + has_mass
    sums[sums == 0] = 1
    exps /= sums[:, None]
    return exps, log_sum


def _cauchy_schwarz_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
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
    scores, dtype = batch.scores, batch.dtype
    row_weight = batch.row_weight()  # sample_weight, 0 on ignored rows

    # Step 1: centre each row on its maximum (-inf rows stay -inf, nothing overflows).
    shift = scores.max(axis=1)
    has_mass = ~np.isneginf(shift)  # NaN rows keep their NaN shift and propagate
    shift = np.where(has_mass, shift, 0).astype(dtype, copy=False)
    centered = scores - shift[:, None]

    # Step 2: 1/2 lse(2z) - max z and softmax(2z).
    doubled, log_doubled_sum = _doubled_softmax(centered, has_mass.astype(dtype))

    # Step 3: lse(z + log t) - max z, its softmax q, and log ||t||.
    if batch.labels is not None:
        target_lse = label_values(centered, batch.labels)
        target_softmax = None  # onehot(y), subtracted in place below
        log_norm = 0.0
    else:
        # The probability check tolerates entries down to -sqrt(eps); they are 0 here.
        t = np.maximum(batch.target_matrix(), 0)  # the probabilities (no labels)
        with np.errstate(divide="ignore"):  # log 0 = -inf: classes without target mass
            log_t = np.log(t)
        target_softmax, target_lse = row_softmax(centered + log_t)
        log_norm = 0.5 * np.log(np.square(t).sum(axis=1))

    # Step 4: L = 1/2 lse(2z) - lse(z + log t) + log ||t|| (the shifts cancel). It is
    # +inf when the target's classes all have z = -inf (no overlap between t and p).
    no_overlap = target_lse == -np.inf
    with np.errstate(invalid="ignore"):
        losses = np.where(no_overlap, np.inf, 0.5 * log_doubled_sum - target_lse + log_norm)
    losses = times(row_weight, losses.astype(dtype, copy=False))

    denominator = float(np.sum(row_weight, dtype=np.float64))
    value = reduce(batch.restore_rows(losses), batch.reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 5: dL/dz = w * (softmax(2z) - softmax(z + log t)). Where the loss is +inf the
    # second softmax is taken as t itself (onehot(y) for labels), as cross-entropy does.
    weight = row_weight[:, None]
    grad = doubled * weight
    if target_softmax is None:
        grad[np.arange(batch.n_rows), batch.labels] -= row_weight
    else:
        if no_overlap.any():
            target_softmax[no_overlap] = t[no_overlap]
        grad -= target_softmax * weight
    grad *= gradient_scale(batch.reduction, denominator)
    return value, batch.restore_grad(grad)


def cauchy_schwarz_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
    axis: int = -1,
) -> LossValue:
    r"""Cauchy-Schwarz divergence between the target and ``softmax(logits)`` (Janocha & Czarnecki 2017).

    For row :math:`n` with :math:`p_n = \mathrm{softmax}(z_n)`, target
    distribution :math:`t_n` and log-sum-exp :math:`\ell`:

    .. math::

        L_n = -s_n \log \frac{\sum_c t_{nc}\, p_{nc}}{\lVert t_n \rVert_2 \lVert p_n \rVert_2}
            = s_n\Big[\tfrac12 \ell(2 z_n) - \ell(z_n + \log t_n) + \tfrac12\log\sum_c t_{nc}^2\Big],

        \frac{\partial L_n}{\partial z_n}
            = s_n\big[\mathrm{softmax}(2 z_n) - \mathrm{softmax}(z_n + \log t_n)\big].

    For class labels :math:`y_n` (:math:`t_n` one-hot) this is
    :math:`L_n = s_n[\tfrac12 \ell(2 z_n) - z_{n,y_n}] = s_n[-\log p_{n,y_n} + \tfrac12 \log\sum_c p_{nc}^2]`
    with gradient :math:`s_n[\mathrm{softmax}(2 z_n) - \mathrm{onehot}(y_n)]`.
    :math:`s_n` is ``sample_weight`` (1 if absent). :math:`L_n \ge 0`, with
    equality only when :math:`p_n \propto t_n` (never for a one-hot target and
    finite logits).

    Reduction (:mod:`crossent._reduction`): ``"sum"`` adds the :math:`L_n`;
    ``"mean"`` divides by :math:`D = \sum_n d_n` with :math:`d_n = s_n` (the
    number of rows without ``sample_weight``); ignored rows have :math:`d_n = 0`.
    If :math:`D = 0` the mean is ``0.0`` with a zero gradient.

    Parameters
    ----------
    logits : array_like, shape (..., C, ...)
        Unnormalised scores, class axis ``axis``. ``-inf`` marks impossible
        classes. The loss is ``+inf`` only when every class with target mass is
        ``-inf`` (no overlap between :math:`t` and :math:`p`); the gradient then
        uses :math:`t` for the second softmax and stays finite. Unlike
        cross-entropy, a probability target keeps a finite loss when only some
        of its classes are ``-inf``.
    target : array_like
        Integer dtype: class labels with ``logits``' shape minus the class axis,
        each in ``[0, C)`` or equal to ``ignore_index``. Floating dtype:
        probabilities with ``logits``' shape, each row >= 0 and summing to 1
        within ``sqrt(eps)`` of the dtype (entries in ``[-sqrt(eps), 0)`` are
        taken as 0).
    sample_weight : array_like, optional
        One finite weight >= 0 per row: ``logits``' shape minus the class axis.
    ignore_index : int, optional
        Label value whose rows contribute 0 loss, 0 gradient and leave the
        mean's denominator. Class labels only (for probability targets use
        ``sample_weight=0``).
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
    >>> import numpy as np
    >>> from crossent.losses.cauchy_schwarz import cauchy_schwarz_loss, cauchy_schwarz_loss_grad
    >>> logits = np.array([[1.0, 2.0, 0.5]])
    >>> round(float(cauchy_schwarz_loss(logits, np.array([1]))), 4)
    0.0849
    >>> np.round(cauchy_schwarz_loss_grad(logits, np.array([1])), 4)
    array([[ 0.1142, -0.1562,  0.042 ]])
    >>> round(float(cauchy_schwarz_loss(logits, np.array([[0.2, 0.5, 0.3]]))), 4)
    0.0466
    """
    return _cauchy_schwarz_loss(
        logits, target, sample_weight=sample_weight, ignore_index=ignore_index,
        reduction=reduction, axis=axis, compute_grad=False,
    )[0]


cauchy_schwarz_loss_grad = grad_function(cauchy_schwarz_loss, _cauchy_schwarz_loss)
cauchy_schwarz_loss_value_and_grad = value_and_grad_function(
    cauchy_schwarz_loss, _cauchy_schwarz_loss
)


class CauchySchwarzLoss(Loss):
    """:func:`crossent.cauchy_schwarz_loss` with fixed options.

    ``CauchySchwarzLoss(ignore_index=None, reduction="mean", axis=-1)``;
    ``sample_weight`` is given per call.
    """

    function = staticmethod(cauchy_schwarz_loss)
    implementation = staticmethod(_cauchy_schwarz_loss)
