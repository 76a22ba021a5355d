"""The one reduction contract of crossent, written once.

Every loss computes a per-element loss ``l_i`` (one per row, or one per element
for the element-wise binary losses) and a per-element *denominator weight*
``d_i`` (1 unless the loss says otherwise; for example class and sample weights
for :func:`crossent.softmax_cross_entropy`). Then

============  ==========================================  =====================
reduction     value                                       gradient scale
============  ==========================================  =====================
``"none"``    the array ``l`` (input shape without the     1 (the gradient of
              class axis, or the input shape)              ``sum(l)``)
``"sum"``     ``sum_i l_i``                                1
``"mean"``    ``sum_i l_i / sum_i d_i``                    ``1 / sum_i d_i``
============  ==========================================  =====================

The gradient applies ``1 / sum_i d_i`` exactly once. When ``sum_i d_i == 0``
(every row ignored, or every weight zero) the mean is ``0.0`` and its gradient
is zero -- PyTorch returns NaN there; crossent returns a number a training loop
can add up.

Sums are accumulated in float64 and returned in the input's dtype as a NumPy
scalar.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._typing import LossValue


def mean_scale(denominator: float) -> float:
    """``1 / denominator``, or 0 when the denominator is 0 (nothing to average)."""
    denominator = float(denominator)
    return 0.0 if denominator == 0.0 else 1.0 / denominator


def gradient_scale(reduction: str, denominator: float) -> float:
    """Factor the per-element gradient is multiplied by for ``reduction``."""
    return mean_scale(denominator) if reduction == "mean" else 1.0


def reduce(losses: ArrayLike, reduction: str, denominator: float, dtype: DTypeLike) -> LossValue:
    """Apply ``reduction`` to per-element ``losses`` (see the module docstring)."""
    if reduction == "none":
        return np.asarray(losses, dtype=dtype)
    total: Any = np.sum(losses, dtype=np.float64)
    if reduction == "mean":
        total = total * mean_scale(denominator) if float(denominator) != 0.0 else 0.0
    scalar_type = (dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)).type
    return cast("np.floating[Any]", scalar_type(total))
