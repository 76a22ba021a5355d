r"""Listwise softmax ranking loss (ListNet top-1; Bruch et al. 2019), value and gradient.

Each row of ``scores`` is one list of items (a query's candidate documents);
``labels`` holds their graded relevances. The labels of a list, normalised to
sum to 1, are a target distribution over its items and the loss is the
cross-entropy between it and the softmax of the scores:

.. math::

    L_n = -\sum_{i \in V_n} q_{ni} \log \frac{e^{s_{ni}}}{\sum_{j \in V_n} e^{s_{nj}}},
    \qquad q_{ni} = \frac{y_{ni}}{\sum_{j \in V_n} y_{nj}},

over the valid (unmasked) items :math:`V_n`. Masking is done by setting the
padded scores to :math:`-\infty` and their labels to 0, so they vanish from the
softmax and the target alike.

Derivation of the gradient: :math:`L_n = \sum_i q_{ni}(\ell_n - s_{ni})` with
:math:`\ell_n` the log-sum-exp over :math:`V_n` and :math:`\sum_i q_{ni} = 1`, so
:math:`\partial L_n / \partial s_{ni} = p_{ni} - q_{ni}`, :math:`p_n` the softmax
over :math:`V_n` (0 on padded items, whose gradient is therefore 0).

A list whose valid labels sum to 0 has no target distribution: it contributes
0 loss and 0 gradient and is left out of the mean, as in TF-Ranking's
``SoftmaxLoss`` (``rax.softmax_loss`` instead puts a uniform target on such a
list and counts it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import LossValue, Reduction
from .._validation import _first_position, as_float_array, check_not_empty, check_reduction
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import negative_log_probabilities, row_softmax_terms, weighted_sum

__all__ = [
    "softmax_ranking_loss",
    "softmax_ranking_loss_grad",
    "softmax_ranking_loss_value_and_grad",
    "SoftmaxRankingLoss",
]


def _check_mask(mask: ArrayLike | None, shape: tuple) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    if isinstance(mask, (str, bytes)):
        raise TypeError(f"mask must be a boolean array (True = real item), got {mask!r}")
    array = np.asarray(mask)
    if array.dtype != np.bool_:
        raise TypeError(
            f"mask must be a boolean array (True = real item, False = padding), got dtype {array.dtype}"
        )
    if array.shape != shape:
        raise ValueError(f"mask must have the shape of scores {shape}, got {array.shape}")
    return array


def _check_labels(labels: ArrayLike, shape: tuple, mask: ArrayLike | None) -> np.ndarray:
    """Graded relevances of ``shape``, finite and >= 0 on the valid items; float64, 0 on padding."""
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"labels must be an array of graded relevances, got {labels!r}")
    array = np.asarray(labels)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"labels must hold graded relevances (integer or floating, >= 0), got dtype {array.dtype}"
        )
    if array.shape != shape:
        raise ValueError(f"labels must have the shape of scores {shape}, got {array.shape}")
    values = array.astype(np.float64)
    if mask is not None:
        values = np.where(mask, values, 0.0)  # padded labels may hold anything, e.g. -1
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        position = _first_position(bad)
        hint = "" if mask is not None else " (mark padded items with mask= instead of a negative label)"
        where = " where mask is True" if mask is not None else ""
        raise ValueError(
            f"labels must be finite and >= 0{where}; found {array[position].item()!r} at position "
            f"{position}{hint}"
        )
    return values


def _softmax_ranking_loss(
    scores: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None, reduction: str = "mean", compute_grad: bool
) -> tuple[LossValue, NDArray[Any] | None]:
    s = as_float_array(scores, "scores")
    if s.ndim == 0:
        raise ValueError("scores must have at least one dimension (the list axis, last), got a scalar")
    check_not_empty(s, "scores")
    reduction = check_reduction(reduction)
    mask = _check_mask(mask, s.shape)
    relevance = _check_labels(labels, s.shape, mask)
    dtype, list_size, list_shape = s.dtype, s.shape[-1], s.shape[:-1]

    # Step 1: lists as rows; padded items get score -inf (softmax mass exactly 0).
    rows = s.reshape(-1, list_size)
    if mask is not None:
        rows = np.where(mask.reshape(-1, list_size), rows, -np.inf).astype(dtype, copy=False)
    relevance = relevance.reshape(-1, list_size)

    # Step 2: the target distribution q = y / sum(y) (in float64, so that large labels
    # cannot overflow the sum in float32); lists without label mass keep q = 0.
    label_sum = relevance.sum(axis=1)
    has_mass = label_sum > 0
    target = (relevance / np.where(has_mass, label_sum, 1.0)[:, None]).astype(dtype, copy=False)

    # Step 3: L = sum_i q_i (lse - s_i), with 0 * inf = 0 on padded / -inf items.
    probs, shift, log_sum = row_softmax_terms(rows)
    losses = weighted_sum(target, negative_log_probabilities(rows, shift, log_sum))

    denominator = float(np.count_nonzero(has_mass))
    value = reduce(losses.reshape(list_shape), reduction, denominator, dtype)
    if not compute_grad:
        return value, None

    # Step 4: dL/ds = p - q on lists with label mass, 0 elsewhere; 1/D once for the mean.
    grad = probs
    grad *= has_mass[:, None]
    grad -= target
    grad *= gradient_scale(reduction, denominator)
    return value, grad.reshape(s.shape)


def softmax_ranking_loss(
    scores: ArrayLike, labels: ArrayLike, *, mask: ArrayLike | None = None, reduction: Reduction = "mean"
) -> LossValue:
    r"""Listwise softmax cross-entropy for ranking (ListNet top-1, TF-Ranking ``SoftmaxLoss``).

    For list :math:`n` (a row; the last axis is the list) with valid items
    :math:`V_n`, scores :math:`s_n`, graded relevances :math:`y_n \ge 0` and
    :math:`Y_n = \sum_{i \in V_n} y_{ni} > 0`:

    .. math::

        L_n = -\sum_{i \in V_n} \frac{y_{ni}}{Y_n} \log \mathrm{softmax}_{V_n}(s_n)_i,
        \qquad
        \frac{\partial L_n}{\partial s_{ni}} = \mathrm{softmax}_{V_n}(s_n)_i - \frac{y_{ni}}{Y_n}
        \;\; (i \in V_n), \quad 0 \;\; (i \notin V_n),

    where :math:`\mathrm{softmax}_{V_n}` normalises over the valid items only.
    A list with :math:`Y_n = 0` (no relevant item, or no valid item) has no
    target distribution: :math:`L_n = 0`, gradient 0, and it is not counted by
    the mean -- TF-Ranking does the same.

    Reduction (:mod:`crossent._reduction`): ``"sum"`` adds the :math:`L_n`;
    ``"mean"`` divides by :math:`D` = the number of lists with :math:`Y_n > 0`
    (denominator weight :math:`d_n = [Y_n > 0]`); if no list has label mass the
    mean is ``0.0`` with a zero gradient. ``"none"`` returns one loss per list.

    Differences from peers: TF-Ranking also multiplies each list's loss by
    :math:`Y_n` (its weight in ``SUM_BY_NONZERO_WEIGHTS``; identical when every
    list has label mass 1) and pads with a score of :math:`\log 10^{-10}`
    instead of :math:`-\infty`; ``rax.softmax_loss`` gives a zero-mass list a
    uniform target and counts it in the mean.

    Parameters
    ----------
    scores : array_like, shape (..., L)
        Item scores; the last axis is the list. ``-inf`` marks an item that can
        never be ranked: finite loss unless it is relevant (then ``+inf``, with
        a finite gradient).
    labels : array_like, shape (..., L)
        Graded relevances, integer or floating, finite and >= 0 on the valid
        items (padded items may hold anything, e.g. -1 or NaN).
    mask : bool array_like, shape (..., L), optional
        True for a real item, False for padding. Padded items are removed from
        the softmax (score :math:`-\infty`) and from the labels (0): they get
        0 gradient. Per-call data: :class:`SoftmaxRankingLoss` takes it at call
        time, ``loss(scores, labels, mask=...)``.
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    numpy scalar of ``scores``' dtype, or an array of shape ``scores.shape[:-1]`` for ``"none"``.

    Shapes
    ------
    scores (N, L), labels (N, L), mask (N, L): N lists of L items each; in
    general (..., L).

    Examples
    --------
    Two lists, the first padded to length 3 (``rax.softmax_loss`` documents
    0.49676564 for this example in float32):

    >>> import numpy as np
    >>> from crossent.losses.ranking import softmax_ranking_loss, softmax_ranking_loss_grad
    >>> scores = np.array([[2.0, 1.0, 3.0], [1.0, 0.5, 1.5]])
    >>> labels = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    >>> mask = np.array([[True, True, False], [True, True, True]])
    >>> round(float(softmax_ranking_loss(scores, labels, mask=mask)), 4)
    0.4968
    >>> np.round(softmax_ranking_loss_grad(scores, labels, mask=mask), 4)
    array([[-0.1345,  0.1345,  0.    ],
           [ 0.1536,  0.0932, -0.2468]])
    """
    return _softmax_ranking_loss(
        scores, labels, mask=mask, reduction=reduction, compute_grad=False
    )[0]


softmax_ranking_loss_grad = grad_function(softmax_ranking_loss, _softmax_ranking_loss)
softmax_ranking_loss_value_and_grad = value_and_grad_function(
    softmax_ranking_loss, _softmax_ranking_loss
)


class SoftmaxRankingLoss(Loss):
    """:func:`crossent.softmax_ranking_loss` with fixed options.

    ``SoftmaxRankingLoss(reduction="mean")``; ``mask`` is given per call:
    ``loss(scores, labels, mask=mask)``.
    """

    function = staticmethod(softmax_ranking_loss)
    implementation = staticmethod(_softmax_ranking_loss)
