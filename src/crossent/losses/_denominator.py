r"""The denominator :math:`D = \sum_i d_i` of every loss's mean, computed apart from the loss.

The reduction contract (:mod:`crossent._reduction`) makes a loss's mean
:math:`\sum_i l_i / \sum_i d_i`. Data split into parts (row chunks on several
machines, or blocks read one at a time from disk) has the exact mean of the
whole only if every part reports its sum :math:`\sum_i l_i` *and* its
:math:`\sum_i d_i`, and the two totals are divided once. ``reduction="sum"``
gives the first; :meth:`crossent.losses.Loss.denominator` gives the second,
by the rule each loss states in its docstring:

=====================================================  =========================================================
loss                                                   :math:`d_i`
=====================================================  =========================================================
cross-entropy, NLL, Poly-1                             :math:`s_n w_{n,y_n}` for labels, :math:`s_n` for
                                                       probabilities; 0 on ignored rows
focal, GCE, SCE, SimLoss, Cauchy-Schwarz,              :math:`s_n`, 0 on ignored rows
squared error (softmax)
squared error (sigmoid)                                the element's ``sample_weight`` (1 without)
element-wise binary losses                             1 per element (``weight`` stays out)
KL divergence                                          ``"mean"``: 1 per element; any other reduction: 1 per
                                                       row of the first axis (the default ``"batchmean"``)
softmax ranking                                        1 per list with label mass
=====================================================  =========================================================

Each rule reuses the loss's own preparation (validation, ignored rows, weight
broadcasting, dtype), so that :math:`D` is the very number the loss divides by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import as_float_array, check_not_empty

if TYPE_CHECKING:
    from ._api import Loss

#: how a loss's denominator is computed: ``rule(loss, input, target, batch_arguments) -> D``
_Rule = Callable[["Loss", ArrayLike, ArrayLike, "dict[str, Any]"], float]


def _row_weight_sum(
    loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any], *, class_weight: bool,
    allow_probabilities: bool = True, scores_name: str = "logits",
) -> float:
    from ._classification import prepare
    from .cross_entropy import _gather_label_weight, class_weight_rows

    options = loss.options
    sample_weight = batch_arguments.get("sample_weight")
    if sample_weight is None and options.get("ignore_index") is None and (
        not class_weight or options.get("weight") is None
    ):
        # every d_n is 1: D is the number of rows, whatever the target (the loss itself validates it)
        z = as_float_array(input, scores_name)
        check_not_empty(z, scores_name)
        return float(z.size // z.shape[options.get("axis", -1)])
    batch = prepare(
        input, target, axis=options.get("axis", -1), reduction="sum", ignore_index=options.get("ignore_index"),
        sample_weight=sample_weight, allow_probabilities=allow_probabilities,
        scores_name=scores_name,
    )
    weight = batch.row_weight()
    if class_weight and batch.labels is not None:
        weight = weight * _gather_label_weight(class_weight_rows(options.get("weight"), batch), batch.labels)
    return float(np.sum(weight, dtype=np.float64))


def _cross_entropy(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    return _row_weight_sum(loss, input, target, batch_arguments, class_weight=True)


def _nll(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    return _row_weight_sum(loss, input, target, batch_arguments, class_weight=True, allow_probabilities=False,
                           scores_name="log_probs")


def _rows_labels_only(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    return _row_weight_sum(loss, input, target, batch_arguments, class_weight=False, allow_probabilities=False)


def _rows(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    return _row_weight_sum(loss, input, target, batch_arguments, class_weight=False)


def _squared_error(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    from .quadratic import _check_activation, _element_weight

    if _check_activation(loss.options.get("activation", "softmax")) == "softmax":
        return _rows(loss, input, target, batch_arguments)
    z = as_float_array(input, "logits")
    check_not_empty(z, "logits")
    axis = loss.options.get("axis", -1) % z.ndim
    batch_shape = z.shape[:axis] + z.shape[axis + 1 :]
    weight = _element_weight(batch_arguments.get("sample_weight"), z.shape, batch_shape, axis, z.dtype)
    return float(z.size) if weight is None else float(np.sum(weight, dtype=np.float64))


def _elements(name: str) -> _Rule:
    def rule(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
        array = as_float_array(input, name)
        check_not_empty(array, name)
        return float(array.size)

    return rule


def _kl(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    x = as_float_array(input, "log_probs")
    check_not_empty(x, "log_probs")
    if loss.options.get("reduction", "batchmean") == "mean":
        return float(x.size)
    return float(x.shape[0] if x.ndim > 0 else 1)


def _ranking(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any]) -> float:
    from .ranking import _check_labels, _check_mask

    scores = as_float_array(input, "scores")
    if scores.ndim == 0:
        raise ValueError("scores must have at least one dimension (the list axis, last), got a scalar")
    check_not_empty(scores, "scores")
    mask = _check_mask(batch_arguments.get("mask"), scores.shape)
    relevance = _check_labels(target, scores.shape, mask).reshape(-1, scores.shape[-1])
    return float(np.count_nonzero(relevance.sum(axis=1) > 0))


def _rules() -> dict[type[Loss], _Rule]:
    from . import binary, cauchy_schwarz, cross_entropy, focal, generalized, kullback_leibler, poly1
    from . import quadratic, ranking, similarity, symmetric

    return {
        cross_entropy.CrossEntropyLoss: _cross_entropy,
        poly1.Poly1CrossEntropyLoss: _cross_entropy,
        cross_entropy.NLLLoss: _nll,
        focal.FocalLoss: _rows_labels_only,
        generalized.GeneralizedCrossEntropyLoss: _rows_labels_only,
        symmetric.SymmetricCrossEntropyLoss: _rows_labels_only,
        similarity.SimLoss: _rows_labels_only,
        cauchy_schwarz.CauchySchwarzLoss: _rows,
        quadratic.MeanSquaredErrorLoss: _squared_error,
        binary.SigmoidBinaryCrossEntropyLoss: _elements("logits"),
        binary.SigmoidFocalLoss: _elements("logits"),
        binary.BinaryCrossEntropyLoss: _elements("probs"),
        kullback_leibler.KLDivLoss: _kl,
        ranking.SoftmaxRankingLoss: _ranking,
    }


_RULES: dict[type[Loss], _Rule] | None = None


def denominator(loss: Loss, input: ArrayLike, target: ArrayLike, batch_arguments: dict) -> float:
    """:math:`\\sum_i d_i` of ``loss`` on one batch (see the module docstring); a Python float."""
    global _RULES
    if _RULES is None:
        _RULES = _rules()
    for cls in type(loss).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule(loss, input, target, batch_arguments)
    raise NotImplementedError(
        f"{type(loss).__name__} does not state the denominator of its mean; give it a method "
        f"denominator(input, target, **batch_arguments) returning sum_i d_i"
    )
