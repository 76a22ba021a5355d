r"""PyTorch interface: crossent's losses as ``torch.autograd`` functions on CPU tensors.

``import crossent`` never imports PyTorch; ``import crossent.torch`` does. Every
function here

1. checks that its tensors live on the CPU and hold float32 or float64 (the
   input) -- ``ValueError`` for another device, ``TypeError`` for another dtype;
2. hands them to crossent as NumPy arrays that share the tensors' memory
   (``tensor.numpy()``; a non-contiguous tensor is made contiguous first);
3. computes the value and the gradient in one fused pass in the forward, and
   keeps the gradient (already divided by the mean's denominator) for backward;
4. in backward multiplies that gradient by the incoming ``grad_output``.

Step 4 is exact because every loss here is a sum of per-row terms, each
depending on its own row only:

.. math::

    \frac{\partial}{\partial z_n} \sum_m g_m L_m = g_n \frac{\partial L_n}{\partial z_n}

so for ``reduction="none"`` the saved gradient of :math:`\sum_m L_m` times
``grad_output`` broadcast over the class axis is the gradient of
:math:`\sum_m g_m L_m`, and for ``"mean"``/``"sum"`` ``grad_output`` is a scalar.
Gradients flow to the input (and, for :func:`linear_cross_entropy`, to
``hidden``, ``weight`` and ``bias``) only: a target or a weight tensor that
requires grad is refused rather than silently left without a gradient.
Second derivatives are not available (the backward is not differentiable).

PyTorch puts the class axis second, (N, C, d1, ...): ``axis=1`` is the default
here, where crossent's NumPy functions default to ``axis=-1``.

Examples
--------
>>> import torch, crossent.torch
>>> logits = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64, requires_grad=True)
>>> loss = crossent.torch.cross_entropy(logits, torch.tensor([1]))
>>> round(loss.item(), 4)
0.4644
>>> loss.backward()
>>> logits.grad.numpy().round(4)
array([[ 0.2312, -0.3715,  0.1402]])
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    import torch
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "crossent.torch needs PyTorch (pip install torch, or the 'oracle' extra of crossent)"
    ) from error

from torch.autograd.function import once_differentiable

import crossent
from crossent._typing import Reduction
from crossent.losses import Loss, get_loss

__all__ = [
    "cross_entropy",
    "linear_cross_entropy",
    "loss",
    "CrossEntropyLoss",
    "LinearCrossEntropyLoss",
]

_FLOAT_DTYPES = (torch.float32, torch.float64)


# ----------------------------------------------------------------------------- tensors <-> arrays


def _check_device(tensor: torch.Tensor, name: str) -> None:
    if tensor.device.type != "cpu":
        raise ValueError(
            f"{name} must be a CPU tensor (crossent computes with NumPy on the CPU), got a tensor on "
            f"device {str(tensor.device)!r}; move it with {name}.cpu()"
        )
    if tensor.layout != torch.strided:
        raise ValueError(f"{name} must be a dense (strided) tensor, got layout {tensor.layout}")


def _check_float(tensor: torch.Tensor, name: str) -> None:
    if tensor.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype torch.float32 or torch.float64, got {tensor.dtype}")


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's data as a NumPy array, sharing its memory unless it is not contiguous."""
    tensor = tensor.detach().resolve_conj().resolve_neg()
    if not tensor.is_contiguous():
        tensor = tensor.contiguous()
    return tensor.numpy()


def _check_input(tensor: object, name: str) -> None:
    """A differentiable input must be a float32/float64 CPU tensor."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    _check_device(tensor, name)
    _check_float(tensor, name)


def _constant_array(value: Any, name: str) -> Any:
    """A non-differentiable argument (target, weights): a CPU tensor becomes an array; anything else passes."""
    if not isinstance(value, torch.Tensor):
        return value
    _check_device(value, name)
    if value.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            f"{name} requires grad, but crossent.torch computes gradients with respect to the input "
            f"only; pass {name}.detach()"
        )
    if value.dtype == torch.bfloat16 or value.dtype == torch.float16:
        value = value.float()  # NumPy has no bfloat16; crossent computes float16 in float32 anyway
    return _as_array(value)


def _tensor(array: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    """A NumPy result as a tensor of ``dtype`` (zero-copy for writeable arrays of that dtype)."""
    array = np.asarray(array)
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, order="C")  # torch.from_numpy warns on read-only memory
    return torch.from_numpy(array).to(dtype)


def _scale_gradient(gradient: torch.Tensor, grad_output: torch.Tensor, class_axis: int | None) -> torch.Tensor:
    """``grad_output`` times the saved gradient of the sum of the losses (see the module's docstring)."""
    if grad_output.dim() == 0 or grad_output.shape == gradient.shape:
        return gradient * grad_output
    # one loss per row: broadcast over the class axis
    return gradient * grad_output.unsqueeze(gradient.dim() - 1 if class_axis is None else class_axis)


class _RowLossFunction(torch.autograd.Function):
    """``value_and_grad(array)`` (or ``value(array)``) of crossent as an autograd function of ``input``."""

    @staticmethod
    def forward(ctx, input, value_and_grad, value_only, class_axis, compute_grad):
        array = _as_array(input)
        if compute_grad:
            value, gradient = value_and_grad(array)
            ctx.gradient = _tensor(gradient, input.dtype)
        else:
            value = value_only(array)
            ctx.gradient = None
        ctx.class_axis = class_axis
        return _tensor(value, input.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        if ctx.gradient is None:
            raise RuntimeError(
                "no gradient was computed in the forward: it ran with gradients disabled or with an "
                "input that did not require grad"
            )
        return _scale_gradient(ctx.gradient, grad_output, ctx.class_axis), None, None, None, None


def _apply_row_loss(
    input: torch.Tensor, value_and_grad: Callable[[np.ndarray], tuple[Any, Any]],
    value_only: Callable[[np.ndarray], Any], class_axis: int | None,
) -> torch.Tensor:
    # the caller has checked ``input`` (_check_input) before autograd records anything
    compute_grad = bool(torch.is_grad_enabled() and input.requires_grad)
    return _RowLossFunction.apply(input, value_and_grad, value_only, class_axis, compute_grad)


def _normal_axis(axis: object, ndim: int) -> Any:
    """``axis`` as a non-negative index when it is a valid integer; otherwise as given, for crossent to reject."""
    if isinstance(axis, int) and not isinstance(axis, bool) and -ndim <= axis < ndim:
        return axis % ndim
    return axis


# ----------------------------------------------------------------------------- softmax cross-entropy


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor | ArrayLike,
    *,
    weight: torch.Tensor | ArrayLike | None = None,
    sample_weight: torch.Tensor | ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: Reduction = "mean",
    axis: int = 1,
) -> torch.Tensor:
    r"""Softmax cross-entropy of CPU tensors with crossent's fused kernels; differentiable in ``input``.

    The value and gradient of :func:`crossent.softmax_cross_entropy` (see there
    for every option): for row :math:`n` with softmax :math:`p_n` and class label
    :math:`y_n`,

    .. math::

        L_n = -w_{n,y_n} s_n \log p_{n,y_n}, \qquad
        \frac{\partial L_n}{\partial z_n} = w_{n,y_n} s_n\, (p_n - \mathrm{onehot}(y_n)),

    and for probability targets :math:`t_n`,
    :math:`L_n = -s_n \sum_c w_{nc} t_{nc} \log p_{nc}`. ``"mean"`` divides by
    :math:`\sum_n w_{n,y_n} s_n` (by the number of rows for probabilities), as
    ``torch.nn.functional.cross_entropy`` does, except that a batch whose rows are
    all ignored gives 0 with a zero gradient instead of NaN.

    Beyond ``torch.nn.functional.cross_entropy``: ``weight`` may be an (N, C)
    matrix of per-sample-per-class weights (any shape that broadcasts to
    ``input``), ``sample_weight`` weighs rows, ``z_loss`` adds
    :math:`\lambda \ell_n^2`. ``ignore_index`` is ``None`` (nothing ignored) by
    default, not -100.

    Parameters
    ----------
    input : torch.Tensor, float32 or float64, on the CPU
        Logits, class axis ``axis``.
    target : torch.Tensor (or array)
        Integer class labels (``input``'s shape without the class axis) or
        probabilities of ``input``'s shape. Not differentiated.
    weight, sample_weight : torch.Tensor or array, optional
        Not differentiated.
    ignore_index, label_smoothing, z_loss, reduction
        As in :func:`crossent.softmax_cross_entropy`.
    axis : int, default 1
        The class axis: PyTorch's layout (N, C, d1, ...).

    Returns
    -------
    torch.Tensor of ``input``'s dtype: a scalar, or the row shape for ``"none"``.

    Shapes
    ------
    input (N, C) with target (N,) or (N, C); input (N, C, d1, ...) with target
    (N, d1, ...) or (N, C, d1, ...); output () or, for ``"none"``, target's
    shape without the class axis.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> logits = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
    >>> labels = torch.tensor([[0, 1, 2, 0, 1]] * 4)
    >>> loss = crossent.torch.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> reference = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    >>> bool(torch.isclose(loss, reference))
    True
    """
    _check_input(input, "input")
    options = dict(
        weight=_constant_array(weight, "weight"),
        sample_weight=_constant_array(sample_weight, "sample_weight"),
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        reduction=reduction,
        axis=axis,
    )
    target_array = _constant_array(target, "target")

    # looked up at call time: the fused kernels behind the package's public functions
    def value_and_grad(array):
        return crossent.softmax_cross_entropy_value_and_grad(array, target_array, **options)

    def value_only(array):
        return crossent.softmax_cross_entropy(array, target_array, **options)

    return _apply_row_loss(input, value_and_grad, value_only, _normal_axis(axis, input.dim()))


# ----------------------------------------------------------------------------- any loss by name


def loss(name: str | Loss, **options: Any) -> Callable[..., torch.Tensor]:
    r"""A loss of crossent, by name (:func:`crossent.losses.get_loss`), as a function of CPU tensors.

    Returns ``function(input, target, **batch_arguments)`` (``sample_weight``,
    ``mask``, as the loss takes them) that computes the loss's value and its
    gradient with respect to ``input`` in one pass and gives a differentiable
    tensor: the losses PyTorch lacks (``"focal"``, ``"generalized_cross_entropy"``,
    ``"symmetric_cross_entropy"``, ``"poly1"``, ``"sim_loss"``,
    ``"cauchy_schwarz"``, ...) for a PyTorch model. Each loss's value and gradient
    are documented with its NumPy function (e.g. :func:`crossent.focal_loss`).

    For a name, losses with a class axis get ``axis=1`` (PyTorch's (N, C, d1, ...))
    unless ``axis`` is among ``options``; a Loss object is used as it is
    configured. Tensor options (``weight``, ``alpha``, ``similarity``, ...) are
    turned into arrays once, here.

    Shapes
    ------
    As the named loss, with the class axis at ``axis``; the output is a scalar or,
    for ``reduction="none"``, the per-row (or, for element-wise losses,
    per-element) losses.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> focal = crossent.torch.loss("focal", gamma=2.0)
    >>> logits = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64, requires_grad=True)
    >>> value = focal(logits, torch.tensor([0]))
    >>> value.backward()
    >>> p = torch.softmax(logits.detach(), 1)[0, 0]
    >>> bool(torch.isclose(value, -(1 - p) ** 2 * torch.log(p)))
    True
    """
    if isinstance(name, Loss):
        loss_object = get_loss(name, **options)
    else:
        options = {key: _constant_array(value, key) for key, value in options.items()}
        parameters = _loss_parameters(name)
        if parameters is not None and "axis" in parameters and "axis" not in options:
            options["axis"] = 1
        loss_object = get_loss(name, **options)
    signature = inspect.signature(type(loss_object).function).parameters
    has_class_axis = "axis" in signature
    axis = loss_object.options.get("axis", signature["axis"].default) if has_class_axis else None
    label = name if isinstance(name, str) else type(loss_object).__name__

    def function(input: torch.Tensor, target: torch.Tensor | ArrayLike, **batch_arguments: Any) -> torch.Tensor:
        _check_input(input, "input")
        target_array = _constant_array(target, "target")
        batch = {key: _constant_array(value, key) for key, value in batch_arguments.items()}

        def value_and_grad(array):
            return loss_object.value_and_grad(array, target_array, **batch)

        def value_only(array):
            return loss_object(array, target_array, **batch)

        class_axis = _normal_axis(axis, input.dim()) if has_class_axis else None
        return _apply_row_loss(input, value_and_grad, value_only, class_axis)

    function.__name__ = function.__qualname__ = f"{label}_loss" if not label.endswith("loss") else label
    function.__doc__ = f"crossent's {label!r} loss of CPU tensors, differentiable in ``input``."
    function.loss = loss_object  # type: ignore[attr-defined]  # the configured Loss, for inspection
    return function


def _loss_parameters(name: str | Loss) -> Mapping[str, inspect.Parameter] | None:
    from crossent.losses import LOSSES

    cls = LOSSES.get(name) if isinstance(name, str) else None
    return None if cls is None else inspect.signature(cls.function).parameters


# ----------------------------------------------------------------------------- linear + cross-entropy


class _LinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, target_array, options, compute_grad):
        hidden_array, weight_array = _as_array(hidden), _as_array(weight)
        bias_array = None if bias is None else _as_array(bias)
        reduction = options["reduction"]
        ctx.options, ctx.target_array = options, target_array
        ctx.gradients = None
        if compute_grad and reduction != "none":
            value, grad_hidden, grad_weight, grad_bias = crossent.linear_cross_entropy(
                hidden_array, weight_array, target_array, bias=bias_array, **options, return_grad=True
            )
            dtype = hidden.dtype
            ctx.gradients = (
                _tensor(grad_hidden, dtype),
                _tensor(grad_weight, dtype),
                None if grad_bias is None else _tensor(grad_bias, dtype),
            )
        else:
            value = crossent.linear_cross_entropy(
                hidden_array, weight_array, target_array, bias=bias_array, **options
            )
            if compute_grad:  # "none": recomputed in backward with grad_output's per-row factors
                ctx.save_for_backward(hidden, weight, bias)
        ctx.computed = compute_grad
        return _tensor(value, hidden.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        if not ctx.computed:
            raise RuntimeError(
                "no gradient was computed in the forward: it ran with gradients disabled or with "
                "inputs that did not require grad"
            )
        if ctx.gradients is not None:
            grads = [None if g is None else g * grad_output for g in ctx.gradients]
        else:
            hidden, weight, bias = ctx.saved_tensors
            grads = _weighted_row_gradients(hidden, weight, bias, ctx.target_array, ctx.options, grad_output)
        grads = [g if needed else None for g, needed in zip(grads, ctx.needs_input_grad[:3])]
        return (*grads, None, None, None)


def _weighted_row_gradients(hidden, weight, bias, target_array, options, grad_output):
    r"""Gradients of :math:`\sum_n g_n L_n` for per-row losses :math:`L_n` (``reduction="none"``).

    A weighted sum of rows cannot be handed to :func:`crossent.linear_cross_entropy`,
    so this goes through the rows in blocks of its row count (``chunk_size``, or
    about ``DEFAULT_BLOCK_BYTES`` of logits) with the whole vocabulary in each:
    :math:`Z_b = \mathrm{cap}(H_b W^\top + b)`, :math:`G_b = \mathrm{diag}(g_b)\,
    \partial \sum L / \partial Z_b` (softmax cross-entropy's gradient, in place), through the softcap,
    then :math:`\partial H_b = G_b W`, :math:`\partial W \mathrel{+}= G_b^\top H_b`,
    :math:`\partial b \mathrel{+}= \sum_n G_{b,n}`.
    """
    hidden_array, weight_array = _as_array(hidden), _as_array(weight)
    bias_array = None if bias is None else _as_array(bias)
    factors = _as_array(grad_output.to(hidden.dtype))
    n_rows = hidden_array.shape[0]
    n_classes = weight_array.shape[0]
    chunk_size = options["chunk_size"]
    if chunk_size is None:
        block_bytes = importlib.import_module("crossent.losses.linear_cross_entropy").DEFAULT_BLOCK_BYTES
        rows_per_block = max(1, block_bytes // (n_classes * hidden_array.itemsize))
    elif isinstance(chunk_size, (tuple, list)):
        rows_per_block = int(chunk_size[0])
    else:
        rows_per_block = int(chunk_size)
    cap = options["softcap"]
    grad_hidden = np.empty_like(hidden_array)
    grad_weight = np.zeros_like(weight_array)
    grad_bias = None if bias_array is None else np.zeros_like(bias_array)
    for start in range(0, n_rows, rows_per_block):
        rows = slice(start, min(start + rows_per_block, n_rows))
        logits = hidden_array[rows] @ weight_array.T
        if bias_array is not None:
            logits += bias_array
        if cap is not None:
            tanh_values = np.tanh(logits / cap)  # the library's cap * tanh(z / cap)
            logits = cap * tanh_values
        _, block_grad = crossent.softmax_cross_entropy_value_and_grad(
            logits, np.asarray(target_array)[rows], weight=options["weight_classes"],
            ignore_index=options["ignore_index"], label_smoothing=options["label_smoothing"],
            z_loss=options["z_loss"], reduction="none", out=logits,
        )
        block_grad *= factors[rows, None]
        if cap is not None:
            block_grad *= 1 - np.square(tanh_values)
        grad_hidden[rows] = block_grad @ weight_array
        grad_weight += block_grad.T @ hidden_array[rows]
        if grad_bias is not None:
            grad_bias += block_grad.sum(axis=0)
    dtype = hidden.dtype
    return [_tensor(grad_hidden, dtype), _tensor(grad_weight, dtype),
            None if grad_bias is None else _tensor(grad_bias, dtype)]


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor | ArrayLike,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    weight_classes: torch.Tensor | ArrayLike | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    r"""Cross-entropy of a linear layer's output without the N x V logits; differentiable in hidden, weight, bias.

    The value of :func:`crossent.linear_cross_entropy` (see there for the math and
    every option),

    .. math::

        Z = H W^\top + b,\quad L = \mathrm{CE}(\phi(Z), y),\qquad
        \frac{\partial L}{\partial H} = G W,\quad
        \frac{\partial L}{\partial W} = G^\top H,\quad
        \frac{\partial L}{\partial b} = \textstyle\sum_n G_n,

    with :math:`G = \partial L / \partial Z`, computed block by block in the
    forward pass for ``"mean"`` and ``"sum"`` (the backward only scales the three
    saved gradients). For ``"none"`` the forward computes the losses only and the
    backward computes the gradients of :math:`\sum_n g_n L_n` for the incoming
    ``grad_output`` :math:`g`, in blocks of rows holding the whole vocabulary
    (``chunk_size`` rows, or its first element for a pair).

    Parameters
    ----------
    hidden : torch.Tensor (N, h), float32 or float64, on the CPU
    weight : torch.Tensor (V, h)
        ``nn.Linear(h, V).weight``; same dtype.
    target : integer torch.Tensor (N,)
        Not differentiated.
    bias : torch.Tensor (V,), optional
    ignore_index, label_smoothing, weight_classes, z_loss, softcap, reduction, chunk_size
        As in :func:`crossent.linear_cross_entropy`.

    Returns
    -------
    torch.Tensor of ``hidden``'s dtype: a scalar, or (N,) for ``"none"``.

    Shapes
    ------
    hidden (N, h), weight (V, h), target (N,), bias (V,); output () or (N,).

    Examples
    --------
    >>> import torch, crossent.torch
    >>> layer = torch.nn.Linear(4, 10, dtype=torch.float64)
    >>> hidden = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    >>> target = torch.tensor([0, 3, 9, 1, 1, 5])
    >>> loss = crossent.torch.linear_cross_entropy(hidden, layer.weight, target, bias=layer.bias, chunk_size=4)
    >>> loss.backward()
    >>> reference = torch.nn.functional.cross_entropy(layer(hidden), target)
    >>> bool(torch.isclose(loss, reference)), layer.weight.grad.shape
    (True, torch.Size([10, 4]))
    """
    _check_input(hidden, "hidden")
    _check_input(weight, "weight")
    if bias is not None:
        _check_input(bias, "bias")
    options = dict(
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        weight_classes=_constant_array(weight_classes, "weight_classes"),
        z_loss=z_loss,
        softcap=softcap,
        reduction=reduction,
        chunk_size=chunk_size,
    )
    target_array = _constant_array(target, "target")
    compute_grad = bool(
        torch.is_grad_enabled()
        and (hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))
    )
    return _LinearCrossEntropyFunction.apply(hidden, weight, bias, target_array, options, compute_grad)


# ----------------------------------------------------------------------------- modules


def _keyword_options(function: Callable[..., Any], exclude: tuple[str, ...] = ()) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in exclude
    ]


def _check_options(owner: str, options: dict, allowed: list[str]) -> None:
    for name in options:
        if name not in allowed:
            raise TypeError(f"{owner} got an unexpected option {name!r}; options are {', '.join(allowed)}")


class _OptionsModule(torch.nn.Module):
    """Options fixed at construction; a tensor option is a buffer (moved by ``.to()``, kept in ``state_dict``)."""

    def __init__(self, function: Callable[..., Any], weight_option: str, **options: Any) -> None:
        super().__init__()
        _check_options(type(self).__name__, options, _keyword_options(function, exclude=("sample_weight",)))
        tensor = options.pop(weight_option, None)
        if isinstance(tensor, torch.Tensor):
            self.register_buffer(weight_option, tensor)
        else:
            options[weight_option] = tensor
            self.register_buffer(weight_option, None)
        self._weight_option = weight_option
        self.options = options

    def _all_options(self) -> dict:
        options = dict(self.options)
        buffer = getattr(self, self._weight_option)
        if buffer is not None:
            options[self._weight_option] = buffer
        return options

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value!r}" for key, value in self.options.items() if value is not None)


class CrossEntropyLoss(_OptionsModule):
    """:func:`cross_entropy` as an ``nn.Module``: ``CrossEntropyLoss(**options)(input, target, sample_weight=None)``.

    Options are those of :func:`cross_entropy` but ``sample_weight`` (given per
    call): ``weight``, ``ignore_index``, ``label_smoothing``, ``z_loss``,
    ``reduction``, ``axis`` (default 1). A tensor ``weight`` is a buffer.

    Shapes
    ------
    As :func:`cross_entropy`.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> criterion = crossent.torch.CrossEntropyLoss(label_smoothing=0.1)
    >>> logits = torch.zeros(2, 4, requires_grad=True)
    >>> round(criterion(logits, torch.tensor([0, 3])).item(), 4)  # log 4 whatever the smoothing
    1.3863
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(cross_entropy, "weight", **options)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor | ArrayLike,
        sample_weight: torch.Tensor | ArrayLike | None = None,
    ) -> torch.Tensor:
        return cross_entropy(input, target, sample_weight=sample_weight, **self._all_options())


class LinearCrossEntropyLoss(_OptionsModule):
    """:func:`linear_cross_entropy` as an ``nn.Module``: ``forward(hidden, weight, target, bias=None)``.

    Options: ``ignore_index``, ``label_smoothing``, ``weight_classes`` (a tensor
    is a buffer), ``z_loss``, ``softcap``, ``reduction``, ``chunk_size``.

    Shapes
    ------
    As :func:`linear_cross_entropy`.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> head = torch.nn.Linear(8, 100, bias=False)
    >>> criterion = crossent.torch.LinearCrossEntropyLoss(softcap=30.0, chunk_size=16)
    >>> loss = criterion(torch.randn(32, 8), head.weight, torch.randint(0, 100, (32,)))
    >>> loss.backward()
    >>> head.weight.grad.shape
    torch.Size([100, 8])
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(linear_cross_entropy, "weight_classes", **options)

    def forward(
        self, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor | ArrayLike,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return linear_cross_entropy(hidden, weight, target, bias=bias, **self._all_options())
