"""Type aliases shared by the annotations of the public API.

Array *inputs* are annotated with :data:`numpy.typing.ArrayLike` (anything
:func:`numpy.asarray` accepts); arrays the library *returns* with
``NDArray[...]``. The aliases below name the types that recur.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Protocol, TypeAlias, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["FloatArray", "IntArray", "LossLike", "LossValue", "PathLike", "Reduction", "Seed"]

#: a floating-point array (float32 or float64: the dtypes every loss computes in)
FloatArray: TypeAlias = NDArray[np.floating[Any]]
#: an integer array (class labels, indices)
IntArray: TypeAlias = NDArray[np.integer[Any]]
#: what a loss returns: a NumPy scalar of the input's dtype, or an array for ``reduction="none"``
LossValue: TypeAlias = Union[np.floating[Any], NDArray[np.floating[Any]]]
#: the reduction contract of :mod:`crossent._reduction`
Reduction: TypeAlias = Literal["mean", "sum", "none"]
#: a source of randomness: an integer >= 0 seeds a new generator; a Generator is used (and advanced) as is
Seed: TypeAlias = Union[int, np.random.Generator]
#: a file-system path
PathLike: TypeAlias = Union[str, "os.PathLike[str]"]


class LossLike(Protocol):
    """What models and the training loop accept as a loss object.

    A :class:`crossent.losses.Loss`, a :class:`crossent.losses.LossSum`, or any
    object with these two methods.
    """

    def __call__(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> Any: ...

    def value_and_grad(
        self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any
    ) -> tuple[Any, NDArray[Any]]: ...
