r"""Compiled (Numba) fused kernels; each has a NumPy twin in :mod:`crossent.kernels._numpy`.

Kernels do no validation: the public functions validate once and hand them
C-contiguous (M, C) rows of float32 or float64 and ready-made weights. Each
kernel reads a row of logits, computes everything it needs while the row sits
in the core's L2 cache, and writes the gradient row once (optionally over the
logits themselves). Rows are split between threads (``numba.prange``); the
result of a row does not depend on the thread that computed it, so the thread
count changes nothing but speed.

Why a hand-written exponential
------------------------------
Numba from PyPI runs on an LLVM without a vector math library: ``math.exp``
in a loop compiles to one scalar libm call per element, several times slower
than NumPy's SIMD ``np.exp``. :func:`exp_nonpositive` is the classic
construction the compiler can vectorise (AVX2: 8 float32 lanes):

1. :math:`x = n \ln 2 + r` with :math:`n = \mathrm{round}(x / \ln 2)`,
   :math:`|r| \le \ln 2 / 2`, ``r`` computed in two steps (Cody-Waite: the
   high part of :math:`\ln 2` has trailing zero bits, so :math:`n \cdot` high is
   exact);
2. :math:`e^r` by a polynomial (float32: Cephes' degree-5 minimax fit of
   :math:`(e^r - 1 - r) / r^2`; float64: the Taylor polynomial of degree 13);
3. :math:`2^n` assembled from exponent bits, in two factors
   :math:`2^{\lfloor n/2 \rfloor} 2^{n - \lfloor n/2 \rfloor}` so that results
   in the subnormal range round as the hardware rounds them instead of being
   flushed to zero.

Against the exact exponential (computed in long double) both are within
1.5 ulp over their whole range, ``[-104, 0]`` and ``[-746, 0]``
(``tests/test_kernels.py`` checks it). Arguments are the shifted logits
``z - max(z) <= 0``; below the underflow threshold (and for ``-inf``) the
result is exactly 0.

Rows whose maximum is not finite (a NaN anywhere, a ``+inf``, or every logit
``-inf``) are not computed and not written: the kernel marks them, and the
dispatcher computes just those rows with the NumPy twin, which defines what
they give.

Kernels for few classes (C <= :data:`SMALL_CLASSES`) transpose blocks of rows
so that the vector loops run along rows instead of along a 10-element row.
The optimiser updates run on one thread (see the note above them).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
import numba
from numba import prange, types
from numba.extending import intrinsic, overload


def njit(*function, **options):
    """``numba.njit`` with NumPy's error model: ``x / 0`` gives inf or NaN as in the twins.

    Python's error model (Numba's default) checks every division for a zero
    divisor so that it can raise ZeroDivisionError; that branch keeps a loop
    with a division from vectorising (measured: log1p over a float64 array at
    20 ns per element, 7.6 ns without the check).
    """
    options.setdefault("error_model", "numpy")
    return numba.njit(*function, **options)


_CACHE = True  # compiled machine code is cached on disk (see crossent.kernels for where)
# the one fast-math liberty the kernels take: a * b + c may become one fused multiply-add (rounded
# once, so never less accurate). Reassociation is allowed only inside the sum helpers below: in
# exp_nonpositive it could undo the rounding trick and the two-step reduction.
_CONTRACT = {"contract"}


# -- building blocks ---------------------------------------------------------------------------


@intrinsic
def _nan_propagating_maximum(typingctx, a, b):
    """``llvm.maximum``: the larger of ``a`` and ``b``, NaN if either is NaN; vectorises as a reduction."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        value_type = context.get_value_type(signature.return_type)
        function = builder.module.declare_intrinsic(
            "llvm.maximum", [value_type], ir.FunctionType(value_type, [value_type, value_type])
        )
        return builder.call(function, args)

    return a(a, b), codegen


def exp_nonpositive(x):  # pragma: no cover - replaced by the typed implementations below
    """``exp(x)`` for ``x <= 0`` (including ``-inf``), vectorisable; see the module docstring."""
    raise NotImplementedError


@overload(exp_nonpositive, inline="always")
def _exp_nonpositive_typed(x):
    if x == types.float32:
        return _exp_float32
    if x == types.float64:
        return _exp_float64
    return None


def _exp_float32(x):
    underflow = np.float32(-103.97)  # below: exp(x) < half the smallest subnormal float32
    clamped = x if x > underflow else underflow  # keeps -inf out of the arithmetic
    # 1. n = round(x / ln 2) (adding 1.5 * 2**23 rounds to an integer), r = x - n ln 2 in two steps
    n = (clamped * np.float32(1.4426950408889634) + np.float32(12582912.0)) - np.float32(12582912.0)
    r = clamped - n * np.float32(0.693359375)  # 8 significant bits: n * 0.693359375 is exact
    r = r - n * np.float32(-2.12194440e-4)
    # 2. e^r = 1 + r + r^2 P(r), P the degree-5 minimax fit of Cephes' expf (within 1 ulp)
    poly = np.float32(1.9875691500e-4)
    poly = poly * r + np.float32(1.3981999507e-3)
    poly = poly * r + np.float32(8.3334519073e-3)
    poly = poly * r + np.float32(4.1665795894e-2)
    poly = poly * r + np.float32(1.6666665459e-1)
    poly = poly * r + np.float32(5.0000001201e-1)
    poly = poly * (r * r) + r + np.float32(1.0)
    # 3. times 2^n as two exponent-bit factors, each a normal number even when the product is subnormal
    exponent = np.int32(n)
    half = exponent >> 1
    first = np.int32((half + 127) << 23).view(np.float32)
    second = np.int32((exponent - half + 127) << 23).view(np.float32)
    result = poly * first * second
    return result if x > underflow else np.float32(0.0)


# Polynomial coefficients live in arrays, not tuples: the compiler turns a loop over an array constant
# into straight-line vector code, but a loop indexing a tuple into a switch per term (measured: a
# degree-17 series at 50 ns per element from a tuple, 3.5 ns from an array).
_TAYLOR_FLOAT64 = np.array(
    [1.0 / factorial
     for factorial in (6227020800, 479001600, 39916800, 3628800, 362880, 40320, 5040, 720, 120, 24, 6, 2, 1, 1)]
)


def _exp_float64(x):
    underflow = np.float64(-745.14)  # below: exp(x) < half the smallest subnormal float64
    clamped = x if x > underflow else underflow
    n = (clamped * np.float64(1.4426950408889634) + np.float64(6755399441055744.0)) - np.float64(6755399441055744.0)
    r = clamped - n * np.float64(6.93147180369123816490e-01)  # fdlibm's split of ln 2
    r = r - n * np.float64(1.90821492927058770002e-10)
    # e^r by its Taylor polynomial of degree 13: truncation error < 1e-17 relative for |r| <= ln2 / 2
    poly = _TAYLOR_FLOAT64[0]
    for k in range(1, 14):
        poly = poly * r + _TAYLOR_FLOAT64[k]
    exponent = np.int64(n)
    half = exponent >> 1
    first = np.int64((half + 1023) << 52).view(np.float64)
    second = np.int64((exponent - half + 1023) << 52).view(np.float64)
    result = poly * first * second
    return result if x > underflow else np.float64(0.0)


@njit(inline="always")
def _row_maximum(row):
    maximum = row[0]
    for c in range(1, row.shape[0]):
        maximum = _nan_propagating_maximum(maximum, row[c])
    return maximum


@njit(inline="always")
def _first_position(row, value):
    for c in range(row.shape[0]):
        if row[c] == value:
            return c
    return 0


#: elements per block of a long row (8 KB of float32, held in L1): the search for the maximum's position
#: and the sums of the exponentials go block by block
_ROW_BLOCK = 2048


@njit(inline="always")
def _row_maximum_and_top(row):
    """``(max(row), first position of the maximum)``; NaN-propagating like :func:`_row_maximum`.

    The maximum is taken block by block (a vector reduction each), remembering
    the first block whose maximum beats every earlier one; only that block is
    then searched, element by element, for the position. Searching the whole
    row instead (a loop that stops at the first match, which does not
    vectorise) cost about as much as its exponentials' pass on 32768 classes.
    """
    n = row.shape[0]
    maximum = row[0]
    best = row[0]
    best_start = 0
    for start in range(0, n, _ROW_BLOCK):
        block_maximum = _row_maximum(row[start:min(n, start + _ROW_BLOCK)])
        maximum = _nan_propagating_maximum(maximum, block_maximum)
        if block_maximum > best:
            best = block_maximum
            best_start = start
    return maximum, best_start + _first_position(row[best_start:min(n, best_start + _ROW_BLOCK)], best)


@njit(fastmath={"reassoc", "nsz"})
def _row_sum64(row):
    # reassociation lets the compiler keep several partial sums in vector lanes; the
    # accumulation is in float64 whatever the row's dtype
    total = 0.0
    for c in range(row.shape[0]):
        total += np.float64(row[c])
    return total


@njit(fastmath=_CONTRACT)
def _exponentiate_row(row, out, shift):
    for c in range(row.shape[0]):
        out[c] = exp_nonpositive(row[c] - shift)


@njit(fastmath=_CONTRACT)
def _exponentiate_row_in_place(row, shift):
    # its own function: with one array the compiler needs no overlap check to vectorise
    for c in range(row.shape[0]):
        row[c] = exp_nonpositive(row[c] - shift)


@njit(fastmath=_CONTRACT)
def _exponentials_except_top(row, out, shift, top, in_place):
    """``out = exp(row - shift)`` with ``out[top] = 0``; returns the sum of ``out`` in float64.

    The maximum's own term (exactly 1) is left out of the sum and added back
    through ``log1p(rest)``, which keeps ``-log p`` of a dominant class
    accurate (see ``row_softmax_terms``). The caller restores ``out[top] = 1``.
    """
    # block by block, each block summed while it is in L1 (a second pass over the whole row reads L2)
    n = row.shape[0]
    total = 0.0
    for start in range(0, n, _ROW_BLOCK):
        stop = min(n, start + _ROW_BLOCK)
        if in_place:
            _exponentiate_row_in_place(out[start:stop], shift)
        else:
            _exponentiate_row(row[start:stop], out[start:stop], shift)
        if start <= top < stop:
            out[top] = 0.0
        total += _row_sum64(out[start:stop])
    return total


@njit(fastmath={"reassoc", "nsz"})
def _weighted_gap_sum(row, weight, shift):
    """``sum_c w_c (shift - z_c)`` in float64, a zero weight contributing 0 even where ``z_c = -inf``."""
    total = 0.0
    for c in range(row.shape[0]):
        term = np.float64(weight[c]) * (np.float64(shift) - np.float64(row[c]))
        total += term if weight[c] != 0 else 0.0
    return total


@njit(fastmath={"reassoc", "nsz"})
def _gap_sum(row, shift):
    total = 0.0
    for c in range(row.shape[0]):
        total += np.float64(shift) - np.float64(row[c])
    return total


# -- softmax cross-entropy with class labels ---------------------------------------------------


@njit(fastmath=_CONTRACT)
def _label_row(row, out, label, sample, class_weight, use_class_weight, smoothing, z_loss, scale, in_place):
    """One row of :func:`softmax_cross_entropy_label_rows`; returns (loss, ok). ``in_place``: ``out`` is ``row``."""
    n_classes = row.shape[0]
    shift, top = _row_maximum_and_top(row)
    if not (shift > -np.inf and shift < np.inf):  # NaN, +inf, or a row without mass
        return 0.0, False
    label_weight = np.float64(class_weight[label]) if use_class_weight else 1.0
    weight = np.float64(sample) * label_weight  # d_n, the row's share of the mean's denominator
    label_gap = np.float64(shift) - np.float64(row[label])  # +inf where z_y = -inf
    smooth_gap = 0.0  # sum_c w_c (shift - z_c), read before `out` may overwrite the row
    weight_total = np.float64(n_classes)
    if smoothing > 0.0:
        if use_class_weight:
            smooth_gap = _weighted_gap_sum(row, class_weight, shift)
            weight_total = _row_sum64(class_weight)
        else:
            smooth_gap = _gap_sum(row, shift)

    rest = _exponentials_except_top(row, out, shift, top, in_place)
    loss, probability_scale, smooth_step, label_step = _label_row_terms(
        shift, label_gap, smooth_gap, weight_total, rest, np.log1p(rest), sample, weight, smoothing, z_loss, scale,
        n_classes,
    )
    probability_scale = out.dtype.type(probability_scale)
    smooth_step = out.dtype.type(smooth_step)
    out[top] = 1.0
    if smoothing > 0.0 and use_class_weight:
        for c in range(n_classes):
            out[c] = out[c] * probability_scale - smooth_step * class_weight[c]
    elif smoothing > 0.0:
        for c in range(n_classes):
            out[c] = out[c] * probability_scale - smooth_step
    else:
        for c in range(n_classes):
            out[c] = out[c] * probability_scale
    out[label] -= out.dtype.type(label_step)
    return loss, True


@njit
def _label_row_terms(shift, label_gap, smooth_gap, weight_total, rest, log_sum, sample, weight, smoothing, z_loss,
                     scale, n_classes):
    """The row's loss and the three factors of its gradient, from its sums (all float64).

    With ``log_sum = log1p(rest)`` (given), ``lse = shift + log_sum``:
    loss ``(1 - eps) d (label_gap + log_sum) + eps / C s (smooth_gap + W log_sum) + lambda d lse^2``;
    gradient ``probability_scale * e_c - smooth_step * w_c - label_step * [c = y]`` where ``e_c =
    exp(z_c - shift)``, ``probability_scale = scale (sum_c q_c + 2 lambda d lse) / (1 + rest)``.
    """
    log_sum_exp = np.float64(shift) + log_sum
    loss = 0.0
    if weight != 0.0:
        loss = (1.0 - smoothing) * weight * (label_gap + log_sum)
    target_mass = (1.0 - smoothing) * weight
    smooth_coefficient = smoothing / n_classes * np.float64(sample)
    if smoothing > 0.0:
        if smooth_coefficient != 0.0:
            loss += smooth_coefficient * (smooth_gap + weight_total * log_sum)
        target_mass += smooth_coefficient * weight_total
    if z_loss > 0.0:
        loss += z_loss * weight * log_sum_exp * log_sum_exp
    # dL/dz = (sum_c q_c + 2 lambda d lse) p - q, all times `scale` (1/D for the mean)
    coefficient = (target_mass + 2.0 * z_loss * weight * log_sum_exp) * scale
    return loss, coefficient / (1.0 + rest), smooth_coefficient * scale, (1.0 - smoothing) * weight * scale


@njit(inline="always")
def _each_row(row_function, logits, out, target, sample_weight, class_weight, smoothing, z_loss, scale, losses,
              row_ok, in_place):
    """Run ``row_function`` (:func:`_label_row` or :func:`_probability_row`) on every row, rows split between threads."""
    use_class_weight = class_weight.shape[1] > 0  # absent: shape (1, 0)
    weight_per_row = class_weight.shape[0] > 1
    use_sample_weight = sample_weight.shape[0] > 0
    for i in prange(logits.shape[0]):
        sample = sample_weight[i] if use_sample_weight else 1.0
        weights = class_weight[i] if weight_per_row else class_weight[0]
        losses[i], row_ok[i] = row_function(
            logits[i], out[i], target[i], sample, weights, use_class_weight, smoothing, z_loss, scale, in_place
        )


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def softmax_cross_entropy_label_rows(
    logits, labels, sample_weight, class_weight, smoothing, z_loss, scale, out, losses, row_ok
):
    """Loss and gradient of every row; see :func:`crossent.kernels._numpy.softmax_cross_entropy_label_rows`."""
    _each_row(_label_row, logits, out, labels, sample_weight, class_weight, smoothing, z_loss, scale, losses, row_ok,
              False)


#: rows per block of the few-classes kernel: a (C, 256) transposed block stays in L2 for C <= 32
SMALL_BLOCK_ROWS = 256
#: the few-classes kernel serves C up to this; beyond, a row is long enough to vectorise along
SMALL_CLASSES = 32


@njit(fastmath=_CONTRACT)
def _running_maximum(maximum, values):
    for r in range(values.shape[0]):
        maximum[r] = _nan_propagating_maximum(maximum[r], values[r])


@njit(fastmath=_CONTRACT)
def _mark_position(position, values, maximum, c):
    for r in range(values.shape[0]):
        if values[r] == maximum[r]:
            position[r] = c


@njit(fastmath=_CONTRACT)
def _add_gap(total, values, shift, weight):
    if weight != 0.0:
        for r in range(values.shape[0]):
            total[r] += weight * (np.float64(shift[r]) - np.float64(values[r]))


@njit(fastmath=_CONTRACT)
def _add_gap_per_row(total, values, shift, weights):
    for r in range(values.shape[0]):
        gap = np.float64(weights[r]) * (np.float64(shift[r]) - np.float64(values[r]))
        total[r] += gap if weights[r] != 0 else 0.0


@njit(fastmath=_CONTRACT)
def _exponentiate_shifted(values, shift):
    for r in range(values.shape[0]):
        values[r] = exp_nonpositive(values[r] - shift[r])


@njit(fastmath=_CONTRACT)
def _accumulate64(total, values):
    for r in range(values.shape[0]):
        total[r] += np.float64(values[r])


@njit(fastmath=_CONTRACT)
def _log1p_nonnegative_array(values, out):
    """``out = log1p(values)`` for float64 ``values >= 0`` (or +inf), vectorisable.

    Below 1, :func:`log1p_unit` directly; from 1 on, ``1 + x`` loses nothing
    that matters and ``log(1 + x) = k ln 2 + log1p(m - 1)`` with ``1 + x = 2^k m``,
    ``m`` in [1, 2) taken from the exponent bits. Both are computed and one is kept.
    """
    for i in range(values.shape[0]):
        x = values[i]
        bits = np.float64(1.0 + x).view(np.int64)
        exponent = (bits >> 52) - 1023
        mantissa = np.int64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
        small = x < 1.0
        result = log1p_unit(x if small else mantissa - 1.0)
        if not small:
            result += np.float64(exponent) * 0.6931471805599453
        out[i] = result if x < np.inf else x


@njit(fastmath=_CONTRACT)
def _label_block(logits, out, labels, sample_weight, class_weight, smoothing, z_loss, scale, start, stop,
                 losses, row_ok):
    """Rows ``start:stop`` of :func:`softmax_cross_entropy_label_rows` for few classes.

    A row of 10 classes is too short for vector instructions, so the block is
    transposed into a (C, rows) buffer and every step runs along the rows, 8
    (float32) or 4 (float64) at a time; the math is :func:`_label_row`'s. The
    gradient is written after the whole block has been read, so ``out`` may be
    ``logits``.
    """
    n_classes = logits.shape[1]
    n = stop - start
    use_class_weight = class_weight.shape[1] > 0
    weight_per_row = class_weight.shape[0] > 1
    use_sample_weight = sample_weight.shape[0] > 0
    block = np.empty((n_classes, n), logits.dtype)
    for r in range(n):
        for c in range(n_classes):
            block[c, r] = logits[start + r, c]
    # every loop below runs along the rows of one class: 1-D contiguous views, which vectorise
    shift = block[0].copy()
    for c in range(1, n_classes):
        _running_maximum(shift, block[c])
    top = np.zeros(n, np.intp)
    for c in range(n_classes - 1, -1, -1):  # the first position of the maximum wins
        _mark_position(top, block[c], shift, c)
    smooth_gap = np.zeros(n)
    if smoothing > 0.0:
        for c in range(n_classes):
            if use_class_weight and weight_per_row:
                _add_gap_per_row(smooth_gap, block[c], shift, class_weight[start:stop, c])
            else:
                _add_gap(smooth_gap, block[c], shift, np.float64(class_weight[0, c]) if use_class_weight else 1.0)
    label_gap = np.empty(n)
    for r in range(n):
        label_gap[r] = np.float64(shift[r]) - np.float64(block[labels[start + r], r])
    for c in range(n_classes):
        _exponentiate_shifted(block[c], shift)
    for r in range(n):
        block[top[r], r] = 0.0
    rest = np.zeros(n)
    for c in range(n_classes):
        _accumulate64(rest, block[c])
    for r in range(n):
        block[top[r], r] = 1.0
    log_sum = np.empty(n)
    _log1p_nonnegative_array(rest, log_sum)
    for r in range(n):
        i = start + r
        if not (shift[r] > -np.inf and shift[r] < np.inf):  # NaN, +inf, or no mass: the twin's row
            row_ok[i] = False
            continue
        row_ok[i] = True
        weights = class_weight[i] if weight_per_row else class_weight[0]
        label = labels[i]
        sample = np.float64(sample_weight[i]) if use_sample_weight else 1.0
        weight = sample * (np.float64(weights[label]) if use_class_weight else 1.0)
        weight_total = _row_sum64(weights) if use_class_weight else np.float64(n_classes)
        losses[i], probability_scale, smooth_step, label_step = _label_row_terms(
            shift[r], label_gap[r], smooth_gap[r], weight_total, rest[r], log_sum[r], sample, weight, smoothing,
            z_loss, scale, n_classes,
        )
        probability_scale = out.dtype.type(probability_scale)
        smooth_step = out.dtype.type(smooth_step)
        for c in range(n_classes):
            value = block[c, r] * probability_scale
            if smoothing > 0.0:
                value -= smooth_step * (weights[c] if use_class_weight else 1.0)
            out[i, c] = value
        out[i, label] -= out.dtype.type(label_step)


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def softmax_cross_entropy_label_rows_few_classes(
    logits, labels, sample_weight, class_weight, smoothing, z_loss, scale, out, losses, row_ok
):
    """:func:`softmax_cross_entropy_label_rows` for C <= :data:`SMALL_CLASSES`, blocks of rows between threads.

    ``out`` may be ``logits`` (in place).
    """
    n_rows = logits.shape[0]
    n_blocks = (n_rows + SMALL_BLOCK_ROWS - 1) // SMALL_BLOCK_ROWS
    for b in prange(n_blocks):
        start = b * SMALL_BLOCK_ROWS
        stop = min(n_rows, start + SMALL_BLOCK_ROWS)
        _label_block(logits, out, labels, sample_weight, class_weight, smoothing, z_loss, scale, start, stop,
                     losses, row_ok)


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def softmax_cross_entropy_label_rows_inplace(
    logits, labels, sample_weight, class_weight, smoothing, z_loss, scale, losses, row_ok
):
    """:func:`softmax_cross_entropy_label_rows` writing the gradient over ``logits``.

    A separate entry point so that the exponentials are computed by a loop
    over one array: over two arrays that may overlap the compiler has to check
    for overlap, and on the in-place call it would take its slow scalar loop.
    """
    _each_row(_label_row, logits, logits, labels, sample_weight, class_weight, smoothing, z_loss, scale, losses,
              row_ok, True)


# -- optimiser updates -------------------------------------------------------------------------
# One pass over each parameter instead of one NumPy call per operation. Every element goes through
# the operations of the NumPy update in crossent.optim (the twin), in the same order and in the
# parameter's dtype, without fused multiply-adds, so the two give the same bits.
# These run on one thread: an update comes right after the step's matrix products, whose BLAS
# threads still hold both cores for a moment, and a thread pool launched then waits for them
# (measured on MNIST's 800x784 layer: 0.13 ms alone, 7 ms after a product), while one thread
# takes 0.2 ms either way -- a third of the NumPy update's time.


@njit(cache=_CACHE)
def sgd_update(param, grad, velocity, lr, momentum, dampening_factor, weight_decay, nesterov, first_step):
    """SGD step on flat arrays; ``velocity`` is unused (any array) when ``momentum == 0``."""
    for i in range(param.shape[0]):
        g = grad[i]
        if weight_decay != 0:
            g = g + param[i] * weight_decay
        direction = g
        if momentum != 0:
            if first_step:
                v = g
            elif dampening_factor != 1:
                v = velocity[i] * momentum + g * dampening_factor
            else:
                v = velocity[i] * momentum + g
            velocity[i] = v
            direction = g + v * momentum if nesterov else v
        param[i] = param[i] - direction * lr


@njit(cache=_CACHE)
def adam_update(
    param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, lr_decay_factor, weight_decay, decoupled,
    beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps, step_size, amsgrad,
):
    """Adam/AdamW step on flat arrays; ``max_exp_avg_sq`` is unused (any array) without AMSGrad."""
    for i in range(param.shape[0]):
        g = grad[i]
        p = param[i]
        if weight_decay != 0:
            if decoupled:
                p = p * lr_decay_factor
            else:
                g = g + p * weight_decay
        m = exp_avg[i] * beta1 + g * one_minus_beta1
        v = exp_avg_sq[i] * beta2 + (g * g) * one_minus_beta2
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v = max(max_exp_avg_sq[i], v)
            max_exp_avg_sq[i] = v
        denominator = np.sqrt(v) / bias_correction2_sqrt + eps
        param[i] = p - (m / denominator) * step_size


# -- softmax cross-entropy with probability targets --------------------------------------------


@njit(fastmath=_CONTRACT)
def _probability_row(row, out, target, sample, class_weight, use_class_weight, smoothing, z_loss, scale, in_place):
    """One row of :func:`softmax_cross_entropy_probability_rows`; returns (loss, ok)."""
    n_classes = row.shape[0]
    shift, top = _row_maximum_and_top(row)
    if not (shift > -np.inf and shift < np.inf):
        return 0.0, False
    uniform = smoothing / n_classes
    # sum_c q_c (shift - z_c) and sum_c q_c, read before `out` may overwrite the row
    gap = 0.0
    mass = 0.0
    for c in range(n_classes):
        q = np.float64(sample) * ((1.0 - smoothing) * np.float64(target[c]) + uniform)
        if use_class_weight:
            q *= np.float64(class_weight[c])
        if q != 0.0:
            gap += q * (np.float64(shift) - np.float64(row[c]))
            mass += q
    rest = _exponentials_except_top(row, out, shift, top, in_place)
    log_sum = np.log1p(rest)
    log_sum_exp = np.float64(shift) + log_sum
    loss = gap + mass * log_sum
    if z_loss > 0.0 and sample != 0:
        loss += z_loss * np.float64(sample) * log_sum_exp * log_sum_exp
    coefficient = (mass + 2.0 * z_loss * np.float64(sample) * log_sum_exp) * scale
    probability_scale = out.dtype.type(coefficient / (1.0 + rest))
    out[top] = 1.0
    target_scale = np.float64(sample) * scale
    for c in range(n_classes):
        q = target_scale * ((1.0 - smoothing) * np.float64(target[c]) + uniform)
        if use_class_weight:
            q *= np.float64(class_weight[c])
        out[c] = out[c] * probability_scale - out.dtype.type(q)
    return loss, True


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def softmax_cross_entropy_probability_rows(
    logits, target, sample_weight, class_weight, smoothing, z_loss, scale, out, losses, row_ok
):
    """See :func:`crossent.kernels._numpy.softmax_cross_entropy_probability_rows`."""
    _each_row(_probability_row, logits, out, target, sample_weight, class_weight, smoothing, z_loss, scale, losses,
              row_ok, False)


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def softmax_cross_entropy_probability_rows_inplace(
    logits, target, sample_weight, class_weight, smoothing, z_loss, scale, losses, row_ok
):
    """:func:`softmax_cross_entropy_probability_rows` writing the gradient over ``logits``."""
    _each_row(_probability_row, logits, logits, target, sample_weight, class_weight, smoothing, z_loss, scale, losses,
              row_ok, True)


# -- sigmoid binary cross-entropy, element by element -------------------------------------------


def log1p_unit(x):  # pragma: no cover - replaced by the typed implementations below
    """``log(1 + x)`` for ``x`` in [0, 1], vectorisable: ``2 atanh(x / (2 + x))`` by its series."""
    raise NotImplementedError


@overload(log1p_unit, inline="always")
def _log1p_unit_typed(x):
    # atanh(f) / f = sum_k f^(2k) / (2k + 1) with f = x / (2 + x) in [0, 1/3]: the terms fall by 9x
    # each, so 8 (float32) or 18 (float64) of them reach below half an ulp
    if x == types.float32:
        terms = np.array([1.0 / (2 * k + 1) for k in range(7, -1, -1)], np.float32)
    elif x == types.float64:
        terms = np.array([1.0 / (2 * k + 1) for k in range(17, -1, -1)])
    else:
        return None
    n_terms = len(terms)
    two = terms.dtype.type(2.0)

    def implementation(x):
        f = x / (two + x)
        f2 = f * f
        series = terms[0]
        for k in range(1, n_terms):
            series = series * f2 + terms[k]
        return two * f * series

    return implementation


@njit(inline="always")
def _binary_element(x, y, positive_weight, weight, use_positive_weight, use_weight, one):
    """(loss, dloss/dx) of one element; see :func:`sigmoid_binary_cross_entropy_elements`."""
    zero = one - one
    decay = exp_nonpositive(-abs(x))  # in [0, 1]
    log_term = log1p_unit(decay)
    softplus_positive = (x if x > zero else zero) + log_term
    softplus_negative = (-x if x < zero else zero) + log_term
    inverse = one / (one + decay)  # sigmoid(|x|)
    complement = decay * inverse  # sigmoid(-|x|), accurate where it is tiny
    sigmoid_positive = inverse if x >= zero else complement
    sigmoid_negative = complement if x >= zero else inverse
    positive_part = positive_weight * y if use_positive_weight else y
    negative_part = one - y
    # a zero coefficient costs 0 even against softplus = inf (x = -inf with y = 0)
    loss = positive_part * softplus_negative if positive_part != zero else zero
    if negative_part != zero:
        loss += negative_part * softplus_positive
    slope = negative_part * sigmoid_positive - positive_part * sigmoid_negative
    if use_weight:
        loss = weight * loss if weight != zero else zero
        slope = slope * weight
    if x != x:  # NaN in, NaN out (the comparisons above would have hidden it)
        return x, x
    return loss, slope


@njit(inline="always")
def _binary_elements(logits, target, positive_weight, weight, scale, losses, grad):
    use_positive_weight = positive_weight.shape[0] > 0
    use_weight = weight.shape[0] > 0
    one = logits.dtype.type(1.0)
    for i in prange(logits.shape[0]):
        loss, slope = _binary_element(
            logits[i], target[i], positive_weight[i] if use_positive_weight else logits[i],
            weight[i] if use_weight else logits[i], use_positive_weight, use_weight, one,
        )
        losses[i] = loss
        grad[i] = slope * scale


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def sigmoid_binary_cross_entropy_elements(logits, target, positive_weight, weight, scale, losses, grad):
    r"""Loss and scaled gradient of every element of flat arrays (NumPy twin: :mod:`crossent.losses.binary`).

    :math:`l = w\,[p\,y\,\mathrm{softplus}(-x) + (1-y)\,\mathrm{softplus}(x)]`,
    :math:`\partial l/\partial x = w\,[(1-y)\,\sigma(x) - p\,y\,\sigma(-x)]`, both
    softplus and both sigmoids built from one ``exp(-|x|)``. ``positive_weight`` (p)
    and ``weight`` (w) are flat arrays, or shape (0,) for 1.
    """
    _binary_elements(logits, target, positive_weight, weight, scale, losses, grad)


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def sigmoid_binary_cross_entropy_elements_inplace(logits, target, positive_weight, weight, scale, losses):
    """:func:`sigmoid_binary_cross_entropy_elements` writing the gradient over ``logits``."""
    _binary_elements(logits, target, positive_weight, weight, scale, losses, logits)


# -- a measuring stick ---------------------------------------------------------------------------


@njit(parallel=True, cache=_CACHE, fastmath=_CONTRACT)
def shifted_exponentials(values, shift, out):
    """``out = exp(values - shift)`` row by row with the kernels' exponential (``shift >= max(values)``).

    The compute floor of any one-pass softmax kernel on this machine: one
    exponential per element, one read and one write; ``crossent bench`` times it.
    """
    for i in prange(values.shape[0]):
        _exponentiate_row(values[i], out[i], shift)
