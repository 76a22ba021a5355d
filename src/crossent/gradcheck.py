r"""Check an analytic gradient against central finite differences.

.. math:: \hat g_i = \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2 h_i}, \qquad h_i = \varepsilon \max(1, |x_i|)

The error is reported relative to the size of the gradient:
``max_i |g_i - ĝ_i| / max(max_i |g_i|, max_i |ĝ_i|)`` -- an entry-by-entry
relative error would flag harmless noise in entries that are nearly zero.
Work in float64: in float32 the differences are dominated by rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_scalar

__all__ = ["gradcheck", "numerical_gradient", "GradcheckResult"]


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`. ``bool(result)`` is ``result.passed``."""

    max_relative_error: float
    max_absolute_error: float
    worst_index: tuple[int, ...]
    analytic: NDArray[np.float64]
    numerical: NDArray[np.float64]
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.max_relative_error <= self.tolerance)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"gradcheck {verdict}: max relative error {self.max_relative_error:.3e} "
            f"(tolerance {self.tolerance:.1e}) at index {self.worst_index}, "
            f"max absolute error {self.max_absolute_error:.3e}"
        )


def numerical_gradient(
    func: Callable[[NDArray[np.float64]], Any], x: ArrayLike, *, eps: float = 1e-6
) -> NDArray[np.float64]:
    """Central-difference gradient of the scalar function ``func`` at ``x`` (float64)."""
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    point = np.array(x, dtype=np.float64)
    grad = np.zeros_like(point)
    flat_x, flat_grad = point.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        step = eps * max(1.0, abs(original))
        flat_x[i] = original + step
        upper = float(func(point))
        flat_x[i] = original - step
        lower = float(func(point))
        flat_x[i] = original
        flat_grad[i] = (upper - lower) / (2 * step)
    return grad


def gradcheck(
    func: Callable[[NDArray[np.float64]], Any],
    x: ArrayLike,
    grad: Callable[[NDArray[np.float64]], ArrayLike] | ArrayLike,
    *,
    eps: float = 1e-6,
    tolerance: float = 1e-6,
) -> GradcheckResult:
    """Compare an analytic gradient with central differences of ``func``.

    Parameters
    ----------
    func : callable
        ``func(x)`` returns a scalar.
    x : array_like
        Point of evaluation; converted to float64.
    grad : callable or array_like
        The analytic gradient: ``grad(x)`` or an array of ``x``'s shape.
    eps : float, default 1e-6
        Relative step (see the module docstring).
    tolerance : float, default 1e-6
        Largest relative error for which the check passes.

    Returns
    -------
    GradcheckResult
        ``max_relative_error``, ``max_absolute_error``, ``worst_index``, both
        gradients; truthy when the check passed.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> y = np.array([1, 0])
    >>> x = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    >>> result = crossent.gradcheck(lambda z: crossent.softmax_cross_entropy(z, y), x,
    ...                             lambda z: crossent.softmax_cross_entropy_grad(z, y))
    >>> result.passed, result.max_relative_error < 1e-8
    (True, True)
    """
    tolerance = check_scalar(tolerance, "tolerance", low=0.0)
    point = np.array(x, dtype=np.float64)
    analytic = np.asarray(grad(point.copy()) if callable(grad) else grad, dtype=np.float64)
    if analytic.shape != point.shape:
        raise ValueError(f"grad must have x's shape {point.shape}, got {analytic.shape}")
    numerical = numerical_gradient(func, point, eps=eps)
    difference = np.abs(analytic - numerical)
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numerical), initial=0.0)))
    max_abs = float(np.max(difference, initial=0.0))
    if scale == 0.0:
        relative = 0.0 if max_abs == 0.0 else float("inf")
    else:
        relative = max_abs / scale
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(difference)), point.shape)) if point.size else ()
    return GradcheckResult(relative, max_abs, worst, analytic, numerical, tolerance)
