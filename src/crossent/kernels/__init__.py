"""Fused loss-and-gradient kernels: compiled (Numba) for large arrays, NumPy twins otherwise.

The public loss functions and optimisers validate their arguments and call the
dispatchers here with C-contiguous arrays. Two implementations compute the
same thing:

* :mod:`crossent.kernels._numba`: one pass per row (or per parameter), rows
  split between threads, float32 stays float32. Compiled on first use and
  cached on disk (``__pycache__`` beside the source, or Numba's per-user cache
  directory when that is read-only; ``NUMBA_CACHE_DIR`` overrides both): the
  first call of a kernel in a fresh install compiles it (a few seconds),
  later processes load it.
* :mod:`crossent.kernels._numpy` (and the NumPy code of :mod:`crossent.optim`):
  whole-array NumPy, the readable specification.

The backend is one of

``"auto"`` (default)
    the compiled kernel for arrays of at least :data:`COMPILED_MIN_ELEMENTS`
    elements, NumPy below that, where a call costs microseconds either way, so
    that small jobs (``crossent train`` on the shipped digits) never wait for a
    compiler;
``"numba"``
    the compiled kernels whatever the size;
``"numpy"``
    the NumPy twins only (Numba is then never imported).

Choose with the ``CROSSENT_BACKEND`` environment variable (read at import) or,
for a block of code, :func:`use_backend`. The number of threads is Numba's
(``NUMBA_NUM_THREADS``, or :func:`numba.set_num_threads`); it changes only the
speed, never a result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import FloatArray

__all__ = [
    "BACKENDS",
    "COMPILED_MIN_ELEMENTS",
    "backend",
    "use_backend",
    "use_compiled",
    "softmax_cross_entropy_label_rows",
    "softmax_cross_entropy_probability_rows",
    "sigmoid_binary_cross_entropy_elements",
]

BACKENDS = ("auto", "numba", "numpy")
#: with the "auto" backend, arrays smaller than this go to the NumPy twins
COMPILED_MIN_ELEMENTS = 1 << 15


def _check_backend(name: object, source: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"{source} must be one of {', '.join(BACKENDS)}, got {name!r}")
    return name


# a wrong CROSSENT_BACKEND must not break `import crossent`: it is reported by the first call that needs it
_backend = os.environ.get("CROSSENT_BACKEND", "auto").strip().lower()


def backend() -> str:
    """The backend in use now: ``"auto"``, ``"numba"`` or ``"numpy"`` (ValueError for a bad ``CROSSENT_BACKEND``)."""
    return _check_backend(_backend, "CROSSENT_BACKEND")


def use_compiled(n_elements: int) -> bool:
    """Whether an array of ``n_elements`` goes to the compiled kernel under the current backend."""
    if _backend == "auto":
        return n_elements >= COMPILED_MIN_ELEMENTS
    if _backend == "numba":
        return True
    if _backend == "numpy":
        return False
    return backend() == "numba"  # raises, naming the variable and its value


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with another backend.

    For example, to compare the two::

        with crossent.kernels.use_backend("numpy"):
            reference = crossent.softmax_cross_entropy_grad(logits, labels)
    """
    global _backend
    previous, _backend = _backend, _check_backend(name, "backend")
    try:
        yield
    finally:
        _backend = previous


def softmax_cross_entropy_label_rows(
    logits: FloatArray, labels: ArrayLike, sample_weight: FloatArray, class_weight: FloatArray, smoothing: float,
    z_loss: float, scale: float, out: FloatArray | None = None, compute_grad: bool = True,
) -> tuple[NDArray[np.float64], FloatArray | None]:
    """Per-row losses (float64) and the scaled gradient for class labels (intp, ignored rows: weight 0).

    See :func:`crossent.kernels._numpy.softmax_cross_entropy_label_rows` for the
    math and the argument layout. ``out`` (optional) receives the gradient and
    may be ``logits`` itself. With ``compute_grad=False`` the gradient is written
    to scratch memory and ``None`` is returned in its place.
    """
    labels = np.ascontiguousarray(labels, dtype=np.intp)
    return _rows("softmax_cross_entropy_label_rows", logits, labels, sample_weight, class_weight,
                 smoothing, z_loss, scale, out, compute_grad)


def softmax_cross_entropy_probability_rows(
    logits: FloatArray, target: FloatArray, sample_weight: FloatArray, class_weight: FloatArray, smoothing: float,
    z_loss: float, scale: float, out: FloatArray | None = None, compute_grad: bool = True,
) -> tuple[NDArray[np.float64], FloatArray | None]:
    """As :func:`softmax_cross_entropy_label_rows` for (M, C) probability targets (C-contiguous, logits' dtype)."""
    return _rows("softmax_cross_entropy_probability_rows", logits, target, sample_weight, class_weight,
                 smoothing, z_loss, scale, out, compute_grad)


def _rows(
    name: str, logits: FloatArray, target: NDArray[Any], sample_weight: FloatArray, class_weight: FloatArray,
    smoothing: float, z_loss: float, scale: float, out: FloatArray | None, compute_grad: bool,
) -> tuple[NDArray[np.float64], FloatArray | None]:
    from . import _numpy

    twin = getattr(_numpy, name)
    if not use_compiled(logits.size) or logits.dtype not in (np.float32, np.float64):
        losses, grad = twin(logits, target, sample_weight, class_weight, smoothing, z_loss, scale, out)
        return losses, grad if compute_grad else None

    from . import _numba

    n_rows = logits.shape[0]
    losses = np.empty(n_rows, np.float64)
    row_ok = np.empty(n_rows, np.bool_)
    arguments = (target, sample_weight, class_weight, float(smoothing), float(z_loss), float(scale))
    if name == "softmax_cross_entropy_label_rows" and logits.shape[1] <= _numba.SMALL_CLASSES:
        grad = np.empty_like(logits) if out is None else out
        _numba.softmax_cross_entropy_label_rows_few_classes(logits, *arguments, grad, losses, row_ok)
    elif out is logits:
        getattr(_numba, name + "_inplace")(logits, *arguments, losses, row_ok)
        grad = logits
    else:
        grad = np.empty_like(logits) if out is None else out
        getattr(_numba, name)(logits, *arguments, grad, losses, row_ok)
    if not row_ok.all():
        # rows with a NaN, a +inf or no finite logit at all were left untouched: the twin says what they give
        bad = np.flatnonzero(~row_ok)
        losses[bad], grad[bad] = twin(
            logits[bad], target[bad],
            sample_weight[bad] if sample_weight.shape[0] else sample_weight,
            class_weight[bad] if class_weight.shape[0] > 1 else class_weight,
            smoothing, z_loss, scale, None,
        )
    return losses, grad if compute_grad else None


def sigmoid_binary_cross_entropy_elements(
    logits: FloatArray, target: FloatArray, positive_weight: FloatArray, weight: FloatArray, scale: float,
    out: FloatArray | None = None, compute_grad: bool = True,
) -> tuple[FloatArray, FloatArray | None]:
    """Per-element losses and the scaled gradient of sigmoid binary cross-entropy, on flat C-contiguous arrays.

    See :func:`crossent.kernels._numpy.sigmoid_binary_cross_entropy_elements`;
    ``out`` as for :func:`softmax_cross_entropy_label_rows`.
    """
    from . import _numpy

    if not use_compiled(logits.size) or logits.dtype not in (np.float32, np.float64):
        losses, grad = _numpy.sigmoid_binary_cross_entropy_elements(
            logits, target, positive_weight, weight, scale, out
        )
        return losses, grad if compute_grad else None

    from . import _numba

    losses = np.empty_like(logits)
    if out is logits:
        _numba.sigmoid_binary_cross_entropy_elements_inplace(
            logits, target, positive_weight, weight, float(scale), losses
        )
        grad = logits
    else:
        grad = np.empty_like(logits) if out is None else out
        _numba.sigmoid_binary_cross_entropy_elements(
            logits, target, positive_weight, weight, float(scale), losses, grad
        )
    return losses, grad if compute_grad else None
