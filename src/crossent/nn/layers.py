r"""Layers whose backward pass sits right beside the forward pass.

Every layer is a :class:`Module` with

* ``forward(x, training=False)`` -- computes the output and caches exactly what
  the backward pass needs (and nothing else);
* ``backward(grad_output)`` -- takes :math:`G = \partial L / \partial y` for the
  output :math:`y` of the *last* forward call, **overwrites** the layer's
  parameter gradients with :math:`\partial L / \partial \theta` and returns
  :math:`\partial L / \partial x`.

Gradients are overwritten, not accumulated: each backward describes the batch
of the forward before it, which is what a training step needs, and nothing has
to be zeroed between steps. (To accumulate over several batches, add the
gradients up yourself.) ``backward`` may be called more than once after one
forward; it reads only the cache.

``parameters()`` returns the live parameter arrays (an optimiser updates them
in place) and ``gradients()`` the live gradient buffers, in the same order and
with the same shapes; ``parameter_names()`` names them ("weight", "bias", or
"0.weight", "2.bias" inside a :class:`Sequential`, as in PyTorch's
``state_dict``).

Backward at a glance (batch of :math:`N` rows, :math:`G` the upstream gradient):

==============  ============================  ==============================================
layer           forward                       backward
==============  ============================  ==============================================
Linear          :math:`y = x W^\top + b`      :math:`\partial W = G^\top x`, :math:`\partial b = \sum_n G_n`,
                                              :math:`\partial x = G W`
ReLU            :math:`y = \max(x, 0)`        :math:`\partial x = G \odot [x > 0]` (mask cached)
Tanh            :math:`y = \tanh x`           :math:`\partial x = G \odot (1 - y^2)` (output cached)
Sigmoid         :math:`y = \sigma(x)`         :math:`\partial x = G \odot y (1 - y)` (output cached)
Dropout         :math:`y = x \odot m`         :math:`\partial x = G \odot m`, :math:`m \in \{0, 1/(1-p)\}`
==============  ============================  ==============================================

Buffers: parameter gradients are written in place into buffers allocated once
(``np.matmul(..., out=weight_grad)``). The element-wise layers also write
:math:`\partial L / \partial x` into a buffer they reuse on their next backward,
so copy what they return if you keep it past that call.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Iterator
from typing import Any, Literal, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._typing import FloatArray, Seed
from .._validation import _describe, as_float_array, check_scalar
from ..functional import sigmoid

__all__ = ["Module", "Linear", "ReLU", "Tanh", "Sigmoid", "Dropout", "Sequential"]

#: how a layer's weight is drawn (see :func:`initial_weight`)
Initialisation = Literal["he", "xavier", "zeros"]
INITIALISATIONS: tuple[Initialisation, ...] = ("he", "xavier", "zeros")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_Choice = TypeVar("_Choice", bound=str)


# --------------------------------------------------------------------------- argument checks


def check_size(value: object, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (a layer width, a number of classes)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def check_dtype(dtype: DTypeLike) -> np.dtype:
    """float32 or float64 (the parameter dtype of a layer or model)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {_describe(dtype)}")
    return resolved


def as_generator(seed: Seed, name: str = "seed") -> np.random.Generator:
    """``seed`` as a Generator: an integer >= 0 seeds a new one; a Generator is used (and advanced) as is."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= 0 or a numpy.random.Generator, got {_describe(seed)}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be an integer >= 0 or a numpy.random.Generator, got {int(seed)}")
    return np.random.default_rng(int(seed))


def check_choice(value: object, name: str, choices: Collection[_Choice]) -> _Choice:
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {expected}, got {_describe(value)}")
    return cast(_Choice, value)  # one of the choices, checked above


def as_input(x: ArrayLike, name: str, dtype: np.dtype, n_features: int, owner: object) -> np.ndarray:
    """``x`` as a (N, n_features) array of ``dtype`` (no copy when it already is one).

    ``owner`` names the layer or model in the error message: a string, or an
    object whose ``repr`` is taken only when there is an error to report.
    """
    if type(x) is np.ndarray and x.dtype == dtype:  # the training loop's case: nothing to convert
        if x.ndim == 2 and x.shape[1] == n_features:
            return x
    elif isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {_describe(x)}")
    array = np.asarray(x)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != n_features:
        owner = owner if isinstance(owner, str) else repr(owner)
        raise ValueError(
            f"{name} must have shape (N, {n_features}) for {owner}, got shape {array.shape}"
        )
    return array.astype(dtype, copy=False)


def _reusable(buffer: np.ndarray | None, like: np.ndarray) -> np.ndarray:
    """``buffer`` if it has ``like``'s shape and dtype, else a new empty array."""
    if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
        return np.empty_like(like)
    return buffer


def _upstream(grad_output: ArrayLike, expected_shape: tuple, dtype: DTypeLike, owner: str) -> np.ndarray:
    """The upstream gradient, checked against the shape of the last forward's output."""
    array = as_float_array(grad_output, "grad_output")
    if array.shape != tuple(expected_shape):
        raise ValueError(
            f"grad_output must have the shape of {owner}'s last output {tuple(expected_shape)}, "
            f"got {array.shape}"
        )
    return array.astype(dtype, copy=False)


def _not_run(owner: str) -> RuntimeError:
    return RuntimeError(f"{owner}.backward was called before {owner}.forward: nothing is cached")


# --------------------------------------------------------------------------- base class


class Module:
    """Base class: a differentiable function with its own backward pass.

    Subclasses implement :meth:`forward` and :meth:`backward`; layers with
    parameters also override :meth:`parameters`, :meth:`gradients` and
    :meth:`parameter_names`. ``module(x)`` is ``module.forward(x)``.
    :class:`Sequential` calls ``backward(grad, need_input_grad=...,
    need_parameter_grads=...)``, so a subclass's backward must accept both
    keywords (it may ignore them).
    """

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        """Output for input ``x``; ``training=True`` turns on training behaviour (dropout)."""
        raise NotImplementedError

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        """Given dL/d(output of the last forward): overwrite the parameter gradients, return dL/d(input).

        ``need_input_grad=False`` may skip the input gradient (returns None);
        ``need_parameter_grads=False`` leaves :meth:`gradients` untouched.
        """
        raise NotImplementedError

    def parameters(self) -> list[np.ndarray]:
        """The live parameter arrays (update them in place)."""
        return []

    def gradients(self) -> list[np.ndarray]:
        """The live gradient buffers: same order and shapes as :meth:`parameters`."""
        return []

    def parameter_names(self) -> list[str]:
        """One name per parameter, in :meth:`parameters` order."""
        return []

    @property
    def n_parameters(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(parameter.size for parameter in self.parameters()))

    def __call__(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        return self.forward(x, training=training)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --------------------------------------------------------------------------- Linear


def initial_weight(shape: tuple, init: str, rng: np.random.Generator, dtype: DTypeLike) -> np.ndarray:
    """Weight of ``shape`` = (fan_out, fan_in) drawn by ``init``.

    Drawn in float64 and then rounded, so a float32 and a float64 layer built
    from the same seed hold the same weights up to rounding.
    """
    fan_out, fan_in = shape
    if init == "he":
        weight = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif init == "xavier":
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weight = rng.uniform(-bound, bound, shape)
    else:
        weight = np.zeros(shape)
    return np.ascontiguousarray(weight, dtype=dtype)


class Linear(Module):
    r"""Affine layer :math:`y = x W^\top + b`, weight stored (out_features, in_features) as in PyTorch.

    Backward, for the upstream gradient :math:`G = \partial L / \partial y`:

    .. math::

        \frac{\partial L}{\partial W} = G^\top x, \qquad
        \frac{\partial L}{\partial b} = \sum_n G_n, \qquad
        \frac{\partial L}{\partial x} = G W

    The forward caches its input :math:`x` (a reference, not a copy: do not
    modify it in place before the backward).

    Parameters
    ----------
    in_features, out_features : int >= 1
    bias : bool, default True
    init : {"he", "xavier", "zeros"}, default "he"
        ``"he"``: normal with standard deviation :math:`\sqrt{2 / \text{fan\_in}}`
        (for ReLU); ``"xavier"`` (Glorot): uniform on :math:`[-a, a]`,
        :math:`a = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}` (for tanh and
        sigmoid); ``"zeros"``. The bias starts at zero.
    seed : int >= 0 or numpy.random.Generator, default 0
        Source of the initial weights; a Generator is advanced.
    dtype : float32 or float64, default float32
        Parameter dtype; inputs are converted to it.

    Shapes
    ------
    x (N, in_features) -> y (N, out_features).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import Linear
    >>> layer = Linear(3, 2, init="zeros", dtype=np.float64)
    >>> layer.bias[:] = [1.0, -1.0]
    >>> layer.forward(np.ones((4, 3))).shape
    (4, 2)
    >>> grad_x = layer.backward(np.ones((4, 2)))
    >>> layer.bias_grad, layer.weight_grad.shape, grad_x.shape
    (array([4., 4.]), (2, 3), (4, 3))
    """

    def __init__(
        self, in_features: int, out_features: int, *, bias: bool = True, init: Initialisation = "he",
        seed: Seed = 0, dtype: DTypeLike = np.float32,
    ) -> None:
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        self.init = check_choice(init, "init", INITIALISATIONS)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {_describe(bias)}")
        self.dtype = check_dtype(dtype)
        rng = as_generator(seed)
        self.weight = initial_weight((self.out_features, self.in_features), self.init, rng, self.dtype)
        self.weight_grad = np.zeros_like(self.weight)
        self.bias: NDArray[Any] | None = np.zeros(self.out_features, dtype=self.dtype) if bias else None
        self.bias_grad: NDArray[Any] | None = np.zeros_like(self.bias) if bias else None
        self._input: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        x = as_input(x, "x", self.dtype, self.in_features, self)
        output = x @ self.weight.T  # BLAS reads the transposed view in place: no copy of W
        if self.bias is not None:
            output += self.bias
        self._input = x
        return output

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        x = self._input
        if x is None:
            raise _not_run("Linear")
        grad = _upstream(grad_output, (x.shape[0], self.out_features), self.dtype, "Linear")
        if need_parameter_grads:
            np.matmul(grad.T, x, out=self.weight_grad)
            if self.bias is not None:
                np.add.reduce(grad, axis=0, out=self.bias_grad)  # np.sum without its Python wrapper
        # the first layer of a network needs no input gradient during training: skip its matmul
        return grad @ self.weight if need_input_grad else None

    def parameters(self) -> list[np.ndarray]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def gradients(self) -> list[np.ndarray]:
        return [self.weight_grad] if self.bias_grad is None else [self.weight_grad, self.bias_grad]

    def parameter_names(self) -> list[str]:
        return ["weight"] if self.bias is None else ["weight", "bias"]

    def __repr__(self) -> str:
        return (
            f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None})"
        )


# --------------------------------------------------------------------------- activations


class ReLU(Module):
    r"""Rectifier :math:`y = \max(x, 0)`; backward :math:`\partial x = G \odot [x > 0]`.

    Caches the boolean mask :math:`[x > 0]` (one byte per element). The
    derivative at exactly 0 is taken as 0, as in PyTorch. NaN inputs stay NaN.

    Shapes
    ------
    Any shape; the output has the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import ReLU
    >>> relu = ReLU()
    >>> relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    array([[0., 0., 2.]])
    >>> relu.backward(np.array([[5.0, 5.0, 5.0]]))
    array([[0., 0., 5.]])
    """

    def __init__(self) -> None:
        self._mask: NDArray[np.bool_] | None = None
        self._grad_input: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        x = as_float_array(x, "x")
        mask = x > 0
        self._mask = mask
        return np.maximum(x, x.dtype.type(0))  # NaN propagates, -x gives +0 (not x * mask's -0)

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        mask = self._mask
        if mask is None:
            raise _not_run("ReLU")
        grad = as_float_array(grad_output, "grad_output")
        if grad.shape != mask.shape:
            raise ValueError(
                f"grad_output must have the shape of ReLU's last output {mask.shape}, got {grad.shape}"
            )
        self._grad_input = _reusable(self._grad_input, grad)
        return np.multiply(grad, mask, out=self._grad_input)


class Tanh(Module):
    r"""Hyperbolic tangent; backward from the cached output: :math:`\partial x = G \odot (1 - y^2)`.

    Shapes
    ------
    Any shape; the output has the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import Tanh
    >>> tanh = Tanh()
    >>> np.round(tanh.forward(np.array([0.0, 1.0])), 4)
    array([0.    , 0.7616])
    >>> np.round(tanh.backward(np.array([2.0, 2.0])), 4)  # 2 * (1 - tanh(x)^2)
    array([2.    , 0.8399])
    """

    def __init__(self) -> None:
        self._output: NDArray[Any] | None = None
        self._grad_input: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        output = np.tanh(as_float_array(x, "x"))
        self._output = output
        return output

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        y = self._output
        if y is None:
            raise _not_run("Tanh")
        grad = _upstream(grad_output, y.shape, y.dtype, "Tanh")
        buffer = self._grad_input = _reusable(self._grad_input, y)
        np.multiply(y, y, out=buffer)
        np.subtract(1, buffer, out=buffer)
        return np.multiply(buffer, grad, out=buffer)


class Sigmoid(Module):
    r"""Logistic function :math:`y = \sigma(x)` (:func:`crossent.sigmoid`); backward :math:`G \odot y(1-y)`.

    The derivative comes from the cached output. For an output layer trained
    with binary cross-entropy, feed the logits to
    :func:`crossent.sigmoid_binary_cross_entropy` instead: its fused gradient
    :math:`\sigma(x) - t` does not vanish when :math:`y` saturates.

    Shapes
    ------
    Any shape; the output has the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import Sigmoid
    >>> layer = Sigmoid()
    >>> layer.forward(np.array([0.0]))
    array([0.5])
    >>> layer.backward(np.array([1.0]))
    array([0.25])
    """

    def __init__(self) -> None:
        self._output: NDArray[Any] | None = None
        self._grad_input: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        output = sigmoid(x)
        self._output = output
        return output

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        y = self._output
        if y is None:
            raise _not_run("Sigmoid")
        grad = _upstream(grad_output, y.shape, y.dtype, "Sigmoid")
        buffer = self._grad_input = _reusable(self._grad_input, y)
        np.subtract(1, y, out=buffer)
        np.multiply(buffer, y, out=buffer)
        return np.multiply(buffer, grad, out=buffer)


class Dropout(Module):
    r"""Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by :math:`1/(1-p)`.

    .. math::

        y = x \odot m, \qquad m_i = \frac{[u_i \ge p]}{1 - p}, \quad u_i \sim U[0, 1), \qquad
        \frac{\partial L}{\partial x} = G \odot m

    so :math:`\mathbb{E}[y] = x` and evaluation (``training=False``) is the
    identity, with nothing to rescale at test time. The scaled mask
    :math:`m` is cached for the backward; a new one is drawn at every training
    forward from the layer's generator.

    Parameters
    ----------
    p : float in [0, 1), default 0.5
        Probability of dropping an element.
    seed : int >= 0 or numpy.random.Generator, default 0
        Source of the masks; the same seed gives the same sequence of masks.

    Shapes
    ------
    Any shape; the output has the input's shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import Dropout
    >>> layer = Dropout(0.5, seed=0)
    >>> y = layer.forward(np.ones((2, 4)), training=True)
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.array_equal(layer.backward(np.ones((2, 4))), y))
    True
    >>> layer.forward(np.ones((2, 4))).min()  # evaluation: identity
    np.float64(1.0)
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = 0) -> None:
        self.p = check_scalar(p, "p", low=0.0, high=1.0, high_inclusive=False)
        self._rng = as_generator(seed)
        self._mask: NDArray[Any] | None = None  # the scaled mask of the last training forward; None: identity
        self._shape: tuple[int, ...] | None = None
        self._grad_input: NDArray[Any] | None = None

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        x = as_float_array(x, "x")
        self._shape = x.shape
        if not training or self.p == 0.0:
            self._mask = None
            return x
        keep = self._rng.random(x.shape, dtype=x.dtype) >= self.p
        mask = np.multiply(keep, x.dtype.type(1.0 / (1.0 - self.p)), dtype=x.dtype)
        self._mask = mask
        return x * mask

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        if self._shape is None:
            raise _not_run("Dropout")
        grad = as_float_array(grad_output, "grad_output")
        if grad.shape != self._shape:
            raise ValueError(
                f"grad_output must have the shape of Dropout's last output {self._shape}, got {grad.shape}"
            )
        if self._mask is None:
            return grad
        self._grad_input = _reusable(self._grad_input, grad)
        return np.multiply(grad, self._mask, out=self._grad_input)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


# --------------------------------------------------------------------------- Sequential


class Sequential(Module):
    """Layers applied in order; the backward runs them in reverse.

    Parameters are named ``"<index>.<name>"`` (``"0.weight"``, ``"2.bias"``),
    as in PyTorch's ``nn.Sequential``, so a PyTorch ``state_dict`` of the same
    architecture maps onto it name by name. A layer instance may appear only
    once (its cache holds one forward).

    With ``need_input_grad=False`` the backward stops at the first layer that
    has parameters and skips that layer's input gradient: a training step
    never needs dL/d(input).

    Shapes
    ------
    Whatever the layers take and give.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import Linear, ReLU, Sequential
    >>> network = Sequential(Linear(4, 8, seed=1), ReLU(), Linear(8, 3, seed=2))
    >>> network.parameter_names()
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> network.forward(np.ones((5, 4)), training=True).shape
    (5, 3)
    >>> network.backward(np.ones((5, 3)), need_input_grad=False) is None
    True
    >>> [gradient.shape for gradient in network.gradients()]
    [(8, 4), (8,), (3, 8), (3,)]
    """

    def __init__(self, *layers: Module) -> None:
        seen = set()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layer {index} of Sequential must be a Module, got {_describe(layer)}")
            if id(layer) in seen:
                raise ValueError(
                    f"layer {index} of Sequential ({layer!r}) appears twice; use a new instance, "
                    f"since each layer caches one forward pass"
                )
            seen.add(id(layer))
        self.layers = list(layers)

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        output = x
        for layer in self.layers:
            output = layer.forward(output, training=training)
        return cast("np.ndarray", output)  # without layers, x itself: the identity

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        grad: ArrayLike | None = grad_output
        last = 0
        if not need_input_grad:
            with_parameters = [i for i, layer in enumerate(self.layers) if layer.parameters()]
            if not with_parameters:
                return None
            last = with_parameters[0]
        for index in range(len(self.layers) - 1, last - 1, -1):
            assert grad is not None  # every layer after `last` was asked for its input gradient
            grad = self.layers[index].backward(
                grad,
                need_input_grad=need_input_grad or index > last,
                need_parameter_grads=need_parameter_grads,
            )
        return cast("FloatArray", grad) if need_input_grad else None  # without layers, grad_output itself

    def parameters(self) -> list[np.ndarray]:
        return [parameter for layer in self.layers for parameter in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [gradient for layer in self.layers for gradient in layer.gradients()]

    def parameter_names(self) -> list[str]:
        return [
            f"{index}.{name}" for index, layer in enumerate(self.layers) for name in layer.parameter_names()
        ]

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({index}): {layer!r}" for index, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
