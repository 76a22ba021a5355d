r"""Kullback-Leibler divergence loss on log-probabilities (PyTorch's ``kl_div``).

Element-wise, with input :math:`x` (log-probabilities of the model) and target
:math:`t` (probabilities, or log-probabilities with ``log_target=True``):

.. math::

    l = t\,(\log t - x), \qquad \frac{\partial l}{\partial x} = -t

    l = e^{t}\,(t - x), \qquad \frac{\partial l}{\partial x} = -e^{t} \quad (\texttt{log\_target=True})

The loss is linear in :math:`x`, so the gradient is the (negated) target, scaled
by the reduction. Summed over a row whose input is ``log_softmax(z)`` and whose
target is a distribution this is :math:`\mathrm{KL}(t \,\|\, \mathrm{softmax}(z))`.

An element whose target probability is 0 contributes 0 (``xlogy``), even where
the input is ``-inf``; PyTorch gives NaN there (``0 * -inf``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._reduction import gradient_scale, reduce
from .._typing import LossValue
from .._validation import (
    _first_position,
    as_float_array,
    check_finite_nonnegative,
    check_not_empty,
    check_reduction,
)
from ._api import Loss, grad_function, value_and_grad_function

__all__ = ["kl_div", "kl_div_grad", "kl_div_value_and_grad", "KLDivLoss"]

KL_REDUCTIONS = ("batchmean", "mean", "sum", "none")


def _kl_div(
    log_probs: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "batchmean",
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    x = as_float_array(log_probs, "log_probs")
    check_not_empty(x, "log_probs")
    reduction = check_reduction(reduction, KL_REDUCTIONS)
    if not isinstance(log_target, (bool, np.bool_)):
        raise TypeError(f"log_target must be True or False, got {log_target!r}")
    t = as_float_array(target, "target")
    if t.shape != x.shape:
        raise ValueError(f"target must have log_probs' shape {x.shape}, got shape {t.shape}")
    if log_target:
        bad = np.isnan(t) | (t == np.inf)
        if bad.any():
            position = _first_position(bad)
            raise ValueError(
                f"target with log_target=True must hold log-probabilities (< inf, -inf for 0); "
                f"found {t[position].item()!r} at position {position}"
            )
    else:
        check_finite_nonnegative(t, "target")
    t = t.astype(x.dtype, copy=False)

    if log_target:
        with np.errstate(over="ignore"):  # a log-target far above 0 is an unnormalised mass of inf
            mass = np.exp(t)
        with np.errstate(invalid="ignore"):  # t = x = -inf: masked by mass == 0 below
            losses = np.where(mass == 0, 0, mass * (t - x))
    else:
        mass = t
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) and -inf - (-inf): masked below
            losses = np.where(t == 0, 0, t * (np.log(t) - x))

    if reduction == "batchmean":
        reduction, denominator = "mean", (x.shape[0] if x.ndim > 0 else 1)
    else:
        denominator = x.size
    value = reduce(losses, reduction, denominator, x.dtype)
    if not compute_grad:
        return value, None
    grad = np.multiply(mass, -gradient_scale(reduction, denominator), dtype=x.dtype)
    grad += 0  # -0.0 -> 0.0 where the target is 0
    return value, grad


def kl_div(
    log_probs: ArrayLike, target: ArrayLike, *, log_target: bool = False,
    reduction: Literal["batchmean", "mean", "sum", "none"] = "batchmean",
) -> LossValue:
    r"""KL-divergence loss with PyTorch's ``torch.nn.functional.kl_div`` semantics.

    Element-wise, with input :math:`x` = ``log_probs`` and target :math:`t`:

    .. math::

        l = t\,(\log t - x),\quad \frac{\partial l}{\partial x} = -t;
        \qquad \texttt{log\_target=True}:\; l = e^{t}(t - x),\quad
        \frac{\partial l}{\partial x} = -e^{t}

    with :math:`l = 0` wherever the target probability is 0 (:math:`t = 0`, or
    :math:`t = -\infty` with ``log_target``), whatever :math:`x` is. Where the
    target is positive and :math:`x = -\infty` the loss is ``+inf`` (the model
    gives probability 0 to an outcome that happens); the gradient stays finite.

    Reductions (the element-wise sum :math:`S = \sum l`):

    * ``"batchmean"`` (default): :math:`S / N` with :math:`N` = ``log_probs.shape[0]``,
      the true KL divergence per sample when each row is a distribution.
      **The default here; PyTorch's default is "mean".**
    * ``"mean"``: :math:`S` / number of elements (PyTorch's "mean", which is
      not the KL divergence -- it also divides by the number of classes).
    * ``"sum"``: :math:`S`; ``"none"``: the element-wise losses.

    The gradient applies the same :math:`1/N` or :math:`1/\text{size}` once.

    Parameters
    ----------
    log_probs : array_like
        The model's log-probabilities (e.g. ``log_softmax`` output), any
        non-empty shape. Used as given: not checked to be normalised or <= 0.
    target : array_like
        ``log_probs``' shape. Probabilities (finite, >= 0; **not** required to
        be normalised, as in PyTorch), or with ``log_target=True``
        log-probabilities (any value but NaN and ``+inf``; ``-inf`` is 0).
    log_target : bool, default False
        Whether ``target`` is given in log space (more accurate for tiny
        probabilities).
    reduction : {"batchmean", "mean", "sum", "none"}, default "batchmean"

    Returns
    -------
    numpy scalar of ``log_probs``' dtype, or an array of its shape for ``"none"``.

    Shapes
    ------
    log_probs and target of the same shape, usually (N, C) with the batch on
    axis 0 (which ``"batchmean"`` divides by). A 0-d input counts as a batch of one.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.kullback_leibler import kl_div, kl_div_grad
    >>> log_q = np.log(np.array([[0.25, 0.75], [0.5, 0.5]]))
    >>> p = np.array([[0.5, 0.5], [1.0, 0.0]])
    >>> round(float(kl_div(log_q, p)), 6)  # (KL(p0||q0) + KL(p1||q1)) / 2
    0.418494
    >>> kl_div_grad(log_q, p)
    array([[-0.25, -0.25],
           [-0.5 ,  0.  ]])
    """
    return _kl_div(
        log_probs, target, log_target=log_target, reduction=reduction, compute_grad=False
    )[0]


kl_div_grad = grad_function(kl_div, _kl_div)
kl_div_value_and_grad = value_and_grad_function(kl_div, _kl_div)


class KLDivLoss(Loss):
    """:func:`kl_div` with fixed options (``log_target``, ``reduction``; default "batchmean")."""

    function = staticmethod(kl_div)
    implementation = staticmethod(_kl_div)
