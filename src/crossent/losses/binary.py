r"""Element-wise binary losses: sigmoid cross-entropy, cross-entropy on probabilities, focal loss.

Each element of the input is its own two-class problem (multi-label
classification when the input is (N, C)). With logit :math:`x`, target
:math:`y \in [0, 1]` and :math:`\sigma` the logistic function, everything
follows from identities that are exact and free of cancellation:

.. math::

    -\log \sigma(x) = \operatorname{softplus}(-x), \qquad
    -\log(1 - \sigma(x)) = \operatorname{softplus}(x), \qquad
    \frac{d}{dx}\operatorname{softplus}(\pm x) = \pm\sigma(\pm x)

so the binary cross-entropy is
:math:`c = y\,\operatorname{softplus}(-x) + (1-y)\operatorname{softplus}(x)` with
:math:`c' = (1-y)\,\sigma(x) - y\,\sigma(-x)` (which equals :math:`\sigma(x) - y`,
written as two non-negative terms so that neither side cancels for large
:math:`|x|`). Both softplus values and both sigmoids come from one
:math:`e^{-|x|}`.

**Focal loss.** With :math:`m = 1 - p_t = y\,\sigma(-x) + (1-y)\,\sigma(x)`
(again two non-negative terms; torchvision's ``1 - p_t`` cancels when
:math:`p_t \to 1`):

.. math::

    m' = (1 - 2y)\,\sigma(x)\sigma(-x), \qquad
    \frac{d}{dx}\big(c\, m^\gamma\big) = c' m^\gamma + \gamma\, c\, m^{\gamma-1} m'
        = m^\gamma \Big(c' + \gamma (1 - 2y)\, c\, r\Big),
    \quad r = \frac{\sigma(x)\sigma(-x)}{m} = \frac{1}{1 + y e^{-x} + (1-y) e^{x}}

The last step divides numerator and denominator by :math:`\sigma(x)\sigma(-x)`
(:math:`1/\sigma(\pm x) = 1 + e^{\mp x}`). Pulling :math:`m` out of
:math:`m^{\gamma - 1}` this way leaves only :math:`m^\gamma` with
:math:`\gamma \ge 0`, so :math:`\gamma \in [0, 1)` and :math:`m = 0` (a hard label
that is already right) never form ``0 * inf``; :math:`r \in [0, 1]` and an
overflowing :math:`e^{\pm x}` simply makes :math:`r = 0`.

**Reduction.** These are element-wise losses: every element has denominator
weight 1, so ``"mean"`` divides by the number of elements whatever ``weight``
is (PyTorch's convention for ``binary_cross_entropy*``; torchvision's for the
focal loss). See :mod:`crossent._reduction`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .. import kernels
from .._reduction import gradient_scale, reduce
from .._typing import FloatArray, LossValue, Reduction
from .._validation import (
    _first_position,
    as_float_array,
    broadcast_weight,
    check_finite_nonnegative,
    check_out,
    check_not_empty,
    check_probabilities,
    check_reduction,
    check_scalar,
)
from ._api import Loss, grad_function, value_and_grad_function
from ._classification import times
from .cross_entropy import _deliver

__all__ = [
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy_value_and_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_value_and_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "sigmoid_focal_loss_value_and_grad",
    "SigmoidBinaryCrossEntropyLoss",
    "BCEWithLogitsLoss",
    "BinaryCrossEntropyLoss",
    "BCELoss",
    "SigmoidFocalLoss",
]

#: PyTorch's floor for log(p) and log(1 - p) in binary_cross_entropy on probabilities.
LOG_CLAMP = -100.0


# --------------------------------------------------------------------------- validation


def _elementwise_input(input: ArrayLike, name: str, reduction: object) -> tuple[np.ndarray, str]:
    array = as_float_array(input, name)
    check_not_empty(array, name)
    return array, check_reduction(reduction)


def _binary_target(target: ArrayLike, input: np.ndarray, input_name: str) -> np.ndarray:
    """Targets with the input's shape, values in [0, 1] (soft labels; 0/1 integers or bools)."""
    array = as_float_array(target, "target")
    if array.shape != input.shape:
        raise ValueError(
            f"target must have {input_name}' shape {input.shape} (one 0/1 label or probability "
            f"per element), got shape {array.shape}"
        )
    check_probabilities(array, "target", None, normalised=False)
    return array.astype(input.dtype, copy=False)


def _elementwise_weight(weight: ArrayLike | None, name: str, input: np.ndarray) -> np.ndarray | None:
    """``weight`` (finite, >= 0) broadcast to the input's shape, or None."""
    if weight is None:
        return None
    array = as_float_array(weight, name)
    check_finite_nonnegative(array, name)
    return broadcast_weight(array, input.shape, name, input.dtype)


def _check_unit_interval(p: np.ndarray, name: str) -> None:
    """Every entry in [0, 1] exactly (NaN fails).

    Unlike :func:`crossent._validation.check_probabilities` there is no
    tolerance: ``log(p)`` of ``p = -1e-12`` or ``log(1 - p)`` of
    ``p = 1 + 1e-12`` would be NaN.
    """
    if p.min() >= 0 and p.max() <= 1:  # NaN makes both comparisons False
        return
    bad = ~((p >= 0) & (p <= 1))
    position = _first_position(bad)
    raise ValueError(
        f"{name} must be probabilities in [0, 1]; found {p[position].item()!r} at position {position}"
    )


# --------------------------------------------------------------------------- shared kernel


def _logistic_parts(x: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(softplus(x), softplus(-x), sigmoid(x), sigmoid(-x))`` from one ``exp(-|x|)``.

    ``softplus(+-x) = max(+-x, 0) + log1p(e^{-|x|})`` never overflows; for
    ``x = -inf`` this gives ``(0, inf, 0, 1)`` without a warning.
    """
    decay = np.exp(-np.abs(x))  # in [0, 1]
    log_term = np.log1p(decay)
    softplus_pos = np.maximum(x, 0) + log_term
    softplus_neg = np.maximum(-x, 0) + log_term
    inverse = 1 / (1 + decay)  # sigmoid(|x|)
    complement = decay * inverse  # sigmoid(-|x|), accurate where it is tiny
    positive = x >= 0
    sigmoid_pos = np.where(positive, inverse, complement)
    sigmoid_neg = np.where(positive, complement, inverse)
    return softplus_pos, softplus_neg, sigmoid_pos, sigmoid_neg


def _multiply(first: Any, second: Any) -> Any:
    """Product of two optional element-wise factors (None means 1)."""
    if first is None:
        return second
    if second is None:
        return first
    return first * second


# --------------------------------------------------------------------------- sigmoid BCE


def _sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    compute_grad: bool,
    out: NDArray[Any] | None = None,
) -> tuple[LossValue, NDArray[Any] | None]:
    x, reduction = _elementwise_input(logits, "logits", reduction)
    if out is not None:
        out = check_out(out, x)
    y = _binary_target(target, x, "logits")
    element_weight = _elementwise_weight(weight, "weight", x)
    positive_class_weight = _elementwise_weight(pos_weight, "pos_weight", x)
    smoothing = check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    if smoothing > 0:
        y = y * (1 - smoothing) + smoothing / 2

    # l = pw*y*softplus(-x) + (1-y)*softplus(x), dl/dx = w*[(1-y)*sigmoid(x) - pw*y*sigmoid(-x)]:
    # the fused element kernel (crossent.kernels), the gradient scaled by 1/size once for the mean
    flat = np.ascontiguousarray(x).reshape(-1)
    losses, grad = kernels.sigmoid_binary_cross_entropy_elements(
        flat, np.ascontiguousarray(y).reshape(-1), _flat_or_empty(positive_class_weight, x.dtype),
        _flat_or_empty(element_weight, x.dtype), gradient_scale(reduction, x.size),
        out=_flat_out(out, flat), compute_grad=compute_grad,
    )
    value = reduce(losses.reshape(x.shape), reduction, x.size, x.dtype)
    return value, None if grad is None else _deliver(grad.reshape(x.shape), out)


def _flat_or_empty(array: NDArray[Any] | None, dtype: DTypeLike) -> np.ndarray:
    """A weight as a flat C-contiguous array, or shape (0,) for "no weight" (the kernels' convention)."""
    return np.empty(0, dtype) if array is None else np.ascontiguousarray(array).reshape(-1)


def _flat_out(out: NDArray[Any] | None, flat: np.ndarray) -> NDArray[Any] | None:
    """Where the kernel may write the flat gradient: ``flat`` itself for in-place, a view of ``out``, or None."""
    if out is None or not out.flags.c_contiguous:
        return None
    view = out.reshape(-1)
    if view.__array_interface__["data"][0] == flat.__array_interface__["data"][0]:
        return flat
    return None if np.may_share_memory(view, flat) else view


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
) -> LossValue:
    r"""Binary cross-entropy between ``sigmoid(logits)`` and targets, element by element, from logits.

    For each element with logit :math:`x`, target :math:`y` (after smoothing),
    weight :math:`w` and positive-class weight :math:`\omega`:

    .. math::

        l &= w\,\big[\omega\, y \operatorname{softplus}(-x) + (1 - y)\operatorname{softplus}(x)\big]
           = -w\,\big[\omega\, y \log\sigma(x) + (1 - y)\log(1 - \sigma(x))\big] \\
        \frac{\partial l}{\partial x} &= w\,\big[(1 - y)\,\sigma(x) - \omega\, y\,\sigma(-x)\big]
        \quad(= w\,(\sigma(x) - y) \text{ when } \omega = 1)

    computed with :math:`\operatorname{softplus}(x) = \max(x, 0) + \log(1 + e^{-|x|})`,
    never :math:`\log(\sigma + \epsilon)`. Label smoothing replaces :math:`y` by
    :math:`y(1 - \varepsilon) + \varepsilon/2`. This is PyTorch's
    ``binary_cross_entropy_with_logits`` (same ``weight`` and ``pos_weight``);
    multi-label classification when ``logits`` is (N, C).

    ``"mean"`` divides by the number of elements (every element has
    denominator weight 1; ``weight`` does not enter the denominator), as
    PyTorch does.

    Parameters
    ----------
    logits : array_like
        Scores of any shape. ``-inf`` is a logit of probability 0: the loss is 0
        where the target is 0 and ``+inf`` where it is positive (the gradient,
        :math:`-w\omega y`, stays finite).
    target : array_like
        ``logits``' shape. Floating values in [0, 1] (soft labels allowed),
        or integer/boolean 0/1 labels.
    weight : array_like, optional
        Finite weights >= 0 broadcastable to ``logits``' shape (e.g. (N, 1) per
        sample, (N, C), or (C,) per label).
    pos_weight : array_like, optional
        Finite weights >= 0 for the positive term, broadcastable to ``logits``'
        shape; usually shape (C,) along the last axis (:math:`\omega > 1`
        raises recall, e.g. ``n_negative / n_positive``).
    label_smoothing : float in [0, 1], default 0
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of ``logits``' shape for ``"none"``.

    Shapes
    ------
    logits (N, C) with target (N, C) for multi-label; in general any shape,
    target the same shape, ``weight`` and ``pos_weight`` broadcastable to it.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.binary import (
    ...     sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_grad)
    >>> logits = np.array([[2.0, -1.0], [0.0, -np.inf]])
    >>> target = np.array([[1.0, 0.0], [1.0, 0.0]])
    >>> round(float(sigmoid_binary_cross_entropy(logits, target)), 6)
    0.283334
    >>> sigmoid_binary_cross_entropy_grad(logits, target)  # (sigmoid(x) - y) / 4
    array([[-0.02980073,  0.06723536],
           [-0.125     ,  0.        ]])
    """
    return _sigmoid_binary_cross_entropy(
        logits, target, weight=weight, pos_weight=pos_weight, label_smoothing=label_smoothing,
        reduction=reduction, compute_grad=False,
    )[0]


sigmoid_binary_cross_entropy_grad = grad_function(
    sigmoid_binary_cross_entropy, _sigmoid_binary_cross_entropy
)
sigmoid_binary_cross_entropy_value_and_grad = value_and_grad_function(
    sigmoid_binary_cross_entropy, _sigmoid_binary_cross_entropy
)


# --------------------------------------------------------------------------- BCE on probabilities


def _binary_cross_entropy(
    probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None, reduction: str = "mean",
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    p, reduction = _elementwise_input(probs, "probs", reduction)
    _check_unit_interval(p, "probs")
    y = _binary_target(target, p, "probs")
    element_weight = _elementwise_weight(weight, "weight", p)

    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped just below
        log_p = np.log(p)
        log_q = np.log1p(-p)  # log(1 - p), accurate for small p
    keep_p = log_p > LOG_CLAMP
    keep_q = log_q > LOG_CLAMP
    # Clamped logs are finite (>= -100), so y * log and w * l never meet an inf.
    losses = -(y * np.maximum(log_p, LOG_CLAMP) + (1 - y) * np.maximum(log_q, LOG_CLAMP))
    if element_weight is not None:
        losses = element_weight * losses
    value = reduce(losses, reduction, p.size, p.dtype)
    if not compute_grad:
        return value, None

    # Exact derivative of the clamped loss: a clamped log is constant, so its term is 0.
    grad = np.divide(1 - y, 1 - p, out=np.zeros_like(p), where=keep_q)
    grad -= np.divide(y, p, out=np.zeros_like(p), where=keep_p)
    if element_weight is not None:
        grad *= element_weight
    grad *= gradient_scale(reduction, p.size)
    return value, grad


def binary_cross_entropy(
    probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None, reduction: Reduction = "mean"
) -> LossValue:
    r"""Binary cross-entropy of probabilities, element by element (PyTorch's ``binary_cross_entropy``).

    .. math::

        l = -w\,\big[y \max(\log p, -100) + (1 - y)\max(\log(1 - p), -100)\big]

        \frac{\partial l}{\partial p} = -\frac{w\,y}{p}\,[\log p > -100]
            + \frac{w\,(1 - y)}{1 - p}\,[\log(1 - p) > -100]

    **The clamp.** This is the one place crossent clamps. A probability input
    can be exactly 0 or 1 (a saturated sigmoid upstream), where
    :math:`\log p` is :math:`-\infty` and the loss would be infinite; PyTorch
    floors each log at -100, and so does this function, so the values agree
    with PyTorch exactly and every element costs at most :math:`100\,w`. The
    clamp acts only below :math:`p = e^{-100} \approx 3.7 \times 10^{-44}`
    (or as close to 1), so it changes nothing else. Prefer
    :func:`sigmoid_binary_cross_entropy` on logits, which needs no clamp.

    **The gradient** is the exact derivative of the clamped loss above (a
    clamped term is constant, contributing 0), so it is always finite.
    PyTorch instead returns :math:`w\,(p - y) / \max(p(1 - p), 10^{-12})`,
    the unclamped derivative with a floored denominator: it agrees with this
    one in the interior and differs only where a log is clamped (or
    :math:`p(1-p) < 10^{-12}`).

    ``"mean"`` divides by the number of elements (``weight`` does not enter the
    denominator), as PyTorch does.

    Parameters
    ----------
    probs : array_like
        Probabilities in [0, 1] of any shape; anything outside (or NaN) is a
        ``ValueError`` naming the first offending value and its position.
    target : array_like
        ``probs``' shape; floating values in [0, 1] or integer/boolean 0/1 labels.
    weight : array_like, optional
        Finite weights >= 0 broadcastable to ``probs``' shape.
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    numpy scalar of ``probs``' dtype, or an array of ``probs``' shape for ``"none"``.

    Shapes
    ------
    probs and target of the same (any) shape; ``weight`` broadcastable to it.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.binary import binary_cross_entropy, binary_cross_entropy_grad
    >>> probs = np.array([0.8, 0.25, 0.0])
    >>> target = np.array([1.0, 0.0, 1.0])
    >>> binary_cross_entropy(probs, target, reduction="none")  # the last log is clamped
    array([  0.22314355,   0.28768207, 100.        ])
    >>> binary_cross_entropy_grad(probs, target, reduction="sum")
    array([-1.25      ,  1.33333333,  0.        ])
    """
    return _binary_cross_entropy(
        probs, target, weight=weight, reduction=reduction, compute_grad=False
    )[0]


binary_cross_entropy_grad = grad_function(binary_cross_entropy, _binary_cross_entropy)
binary_cross_entropy_value_and_grad = value_and_grad_function(
    binary_cross_entropy, _binary_cross_entropy
)


# --------------------------------------------------------------------------- focal loss


def _focal_alpha(alpha: float | None) -> float | None:
    """``alpha`` in [0, 1], or None / a negative number meaning "no alpha weighting"."""
    if alpha is None:
        return None
    alpha = check_scalar(alpha, "alpha")
    if alpha < 0:
        return None
    if alpha > 1:
        raise ValueError(
            f"alpha must lie in [0, 1] (or be None or negative to disable alpha weighting), "
            f"got {alpha!r}"
        )
    return alpha


def _sigmoid_focal_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    weight: ArrayLike | None = None,
    reduction: str = "mean",
    compute_grad: bool,
) -> tuple[LossValue, NDArray[Any] | None]:
    x, reduction = _elementwise_input(logits, "logits", reduction)
    y = _binary_target(target, x, "logits")
    element_weight = _elementwise_weight(weight, "weight", x)
    alpha = _focal_alpha(alpha)
    gamma = check_scalar(gamma, "gamma", low=0.0)
    if math.isinf(gamma):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")

    softplus_pos, softplus_neg, sigmoid_pos, sigmoid_neg = _logistic_parts(x)
    negative_part = 1 - y
    cross_entropy = times(y, softplus_neg) + times(negative_part, softplus_pos)
    # m = 1 - p_t as a sum of two non-negative terms (no cancellation when p_t -> 1).
    modulator = y * sigmoid_neg + negative_part * sigmoid_pos
    focal = modulator**gamma  # 0**0 = 1 as in torchvision
    losses = times(focal, cross_entropy)
    factor = element_weight
    if alpha is not None:
        factor = _multiply(factor, alpha * y + (1 - alpha) * negative_part)
    if factor is not None:
        losses = times(factor, losses)
    value = reduce(losses, reduction, x.size, x.dtype)
    if not compute_grad:
        return value, None

    # dl/dx = factor * m^gamma * [c' + gamma*(1-2y)*c*r], r = sigma(x)sigma(-x)/m (module docstring).
    grad = negative_part * sigmoid_pos - y * sigmoid_neg
    if gamma != 0:
        with np.errstate(over="ignore"):  # e^{+-x} = inf just makes r = 0
            denominator = 1 + times(y, np.exp(-x)) + times(negative_part, np.exp(x))
        ratio = 1 / denominator
        # r = 0 where c = inf (x = -inf with y > 0): the limit of c*r is 0.
        grad = grad + gamma * (1 - 2 * y) * times(ratio, cross_entropy)
    grad = grad * focal
    if factor is not None:
        grad = grad * factor
    grad *= gradient_scale(reduction, x.size)
    return value, grad


def sigmoid_focal_loss(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    weight: ArrayLike | None = None,
    reduction: Reduction = "mean",
) -> LossValue:
    r"""Focal loss of Lin et al. (2017) on logits, element by element (torchvision's ``sigmoid_focal_loss``).

    With :math:`c` the binary cross-entropy of :func:`sigmoid_binary_cross_entropy`,
    :math:`p = \sigma(x)`, :math:`p_t = p y + (1 - p)(1 - y)` and
    :math:`\alpha_t = \alpha y + (1 - \alpha)(1 - y)`:

    .. math::

        l &= w\,\alpha_t\, c\, (1 - p_t)^\gamma, \qquad
            c = y\operatorname{softplus}(-x) + (1 - y)\operatorname{softplus}(x) \\
        \frac{\partial l}{\partial x} &= w\,\alpha_t\,(1 - p_t)^\gamma
            \Big[\sigma(x) - y + \gamma\,(1 - 2y)\, c\, \frac{\sigma(x)\sigma(-x)}{1 - p_t}\Big]

    valid for soft labels :math:`y \in [0, 1]` (torchvision's general formula).
    Computed as :math:`1 - p_t = y\,\sigma(-x) + (1 - y)\,\sigma(x)` and
    :math:`\sigma(x)\sigma(-x)/(1 - p_t) = 1 / (1 + y e^{-x} + (1 - y) e^{x})`,
    so :math:`\gamma \in [0, 1)` is safe where :math:`1 - p_t = 0` (see the module
    docstring). :math:`\gamma = 0` with ``alpha=None`` is
    :func:`sigmoid_binary_cross_entropy`.

    ``"mean"`` divides by the number of elements (``weight`` and
    :math:`\alpha_t` do not enter the denominator), as torchvision does.
    torchvision has no ``weight``; it is an extra element-wise factor here.

    Parameters
    ----------
    logits : array_like
        Scores of any shape; ``-inf`` behaves as in :func:`sigmoid_binary_cross_entropy`.
    target : array_like
        ``logits``' shape; floating values in [0, 1] or integer/boolean 0/1 labels.
    alpha : float in [0, 1] or None, default 0.25
        Weight of the positive term. ``None`` or a negative number disables
        alpha weighting (:math:`\alpha_t = 1`), like torchvision's ``alpha < 0``.
    gamma : float >= 0, default 2
        Focusing parameter.
    weight : array_like, optional
        Finite weights >= 0 broadcastable to ``logits``' shape.
    reduction : {"mean", "sum", "none"}, default "mean"

    Returns
    -------
    numpy scalar of ``logits``' dtype, or an array of ``logits``' shape for ``"none"``.

    Shapes
    ------
    logits and target of the same (any) shape, e.g. (N, C) for detection
    class scores; ``weight`` broadcastable to it.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses.binary import sigmoid_focal_loss, sigmoid_focal_loss_grad
    >>> logits, target = np.array([3.0, -3.0, 0.0]), np.array([1.0, 1.0, 0.0])
    >>> sigmoid_focal_loss(logits, target, reduction="none")  # easy examples count little
    array([2.73208311e-05, 6.91570110e-01, 1.29965096e-01])
    >>> sigmoid_focal_loss_grad(logits, target, reduction="none")
    array([-7.87179616e-05, -2.81687470e-01,  2.23715096e-01])
    """
    return _sigmoid_focal_loss(
        logits, target, alpha=alpha, gamma=gamma, weight=weight, reduction=reduction,
        compute_grad=False,
    )[0]


sigmoid_focal_loss_grad = grad_function(sigmoid_focal_loss, _sigmoid_focal_loss)
sigmoid_focal_loss_value_and_grad = value_and_grad_function(sigmoid_focal_loss, _sigmoid_focal_loss)


# --------------------------------------------------------------------------- Loss classes


class SigmoidBinaryCrossEntropyLoss(Loss):
    """:func:`sigmoid_binary_cross_entropy` with fixed options.

    ``SigmoidBinaryCrossEntropyLoss(weight=None, pos_weight=None,
    label_smoothing=0.0, reduction="mean")``; also available as
    ``BCEWithLogitsLoss``.
    """

    function = staticmethod(sigmoid_binary_cross_entropy)
    implementation = staticmethod(_sigmoid_binary_cross_entropy)


BCEWithLogitsLoss = SigmoidBinaryCrossEntropyLoss


class BinaryCrossEntropyLoss(Loss):
    """:func:`binary_cross_entropy` (on probabilities) with fixed options (``weight``, ``reduction``).

    Also available as ``BCELoss``.
    """

    function = staticmethod(binary_cross_entropy)
    implementation = staticmethod(_binary_cross_entropy)


BCELoss = BinaryCrossEntropyLoss


class SigmoidFocalLoss(Loss):
    """:func:`sigmoid_focal_loss` with fixed options (``alpha``, ``gamma``, ``weight``, ``reduction``)."""

    function = staticmethod(sigmoid_focal_loss)
    implementation = staticmethod(_sigmoid_focal_loss)
