"""Argument checks shared by every public function.

Validation happens once, at the public boundary. Every check raises
``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (right kind,
wrong value) with a message that names the argument, what was expected and the
offending value. Nothing here uses ``assert``.

Cost: label checks look at the labels only (O(N) for N rows), never at an
N x C one-hot matrix. Probability targets are checked with one vectorised
pass over the target (a minimum and a row sum), which the loss reads anyway.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, SupportsFloat, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

REDUCTIONS = ("mean", "sum", "none")


def _describe(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_float_array(x: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    """Return ``x`` as a float32 or float64 array without copying when possible.

    float32 and float64 are preserved; float16 is computed in float32; integer
    and boolean arrays become float64 (as NumPy's ufuncs do). Anything else is
    a ``TypeError`` naming ``name``.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {_describe(x)}")
    array = np.asarray(x)
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype == np.float16:
            return array.astype(np.float32)
        if array.dtype.itemsize > 8:
            raise TypeError(
                f"{name} must be float32 or float64, got dtype {array.dtype}"
            )
        return array
    if kind in "iub":
        return array.astype(np.float64)
    raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")


def check_axis(axis: object, ndim: int, name: str = "axis") -> int:
    """Normalise ``axis`` to a non-negative integer smaller than ``ndim``."""
    if type(axis) is not int and (isinstance(axis, bool) or not isinstance(axis, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {_describe(axis)}")
    if ndim == 0:
        raise ValueError(f"{name}={axis} needs an input with at least one dimension, got a scalar")
    index = int(cast(numbers.Integral, axis))  # an integer, checked above
    if not -ndim <= index < ndim:
        raise ValueError(f"{name}={axis} is out of range for an input with {ndim} dimension(s)")
    return index % ndim


def check_reduction(reduction: object, allowed: tuple[str, ...] = REDUCTIONS) -> str:
    if not isinstance(reduction, str) or reduction not in allowed:
        expected = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"reduction must be one of {expected}, got {_describe(reduction)}")
    return reduction


def check_scalar(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Check a real scalar option (not NaN) against an interval and return it as float."""
    # plain floats and ints (not bool) are the common case on every training step: skip the ABC check
    if type(value) is not float and type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
                value = value.item()
            else:
                raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(cast(SupportsFloat, value))  # a real number, checked above
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    too_low = low is not None and (value < low or (value == low and not low_inclusive))
    too_high = high is not None and (value > high or (value == high and not high_inclusive))
    if too_low or too_high:
        interval = (
            ("[" if low_inclusive else "(")
            + ("-inf" if low is None else f"{low:g}")
            + ", "
            + ("inf" if high is None else f"{high:g}")
            + ("]" if high_inclusive else ")")
        )
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return value


def check_finite_scalar(value: object, name: str, **interval: Any) -> float:
    """:func:`check_scalar` that also rejects infinities."""
    value = check_scalar(value, name, **interval)
    if math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def check_not_empty(array: NDArray[Any], name: str) -> None:
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); a loss needs at least one element")


def _first_position(mask: NDArray[Any]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_labels(
    target: ArrayLike,
    expected_shape: tuple[int, ...],
    n_classes: int,
    ignore_index: int | None,
    name: str = "target",
) -> NDArray[np.int64]:
    """Validate integer class labels of ``expected_shape`` with values in [0, n_classes).

    Labels equal to ``ignore_index`` are allowed anywhere. Returns an int64 array.
    """
    labels = np.asarray(target)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.shape != tuple(expected_shape):
        raise ValueError(
            f"{name} with class labels must have shape {tuple(expected_shape)} "
            f"(the input's shape without its class axis), got {labels.shape}"
        )
    if labels.size == 0:
        return labels.astype(np.int64)
    # range-check in the labels' own dtype: a uint64 label above 2**63 must not wrap around
    low, high = labels.min(), labels.max()
    if low < 0 or high >= n_classes:
        bad = (labels < 0) | (labels >= n_classes)
        if ignore_index is not None:
            bad &= labels != ignore_index
        if bad.any():
            position = _first_position(bad)
            allowed = f"[0, {n_classes - 1}]"
            if ignore_index is not None:
                allowed += f" or ignore_index={ignore_index}"
            raise ValueError(
                f"{name} holds class labels in {allowed}; found {int(labels[position])} "
                f"at position {position}"
            )
    return labels.astype(np.int64, copy=False)


def check_ignore_index(ignore_index: object) -> int | None:
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer or None, got {_describe(ignore_index)}")
    return int(ignore_index)


def probability_tolerance(dtype: DTypeLike) -> float:
    """Tolerance for probability checks: sqrt of the dtype's machine epsilon.

    float64: 1.5e-8, float32: 3.5e-4.
    """
    return float(np.sqrt(np.finfo(dtype).eps))


def check_probabilities(p: NDArray[Any], name: str, axis: int | None, *, normalised: bool = True) -> None:
    """Entries must lie in [0, 1] (and rows sum to 1 along ``axis`` when ``normalised``).

    The tolerance is :func:`probability_tolerance` of the array's dtype.
    """
    tol = probability_tolerance(p.dtype)
    if p.size == 0:
        return
    if np.isnan(p).any():
        raise ValueError(f"{name} must be probabilities, found nan at position {_first_position(np.isnan(p))}")
    if p.min() < -tol:
        position = _first_position(p < -tol)
        raise ValueError(f"{name} must be probabilities (>= 0); found {p[position].item()!r} at position {position}")
    if not normalised:
        if p.max() > 1 + tol:
            position = _first_position(p > 1 + tol)
            raise ValueError(f"{name} must be probabilities (<= 1); found {p[position].item()!r} at position {position}")
        return
    sums = p.sum(axis=axis, dtype=np.float64)
    # axis=None: the whole array is one distribution
    off = np.abs(sums - 1.0) > tol * max(1.0, math.sqrt(p.size if axis is None else p.shape[axis]))
    if off.any():
        position = _first_position(off)
        raise ValueError(
            f"{name} must be probability distributions along axis {axis} (summing to 1 within "
            f"{tol:.1e}); the row at position {position} sums to {float(sums[position])!r}"
        )


def check_finite_nonnegative(array: NDArray[Any], name: str) -> None:
    if array.size == 0:
        return
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        position = _first_position(bad)
        raise ValueError(f"{name} must be finite and >= 0; found {array[position].item()!r} at position {position}")


def broadcast_weight(
    weight: ArrayLike, shape: tuple[int, ...], name: str, dtype: DTypeLike
) -> NDArray[np.floating[Any]]:
    """Broadcast ``weight`` to ``shape`` or raise a ValueError naming both shapes."""
    array = as_float_array(weight, name).astype(dtype, copy=False)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {array.shape} cannot be broadcast to shape {tuple(shape)}"
        ) from None


def check_out(out: object, like: NDArray[Any], name: str = "out") -> NDArray[Any]:
    """``out`` must be a writeable ndarray with ``like``'s shape and dtype (the gradient is written there)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array to write the gradient into, got {_describe(out)}")
    if out.shape != like.shape:
        raise ValueError(f"{name} must have the input's shape {like.shape}, got {out.shape}")
    if out.dtype != like.dtype:
        raise TypeError(f"{name} must have the input's dtype {like.dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; the gradient is written into it")
    return out
