r"""Stable building blocks: log-sum-exp, softmax, sigmoid and information measures.

All functions take NumPy arrays (or anything :func:`numpy.asarray` accepts) and
return NumPy arrays of the same floating dtype: float32 stays float32, float64
stays float64 (integers are computed in float64, float16 in float32).

Conventions for non-finite inputs
---------------------------------
* ``-inf`` entries are masked entries: they get probability exactly 0.
* A slice that is entirely ``-inf`` holds no mass at all:
  ``logsumexp`` is ``-inf``, ``softmax`` is all zeros and ``log_softmax`` is
  all ``-inf`` (so ``exp(log_softmax) == softmax`` still holds). No NaN and no
  warning is produced.
* NaN entries propagate: the slice's results are NaN. ``+inf`` entries are
  outside the contract (they give NaN, with NumPy's warning).
"""

from __future__ import annotations

import math
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import FloatArray
from ._validation import as_float_array, check_axis, check_probabilities, check_scalar

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "entropy",
    "cross_entropy",
    "kl_divergence",
]


def _shifted_exp(x: NDArray[np.floating[Any]], axis: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return ``(exp(x - m), m, log_sum)`` along ``axis`` (``m`` and ``log_sum`` kept as length 1).

    ``m`` is the maximum (0 where it is not finite), so every exponent is <= 0
    and nothing overflows for finite input, and rows that are entirely ``-inf``
    avoid ``-inf - (-inf)``. ``log_sum = log(sum(exp(x - m)))`` is computed as
    ``log1p`` of the sum of every term but the maximum's (which is exactly 1):
    when one entry dominates, ``log_softmax`` of it keeps full relative accuracy
    (``-8.5e-18`` for (40, 0, 0) rather than 0). Slices that are entirely
    ``-inf`` get ``log_sum = -inf``.
    """
    top = np.argmax(x, axis=axis, keepdims=True)  # gathered, the argmax gives the max too
    shift = np.take_along_axis(x, top, axis=axis)
    shift = np.where(np.isneginf(shift), 0, shift).astype(x.dtype, copy=False)  # NaN stays NaN
    exps = np.exp(x - shift)
    peak = np.take_along_axis(exps, top, axis=axis)  # 1, or 0 on an all -inf slice
    np.put_along_axis(exps, top, 0, axis=axis)
    rest = np.sum(exps, axis=axis, keepdims=True)
    np.put_along_axis(exps, top, peak, axis=axis)
    log_sum = np.where(peak != 0, np.log1p(rest), -np.inf).astype(x.dtype, copy=False)
    return exps, shift, log_sum


def logsumexp(x: ArrayLike, axis: int = -1, keepdims: bool = False) -> FloatArray:
    r"""Log of the sum of exponentials, computed without overflow.

    .. math:: \operatorname{LSE}(x) = m + \log \sum_i e^{x_i - m}, \quad m = \max_i x_i

    Gradient: :math:`\partial\,\mathrm{LSE} / \partial x_i = \mathrm{softmax}(x)_i`.

    Parameters
    ----------
    x : array_like
        Input values. ``-inf`` entries contribute nothing.
    axis : int, default -1
        Axis to reduce.
    keepdims : bool, default False
        Keep the reduced axis with length 1.

    Returns
    -------
    numpy.ndarray
        Shape of ``x`` without ``axis`` (or with length 1 there if ``keepdims``).
        A slice that is entirely ``-inf`` gives ``-inf`` (the log of an empty sum).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.logsumexp(np.array([1000.0, 1000.0])))  # doctest: +ELLIPSIS
    1000.693147...
    """
    x = as_float_array(x, "x")
    axis = check_axis(axis, x.ndim)
    _, shift, log_sum = _shifted_exp(x, axis)
    result = shift + log_sum
    return result if keepdims else np.squeeze(result, axis=axis)


def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    r"""Softmax along ``axis``: :math:`p_i = e^{x_i} / \sum_j e^{x_j}`.

    Jacobian: :math:`\partial p_i / \partial x_j = p_i(\delta_{ij} - p_j)`.

    A slice that is entirely ``-inf`` gives all zeros (no class has any mass).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> np.round(crossent.softmax(np.array([1.0, 2.0, 0.5])), 4)
    array([0.2312, 0.6285, 0.1402])
    """
    x = as_float_array(x, "x")
    axis = check_axis(axis, x.ndim)
    exps, _, log_sum = _shifted_exp(x, axis)
    exps /= np.where(np.isneginf(log_sum), 1, np.sum(exps, axis=axis, keepdims=True))  # all -inf: 0 / 1
    return exps


def log_softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    r"""Log of the softmax along ``axis``: :math:`x_i - \operatorname{LSE}(x)`.

    Gradient of :math:`\sum_i g_i \log p_i`: :math:`g - p \sum_i g_i`.

    A slice that is entirely ``-inf`` gives all ``-inf`` (the log of the
    all-zero softmax).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> crossent.log_softmax(np.array([0.0, -np.inf]))
    array([  0., -inf])
    """
    x = as_float_array(x, "x")
    axis = check_axis(axis, x.ndim)
    _, shift, log_sum = _shifted_exp(x, axis)
    log_sum = np.where(np.isneginf(log_sum), 0, log_sum)  # all -inf slice: -inf - 0 - 0 = -inf
    return ((x - shift) - log_sum).astype(x.dtype, copy=False)


def sigmoid(x: ArrayLike) -> FloatArray:
    r"""Logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`, with :math:`\sigma' = \sigma(1-\sigma)`.

    Evaluated through :math:`e^{-|x|}` so that no exponential overflows:
    ``sigmoid(-inf) == 0`` and ``sigmoid(inf) == 1`` exactly.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> crossent.sigmoid(np.array([-1e4, 0.0, 1e4]))
    array([0. , 0.5, 1. ])
    """
    x = as_float_array(x, "x")
    decay = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + decay), decay / (1 + decay)).astype(x.dtype, copy=False)


def log_sigmoid(x: ArrayLike) -> FloatArray:
    r""":math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|}) = -\operatorname{softplus}(-x)`.

    Derivative: :math:`1 - \sigma(x) = \sigma(-x)`.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> crossent.log_sigmoid(np.array([-1e4, 0.0]))
    array([-1.00000000e+04, -6.93147181e-01])
    """
    x = as_float_array(x, "x")
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def softplus(x: ArrayLike) -> FloatArray:
    r""":math:`\operatorname{softplus}(x) = \log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})`.

    Derivative: :math:`\sigma(x)`.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> crossent.softplus(np.array([-np.inf, 0.0, 1e4]))
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+04])
    """
    x = as_float_array(x, "x")
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _log_base(base: float | None) -> float:
    if base is None:
        return 1.0
    base = check_scalar(base, "base", low=0, low_inclusive=False)
    if base == 1 or math.isinf(base):
        raise ValueError(f"base must be a positive number other than 1, got {base!r}")
    return math.log(base)


@overload
def _distributions(p: ArrayLike, q: None, axis: int) -> tuple[FloatArray, None, int]: ...
@overload
def _distributions(p: ArrayLike, q: ArrayLike, axis: int) -> tuple[FloatArray, FloatArray, int]: ...
def _distributions(p: ArrayLike, q: ArrayLike | None, axis: int) -> tuple[FloatArray, FloatArray | None, int]:
    p_array = as_float_array(p, "p")
    axis = check_axis(axis, p_array.ndim, "axis")
    check_probabilities(p_array, "p", axis)
    p_array = np.maximum(p_array, 0)  # entries in [-tolerance, 0) passed the check: they count as 0
    if q is None:
        return p_array, None, axis
    q_array = as_float_array(q, "q")
    if q_array.shape != p_array.shape:
        raise ValueError(f"p and q must have the same shape, got p {p_array.shape} and q {q_array.shape}")
    check_probabilities(q_array, "q", axis)
    q_array = np.maximum(q_array, 0)
    dtype = np.result_type(p_array, q_array)
    return p_array.astype(dtype, copy=False), q_array.astype(dtype, copy=False), axis



def _plogq(p: FloatArray, q: FloatArray) -> FloatArray:
    """``p * log(q)`` with ``0 * log(anything) = 0``; ``p > 0, q == 0`` gives ``-inf``."""
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 * -inf is replaced just below
        products = p * np.log(q)
    return np.where(p == 0, 0, products)


def entropy(p: ArrayLike, axis: int = -1, base: float | None = None) -> FloatArray:
    r"""Shannon entropy :math:`H(p) = -\sum_i p_i \log p_i` with :math:`0 \log 0 = 0`.

    Parameters
    ----------
    p : array_like
        Probability distributions along ``axis`` (entries >= 0, summing to 1
        within ``sqrt(machine epsilon)``; otherwise ``ValueError``). Entries
        within that tolerance below 0 count as 0.
    axis : int, default -1
    base : float, optional
        ``None`` for nats, ``2`` for bits, any positive base other than 1.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.entropy(np.array([0.5, 0.5, 0.0]), base=2))
    1.0
    """
    p_array, _, axis = _distributions(p, None, axis)
    return -np.sum(_plogq(p_array, p_array), axis=axis) / _log_base(base)


def cross_entropy(p: ArrayLike, q: ArrayLike, axis: int = -1, base: float | None = None) -> FloatArray:
    r"""Cross-entropy between distributions :math:`H(p, q) = -\sum_i p_i \log q_i`.

    :math:`H(p, q) = H(p) + \mathrm{KL}(p \,\|\, q)`. Terms with :math:`p_i = 0`
    are 0 whatever :math:`q_i`; :math:`p_i > 0` with :math:`q_i = 0` gives
    ``inf``. For the loss on logits see :func:`crossent.softmax_cross_entropy`.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.cross_entropy(np.array([0.0, 1.0, 0.0]), np.array([0.2, 0.5, 0.3]), base=2))
    1.0
    """
    p_array, q_array, axis = _distributions(p, q, axis)
    return -np.sum(_plogq(p_array, q_array), axis=axis) / _log_base(base)


def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int = -1, base: float | None = None) -> FloatArray:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p \,\|\, q) = \sum_i p_i \log(p_i / q_i)`.

    Terms with :math:`p_i = 0` are 0; :math:`p_i > 0` with :math:`q_i = 0`
    gives ``inf``. Non-negative for valid distributions (up to rounding).
    For the PyTorch-style loss on log-probabilities see :func:`crossent.kl_div`.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.kl_divergence(np.array([0.5, 0.5]), np.array([0.25, 0.75]), base=2))  # doctest: +ELLIPSIS
    0.2075...
    """
    p_array, q_array, axis = _distributions(p, q, axis)
    return np.sum(_plogq(p_array, p_array) - _plogq(p_array, q_array), axis=axis) / _log_base(base)
