r"""A linear layer followed by softmax cross-entropy, computed in blocks: the N x V logits are never held.

For hidden states :math:`H` (N x h), an output layer :math:`W` (V x h, the layout
of PyTorch's ``nn.Linear``) with bias :math:`b` and class labels :math:`y`,

.. math::

    Z = H W^\top + b, \qquad L = \mathrm{CE}(\phi(Z), y), \qquad
    \phi(z) = s \tanh(z / s) \ \text{(softcap, optional)}

With the per-logit gradient :math:`G = \partial L / \partial Z` (the cross-entropy
gradient times :math:`\phi'(z) = 1 - \tanh^2(z/s)`), the parameter gradients are
three matrix products,

.. math::

    \frac{\partial L}{\partial H} = G W, \qquad
    \frac{\partial L}{\partial W} = G^\top H, \qquad
    \frac{\partial L}{\partial b} = \textstyle\sum_n G_n .

Each row of :math:`G` depends only on its own row of :math:`Z`, and the three
products add up contributions of row blocks (and vocabulary blocks), so the
whole computation runs block by block through one reused logits buffer. With a
vocabulary of 50k classes and a batch of 8k rows the unfused N x V logits, their
softmax and their gradient would take 1.6 GB each in float32; here one block
of a few tens of MiB is held.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .. import kernels
from .._reduction import gradient_scale, reduce
from .._typing import FloatArray, LossValue, Reduction
from .._validation import (
    _describe,
    check_finite_nonnegative,
    check_finite_scalar,
    check_ignore_index,
    check_labels,
    check_reduction,
    check_scalar,
)

__all__ = ["linear_cross_entropy", "DEFAULT_BLOCK_BYTES"]

#: Size in bytes of the logits block that ``chunk_size=None`` aims for (read at
#: every call, so it can be changed on this module). 64 MiB keeps whole-vocabulary
#: blocks of 64 rows or more up to V = 262144 classes in float32.
DEFAULT_BLOCK_BYTES = 64 * 2**20

# With chunk_size=None the whole vocabulary is processed at once as long as the
# block holds at least this many rows; below that the matrix products get too
# thin to run at full speed, and the vocabulary is split instead (two passes).
_MIN_SINGLE_PASS_ROWS = 64
# Rows per block when the vocabulary is split.
_TWO_PASS_ROWS = 256
# Bound on the temporary through which a row block's dW = G^T H_b is added
# to the weight gradient, one slice of classes at a time.
_WEIGHT_GRAD_SLICE_BYTES = 8 * 2**20


@dataclass(frozen=True)
class _LossOptions:
    """The cross-entropy options, validated, as the per-block step needs them."""

    class_weights: np.ndarray | None  # (V,) in the input dtype
    ignore_index: int | None
    label_smoothing: float
    z_loss: float


@overload
def linear_cross_entropy(
    hidden: ArrayLike, weight: ArrayLike, target: ArrayLike, *, bias: ArrayLike | None = ...,
    ignore_index: int | None = ..., label_smoothing: float = ..., weight_classes: ArrayLike | None = ...,
    z_loss: float = ..., softcap: float | None = ..., reduction: Reduction = ...,
    chunk_size: int | tuple[int, int] | None = ..., return_grad: Literal[False] = ...,
) -> LossValue: ...
@overload
def linear_cross_entropy(
    hidden: ArrayLike, weight: ArrayLike, target: ArrayLike, *, bias: ArrayLike | None = ...,
    ignore_index: int | None = ..., label_smoothing: float = ..., weight_classes: ArrayLike | None = ...,
    z_loss: float = ..., softcap: float | None = ..., reduction: Reduction = ...,
    chunk_size: int | tuple[int, int] | None = ..., return_grad: Literal[True],
) -> tuple[LossValue, FloatArray, FloatArray, FloatArray | None]: ...
@overload
def linear_cross_entropy(
    hidden: ArrayLike, weight: ArrayLike, target: ArrayLike, *, bias: ArrayLike | None = ...,
    ignore_index: int | None = ..., label_smoothing: float = ..., weight_classes: ArrayLike | None = ...,
    z_loss: float = ..., softcap: float | None = ..., reduction: Reduction = ...,
    chunk_size: int | tuple[int, int] | None = ..., return_grad: bool = ...,
) -> LossValue | tuple[LossValue, FloatArray, FloatArray, FloatArray | None]: ...
def linear_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    target: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    weight_classes: ArrayLike | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | tuple[int, int] | None = None,
    return_grad: bool = False,
) -> LossValue | tuple[LossValue, FloatArray, FloatArray, FloatArray | None]:
    r"""Softmax cross-entropy of a linear layer's output, without holding the N x V logits.

    The value (and gradients) of

    .. code-block:: python

        logits = hidden @ weight.T + bias            # (N, V)
        logits = softcap * np.tanh(logits / softcap) # only if softcap is given
        softmax_cross_entropy(logits, target, weight=weight_classes, ignore_index=ignore_index,
                              label_smoothing=label_smoothing, z_loss=z_loss, reduction=reduction)

    computed block by block. Row :math:`n` has logits
    :math:`z_n = W h_n + b`, capped logits :math:`\hat z_n = s \tanh(z_n / s)`
    (:math:`\hat z_n = z_n` without ``softcap``), softmax :math:`p_n` and
    log-sum-exp :math:`\ell_n` of :math:`\hat z_n`, and with class weights
    :math:`w` (1 if absent), smoothing :math:`\varepsilon`, z-loss :math:`\lambda`
    and :math:`d_n = w_{y_n}` (0 on ignored rows):

    .. math::

        L_n = (1 - \varepsilon)\, d_n (\ell_n - \hat z_{n,y_n})
              + \tfrac{\varepsilon}{V} \textstyle\sum_c w_c (\ell_n - \hat z_{nc})
              + \lambda\, d_n \ell_n^2

    (the smoothing term is 0 on ignored rows too). Its gradient with respect to the
    logits is :math:`G_n = \big((\sum_c q_{nc} + 2 \lambda d_n \ell_n)\, p_n - q_n\big)
    \odot (1 - \tanh^2(z_n / s))` with the effective target
    :math:`q_n = (1 - \varepsilon) d_n\, \mathrm{onehot}(y_n) + \tfrac{\varepsilon}{V} w`, and

    .. math::

        \frac{\partial L}{\partial H} = G W, \qquad
        \frac{\partial L}{\partial W} = G^\top H, \qquad
        \frac{\partial L}{\partial b} = \textstyle\sum_n G_n .

    The reduction is the library's one contract (:mod:`crossent._reduction`):
    ``"sum"`` adds the :math:`L_n`, ``"mean"`` divides by :math:`D = \sum_n d_n`
    (applied once, to :math:`G`), ``"none"`` returns every :math:`L_n` and the
    gradients of their sum. If every row is ignored the mean is ``0.0`` and every
    gradient is zero.

    Parameters
    ----------
    hidden : array_like, shape (N, h)
        float32 or float64.
    weight : array_like, shape (V, h)
        The output layer (``nn.Linear(h, V).weight``), same dtype as ``hidden``.
    target : integer array_like, shape (N,)
        Class labels in ``[0, V)``, or equal to ``ignore_index``.
    bias : array_like, shape (V,), optional
        Same dtype as ``hidden``.
    ignore_index : int, optional
        Label value whose rows contribute no loss and no gradient and leave the
        mean's denominator.
    label_smoothing : float in [0, 1], default 0
    weight_classes : array_like, shape (V,), optional
        Class weights, finite and >= 0 (the ``weight`` of
        :func:`crossent.softmax_cross_entropy`).
    z_loss : float >= 0, default 0
        :math:`\lambda` of the z-loss :math:`\lambda d_n \ell_n^2`.
    softcap : float > 0, optional
        Cap :math:`s` of the logits, :math:`s \tanh(z / s)` (as in Gemma 2).
    reduction : {"mean", "sum", "none"}, default "mean"
    chunk_size : int or (int, int), optional
        Block shape. An integer is the number of rows per block, with the whole
        vocabulary in each block: one pass, and the largest buffer is
        ``chunk_size * V`` logits. A pair ``(rows, classes)`` also splits the
        vocabulary into blocks of ``classes``: the largest buffer is then
        ``rows * classes`` logits, whatever V is, at the price of computing the
        logits twice (four matrix products per logit instead of three, see
        Notes). ``None`` picks blocks of about ``DEFAULT_BLOCK_BYTES`` (64 MiB)
        of logits: whole-vocabulary blocks of as many rows as fit, or, when fewer
        than 64 rows fit, blocks of 256 rows by as many classes as fit. The
        budget is a module constant, read at every call:
        ``importlib.import_module("crossent.losses.linear_cross_entropy").DEFAULT_BLOCK_BYTES``
        (the package attribute of that name is this function).
    return_grad : bool, default False
        Also return the gradients.

    Returns
    -------
    loss : numpy scalar of ``hidden``'s dtype, or array (N,) for ``reduction="none"``
    grad_hidden : array (N, h)
        Only with ``return_grad=True``, like the two below.
    grad_weight : array (V, h)
    grad_bias : array (V,), or None when ``bias`` is None

    Notes
    -----
    Algorithm, for each block of rows :math:`H_b`:

    * Whole vocabulary (one pass): compute :math:`Z_b = H_b W^\top + b` into the
      reused buffer, cap it, let the library's cross-entropy turn it into the
      block's losses and :math:`G_b` in place, then
      :math:`\partial H_b = G_b W`, :math:`\partial W \mathrel{+}= G_b^\top H_b`
      and :math:`\partial b \mathrel{+}= \sum_n G_{b,n}`: three matrix products
      per logit, the same as the unfused computation.
    * Split vocabulary (two passes): pass 1 goes over the vocabulary blocks and
      keeps, per row, a running maximum and a rescaled running sum of
      exponentials (an online log-sum-exp), which gives each row's loss; pass 2
      computes each logits block again and turns it into its part of
      :math:`G_b` with the now known log-sum-exp.

    Memory: besides the inputs and the gradients returned, one logits block
    (``rows x classes`` entries), a second block of the same size for the
    softcap's derivative when ``softcap`` is given with ``return_grad``, the
    temporaries of the per-block cross-entropy (in the one-pass case: one or two
    more blocks of the same size, up to about eight with class weights and label
    smoothing; none in the two-pass case), one slice of at most
    8 MiB through which the weight gradient is accumulated and vectors of length
    N and V. Non-contiguous ``hidden`` or ``weight`` (neither C nor Fortran
    order) are copied once. ``hidden``, ``weight`` and ``bias`` are not checked
    for NaN or infinity; non-finite values there give non-finite results.

    float32 inputs are computed in float32; per-row losses are added up in
    float64.

    Shapes
    ------
    hidden (N, h), weight (V, h), target (N,), bias (V,), weight_classes (V,);
    loss () or (N,); grad_hidden (N, h), grad_weight (V, h), grad_bias (V,).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> rng = np.random.default_rng(0)
    >>> hidden, weight, bias = rng.normal(size=(6, 4)), rng.normal(size=(10, 4)), rng.normal(size=10)
    >>> target = np.array([0, 3, 9, 1, 1, 5])
    >>> loss, d_hidden, d_weight, d_bias = crossent.linear_cross_entropy(
    ...     hidden, weight, target, bias=bias, softcap=2.0, chunk_size=4, return_grad=True)

    The same numbers from the N x V logits:

    >>> raw = hidden @ weight.T + bias
    >>> logits = 2.0 * np.tanh(raw / 2.0)
    >>> bool(np.isclose(loss, crossent.softmax_cross_entropy(logits, target)))
    True
    >>> G = crossent.softmax_cross_entropy_grad(logits, target) * (1 - np.tanh(raw / 2.0) ** 2)
    >>> np.allclose(d_hidden, G @ weight), np.allclose(d_weight, G.T @ hidden), np.allclose(d_bias, G.sum(0))
    (True, True, True)
    """
    hidden, weight, bias = _check_layer(hidden, weight, bias)
    dtype = hidden.dtype
    n_rows, n_features = hidden.shape
    n_classes = weight.shape[0]
    ignore_index = check_ignore_index(ignore_index)
    labels = check_labels(target, (n_rows,), n_classes, ignore_index)
    options = _LossOptions(
        class_weights=_check_class_weights(weight_classes, n_classes, dtype),
        ignore_index=ignore_index,
        label_smoothing=check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0),
        z_loss=check_finite_scalar(z_loss, "z_loss", low=0.0),
    )
    cap = None if softcap is None else check_finite_scalar(softcap, "softcap", low=0.0, low_inclusive=False)
    checked_reduction = check_reduction(reduction)
    row_block, vocabulary_block = _block_shape(chunk_size, n_rows, n_classes, dtype.itemsize)
    if type(return_grad) is not bool:
        raise TypeError(f"return_grad must be True or False, got {_describe(return_grad)}")

    # D = sum_n d_n, d_n = w[y_n] on the rows not ignored: computed once from the labels,
    # as softmax_cross_entropy computes it, and applied once, to the logits' gradient.
    kept = labels if ignore_index is None else labels[labels != ignore_index]
    if options.class_weights is None:
        denominator = float(kept.size)
    else:
        denominator = float(np.sum(options.class_weights[kept], dtype=np.float64))
    scale = gradient_scale(checked_reduction, denominator)

    row_losses = np.empty(n_rows, dtype=dtype)
    grads = None
    if return_grad:
        grads = _Gradients(
            hidden=np.empty((n_rows, n_features), dtype=dtype),
            weight=np.empty((n_classes, n_features), dtype=dtype),
            bias=None if bias is None else np.empty(n_classes, dtype=dtype),
            weight_temporary=None,
        )
        if n_rows > row_block:  # the first row block writes dW directly; later ones add through this
            slice_classes = max(1, _WEIGHT_GRAD_SLICE_BYTES // (n_features * dtype.itemsize))
            grads.weight_temporary = np.empty(min(slice_classes, n_classes) * n_features, dtype=dtype)
    # The one logits buffer (and the softcap's derivative beside it), allocated once; every
    # block is a C-contiguous view of its first rows x classes entries.
    block_size = row_block * vocabulary_block
    logits_buffer = np.empty(block_size, dtype=dtype)
    tanh_buffer = np.empty(block_size, dtype=dtype) if cap is not None and return_grad else None
    layer = _Layer(weight=weight, bias=bias, cap=cap)

    for start in range(0, n_rows, row_block):
        rows = slice(start, min(start + row_block, n_rows))
        if vocabulary_block >= n_classes:
            row_losses[rows] = _whole_vocabulary_rows(
                hidden[rows], labels[rows], layer, options, scale, grads, rows,
                logits_buffer, tanh_buffer, first=start == 0,
            )
        else:
            row_losses[rows] = _split_vocabulary_rows(
                hidden[rows], labels[rows], layer, options, scale, grads, rows,
                logits_buffer, tanh_buffer, vocabulary_block, first=start == 0,
            )

    loss = reduce(row_losses, checked_reduction, denominator, dtype)
    if grads is None:  # return_grad=False
        return loss
    return loss, grads.hidden, grads.weight, grads.bias


@dataclass(frozen=True)
class _Layer:
    weight: np.ndarray  # (V, h)
    bias: np.ndarray | None  # (V,)
    cap: float | None


@dataclass
class _Gradients:
    hidden: np.ndarray  # (N, h)
    weight: np.ndarray  # (V, h)
    bias: np.ndarray | None  # (V,)
    weight_temporary: np.ndarray | None  # flat, a whole number of rows of h: dW is added through it


def _block_loss_and_grad(logits, labels, options: _LossOptions, scale: float, compute_grad: bool):
    """Per-row losses of a block of rows over the whole vocabulary; ``logits`` becomes ``scale * dL/dlogits``.

    ``logits`` is an (R, V) C-contiguous block, ``labels`` its (R,) labels (possibly
    ``ignore_index``). The block's rows are independent of every other row, so this
    is the fused cross-entropy kernel (:mod:`crossent.kernels`) on the block alone,
    in place: an ignored row has row weight 0, and ``scale`` is the mean's ``1 / D``
    over the whole batch (1 for the other reductions). Without ``compute_grad`` the
    block is left as it is.
    """
    dtype = logits.dtype
    if options.ignore_index is not None:
        kept = labels != options.ignore_index
        labels = np.where(kept, labels, 0)
        row_weight = kept.astype(dtype)
    else:
        row_weight = np.empty(0, dtype)  # every row weighs 1
    class_weight = (
        np.empty((1, 0), dtype) if options.class_weights is None else options.class_weights.reshape(1, -1)
    )
    losses, _ = kernels.softmax_cross_entropy_label_rows(
        logits, labels, row_weight, class_weight, options.label_smoothing, options.z_loss, scale,
        out=logits if compute_grad else None, compute_grad=compute_grad,
    )
    return losses


def _layer_logits(hidden_rows, layer: _Layer, classes: slice, out, tanh_out):
    """``out = cap(hidden_rows @ W[classes].T + b[classes])``; ``tanh_out = tanh(. / cap)`` when given."""
    np.matmul(hidden_rows, layer.weight[classes].T, out=out)
    if layer.bias is not None:
        out += layer.bias[classes]
    if layer.cap is not None:
        # the same operations, in the same order, as cap * np.tanh(z / cap)
        scaled = out if tanh_out is None else tanh_out
        np.divide(out, layer.cap, out=scaled)
        np.tanh(scaled, out=scaled)
        np.multiply(scaled, layer.cap, out=out)


def _chain_softcap(grad, tanh_values):
    """``grad *= 1 - tanh^2``: d(s tanh(z/s))/dz from the cached tanh (overwrites ``tanh_values``)."""
    np.square(tanh_values, out=tanh_values)
    np.subtract(1, tanh_values, out=tanh_values)
    grad *= tanh_values


def _add_parameter_grads(grad_block, hidden_rows, layer: _Layer, grads: _Gradients, rows, classes,
                         first_rows: bool, first_classes: bool):
    """Add one block of G to dH = G W, dW = G^T H and db = sum_n G_n."""
    weight = layer.weight[classes]
    grad_hidden = grads.hidden[rows]
    if first_classes:
        np.matmul(grad_block, weight, out=grad_hidden)
    else:
        grad_hidden += grad_block @ weight  # (R, h): small
    grad_weight = grads.weight[classes]
    if first_rows:
        np.matmul(grad_block.T, hidden_rows, out=grad_weight)
    else:
        # numpy has no C += A B: go through a temporary of at most _WEIGHT_GRAD_SLICE_BYTES
        n_classes, n_features = grad_weight.shape
        temporary = grads.weight_temporary
        assert temporary is not None  # allocated whenever there is more than one row block
        step = temporary.size // n_features
        for start in range(0, n_classes, step):
            stop = min(start + step, n_classes)
            part = temporary[: (stop - start) * n_features].reshape(stop - start, n_features)
            np.matmul(grad_block[:, start:stop].T, hidden_rows, out=part)
            grad_weight[start:stop] += part
    if grads.bias is not None:
        if first_rows:
            np.add.reduce(grad_block, axis=0, out=grads.bias[classes])
        else:
            grads.bias[classes] += np.add.reduce(grad_block, axis=0)


def _whole_vocabulary_rows(hidden_rows, labels, layer, options, scale, grads, rows,
                           logits_buffer, tanh_buffer, *, first):
    """One pass over a block of rows with every class: losses, and the gradients added to ``grads``."""
    shape = (hidden_rows.shape[0], layer.weight.shape[0])
    block = logits_buffer[: shape[0] * shape[1]].reshape(shape)
    tanh_block = None if tanh_buffer is None else tanh_buffer[: block.size].reshape(shape)
    every_class = slice(None)
    # Step 1: Z_b = cap(H_b W^T + b).
    _layer_logits(hidden_rows, layer, every_class, block, tanh_block)
    # Step 2: the rows' losses, and G_b = scale * dL/dZ_b written over Z_b.
    losses = _block_loss_and_grad(block, labels, options, scale, grads is not None)
    if grads is None:
        return losses
    # Step 3: through the softcap, dL/dz = dL/dcap(z) * (1 - tanh^2(z / cap)).
    if tanh_block is not None:
        _chain_softcap(block, tanh_block)
    # Step 4: dH_b = G_b W, dW += G_b^T H_b, db += sum_n G_b,n.
    _add_parameter_grads(block, hidden_rows, layer, grads, rows, every_class,
                         first_rows=first, first_classes=True)
    return losses


def _split_vocabulary_rows(hidden_rows, labels, layer, options, scale, grads, rows,
                           logits_buffer, tanh_buffer, vocabulary_block, *, first):
    r"""Two passes over the vocabulary blocks for one block of rows.

    Pass 1 (loss). For every row keep the running maximum :math:`m` of the logits
    seen so far and :math:`r = \sum_{c\ \text{seen}} e^{z_c - m} - 1`, the sum of
    exponentials without the maximum's own term (exactly 1), as
    :func:`~crossent.losses._classification.row_softmax_terms` keeps it, so that
    :math:`\ell = m + \log(1 + r)` with ``log1p`` stays accurate when one class
    dominates. A block with maximum :math:`m_b` updates them as

    .. math::

        m' = \max(m, m_b), \quad \alpha = e^{m - m'}, \quad
        r' = \alpha (r + [m_b > m]) + \sum_{c \in b} e^{z_c - m'} - [m_b > m]

    where the last ``- [m_b > m]`` removes the new maximum's own term (set to 0,
    not subtracted). For label smoothing it also keeps
    :math:`a = \sum_{c\ \text{seen}} w_c (m - z_c)`, a sum of terms >= 0:
    :math:`a' = a + (m' - m) \sum_{c\ \text{seen}} w_c + \sum_{c \in b} w_c (m' - z_c)`,
    and at the end :math:`\sum_c w_c (\ell - z_c) = a + \log(1 + r) \sum_c w_c`.
    The label's logit is picked up from the block that holds it.

    Pass 2 (gradient). Each block again, now with :math:`\ell` known:
    :math:`G = \mathrm{scale} \cdot (\kappa\, e^{z - m} / (1 + r) - q)`,
    :math:`\kappa = \sum_c q_c + 2 \lambda d \ell`.
    """
    n_rows = hidden_rows.shape[0]
    n_classes = layer.weight.shape[0]
    dtype = hidden_rows.dtype
    row_index = np.arange(n_rows)
    smoothing, z_scale, class_weights = options.label_smoothing, options.z_loss, options.class_weights

    # Per-row weights: r_n = 1 (0 if ignored), d_n = r_n w[y_n]; ignored rows look at class 0.
    if options.ignore_index is None:
        kept = np.ones(n_rows, dtype=bool)
    else:
        kept = labels != options.ignore_index
    labels = np.where(kept, labels, 0)
    row_weight = kept.astype(dtype)
    label_weight = row_weight if class_weights is None else row_weight * class_weights[labels]
    total_class_weight = float(n_classes) if class_weights is None else float(np.sum(class_weights, dtype=np.float64))

    def blocks():
        for start in range(0, n_classes, vocabulary_block):
            stop = min(start + vocabulary_block, n_classes)
            shape = (n_rows, stop - start)
            block = logits_buffer[: shape[0] * shape[1]].reshape(shape)
            yield start, slice(start, stop), block

    # Pass 1, steps 1-3: running maximum, running sum, smoothing sum, label logits.
    running_max = np.full(n_rows, -np.inf, dtype=dtype)
    rest = np.zeros(n_rows, dtype=dtype)
    smoothing_sum = np.zeros(n_rows, dtype=dtype)
    seen_weight = 0.0
    label_logit = np.empty(n_rows, dtype=dtype)
    for start, classes, block in blocks():
        # Step 1: the block's (capped) logits and the label logits that fall inside it.
        _layer_logits(hidden_rows, layer, classes, block, None)
        inside = (labels >= start) & (labels < classes.stop)
        label_logit[inside] = block[row_index[inside], labels[inside] - start]
        # Step 2: m' = max(m, m_b), alpha = exp(m - m') (0 on the first block, where m = -inf).
        top = np.argmax(block, axis=1)
        block_max = block[row_index, top]
        new_max = np.maximum(running_max, block_max)
        is_new = block_max > running_max
        alpha = np.exp(running_max - new_max)
        # Step 3: block <- m' - z (>= 0); a += (m' - m) * seen weight + sum_c w_c (m' - z_c).
        np.subtract(new_max[:, None], block, out=block)
        if smoothing > 0:
            if seen_weight > 0:
                smoothing_sum += (new_max - running_max) * dtype.type(seen_weight)
            block_weights = None if class_weights is None else class_weights[classes]
            smoothing_sum += block.sum(axis=1) if block_weights is None else block @ block_weights
            seen_weight += (classes.stop - start) if block_weights is None else float(
                np.sum(block_weights, dtype=np.float64))
        # Step 4: block <- exp(z - m'), without the new maximum's own term; r' as above.
        np.negative(block, out=block)
        np.exp(block, out=block)
        block[row_index, top] -= is_new  # exp(0) - 1 = 0 exactly where the maximum is new
        rest *= alpha
        rest += alpha * is_new
        rest += block.sum(axis=1)
        running_max = new_max

    # Step 5: l = m + log1p(r); -log p_y = (m - z_y) + log1p(r);
    # L = (1 - eps) d (-log p_y) + eps / V * r_n * (a + log1p(r) * sum_c w_c) + lambda d l^2.
    log_sum = np.log1p(rest)
    lse = running_max + log_sum
    nll = (running_max - label_logit) + log_sum
    losses = (1 - smoothing) * (label_weight * nll)
    if smoothing > 0:
        losses += smoothing / n_classes * (row_weight * (smoothing_sum + log_sum * dtype.type(total_class_weight)))
    if z_scale > 0:
        losses += z_scale * (label_weight * np.square(lse))
    if grads is None:
        return losses

    # Pass 2: G = scale * (kappa * exp(z - m) / (1 + r) - q), kappa = sum_c q_c + 2 lambda d l,
    # q = (1 - eps) d onehot(y) + eps / V * r_n * w.
    target_mass = (1 - smoothing) * label_weight + smoothing / n_classes * row_weight * dtype.type(total_class_weight)
    coefficient = (target_mass + 2 * z_scale * label_weight * lse) * scale / (1 + rest)
    label_part = (1 - smoothing) * scale * label_weight
    smoothing_part = smoothing / n_classes * scale
    ignored_rows = np.flatnonzero(~kept)
    for start, classes, block in blocks():
        tanh_block = None if tanh_buffer is None else tanh_buffer[: block.size].reshape(block.shape)
        # Step 6: the block's logits again (and tanh for the softcap's derivative).
        _layer_logits(hidden_rows, layer, classes, block, tanh_block)
        # Step 7: scale * kappa * p, then minus scale * q.
        np.subtract(block, running_max[:, None], out=block)
        np.exp(block, out=block)
        block *= coefficient[:, None]
        inside = (labels >= start) & (labels < classes.stop)
        block[row_index[inside], labels[inside] - start] -= label_part[inside]
        if smoothing > 0:
            block -= smoothing_part if class_weights is None else smoothing_part * class_weights[classes]
            block[ignored_rows] = 0  # r_n = 0: no smoothing target on ignored rows
        # Step 8: through the softcap, then dH_b += G W_v, dW_v += G^T H_b, db_v += sum_n G_n.
        if tanh_block is not None:
            _chain_softcap(block, tanh_block)
        _add_parameter_grads(block, hidden_rows, layer, grads, rows, classes,
                             first_rows=first, first_classes=start == 0)
    return losses


def _check_layer(
    hidden: ArrayLike, weight: ArrayLike, bias: ArrayLike | None
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None]:
    """hidden (N, h) and weight (V, h) of one float dtype, bias (V,) of it too; BLAS-ready layouts."""
    arrays = {}
    for name, value in (("hidden", hidden), ("weight", weight)):
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"{name} must be an array of float32 or float64 numbers, got {_describe(value)}")
        array = np.asarray(value)
        if array.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
        if array.size == 0:
            raise ValueError(f"{name} is empty (shape {array.shape}); a loss needs at least one element")
        # strided views would send np.matmul to its slow loop on every block: copy once
        if not (array.flags.c_contiguous or array.flags.f_contiguous):
            array = np.ascontiguousarray(array)
        arrays[name] = array
    hidden, weight = arrays["hidden"], arrays["weight"]
    if hidden.dtype != weight.dtype:
        raise TypeError(f"hidden and weight must have the same dtype, got {hidden.dtype} and {weight.dtype}")
    if hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden of shape {hidden.shape} and weight of shape {weight.shape} must have the same "
            f"number of columns (weight is (V, h), the layout of nn.Linear)"
        )
    if bias is not None:
        if isinstance(bias, (str, bytes)):
            raise TypeError(f"bias must be an array of numbers, got {_describe(bias)}")
        bias = np.asarray(bias)
        if bias.dtype != hidden.dtype:
            raise TypeError(f"bias must have hidden's dtype {hidden.dtype}, got {bias.dtype}")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},) (one per class), got {bias.shape}")
    return hidden, weight, bias


def _check_class_weights(weight_classes: ArrayLike | None, n_classes: int, dtype: DTypeLike) -> FloatArray | None:
    if weight_classes is None:
        return None
    if isinstance(weight_classes, (str, bytes)):
        raise TypeError(f"weight_classes must be an array of numbers, got {_describe(weight_classes)}")
    array = np.asarray(weight_classes)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"weight_classes must hold real numbers, got dtype {array.dtype}")
    if array.shape != (n_classes,):
        raise ValueError(f"weight_classes must have shape ({n_classes},) (one per class), got {array.shape}")
    check_finite_nonnegative(array, "weight_classes")
    return array.astype(dtype, copy=False)


def _check_block_length(value, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"chunk_size {what} must be a positive integer, got {_describe(value)}")
    if value <= 0:
        raise ValueError(f"chunk_size {what} must be a positive integer, got {int(value)}")
    return int(value)


def _block_shape(chunk_size, n_rows: int, n_classes: int, itemsize: int) -> tuple[int, int]:
    """(rows, classes) per block, from ``chunk_size`` or from ``DEFAULT_BLOCK_BYTES``."""
    if chunk_size is None:
        rows_that_fit = DEFAULT_BLOCK_BYTES // (n_classes * itemsize)
        if rows_that_fit >= min(n_rows, _MIN_SINGLE_PASS_ROWS):
            return min(n_rows, rows_that_fit), n_classes
        rows = min(n_rows, _TWO_PASS_ROWS)
        return rows, max(1, min(n_classes, DEFAULT_BLOCK_BYTES // (rows * itemsize)))
    if isinstance(chunk_size, (tuple, list)):
        if len(chunk_size) != 2:
            raise ValueError(f"chunk_size as a pair must be (rows, classes), got {_describe(chunk_size)}")
        rows = _check_block_length(chunk_size[0], "rows")
        classes = _check_block_length(chunk_size[1], "classes")
        return min(rows, n_rows), min(classes, n_classes)
    return min(_check_block_length(chunk_size, "(rows per block)"), n_rows), n_classes
