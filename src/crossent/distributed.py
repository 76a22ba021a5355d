r"""Data-parallel training: gradient sums over row chunks of data that is not one NumPy array.

One concept carries everything here. By the reduction contract
(:mod:`crossent._reduction`) a loss's mean over rows :math:`i` is
:math:`\sum_i l_i / \sum_i d_i` and its gradient :math:`\sum_i \nabla l_i / \sum_i d_i`.
Split the rows into chunks :math:`c`; every chunk reports

.. math::

    S_c = \sum_{i \in c} l_i, \qquad D_c = \sum_{i \in c} d_i, \qquad
    G_c = \sum_{i \in c} \nabla_\theta\, l_i

(:func:`gradient_sums`, the loss with ``reduction="sum"`` and
:meth:`crossent.losses.Loss.denominator`), the sums are added, and the client
divides once: :math:`L = \sum_c S_c / \sum_c D_c`, :math:`\nabla L = \sum_c G_c / \sum_c D_c`.
That is the in-memory mean exactly (up to the order of floating-point
additions), whatever the chunking, weights or ignored rows. A weighted sum of
losses (:class:`~crossent.losses.LossSum`) keeps one :math:`(S, D, G)` per term.

Where the data may live
-----------------------
``X`` (and ``y``, ``sample_weight``) may be

* a NumPy array in memory;
* a ``numpy.memmap`` or the path of a ``.npy`` file (C order): read with
  ordinary file reads, one block at a time, never mapped into memory;
* a zarr array;
* a directory of chunk files (see :func:`write_chunks`), with ``y=None``:
  ``X_000.npy``, ``y_000.npy`` and optionally ``sample_weight_000.npy``,
  ``X_001.npy``, ... -- numbered from 0 without gaps, each ``X_k`` with as many
  rows as ``y_k``; the chunks follow each other in file-number order;
* a ``dask.array`` chunked along the rows.

Without a ``client`` everything runs in this process, one block of rows at a
time. A block is ``block_rows`` rows (default: about
:data:`DEFAULT_BLOCK_BYTES` of ``X``; a NumPy array in memory is one block,
nothing is copied; a dask array's blocks are its chunks), so the memory held
at once is **one block of X, y and sample_weight, the activations of at most**
:data:`PASS_BYTES` **worth of rows, the parameters, and**
:math:`1 + \lceil\log_2(\text{blocks})\rceil` **gradient accumulators** (the
partial sums of a fixed binary tree), however large the data. Each block's sums
go through the same fixed binary tree as on a cluster, so a run without a
client and a run on any cluster add the same numbers in the same order.

With a ``dask.distributed.Client`` every block is one task on the worker that
holds it. Up to :data:`CLIENT_REDUCTION_PARTS` partial sums are gathered and
added on the client; more are reduced by a tree of tasks on the workers, so
that only the final :math:`(S, D, G)` reaches the client. Files and zarr arrays
become dask arrays that read their blocks on the workers (the task graph holds
a path, not data); a NumPy array in memory is scattered to the workers once per
fit, in one block per worker unless ``block_rows`` says otherwise. Parameters
up to :data:`INLINE_PARAMETER_BYTES` travel inside each task; larger ones are
sent to every worker once per evaluation or step
(``client.scatter(..., broadcast=True)``). Every step is a round trip through
the scheduler (tens of milliseconds on a busy 2-core machine): on a cluster,
prefer large batches.

Three ways through the data
---------------------------
* :func:`loss_and_gradient` / :func:`fit_full_batch`: every evaluation goes
  over all rows (gradient descent, or L-BFGS with
  ``scipy.optimize.minimize`` on the client). On a cluster the data is
  persisted in the workers' memory once per fit -- when it takes at most
  :data:`PERSIST_MEMORY_FRACTION` of their total memory limit; larger data is
  read from its source at every evaluation instead, a few blocks per worker
  at a time (with a warning: each evaluation then reads all of it).
* :func:`fit_minibatch` with ``sampling="rows"``: epoch :math:`e` draws the
  permutation ``numpy.random.default_rng([seed, e]).permutation(n_rows)`` of
  all row indices, exactly as :func:`crossent.fit` does, and step :math:`s`
  takes its rows ``order[s*B:(s+1)*B]``. The rows are grouped by the block that
  holds them (keeping their order within a block), each block gathers its rows
  and returns their sums, and the step's gradient is their total over the
  batch's :math:`D`. The batches are therefore those of :func:`crossent.fit`
  with the same ``seed`` and ``batch_size``, whatever the chunking, and so are
  the weights after training (up to rounding) -- for models without dropout.
  Every step needs any row, so on a cluster the data is persisted in the
  workers' memory (data larger than :data:`PERSIST_MEMORY_FRACTION` of it is
  refused: ``sampling="stream"`` is the way through it).
* :func:`fit_minibatch` with ``sampling="stream"``, for data larger than the
  cluster's memory (or this machine's): epoch :math:`e` visits the blocks in
  the order ``default_rng([seed, e]).permutation(n_blocks)``; each block is
  loaded once per epoch (on a cluster the next one is loaded while the current
  one trains, so at most two blocks are in memory) and cut into the minibatches
  ``default_rng([seed, e, block]).permutation(rows_of_block)[s*B:(s+1)*B]``; a
  minibatch never spans two blocks and the last one of a block may be short.
  This is a different sample order from :func:`crossent.fit`'s.

Dropout masks come from ``default_rng([seed, step, block])`` (full batch:
``[seed, iteration, block]``), so they do not depend on which worker runs a
task -- and differ from the masks of :func:`crossent.fit`.

Fault tolerance
---------------
The optimiser runs on the client and every step's sums are a pure function of
the parameters and the rows. When a worker dies, dask recomputes the blocks it
held from their source -- a file, a zarr array or a dask graph, not a NumPy
array scattered from the client's memory, which is lost with the worker -- and
the fit continues with the same numbers. ``checkpoint=path`` with
``checkpoint_every=k`` saves the model, the optimiser state and the position
(epoch, step and the epoch's running sums) every ``k`` steps with
:func:`crossent.save`; ``resume=path`` continues from such a file exactly where
the saved run was, so that an interrupted and resumed run ends with the weights
of an uninterrupted one.

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> import crossent
>>> from crossent.distributed import fit_minibatch, loss_and_gradient, write_chunks
>>> rng = np.random.default_rng(0)
>>> X, y = rng.normal(size=(300, 4)), rng.integers(0, 3, size=300)
>>> directory = tempfile.mkdtemp()
>>> write_chunks(directory, X, y, rows_per_file=128)
3
>>> model = crossent.nn.SoftmaxRegression(4, 3, dtype=np.float64)
>>> value, gradients = loss_and_gradient(model, directory)
>>> round(value, 6) == round(float(np.log(3)), 6)  # zero weights: the uniform distribution
True
>>> history = fit_minibatch(model, directory, batch_size=32, epochs=2, seed=0)
>>> twin = crossent.nn.SoftmaxRegression(4, 3, dtype=np.float64)
>>> _ = crossent.fit(twin, X, y, batch_size=32, epochs=2, seed=0)
>>> all(np.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in zip(model.parameters(), twin.parameters()))
True
"""

from __future__ import annotations

import json
import math
import mmap
import numbers
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._io import atomic_output
from ._reduction import mean_scale
from ._typing import PathLike
from ._validation import _describe, check_finite_scalar

if TYPE_CHECKING:
    from distributed import Client

    from .losses import Loss, LossSum
    from .nn import Model
    from .optim import Optimizer, Schedule
    from .train import History

#: rows as this module reads them: an array (also a memmap, a zarr or dask array) or a path (.npy or a chunk directory)
_Data: TypeAlias = Union[ArrayLike, PathLike]

__all__ = [
    "GradientSums",
    "gradient_sums",
    "loss_and_gradient",
    "fit_full_batch",
    "fit_minibatch",
    "write_chunks",
    "DEFAULT_BLOCK_BYTES",
    "PASS_BYTES",
    "INLINE_PARAMETER_BYTES",
    "CLIENT_REDUCTION_PARTS",
    "PERSIST_MEMORY_FRACTION",
]

#: bytes of X in one block read from a file or zarr array when ``block_rows`` is not given
DEFAULT_BLOCK_BYTES = 64 * 2**20
#: bytes of activations (rows times the widths of the model's layers) in one forward/backward pass of a block
PASS_BYTES = 16 * 2**20
#: parameters smaller than this travel inside each task; larger ones are scattered to every worker once per step
INLINE_PARAMETER_BYTES = 2**20
#: up to this many partial sums travel to the client and are added there; more are reduced by tasks on the workers
CLIENT_REDUCTION_PARTS = 4
#: data is persisted on a cluster only when it takes at most this share of the workers' total memory limit
PERSIST_MEMORY_FRACTION = 0.5
SAMPLINGS = ("rows", "stream")
SOLVERS = ("lbfgs", "gd")


# =================================================================================== the sums


@dataclass
class GradientSums:
    r"""Sums over some rows: per loss term :math:`S = \sum l_i`, :math:`D = \sum d_i`, :math:`G = \sum \nabla l_i`.

    ``a + b`` adds two of them (new arrays; neither operand changes).
    :meth:`mean` divides once.

    Attributes
    ----------
    loss_sums : ndarray, shape (K,), float64
        :math:`S_k` for each of the K loss terms (K = 1 for a single loss).
    denominators : ndarray, shape (K,), float64
        :math:`D_k`.
    gradients : list of K lists of float64 arrays, or None
        :math:`G_k`, one array per model parameter (None when only values were asked for).
    n_rows : int
    correct, counted : float, int
        Correct predictions and predictions made, for accuracy.
    """

    loss_sums: np.ndarray
    denominators: np.ndarray
    gradients: list | None
    n_rows: int
    correct: float
    counted: int

    def __add__(self, other: GradientSums) -> GradientSums:
        if not isinstance(other, GradientSums):
            return NotImplemented
        if (self.gradients is None) != (other.gradients is None):
            raise ValueError("cannot add sums with gradients to sums without")
        gradients = None
        if self.gradients is not None and other.gradients is not None:  # both or neither, checked above
            gradients = [[a + b for a, b in zip(left, right)] for left, right in zip(self.gradients, other.gradients)]
        return GradientSums(self.loss_sums + other.loss_sums, self.denominators + other.denominators, gradients,
                            self.n_rows + other.n_rows, self.correct + other.correct, self.counted + other.counted)

    def mean(self, coefficients: Sequence[float], divides: Sequence[bool]) -> tuple[float, list, list | None]:
        r"""``(loss, term values, gradient)`` with every term divided by its own total :math:`D_k` once.

        ``loss`` is :math:`\sum_k c_k S_k / D_k` (terms whose reduction is
        ``"sum"`` are not divided; a :math:`D_k` of 0 gives 0, the contract's
        mean of nothing), ``gradient`` the matching float64 arrays.
        """
        scales = [coefficient * (mean_scale(d) if divide else 1.0)
                  for coefficient, divide, d in zip(coefficients, divides, self.denominators)]
        term_values = [float(s * (mean_scale(d) if divide else 1.0))
                       for s, d, divide in zip(self.loss_sums, self.denominators, divides)]
        loss = float(sum(scale * float(s) for scale, s in zip(scales, self.loss_sums)))
        if self.gradients is None:
            return loss, term_values, None
        gradient = [scales[0] * g for g in self.gradients[0]]
        for scale, term in zip(scales[1:], self.gradients[1:]):
            for total, g in zip(gradient, term):
                total += scale * g
        return loss, term_values, gradient


def _add(left: GradientSums, right: GradientSums) -> GradientSums:
    return left + right


class _TreeSum:
    """Adds sums pushed in block order along the fixed binary tree that :func:`_tree_reduce` builds.

    A binary counter: a partial sum over :math:`2^k` consecutive blocks waits
    on a stack until its sibling arrives, so at most
    :math:`1 + \\lceil\\log_2 n\\rceil` partial sums are alive; the final fold
    goes from the right, as odd leftovers do in a level-by-level pairing.
    """

    def __init__(self) -> None:
        self._stack: list = []  # (level, sums)

    def push(self, sums: GradientSums) -> None:
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            sums = left + sums
            level += 1
        self._stack.append((level, sums))

    def total(self) -> GradientSums:
        if not self._stack:
            raise ValueError("no rows were summed")
        _, total = self._stack[-1]
        for _, left in reversed(self._stack[:-1]):
            total = left + total
        return total


def _reduce_sums(client, futures: list) -> GradientSums:
    """The total of the futures' sums, in the association of :class:`_TreeSum` wherever it is computed.

    A few parts are gathered and added on the client (no extra round trip
    through the scheduler, which is most of a small step's time); many parts
    go through a tree of tasks so that only one result reaches the client.
    """
    if len(futures) <= CLIENT_REDUCTION_PARTS:
        tree = _TreeSum()
        for sums in client.gather(futures):
            tree.push(sums)
        return tree.total()
    return _tree_reduce(client, futures).result()


def _tree_reduce(client, futures: list):
    """Level-by-level pairwise ``_add`` tasks on the workers; the same association as :class:`_TreeSum`."""
    while len(futures) > 1:
        paired = [client.submit(_add, futures[i], futures[i + 1], pure=False) for i in range(0, len(futures) - 1, 2)]
        if len(futures) % 2:
            paired.append(futures[-1])
        futures = paired
    return futures[0]


# =================================================================================== the kernel


@dataclass(frozen=True)
class _Term:
    coefficient: float
    summed: object  # the loss with reduction="sum"
    original: object  # the loss as configured: it states the denominator
    divides: bool  # its mean divides by D (reduction "mean"/"batchmean"); "sum" does not


def _terms(loss) -> list:
    from .losses import Loss, LossSum

    pairs = loss.terms if isinstance(loss, LossSum) else [(1.0, loss)]
    terms = []
    for coefficient, term in pairs:
        if not isinstance(term, Loss):
            raise TypeError(f"loss must be a crossent Loss or LossSum, got {_describe(term)}")
        reduction = term.reduction
        if reduction == "none":
            raise ValueError(f"{term!r} has reduction='none'; data-parallel training needs 'mean' or 'sum'")
        summed = type(term)(**{**term.options, "reduction": "sum"})
        terms.append(_Term(float(coefficient), summed, term, reduction != "sum"))
    return terms


def _term_names(loss) -> list | None:
    from .losses import LossSum

    return loss.term_names() if isinstance(loss, LossSum) else None


_LOCAL = threading.local()


def _model_for(model_config: dict):
    """A model of this architecture private to the current thread (built once, reused for every block)."""
    from .nn import model_from_config

    cache = getattr(_LOCAL, "models", None)
    if cache is None:
        cache = _LOCAL.models = {}
    key = json.dumps(model_config, sort_keys=True)
    model = cache.get(key)
    if model is None:
        if len(cache) >= 8:
            cache.clear()
        model = cache[key] = model_from_config(model_config)
    return model


def _rows_per_pass(model) -> int:
    """Rows whose activations take about :data:`PASS_BYTES` (every layer's output width, at least 64 rows)."""
    widths = model.n_features + sum(parameter.shape[0] for parameter in model.parameters() if parameter.ndim == 2)
    return max(64, PASS_BYTES // (np.dtype(model.dtype).itemsize * max(1, widths)))


def gradient_sums(
    parameters: Sequence[ArrayLike], model_config: Mapping[str, Any], loss: str | Loss | LossSum, X: ArrayLike,
    y: ArrayLike, sample_weight: ArrayLike | None = None, *, rows: ArrayLike | None = None, compute_grad: bool = True,
    training: bool = True, dropout_seed: Sequence[int] | None = None, row_offset: int = 0,
) -> GradientSums:
    r"""The sums :math:`(S, D, G)` of one chunk of rows: the kernel every task runs.

    .. math::

        S = \sum_{i} l_i(\theta), \qquad D = \sum_i d_i, \qquad
        G = \sum_i \nabla_\theta\, l_i(\theta) = \frac{\partial S}{\partial \theta}

    computed with the model's own forward and backward on the logits'
    gradient of the loss with ``reduction="sum"``, and :math:`D` from
    :meth:`crossent.losses.Loss.denominator`. The rows go through the model
    about :data:`PASS_BYTES` of activations at a time, so a large chunk
    needs no more memory than a small one.

    Parameters
    ----------
    parameters : list of ndarray
        The model's parameters, in ``model.parameters()`` order.
    model_config : dict
        ``model.config()``; the thread keeps one model per architecture.
    loss : Loss or LossSum
        As configured for training (its reduction decides whether :meth:`GradientSums.mean` divides).
    X : array_like, shape (N, n_features)
    y : array_like, (N,) or (N, ...)
    sample_weight : array_like, shape (N,), optional
        Passed to the loss, which must accept it.
    rows : int array, optional
        Only these rows of the chunk, in this order.
    compute_grad : bool, default True
    training : bool, default True
        Training mode (dropout active) or evaluation mode.
    dropout_seed : sequence of int, optional
        Dropout layer ``j`` draws its masks from ``default_rng([*dropout_seed, j])``.
    row_offset : int, default 0
        Index of the chunk's first row in the whole data, for error messages.

    Returns
    -------
    GradientSums

    Shapes
    ------
    X (N, n_features), y (N,) labels or (N, C) targets, sample_weight (N,);
    the gradients have the parameters' shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import SoftmaxRegression
    >>> from crossent.losses import CrossEntropyLoss
    >>> model = SoftmaxRegression(2, 3, dtype=np.float64)
    >>> X, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 2])
    >>> sums = gradient_sums(model.parameters(), model.config(), CrossEntropyLoss(), X, y)
    >>> round(float(sums.loss_sums[0]), 6), float(sums.denominators[0])  # 2 log 3, 2 rows
    (2.197225, 2.0)
    """
    return _term_sums(parameters, model_config, _terms(loss), X, y, sample_weight, rows=rows,
                      compute_grad=compute_grad, training=training, dropout_seed=dropout_seed, row_offset=row_offset)


def _term_sums(parameters, model_config, terms, X, y, sample_weight=None, *, rows=None, compute_grad=True,
               training=True, dropout_seed=None, row_offset=0) -> GradientSums:
    """:func:`gradient_sums` for the loss already split into :class:`_Term` (built once per fit, not per task)."""
    from .nn.layers import Dropout
    from .train import _correct, _target_for

    model = _model_for(model_config)
    own = model.parameters()
    if len(parameters) != len(own):
        raise ValueError(f"parameters has {len(parameters)} arrays; the model has {len(own)}")
    for index, (target, value) in enumerate(zip(own, parameters)):
        if np.shape(value) != target.shape:
            raise ValueError(f"parameters[{index}] has shape {np.shape(value)}, the model needs {target.shape}")
        target[...] = value
    if dropout_seed is not None:
        for index, layer in enumerate(model.network.layers):
            if isinstance(layer, Dropout):
                layer._rng = np.random.default_rng([*dropout_seed, index])
    y = np.asarray(y)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
    if rows is not None:
        rows = np.asarray(rows)
        X = np.take(X, rows, axis=0)
        y = np.take(y, rows, axis=0)
        if sample_weight is not None:
            sample_weight = np.take(sample_weight, rows, axis=0)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"X and y must have the same number of rows, got {X.shape[0]} and {y.shape[:1]}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        where = row_offset + (row if rows is None else int(rows[row]))
        raise ValueError(f"X must be finite; found {X[row, column].item()!r} at row {where}, column {column}")

    n_terms = len(terms)
    loss_sums = np.zeros(n_terms)
    denominators = np.zeros(n_terms)
    gradients = [[np.zeros(p.shape) for p in own] for _ in terms] if compute_grad else None
    correct: float = 0
    counted = 0
    step = _rows_per_pass(model)
    for start in range(0, X.shape[0], step):
        xb, yb = X[start : start + step], y[start : start + step]
        batch = {} if sample_weight is None else {"sample_weight": sample_weight[start : start + step]}
        # overflow on the way to a non-finite loss is reported by the caller, which knows the step
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logits = model.forward(xb, training=training)
            target = _target_for(model, logits, yb)
            for k, term in enumerate(terms):
                if gradients is not None:  # compute_grad
                    value, grad = term.summed.value_and_grad(logits, target, **batch)
                    model.backward(np.reshape(grad, logits.shape), need_input_grad=False)
                    for total, g in zip(gradients[k], model.gradients()):
                        total += g
                else:
                    value = term.summed(logits, target, **batch)
                loss_sums[k] += float(value)
                denominators[k] += term.original.denominator(logits, target, **batch)
        c, n = _correct(model, logits, yb)
        correct += c
        counted += n
    return GradientSums(loss_sums, denominators, gradients, int(X.shape[0]), float(correct), int(counted))


def _chunk_task(parameters, model_config, terms, X, y, sample_weight, rows, compute_grad, training, dropout_seed,
                row_offset):
    return _term_sums(parameters, model_config, terms, X, y, sample_weight, rows=rows, compute_grad=compute_grad,
                      training=training, dropout_seed=dropout_seed, row_offset=row_offset)


# =================================================================================== data sources


class _Memory:
    """Rows of a NumPy array in memory (blocks are views, gathers are np.take)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape, self.dtype = array.shape, array.dtype

    def read(self, start, stop, out=None):
        return self.array[start:stop]

    def take(self, rows):
        return np.take(self.array, rows, axis=0)


class _NpyFile:
    """Rows of a C-ordered array at byte ``offset`` of a file, read with file reads (never mapped).

    Small and picklable: a dask task graph carries the path, and each worker
    reads its own blocks. ``__getitem__`` with a tuple of slices is what
    ``dask.array.from_array`` asks of it.
    """

    def __init__(self, path, offset: int, shape: tuple, dtype):
        self.path, self.offset = str(path), int(offset)
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    @classmethod
    def from_npy(cls, path) -> _NpyFile:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no .npy file at {str(path)!r}")
        with open(path, "rb") as file:
            try:
                version = np.lib.format.read_magic(file)
                if version == (1, 0):
                    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
                else:
                    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
            except ValueError as error:
                raise ValueError(f"{str(path)!r} is not a .npy file ({error})") from None
            offset = file.tell()
        if fortran_order and len(shape) > 1:
            raise ValueError(f"{str(path)!r} holds a Fortran-ordered array, whose rows are not contiguous in the "
                             f"file; save it in C order (np.save(path, np.ascontiguousarray(array)))")
        if dtype.hasobject:
            raise TypeError(f"{str(path)!r} holds Python objects (dtype {dtype}); it needs a numeric dtype")
        return cls(path, offset, shape, dtype)

    @classmethod
    def from_memmap(cls, array: np.memmap) -> _NpyFile:
        if not array.flags.c_contiguous:
            raise ValueError("a numpy.memmap must be C-contiguous to be read by rows; pass the file's path instead")
        mapping = getattr(array, "_mmap", None)
        if mapping is None or array.filename is None:
            raise ValueError("this numpy.memmap has no file behind it; pass a NumPy array or a file path")
        # np.memmap maps the file from offset rounded down to the allocation granularity; a view keeps
        # its parent's offset, so the file position comes from the distance to the mapping's start
        mapped_from = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
        mapping_address = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        return cls(array.filename, mapped_from + array.ctypes.data - mapping_address, array.shape, array.dtype)

    def read(self, start, stop, out=None):
        shape = (stop - start,) + self.shape[1:]
        if out is None or out.shape[0] < shape[0]:
            out = np.empty(shape, self.dtype)
        else:
            out = out[: shape[0]]
        view = memoryview(out.reshape(-1).view(np.uint8))
        with open(self.path, "rb", buffering=0) as file:
            file.seek(self.offset + start * self.row_bytes)
            done = 0
            while done < len(view):
                got = file.readinto(view[done:])
                if not got:
                    raise ValueError(f"{self.path!r} ends before row {stop} of {self.shape[0]}: truncated file")
                done += got
        return out

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size,) + self.shape[1:], self.dtype)
        if rows.size == 0:
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        # consecutive rows are read in one go: a shuffled batch of a small file touches few runs
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        with open(self.path, "rb", buffering=0) as file:
            for run_start, run_stop in zip(np.r_[0, breaks], np.r_[breaks, ordered.size]):
                first, count = int(ordered[run_start]), int(run_stop - run_start)
                file.seek(self.offset + first * self.row_bytes)
                data = file.read(count * self.row_bytes)
                if len(data) != count * self.row_bytes:
                    raise ValueError(f"{self.path!r} ends before row {first + count}: truncated file")
                out[order[run_start:run_stop]] = np.frombuffer(data, self.dtype).reshape((count,) + self.shape[1:])
        return out

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = key[0] if key else slice(None)
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            return self.read(0, self.shape[0])[key]
        start, stop, _ = rows.indices(self.shape[0])
        return self.read(start, max(start, stop))[(slice(None),) + key[1:]]

    def __dask_tokenize__(self):
        status = os.stat(self.path)
        return ("crossent-npy-rows", self.path, self.offset, self.shape, self.dtype.str, status.st_mtime_ns,
                status.st_size)


class _Zarr:
    """Rows of a zarr array."""

    def __init__(self, array):
        self.array = array
        self.shape, self.dtype = tuple(array.shape), np.dtype(array.dtype)

    def read(self, start, stop, out=None):
        return np.asarray(self.array[start:stop])

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        return np.asarray(self.array.oindex[(unique,) + (slice(None),) * (len(self.shape) - 1)])[inverse]


def _is_dask_array(value) -> bool:
    return type(value).__module__.startswith("dask.array") and hasattr(value, "chunks")


def _is_zarr_array(value) -> bool:
    return type(value).__module__.startswith("zarr") and hasattr(value, "oindex")


def _source(value, name: str):
    """A row source for one array argument (dask arrays are handled apart)."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if path.is_dir():
            raise ValueError(f"{name} is a directory; a directory of chunk files is passed as X with y=None")
        return _NpyFile.from_npy(path)
    if isinstance(value, np.memmap):
        return _NpyFile.from_memmap(value)
    if _is_zarr_array(value):
        return _Zarr(value)
    if _is_dask_array(value):
        return _DaskBlocks(value)
    if isinstance(value, np.ndarray):
        return _Memory(value)
    if isinstance(value, (list, tuple)):
        return _Memory(np.asarray(value))
    raise TypeError(f"{name} must be a NumPy array, numpy.memmap, .npy path, zarr array or dask array, "
                    f"got {_describe(value)}")


_CHUNK_FILE = re.compile(r"^(X|y|sample_weight)_(\d+)\.npy$")


def _directory_sources(directory: Path) -> dict:
    found: dict = {"X": {}, "y": {}, "sample_weight": {}}
    for entry in directory.iterdir():
        match = _CHUNK_FILE.match(entry.name)
        if match:
            found[match.group(1)][int(match.group(2))] = entry
    numbers_ = sorted(found["X"])
    if not numbers_:
        raise ValueError(f"{str(directory)!r} holds no chunk files X_000.npy, y_000.npy, ... (see write_chunks)")
    if numbers_ != list(range(len(numbers_))):
        missing = sorted(set(range(numbers_[-1] + 1)) - set(numbers_))
        raise ValueError(f"{str(directory)!r}: the X chunk files must be numbered 0, 1, 2, ... without gaps; "
                         f"missing number(s) {missing[:5]}")
    if sorted(found["y"]) != numbers_:
        raise ValueError(f"{str(directory)!r}: every X_k.npy needs a y_k.npy; y files found for "
                         f"{sorted(found['y'])[:10]}, X files for {numbers_[:10]}")
    weighted = sorted(found["sample_weight"])
    if weighted and weighted != numbers_:
        raise ValueError(f"{str(directory)!r}: sample_weight files must exist for every chunk or for none")
    return {
        "X": [_NpyFile.from_npy(found["X"][k]) for k in numbers_],
        "y": [_NpyFile.from_npy(found["y"][k]) for k in numbers_],
        "sample_weight": [_NpyFile.from_npy(found["sample_weight"][k]) for k in numbers_] if weighted else None,
    }


def write_chunks(
    directory: PathLike, X: _Data, y: _Data, sample_weight: _Data | None = None, *, rows_per_file: int
) -> int:
    """Write ``(X, y[, sample_weight])`` as a directory of chunk files; returns the number of chunks.

    The layout read back by every function of this module when ``X`` is a
    directory (and ``y=None``): ``X_000.npy``, ``y_000.npy`` (and
    ``sample_weight_000.npy`` when given), ``X_001.npy``, ... each holding
    ``rows_per_file`` consecutive rows (the last one the rest). Numbers have at
    least three digits (more when there are over 1000 chunks). Each file is
    written atomically; ``X`` may itself be a memmap or any row source, read
    one chunk at a time.

    Parameters
    ----------
    directory : str or Path
        Created if absent; existing chunk files of the same names are replaced.
    X : array_like, shape (N, n_features)
    y : array_like, shape (N, ...)
    sample_weight : array_like, shape (N,), optional
    rows_per_file : int >= 1

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> directory = tempfile.mkdtemp()
    >>> write_chunks(directory, np.zeros((5, 2)), np.arange(5), rows_per_file=2)
    3
    >>> sorted(p.name for p in Path(directory).iterdir())
    ['X_000.npy', 'X_001.npy', 'X_002.npy', 'y_000.npy', 'y_001.npy', 'y_002.npy']
    """
    rows_per_file = _check_positive_int(rows_per_file, "rows_per_file")
    sources = {"X": _source(X, "X"), "y": _source(y, "y")}
    if sample_weight is not None:
        sources["sample_weight"] = _source(sample_weight, "sample_weight")
    n_rows = sources["X"].shape[0]
    for name, source in sources.items():
        if source.shape[:1] != (n_rows,):
            raise ValueError(f"{name} must have {n_rows} rows like X, got shape {source.shape}")
    if len(sources["X"].shape) != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {sources['X'].shape}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_files = max(1, math.ceil(n_rows / rows_per_file))
    digits = max(3, len(str(n_files - 1)))
    for index in range(n_files):
        start, stop = index * rows_per_file, min(n_rows, (index + 1) * rows_per_file)
        for name, source in sources.items():
            with atomic_output(directory / f"{name}_{index:0{digits}d}.npy") as file:
                np.save(file, np.ascontiguousarray(source.read(start, stop)), allow_pickle=False)
    return n_files


# =================================================================================== the table of blocks


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {_describe(value)}")
    return int(value)


class _Table:
    """X, y and sample_weight as segments (files, arrays) cut into blocks of rows.

    ``parts[name]`` is a list of sources, one per segment, the same
    segmentation for every part; ``blocks[b] = (segment, start, stop)`` and
    ``offsets[b]`` is block b's first row in the whole data.
    """

    def __init__(self, parts: dict, block_rows):
        self.parts = parts
        first = parts["X"]
        for index, segment in enumerate(first):
            if len(segment.shape) != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {segment.shape}"
                                 + (f" in chunk {index}" if len(first) > 1 else ""))
            for name in ("y", "sample_weight"):
                if parts.get(name) is not None and parts[name][index].shape[:1] != segment.shape[:1]:
                    where = f" in chunk {index}" if len(first) > 1 else ""
                    raise ValueError(f"X and {name} must have the same number of rows{where}, got "
                                     f"{segment.shape[0]} and {parts[name][index].shape[:1] or 'a scalar'}")
        n_features = {segment.shape[1] for segment in first}
        if len(n_features) > 1:
            raise ValueError(f"every X chunk must have the same number of columns, got {sorted(n_features)}")
        self.n_features = n_features.pop()
        self.blocks: list[tuple[int, int, int]] = []
        for index, segment in enumerate(first):
            rows = segment.shape[0]
            if isinstance(segment, _DaskBlocks):  # the dask array's own chunks
                self.blocks.extend((index, int(start), int(stop))
                                   for start, stop in zip(segment.starts[:-1], segment.starts[1:]))
                continue
            if block_rows is None:
                step = max(1, rows) if isinstance(segment, _Memory) else max(
                    1, DEFAULT_BLOCK_BYTES // max(1, segment.dtype.itemsize * self.n_features))
            else:
                step = block_rows
            if isinstance(segment, _Zarr):  # whole zarr chunks: a block never decodes a chunk twice
                chunk = int(segment.array.chunks[0])
                step = max(chunk, step // chunk * chunk)
            self.blocks.extend((index, start, min(rows, start + step)) for start in range(0, rows, step))
        sizes = [stop - start for _, start, stop in self.blocks]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.n_rows = int(self.offsets[-1])
        if self.n_rows == 0:
            raise ValueError("X is empty: training needs at least one sample")
        self._buffers: dict = {}

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def block_sizes(self) -> list:
        return [stop - start for _, start, stop in self.blocks]

    def read_block(self, b: int, reuse: bool = False) -> tuple:
        segment, start, stop = self.blocks[b]
        out: list[Any] = []
        for name in ("X", "y", "sample_weight"):
            sources = self.parts.get(name)
            if sources is None:
                out.append(None)
                continue
            buffer = self._buffers.get(name) if reuse else None
            array = sources[segment].read(start, stop, out=buffer)
            if reuse and isinstance(sources[segment], _NpyFile) and (buffer is None or array.base is not buffer):
                self._buffers[name] = array if array.base is None else array.base
            out.append(array)
        return tuple(out)

    def take(self, b: int, rows) -> tuple:
        segment, start, _ = self.blocks[b]
        rows = np.asarray(rows) + start
        return tuple(None if self.parts.get(name) is None else self.parts[name][segment].take(rows)
                     for name in ("X", "y", "sample_weight"))


def _as_table(X, y, sample_weight, block_rows) -> _Table:
    if block_rows is not None:
        block_rows = _check_positive_int(block_rows, "block_rows")
    if isinstance(X, (str, os.PathLike)) and Path(X).is_dir():
        if y is not None or sample_weight is not None:
            raise ValueError("X is a directory of chunk files, which hold y (and sample_weight): pass y=None")
        return _Table(_directory_sources(Path(X)), block_rows)
    if y is None:
        raise ValueError("y is required unless X is a directory of chunk files")
    parts = {"X": [_source(X, "X")], "y": [_source(y, "y")]}
    if sample_weight is not None:
        parts["sample_weight"] = [_source(sample_weight, "sample_weight")]
    return _Table(parts, block_rows)


# =================================================================================== executors


class _Work:
    """What every task needs besides the rows: the architecture, the loss, and how to run."""

    def __init__(self, model, loss):
        from .nn import MODELS

        config = getattr(model, "config", None)
        if config is None or type(model).__name__ not in MODELS:
            raise TypeError(f"model must be a crossent.nn model ({', '.join(MODELS)}), got {_describe(model)}")
        self.model_config = model.config()
        self.loss = loss
        self.terms = terms = _terms(loss)
        self.coefficients = [term.coefficient for term in terms]
        self.divides = [term.divides for term in terms]
        self.term_names = _term_names(loss)


class _LocalExecutor:
    """Runs every block in this process, one at a time."""

    def __init__(self, table: _Table, work: _Work):
        self.table, self.work = table, work
        self.n_rows, self.n_blocks, self.offsets = table.n_rows, table.n_blocks, table.offsets
        self.n_features = table.n_features

    def block_sizes(self) -> list:
        return self.table.block_sizes()

    def _sums(self, parameters, X, y, w, rows, compute_grad, training, dropout_seed, offset):
        return _term_sums(parameters, self.work.model_config, self.work.terms, X, y, w, rows=rows,
                          compute_grad=compute_grad, training=training, dropout_seed=dropout_seed,
                          row_offset=offset)

    def full(self, parameters, *, compute_grad=True, training=True, seed=None) -> GradientSums:
        tree = _TreeSum()
        for b in range(self.table.n_blocks):
            X, y, w = self.table.read_block(b, reuse=True)
            tree.push(self._sums(parameters, X, y, w, None, compute_grad, training,
                                 None if seed is None else [*seed, b], int(self.table.offsets[b])))
        return tree.total()

    def rows(self, parameters, selection, *, training=True, seed=None) -> GradientSums:
        tree = _TreeSum()
        for b, local in selection:
            X, y, w = self.table.take(b, local)
            tree.push(self._sums(parameters, X, y, w, None, True, training, None if seed is None else [*seed, b],
                                 int(self.table.offsets[b])))
        return tree.total()

    def open(self, b: int):
        return self.table.read_block(b, reuse=False)

    def prefetch(self, b: int):
        return None

    def in_block(self, handle, b, parameters, local, *, training=True, seed=None) -> GradientSums:
        X, y, w = handle
        return self._sums(parameters, X, y, w, local, True, training, None if seed is None else [*seed, b],
                          int(self.table.offsets[b]))

    def close(self):
        pass


def _dask_parts(X, y, sample_weight, block_rows, default_rows):
    """X, y, sample_weight as dask arrays with the same row chunks (one column chunk each)."""
    import dask.array as da

    if isinstance(X, (str, os.PathLike)) and Path(X).is_dir():
        if y is not None or sample_weight is not None:
            raise ValueError("X is a directory of chunk files, which hold y (and sample_weight): pass y=None")
        table = _Table(_directory_sources(Path(X)), block_rows)
        parts = {}
        for name, sources in table.parts.items():
            if sources is None:
                continue
            pieces = [_dask_rows(sources[segment], start, stop) for segment, start, stop in table.blocks]
            parts[name] = da.concatenate(pieces, axis=0)
        return parts.get("X"), parts.get("y"), parts.get("sample_weight")
    if y is None:
        raise ValueError("y is required unless X is a directory of chunk files")
    if _is_dask_array(X):
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
        X = X.rechunk({1: -1})
    else:
        X = _to_dask(X, "X", block_rows, None, default_rows)
    row_chunks = X.chunks[0]
    y = _to_dask(y, "y", None, row_chunks)
    if sample_weight is not None:
        sample_weight = _to_dask(sample_weight, "sample_weight", None, row_chunks)
    for name, part in (("y", y), ("sample_weight", sample_weight)):
        if part is not None and part.shape[:1] != X.shape[:1]:
            raise ValueError(f"X and {name} must have the same number of rows, got {X.shape[0]} and "
                             f"{part.shape[:1] or 'a scalar'}")
    return X, y, sample_weight


def _dask_rows(source, start, stop):
    import dask.array as da

    # one chunk exactly for rows start:stop (chunks of the rows before and after, never computed), so that
    # the block is one task, as the in-process loop's block is one read
    row_chunks = tuple(size for size in (start, stop - start, source.shape[0] - stop) if size > 0)
    array = da.from_array(source, chunks=(row_chunks,) + source.shape[1:], asarray=True,
                          meta=np.empty((0,) * len(source.shape), source.dtype))
    return array[start:stop] if (start, stop) != (0, source.shape[0]) else array


def _to_dask(value, name, block_rows, row_chunks, default_rows=None):
    import dask.array as da

    if _is_dask_array(value):
        array = value
    else:
        source = _source(value, name)
        if isinstance(source, _Zarr):
            array = da.from_zarr(source.array)
        elif isinstance(source, _NpyFile):
            rows = block_rows or max(1, DEFAULT_BLOCK_BYTES // max(1, source.row_bytes))
            array = da.from_array(source, chunks=(rows,) + source.shape[1:], asarray=True,
                                  meta=np.empty((0,) * len(source.shape), source.dtype))
        else:
            data = source.array
            rows = block_rows or default_rows or max(1, data.shape[0])
            return _Scattered(data, rows if row_chunks is None else row_chunks)
    chunks = {axis: -1 for axis in range(1, array.ndim)}
    if row_chunks is not None:
        chunks[0] = row_chunks
    elif block_rows is not None:
        chunks[0] = block_rows
    return array.rechunk(chunks) if chunks else array


class _Scattered:
    """A NumPy array of the client's memory, to be scattered to the workers block by block."""

    def __init__(self, data: np.ndarray, chunks):
        self.data = data
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype
        if isinstance(chunks, numbers.Integral):
            n = data.shape[0]
            chunks = tuple(min(chunks, n - start) for start in range(0, n, chunks)) or (0,)
        self.chunks = (tuple(chunks),) + tuple((s,) for s in data.shape[1:])


def _exceeds_cluster_memory(client, *arrays) -> str | None:
    """None when ``arrays`` (dask arrays, or None) take at most :data:`PERSIST_MEMORY_FRACTION` of the memory
    limits of ``client``'s workers (or the workers have no limit), else a sentence saying by how much."""
    data_bytes = sum(int(array.nbytes) for array in arrays if array is not None)
    limits = [int(worker.get("memory_limit") or 0) for worker in client.scheduler_info().get("workers", {}).values()]
    if not data_bytes or not limits or 0 in limits:  # no limit set: persist, as dask itself would
        return None
    if data_bytes <= PERSIST_MEMORY_FRACTION * sum(limits):
        return None
    return (f"the data ({data_bytes / 2**30:.3g} GiB) exceeds {PERSIST_MEMORY_FRACTION:g} of the cluster's memory "
            f"limit ({sum(limits) / 2**30:.3g} GiB over {len(limits)} workers)")


class _DaskExecutor:
    """Runs every block as a task on the worker that holds it; the client sees only the reduced sums."""

    def __init__(self, client, X, y, sample_weight, work: _Work, block_rows, persist: bool | str):
        self.client, self.work = client, work
        # a NumPy array in the client's memory is cut into one block per worker unless told otherwise
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        n_rows = np.shape(X)[0] if isinstance(X, np.ndarray) and not isinstance(X, np.memmap) else 0
        X, y, sample_weight = _dask_parts(X, y, sample_weight, block_rows, max(1, math.ceil(n_rows / n_workers)))
        self.arrays = {"X": X, "y": y, "sample_weight": sample_weight}
        sizes = X.chunks[0]
        self.n_blocks = len(sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.n_rows = int(self.offsets[-1])
        if self.n_rows == 0:
            raise ValueError("X is empty: training needs at least one sample")
        self.n_features = X.shape[1]
        self._sizes = list(sizes)
        self.n_workers = n_workers
        self.handles: dict[str, Any] = {name: None for name in self.arrays}
        if persist:
            persist = self._fits_in_memory(persist)
        for name, array in self.arrays.items():
            if array is None:
                continue
            if isinstance(array, _Scattered):
                pieces = [array.data[self.offsets[b] : self.offsets[b + 1]] for b in range(self.n_blocks)]
                self.handles[name] = client.scatter(pieces, hash=False)
            elif persist:
                self.handles[name] = self._persist(array)

    def block_sizes(self) -> list:
        return list(self._sizes)

    def _fits_in_memory(self, reason: str | bool) -> bool:
        """Whether the arrays to persist take at most PERSIST_MEMORY_FRACTION of the workers' memory limits.

        ``reason`` is "rows" (minibatch rows drawn from anywhere: too large is
        an error) or True (full batch: too large is read from its source).
        """
        arrays = [array for array in self.arrays.values() if not isinstance(array, _Scattered)]
        sizes = _exceeds_cluster_memory(self.client, *arrays)
        if sizes is None:
            return True
        if reason == "rows":
            raise ValueError(f"{sizes}: sampling='rows' draws every minibatch from all of it and needs it held in "
                             f"the workers' memory; use sampling='stream' (crossent.distributed.fit_minibatch, or "
                             f"--sampling stream on the command line), which reads one block at a time")
        warnings.warn(f"{sizes}: it is not persisted, and every full-batch evaluation reads all of it from its "
                      f"source, {2 * self.n_workers} blocks at a time", ResourceWarning, stacklevel=5)
        return False

    def _persist(self, array) -> list:
        from distributed import futures_of

        persisted = self.client.persist(array)
        futures = {future.key: future for future in futures_of(persisted)}
        keys = persisted.__dask_keys__()
        return [futures[row[0] if isinstance(row, list) else row] for row in keys]

    def _parameters(self, parameters):
        if sum(p.nbytes for p in parameters) <= INLINE_PARAMETER_BYTES:
            return [np.array(p) for p in parameters]
        return self.client.scatter([[np.array(p) for p in parameters]], broadcast=True, hash=False)[0]

    def _block(self, name, b):
        handles = self.handles[name]
        if handles is not None:
            return handles[b]
        array = self.arrays[name]
        if array is None:
            return None
        return self.client.compute(array.blocks[b])

    def _submit(self, parameters, b, handles, rows, compute_grad, training, seed):
        X, y, w = handles
        return self.client.submit(_chunk_task, parameters, self.work.model_config, self.work.terms, X, y, w, rows,
                                  compute_grad, training, None if seed is None else [*seed, b],
                                  int(self.offsets[b]), pure=False)

    def full(self, parameters, *, compute_grad=True, training=True, seed=None) -> GradientSums:
        sent = self._parameters(parameters)
        if self.handles["X"] is None and self.arrays["X"] is not None:
            return self._full_from_source(sent, compute_grad, training, seed)
        futures = [self._submit(sent, b, self.open(b), None, compute_grad, training, seed)
                   for b in range(self.n_blocks)]
        return _reduce_sums(self.client, futures)

    def _full_from_source(self, sent, compute_grad, training, seed) -> GradientSums:
        """All blocks read from the data's source, at most two per worker in flight; summed as _TreeSum does."""
        window = 2 * self.n_workers
        pending: list = []
        tree = _TreeSum()
        for b in range(self.n_blocks):
            pending.append(self._submit(sent, b, self.open(b), None, compute_grad, training, seed))
            if len(pending) >= window:
                tree.push(pending.pop(0).result())  # in block order; the block's data is released with it
        for future in pending:
            tree.push(future.result())
        return tree.total()

    def rows(self, parameters, selection, *, training=True, seed=None) -> GradientSums:
        sent = self._parameters(parameters)
        futures = [self._submit(sent, b, self.open(b), local, True, training, seed) for b, local in selection]
        return _reduce_sums(self.client, futures)

    def open(self, b: int):
        return tuple(self._block(name, b) for name in ("X", "y", "sample_weight"))

    def prefetch(self, b: int):
        return self.open(b)

    def in_block(self, handle, b, parameters, local, *, training=True, seed=None) -> GradientSums:
        return self._submit(self._parameters(parameters), b, handle, local, True, training, seed).result()

    def close(self):
        self.handles = {name: None for name in self.arrays}


def _executor(X, y, sample_weight, work, client, block_rows, persist: bool | str = True):
    if client is None:
        if any(_is_dask_array(value) for value in (X, y, sample_weight)):
            client = _default_client()
    if client is None:
        return _LocalExecutor(_as_table(X, y, sample_weight, block_rows), work)
    if block_rows is not None:
        block_rows = _check_positive_int(block_rows, "block_rows")
    return _DaskExecutor(client, X, y, sample_weight, work, block_rows, persist)


def _default_client():
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client has been started
        return None


class _DaskBlocks:
    """A dask array without a cluster: each block is computed (synchronously) when it is read."""

    def __init__(self, array):
        self.array = array.rechunk({axis: -1 for axis in range(1, array.ndim)}) if array.ndim > 1 else array
        self.shape, self.dtype = array.shape, np.dtype(array.dtype)
        self.chunks = self.array.chunks[0]
        self.starts = np.concatenate([[0], np.cumsum(self.chunks)])

    def read(self, start, stop, out=None):
        return np.asarray(self.array[start:stop].compute(scheduler="sync"))

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        unique, inverse = np.unique(rows, return_inverse=True)
        return np.asarray(self.array[unique].compute(scheduler="sync"))[inverse]


# =================================================================================== full batch


def _penalized(model) -> list:
    """Indices of the weight matrices (the L2 penalty leaves the biases alone, as scikit-learn does)."""
    return [index for index, name in enumerate(model.parameter_names()) if name.endswith("weight")]


def _setup(model, X, y, sample_weight, loss, client, block_rows, persist=True):
    from .train import resolve_loss

    loss = resolve_loss(loss, model)
    work = _Work(model, loss)
    executor = _executor(X, y, sample_weight, work, client, block_rows, persist)
    if executor.n_features != model.n_features:
        raise ValueError(f"X has {executor.n_features} columns but the model takes {model.n_features} features")
    return loss, work, executor


def _objective(model, work, executor, alpha, *, training=True, seed=None):
    """(J, data loss, term values, float64 gradient, sums) at the model's current parameters."""
    parameters = model.parameters()
    sums = executor.full(parameters, training=training, seed=seed)
    value, terms, gradient = sums.mean(work.coefficients, work.divides)
    objective = value
    if alpha:
        for index in _penalized(model):
            weight = parameters[index]
            objective += 0.5 * alpha * float(np.vdot(weight, weight))
            gradient[index] = gradient[index] + alpha * weight
    return objective, value, terms, gradient, sums


def loss_and_gradient(
    model: Model, X: _Data, y: _Data | None = None, *, loss: str | Loss | LossSum | None = None,
    sample_weight: _Data | None = None, alpha: float = 0.0, training: bool = True, seed: int = 0,
    client: Client | None = None, block_rows: int | None = None,
) -> tuple[float, list[NDArray[Any]]]:
    r"""The mean loss over all rows and its gradient, computed block by block (or on a dask cluster).

    .. math::

        J(\theta) = \frac{\sum_c S_c}{\sum_c D_c} + \frac{\alpha}{2} \sum_l \lVert W_l \rVert_F^2,
        \qquad
        \nabla J = \frac{\sum_c G_c}{\sum_c D_c} + \alpha W

    with :math:`(S_c, D_c, G_c)` from :func:`gradient_sums` for every block
    :math:`c` (the penalty acts on the weight matrices, never the biases). For a
    loss with ``reduction="sum"`` nothing is divided. Equal to
    ``model.loss_and_backward(X, y, loss, sample_weight=...)`` on the whole data
    in memory, up to the order of floating-point additions.

    Parameters
    ----------
    model : crossent.nn model
        Read, not modified (neither its parameters nor its gradient buffers).
    X : array, memmap, .npy path, zarr array, dask array or chunk directory
        See the module docstring; a directory holds y (pass ``y=None``).
    y, sample_weight : the same kinds, optional
    loss : str, Loss or LossSum, optional
        Default: the model's.
    alpha : float >= 0, default 0
    training : bool, default True
        Training mode (dropout masks from ``default_rng([seed, 0, block])``).
    seed : int, default 0
    client : dask.distributed.Client, optional
        Run on this cluster (default: the current client for a dask array, else this process).
    block_rows : int, optional
        Rows per block (see the module docstring).

    Returns
    -------
    (float, list of ndarray)
        :math:`J` and one gradient per parameter, in the parameters' dtype.

    Shapes
    ------
    X (N, n_features); y as the loss takes it; the gradients have the parameters' shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import SoftmaxRegression
    >>> model = SoftmaxRegression(2, 2, dtype=np.float64)
    >>> value, (weight_gradient, bias_gradient) = loss_and_gradient(model, np.eye(2), np.array([0, 1]))
    >>> round(value, 6), weight_gradient.tolist()
    (0.693147, [[-0.25, 0.25], [0.25, -0.25]])
    """
    alpha = check_finite_scalar(alpha, "alpha", low=0.0)
    seed = _check_seed(seed)
    _, work, executor = _setup(model, X, y, sample_weight, loss, client, block_rows)
    try:
        objective, _, _, gradient, _ = _objective(model, work, executor, alpha, training=training, seed=[seed, 0])
    finally:
        executor.close()
    return objective, [g.astype(p.dtype, copy=False) for g, p in zip(gradient, model.parameters())]


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {_describe(seed)}")
    return int(seed)


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def _unflatten_into(parameters, flat: np.ndarray) -> None:
    start = 0
    for parameter in parameters:
        parameter[...] = flat[start : start + parameter.size].reshape(parameter.shape)
        start += parameter.size


def fit_full_batch(
    model: Model, X: _Data, y: _Data | None = None, *, loss: str | Loss | LossSum | None = None,
    sample_weight: _Data | None = None, solver: Literal["lbfgs", "gd"] = "lbfgs", alpha: float = 0.0,
    max_iter: int = 100, tol: float = 1e-6, lr: float | None = None, seed: int = 0,
    callbacks: Iterable[Callable[..., Any]] = (), client: Client | None = None, block_rows: int | None = None,
) -> History:
    r"""Minimise :math:`J` of :func:`loss_and_gradient` over all rows: L-BFGS or gradient descent.

    ``solver="lbfgs"``: ``scipy.optimize.minimize(method="L-BFGS-B")`` on the
    client over the flat float64 parameter vector (the model's parameters
    flattened in order), stopping when the largest gradient component is at
    most ``tol``, after ``max_iter`` iterations, or when the objective stops
    decreasing (``ftol`` of 64 machine epsilons). ``solver="gd"``: gradient
    steps :math:`\theta \leftarrow \theta - \eta \nabla J` (learning rate
    ``lr``, default 0.1) until the largest gradient component is at most
    ``tol`` or ``max_iter`` steps. Every evaluation is one pass over the data
    (one task per block on a cluster, where the data is persisted once).

    With dropout, the masks of evaluation :math:`k` come from
    ``default_rng([seed, k, block])`` for ``"gd"`` and stay those of
    ``[seed, 0, block]`` for ``"lbfgs"`` (a fixed objective for its line search).

    Parameters
    ----------
    model : crossent.nn model
        Its parameters are the starting point and receive the result.
    X, y, sample_weight, loss, alpha, client, block_rows
        As in :func:`loss_and_gradient`.
    solver : {"lbfgs", "gd"}, default "lbfgs"
    max_iter : int >= 1, default 100
    tol : float >= 0, default 1e-6
    lr : float, optional
        Learning rate of ``"gd"``.
    seed : int, default 0
    callbacks : iterable of callables
        ``callback(record, model)`` after every iteration; returning False stops.

    Returns
    -------
    History
        One record per iteration: ``epoch`` (the iteration), ``train_loss``
        (the mean loss, without the penalty), ``objective`` (:math:`J`),
        ``train_accuracy``, ``evaluations`` (passes over the data so far),
        ``time_s``; ``lr`` for ``"gd"``.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import SoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> model = SoftmaxRegression(3, 2, dtype=np.float64)
    >>> history = fit_full_batch(model, X, y, alpha=1e-2, block_rows=64)
    >>> history["train_accuracy"][-1] > 0.95
    True
    """
    import scipy.optimize

    from .train import History, TrainingDivergedError, make_optimizer

    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {_describe(solver)}")
    alpha = check_finite_scalar(alpha, "alpha", low=0.0)
    max_iter = _check_positive_int(max_iter, "max_iter")
    tol = check_finite_scalar(tol, "tol", low=0.0)
    seed = _check_seed(seed)
    callbacks = list(callbacks)
    _, work, executor = _setup(model, X, y, sample_weight, loss, client, block_rows)
    history = History()
    parameters = model.parameters()
    state = {"evaluations": 0, "started": time.perf_counter(), "stop": False}

    def record(objective, value, terms, sums, extra=None) -> bool:
        entry = {"epoch": len(history) + 1, "train_loss": value, "objective": objective,
                 "train_accuracy": sums.correct / max(1, sums.counted), "evaluations": state["evaluations"]}
        if work.term_names:
            entry.update({f"train_loss/{name}": term for name, term in zip(work.term_names, terms)})
        entry.update(extra or {})
        entry["time_s"] = time.perf_counter() - state["started"]
        state["started"] = time.perf_counter()
        history.records.append(entry)
        return any(callback(entry, model) is False for callback in callbacks)

    try:
        if solver == "gd":
            optimizer = make_optimizer("gd", parameters, lr=lr)
            for iteration in range(max_iter):
                objective, value, terms, gradient, sums = _objective(model, work, executor, alpha,
                                                                     seed=[seed, iteration])
                state["evaluations"] += 1
                if not math.isfinite(objective):
                    raise TrainingDivergedError(
                        f"the objective became {objective} at iteration {iteration + 1} (learning rate "
                        f"{optimizer.lr:g}); the learning rate is probably too high -- try a smaller lr")
                if max(float(np.max(np.abs(g))) for g in gradient) <= tol:
                    record(objective, value, terms, sums, {"lr": float(optimizer.lr)})
                    break
                optimizer.step([g.astype(p.dtype, copy=False) for g, p in zip(gradient, parameters)])
                if record(objective, value, terms, sums, {"lr": float(optimizer.lr)}):
                    history.stopped_early = True
                    break
            return history

        cache: dict = {}

        def evaluate(flat):
            _unflatten_into(parameters, flat)
            objective, value, terms, gradient, sums = _objective(model, work, executor, alpha, seed=[seed, 0])
            state["evaluations"] += 1
            cache.update(x=flat.copy(), result=(objective, value, terms, sums))
            return objective, _flat(gradient)

        def after_iteration(intermediate_result):
            x = intermediate_result.x
            if "x" not in cache or not np.array_equal(cache["x"], x):
                evaluate(x)
            if record(*cache["result"]):
                history.stopped_early = True
                raise StopIteration

        result = scipy.optimize.minimize(
            evaluate, _flat(parameters), method="L-BFGS-B", jac=True, callback=after_iteration,
            options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(np.float64).eps,
                     "maxfun": 20 * max_iter + 100, "maxls": 50},
        )
        _unflatten_into(parameters, result.x)
        return history
    finally:
        executor.close()


# =================================================================================== minibatches


def _step_plan(executor, sampling, batch, full_batch, shuffle, seed, epoch) -> list:
    """The steps of one epoch, each ``("full", None)``, ``("rows", [(block, local rows), ...])`` or
    ``("block", (block, local rows))`` (see the module docstring for the two samplings)."""
    if full_batch:
        return [("full", None)]
    offsets = executor.offsets
    plan: list[tuple[str, Any]] = []
    if sampling == "rows":
        n_rows = executor.n_rows
        order = np.random.default_rng([seed, epoch]).permutation(n_rows) if shuffle else np.arange(n_rows)
        for start in range(0, n_rows, batch):
            rows = order[start : start + batch]
            block_of = np.searchsorted(offsets, rows, side="right") - 1
            selection = []
            for b in np.unique(block_of):
                selection.append((int(b), rows[block_of == b] - offsets[b]))
            plan.append(("rows", selection))
        return plan
    sizes = executor.block_sizes()
    visit = np.random.default_rng([seed, epoch]).permutation(len(sizes)) if shuffle else np.arange(len(sizes))
    for b in visit:
        b = int(b)
        local = np.random.default_rng([seed, epoch, b]).permutation(sizes[b]) if shuffle else np.arange(sizes[b])
        plan.extend(("block", (b, local[start : start + batch])) for start in range(0, sizes[b], batch))
    return plan


def _steps_per_epoch(executor, sampling, batch, full_batch) -> int:
    if full_batch:
        return 1
    if sampling == "rows":
        return math.ceil(executor.n_rows / batch)
    return sum(math.ceil(size / batch) for size in executor.block_sizes())


def fit_minibatch(
    model: Model, X: _Data, y: _Data | None = None, *, loss: str | Loss | LossSum | None = None,
    sample_weight: _Data | None = None, optimizer: str | Optimizer = "sgd", lr: float | None = None,
    momentum: float | None = None, weight_decay: float = 0.0, schedule: str | Schedule | None = None, epochs: int = 10,
    batch_size: int | None = 32, sampling: Literal["rows", "stream"] = "rows", shuffle: bool = True, seed: int = 0,
    clip_grad_norm: float | None = None, validation_data: tuple[_Data, _Data] | PathLike | None = None,
    callbacks: Iterable[Callable[..., Any]] = (), progress: bool | Literal["auto"] = "auto",
    history: History | None = None, client: Client | None = None, block_rows: int | None = None,
    checkpoint: PathLike | None = None, checkpoint_every: int | None = None, resume: PathLike | None = None,
) -> History:
    r"""Minibatch training with the optimiser on the client and every batch's sums computed where the rows are.

    Step :math:`t` with batch :math:`B_t` (rows spread over blocks :math:`c`):

    .. math::

        g_t = \frac{\sum_c G_c(B_t \cap c)}{\sum_c D_c(B_t \cap c)}, \qquad
        \theta \leftarrow \mathrm{optimizer.step}(g_t)

    -- the gradient of the batch's mean loss, as :func:`crossent.fit` takes
    it. ``sampling`` decides the batches (see the module docstring):
    ``"rows"`` gives :func:`crossent.fit`'s batches exactly (same ``seed``,
    ``batch_size`` and ``shuffle``), ``"stream"`` reads each block once per
    epoch for data larger than memory. ``batch_size=None`` is full-batch
    gradient descent.

    Parameters
    ----------
    model : crossent.nn model
        Trained in place.
    X, y, sample_weight, loss, client, block_rows
        As in :func:`loss_and_gradient`.
    optimizer, lr, momentum, weight_decay, schedule, epochs, batch_size, shuffle, seed, clip_grad_norm
        As in :func:`crossent.fit`.
    sampling : {"rows", "stream"}, default "rows"
    validation_data : (X_val, y_val) or a chunk directory, optional
        Mean loss and accuracy after every epoch (evaluation mode), any data
        kind this module reads.
    callbacks : iterable of callables
        ``callback(record, model)`` after every epoch; returning False stops.
    progress : bool or "auto", default "auto"
    history : History, optional
        A History to continue, as in :func:`crossent.fit`: training starts at
        epoch ``len(history)`` (the model and optimiser as they are) and appends to it.
    checkpoint : str or Path, optional
        Where to save (:func:`crossent.save`) every ``checkpoint_every`` steps and at the end.
    checkpoint_every : int >= 1, optional
        Steps between checkpoints (default: one per epoch).
    resume : str or Path, optional
        A checkpoint written by this function: its weights, optimiser state,
        history and position (epoch, step, the epoch's running sums) are
        restored and training continues where it stopped. ``seed``,
        ``batch_size``, ``sampling``, ``shuffle`` and the number of rows must
        be those of the saved run (and the block sizes for ``"stream"``).

    Returns
    -------
    History
        As :func:`crossent.fit`'s: ``epoch``, ``train_loss``,
        ``train_accuracy``, ``lr``, ``val_loss``, ``val_accuracy``,
        ``time_s`` and ``train_loss/<term>`` for a sum of losses.

    Raises
    ------
    TrainingDivergedError
        If a batch loss is NaN or infinite (the weights are those before that step).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import SoftmaxRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(256, 3)); y = (X[:, 1] > 0).astype(int)
    >>> model = SoftmaxRegression(3, 2)
    >>> history = fit_minibatch(model, np.asarray(X, np.float32), y, sampling="stream", block_rows=64,
    ...                         batch_size=16, epochs=3, lr=0.5)
    >>> history["train_accuracy"][-1] > 0.9
    True
    """
    from . import optim
    from .progress import ProgressBar
    from .serialization import load_checkpoint, save
    from .train import History, TrainingDivergedError, make_optimizer

    epochs = _check_positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = _check_positive_int(batch_size, "batch_size")
    if not isinstance(sampling, str) or sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {_describe(sampling)}")
    seed = _check_seed(seed)
    if checkpoint_every is not None:
        checkpoint_every = _check_positive_int(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise ValueError("checkpoint_every is given but checkpoint (the file to write) is not")
    if clip_grad_norm is not None:
        clip_grad_norm = check_finite_scalar(clip_grad_norm, "clip_grad_norm", low=0.0)
    callbacks = list(callbacks)
    full_batch_requested = batch_size is None
    loss, work, executor = _setup(model, X, y, sample_weight, loss, client, block_rows,
                                  persist=True if full_batch_requested else ("rows" if sampling == "rows" else False))
    validation = None
    try:
        if validation_data is not None:
            if isinstance(validation_data, (str, os.PathLike)):
                validation_parts: tuple[Any, Any] = (validation_data, None)
            elif isinstance(validation_data, (tuple, list)) and len(validation_data) == 2:
                validation_parts = (validation_data[0], validation_data[1])
            else:
                raise TypeError("validation_data must be a pair (X_val, y_val) or a chunk directory")
            validation = _executor(*validation_parts, None, work, client, block_rows, True)
        n_rows = executor.n_rows
        batch = n_rows if batch_size is None else min(batch_size, n_rows)
        full_batch = batch >= n_rows
        steps_per_epoch = _steps_per_epoch(executor, sampling, batch, full_batch)
        trainer: Optimizer = (
            make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
            if isinstance(optimizer, str) else optimizer
        )
        if history is not None and resume is not None:
            raise ValueError("give history or resume, not both: a checkpoint holds its own history")
        if history is not None and not isinstance(history, History):
            raise TypeError(f"history must be a crossent History, got {_describe(history)}")
        history = History() if history is None else history
        position: dict[str, Any] = {"epoch": len(history), "step": 0, "partial": None}
        settings = {"seed": seed, "batch_size": batch_size, "sampling": sampling, "shuffle": bool(shuffle),
                    "n_rows": n_rows, "block_sizes": executor.block_sizes() if sampling == "stream" else None}
        if resume is not None:
            saved = load_checkpoint(resume)
            if saved.model.config() != model.config():
                raise ValueError(f"resume={str(resume)!r} holds a {saved.model.config()} model, not {model.config()}")
            state = saved.training.get("distributed")
            if not isinstance(state, dict):
                raise ValueError(f"resume={str(resume)!r} was not written by fit_minibatch (no position saved)")
            for key, value in settings.items():
                if state.get("settings", {}).get(key) != value:
                    raise ValueError(f"resume={str(resume)!r} was saved with {key}={state['settings'].get(key)!r}; "
                                     f"this run has {key}={value!r} -- a resumed run must use the same")
            for target, value in zip(model.parameters(), saved.model.parameters()):
                target[...] = value
            if saved.optimizer_state is not None:
                trainer.load_state_dict(saved.optimizer_state)
            history = History.from_dict(saved.training.get("history", {}))
            position = {"epoch": int(state["epoch"]), "step": int(state["step"]), "partial": state.get("partial")}
        lr_schedule: optim.Schedule | None
        if isinstance(schedule, str):
            if history.base_lr is None:
                history.base_lr = float(trainer.lr)
            lr_schedule = optim.make_schedule(schedule, history.base_lr, epochs * steps_per_epoch)
        else:
            lr_schedule = schedule
        parameters = model.parameters()

        def write_checkpoint(epoch, step, partial):
            training = {"history": history.to_dict(), "seed": seed,
                        "distributed": {"settings": settings, "epoch": epoch, "step": step, "partial": partial}}
            save(model, checkpoint, optimizer=trainer, loss=loss, training=training)

        bar = ProgressBar(epochs, steps_per_epoch, enabled=progress)
        for epoch in range(position["epoch"], epochs):
            started = time.perf_counter()
            bar.start_epoch(epoch)
            first_step = position["step"] if epoch == position["epoch"] else 0
            partial: dict[str, Any] = (position["partial"] if epoch == position["epoch"] else None) or {
                "loss_sum": 0.0, "correct": 0.0, "counted": 0, "seen": 0, "terms": {}}
            plan = _step_plan(executor, sampling, batch, full_batch, shuffle, seed, epoch)
            current_block, current_handle, prefetched = None, None, (None, None)
            for step in range(first_step, len(plan)):
                global_step = epoch * steps_per_epoch + step
                if lr_schedule is not None:
                    trainer.lr = lr_schedule.lr_at(global_step)
                kind, what = plan[step]
                dropout_seed = [seed, global_step]
                if kind == "full":
                    sums = executor.full(parameters, seed=dropout_seed)
                elif kind == "rows":
                    sums = executor.rows(parameters, what, seed=dropout_seed)
                else:
                    b, local = what
                    if b != current_block:
                        if prefetched[0] == b and prefetched[1] is not None:
                            current_handle = prefetched[1]
                        else:
                            current_handle = executor.open(b)
                        current_block = b
                        upcoming = next((p[1][0] for p in plan[step:] if p[1][0] != b), None)
                        prefetched = (upcoming, None if upcoming is None else executor.prefetch(upcoming))
                    sums = executor.in_block(current_handle, b, parameters, local, seed=dropout_seed)
                value, terms, gradient = sums.mean(work.coefficients, work.divides)
                if not math.isfinite(value):
                    raise TrainingDivergedError(
                        f"the training loss became {value} at epoch {epoch + 1}, step {step + 1} "
                        f"(learning rate {trainer.lr:g}); the learning rate is probably too high for "
                        f"this model and data -- try a smaller lr, gradient clipping, or normalised inputs")
                gradient = [g.astype(p.dtype, copy=False) for g, p in zip(gradient, parameters)]
                if clip_grad_norm is not None:
                    optim.clip_grad_norm(gradient, clip_grad_norm)
                trainer.step(gradient)
                partial["loss_sum"] += value * sums.n_rows
                partial["correct"] += sums.correct
                partial["counted"] += sums.counted
                partial["seen"] += sums.n_rows
                if work.term_names:
                    for name, term in zip(work.term_names, terms):
                        partial["terms"][name] = partial["terms"].get(name, 0.0) + term * sums.n_rows
                if bar.enabled:
                    bar.update(step + 1, partial["seen"], partial["loss_sum"] / partial["seen"],
                               partial["correct"] / max(1, partial["counted"]))
                if checkpoint_every is not None and (global_step + 1) % checkpoint_every == 0:
                    write_checkpoint(epoch, step + 1, partial)
            current_handle, prefetched = None, (None, None)  # let go of the last block

            record = {"epoch": epoch + 1, "train_loss": partial["loss_sum"] / n_rows,
                      "train_accuracy": partial["correct"] / max(1, partial["counted"]), "lr": float(trainer.lr)}
            for name, total in partial["terms"].items():
                record[f"train_loss/{name}"] = total / n_rows
            if validation is not None:
                sums = validation.full(parameters, compute_grad=False, training=False)
                val_loss, val_terms, _ = sums.mean(work.coefficients, work.divides)
                record["val_loss"] = val_loss
                record["val_accuracy"] = sums.correct / max(1, sums.counted)
                if work.term_names:
                    record.update({f"val_loss/{name}": term for name, term in zip(work.term_names, val_terms)})
            record["time_s"] = time.perf_counter() - started
            history.records.append(record)
            summary = (f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f}, "
                       f"accuracy {100 * record['train_accuracy']:.2f}%")
            if validation is not None:
                summary += f", val loss {record['val_loss']:.4f}, val accuracy {100 * record['val_accuracy']:.2f}%"
            bar.end_epoch(summary + f" ({record['time_s']:.2f} s)")
            stop = any(callback(record, model) is False for callback in callbacks)
            if checkpoint is not None and (checkpoint_every is None or stop or epoch + 1 == epochs):
                write_checkpoint(epoch + 1, 0, None)
            if stop:
                history.stopped_early = True
                break
        return history
    finally:
        executor.close()
        if validation is not None:
            validation.close()
