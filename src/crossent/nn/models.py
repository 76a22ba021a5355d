r"""Classifiers built from :mod:`crossent.nn.layers`: every ``forward`` returns logits.

The output layer has no softmax or sigmoid of its own. The loss takes the
logits, and its fused gradient -- :math:`(\mathrm{softmax}(z) - t)/N` for
softmax cross-entropy, :math:`(\sigma(z) - t)/N` for sigmoid binary
cross-entropy -- *is* the gradient the last :class:`~crossent.nn.Linear`
receives. There is no separate softmax backward, so nothing multiplies the
small derivative of a saturated softmax or sigmoid (the learning slowdown of
squared error on a sigmoid output).

=======================  =========================  ===============================  =======================
model                    network                    ``predict_proba``                ``default_loss``
=======================  =========================  ===============================  =======================
``SoftmaxRegression``    Linear                     softmax rows (N, C)              ``"cross_entropy"``
``LogisticRegression``   Linear                     sigmoid: (N,) for one output,    ``"sigmoid_binary_``
                                                    (N, K) for multi-label           ``cross_entropy"``
``MLP``                  (Linear, act[, Dropout])   softmax rows (N, C)              ``"cross_entropy"``
                         x len(hidden), Linear
=======================  =========================  ===============================  =======================

Every model can describe itself with :meth:`Model.config` (JSON-serialisable:
class name and constructor arguments, no weights), and
:func:`model_from_config` builds an untrained twin whose parameters are then set
by name (``zip(model.parameter_names(), model.parameters())``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._typing import FloatArray, LossLike, Seed
from .._validation import _describe, check_scalar
from ..functional import sigmoid, softmax
from ..losses import Loss, get_loss
from .layers import (
    INITIALISATIONS,
    Dropout,
    Initialisation,
    Linear,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    as_generator,
    as_input,
    check_choice,
    check_dtype,
    check_size,
)

__all__ = ["Model", "SoftmaxRegression", "LogisticRegression", "MLP", "model_from_config", "MODELS"]

#: the activation between hidden layers
Activation = Literal["relu", "tanh", "sigmoid"]
ACTIVATIONS: dict[Activation, type[Module]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
#: the initialisation suited to each activation: He for ReLU, Xavier/Glorot for the saturating ones
DEFAULT_INIT: dict[Activation, Initialisation] = {"relu": "he", "tanh": "xavier", "sigmoid": "xavier"}


def hidden_layers(n_features: int, hidden_sizes: Sequence[int], activation: Activation, dropout: float,
                  init: Initialisation, rng: np.random.Generator, dtype: np.dtype) -> list[Module]:
    """(Linear, activation[, Dropout]) for each hidden width, drawing initial weights from ``rng`` in order."""
    widths = (n_features, *hidden_sizes)
    layers: list[Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers.append(Linear(fan_in, fan_out, init=init, seed=rng, dtype=dtype))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(Dropout(dropout, seed=rng))
    return layers


class _Owner:
    """Names a model in an input-shape error, formatted only if the error happens."""

    __slots__ = ("model",)

    def __init__(self, model: Model) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"{type(self.model).__name__}(n_features={self.model.n_features})"


def _seed_for_config(seed: Seed) -> int | None:
    """The seed as a JSON value: the integer, or None when a Generator was given (its state is not recorded)."""
    return None if isinstance(seed, np.random.Generator) else int(seed)


class Model(Module):
    """Base class of the classifiers: a :class:`~crossent.nn.Sequential` network that outputs logits.

    Subclasses build ``self.network`` and set ``n_features``, ``n_outputs``,
    ``dtype`` and ``default_loss``; they define :meth:`predict_proba`,
    :meth:`predict` and :meth:`_arguments` (the constructor arguments for
    :meth:`config`).
    """

    #: the loss used when none is given: a name for :func:`crossent.get_loss`, or a Loss object
    default_loss: str | Loss = "cross_entropy"

    def __init__(self, n_features: int, n_outputs: int, network: Sequential, dtype: np.dtype[Any]) -> None:
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.network = network
        self.dtype = dtype
        self._default_loss_object: Loss | None = None

    # ------------------------------------------------------------------ Module interface

    def forward(self, X: ArrayLike, training: bool = False) -> np.ndarray:
        """Logits of shape (N, n_outputs) for ``X`` of shape (N, n_features) (converted to ``dtype``)."""
        X = as_input(X, "X", self.dtype, self.n_features, _Owner(self))
        return self.network.forward(X, training=training)

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        """dL/dlogits (N, n_outputs) -> dL/dX; overwrites :meth:`gradients` (see :mod:`crossent.nn.layers`).

        A training step does not need dL/dX: pass ``need_input_grad=False`` to
        skip the first layer's N x n_features matrix product.
        """
        return self.network.backward(
            grad_output, need_input_grad=need_input_grad, need_parameter_grads=need_parameter_grads
        )

    def parameters(self) -> list[np.ndarray]:
        return self.network.parameters()

    def gradients(self) -> list[np.ndarray]:
        return self.network.gradients()

    def parameter_names(self) -> list[str]:
        return self.network.parameter_names()

    # ------------------------------------------------------------------ losses

    def _resolve_loss(self, loss: str | LossLike | None) -> LossLike:
        if loss is None:
            if self._default_loss_object is None:
                self._default_loss_object = get_loss(self.default_loss)
            return self._default_loss_object
        if isinstance(loss, str):
            return get_loss(loss)
        if callable(getattr(loss, "value_and_grad", None)):
            return loss
        raise TypeError(
            f"loss must be a loss name or an object with value_and_grad (e.g. "
            f"crossent.losses.CrossEntropyLoss()), got {_describe(loss)}"
        )

    def _loss_pair(self, logits: np.ndarray, y: ArrayLike) -> tuple[NDArray[Any], Any]:
        """(what the loss sees, target): the identity here; a one-output sigmoid model flattens both."""
        return logits, y

    def _loss_gradient(
        self, X: ArrayLike, y: ArrayLike, loss: str | LossLike | None, sample_weight: ArrayLike | None, training: bool
    ) -> tuple[Any, NDArray[Any]]:
        logits = self.forward(X, training=training)
        loss_input, target = self._loss_pair(logits, y)
        batch = {} if sample_weight is None else {"sample_weight": sample_weight}
        value, grad = self._resolve_loss(loss).value_and_grad(loss_input, target, **batch)
        return value, np.reshape(grad, logits.shape)

    def loss_and_backward(
        self, X: ArrayLike, y: ArrayLike, loss: str | LossLike | None = None, *, sample_weight: ArrayLike | None = None
    ) -> Any:
        r"""One training step's gradient: forward (training mode), loss, backward; returns the loss value.

        The loss's fused gradient with respect to the logits (for
        cross-entropy :math:`(\mathrm{softmax}(z) - t) / N`) goes straight into
        the output layer's backward. :meth:`gradients` is overwritten with
        :math:`\partial L / \partial \theta`; the input gradient is not computed.

        Parameters
        ----------
        X : array_like, shape (N, n_features)
        y : array_like
            The target the loss takes: class labels (N,) or probabilities
            (N, C) for softmax models; 0/1 labels (N,) or (N, 1) for a
            one-output :class:`LogisticRegression`, (N, K) for multi-label.
        loss : Loss, str or None
            A crossent Loss object (anything with ``value_and_grad(logits,
            target, **batch)``), a name for :func:`crossent.get_loss`, or None
            for :attr:`default_loss`. Its reduction decides the scale (for
            ``"none"`` the gradient is that of the sum).
        sample_weight : array_like, optional
            Passed to the loss (one weight per row); the loss must accept it.

        Returns
        -------
        The loss value as the loss returns it (a NumPy scalar of the model's dtype).
        """
        value, grad = self._loss_gradient(X, y, loss, sample_weight, training=True)
        self.network.backward(grad, need_input_grad=False)
        return value

    def input_gradient(
        self, X: ArrayLike, y: ArrayLike, loss: str | LossLike | None = None, *, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        r""":math:`\partial L / \partial X` (same shape as ``X``, model dtype), e.g. for adversarial examples.

        Runs in evaluation mode (no dropout) and leaves :meth:`gradients`
        untouched. Arguments as in :meth:`loss_and_backward`. The fast
        gradient sign method is ``X + epsilon * np.sign(model.input_gradient(X, y))``.
        """
        _, grad = self._loss_gradient(X, y, loss, sample_weight, training=False)
        grad_input = self.network.backward(grad, need_input_grad=True, need_parameter_grads=False)
        assert grad_input is not None  # asked for with need_input_grad=True
        return grad_input

    # ------------------------------------------------------------------ predictions

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: ArrayLike) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ configuration

    def _arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON-serialisable architecture: ``{"class": name, **constructor arguments}`` (no weights).

        ``seed`` is recorded as given, or as None when a Generator was given.
        """
        return {"class": type(self).__name__, **self._arguments()}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self._arguments().items())
        return f"{type(self).__name__}({arguments})"


class _SoftmaxOutput:
    """predict_proba / predict for models whose logits go through a softmax over classes."""

    if TYPE_CHECKING:  # provided by Model, which every user of this mixin also derives from

        def forward(self, X: ArrayLike, training: bool = False) -> np.ndarray: ...

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Softmax of the logits: (N, n_classes), rows summing to 1 (evaluation mode)."""
        return softmax(self.forward(X), axis=-1)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most probable class per row, int64 of shape (N,) (the argmax of the logits)."""
        return np.argmax(self.forward(X), axis=-1)


class SoftmaxRegression(_SoftmaxOutput, Model):
    r"""Multinomial logistic regression: logits :math:`z = x W^\top + b`, trained with softmax cross-entropy.

    The loss is convex in :math:`(W, b)`, so starting from zeros is fine (and
    the default).

    Parameters
    ----------
    n_features : int >= 1
    n_classes : int >= 2
    init : {"zeros", "he", "xavier"}, default "zeros"
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Shapes
    ------
    X (N, n_features) -> logits (N, n_classes). Parameters ``0.weight``
    (n_classes, n_features) and ``0.bias`` (n_classes,).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import SoftmaxRegression
    >>> model = SoftmaxRegression(4, 3)
    >>> X, y = np.ones((2, 4), dtype=np.float32), np.array([0, 2])
    >>> round(float(model.loss_and_backward(X, y)), 4)  # log 3 at zero weights
    1.0986
    >>> model.predict_proba(X).sum(axis=1)
    array([1., 1.], dtype=float32)
    """

    default_loss = "cross_entropy"

    def __init__(
        self, n_features: int, n_classes: int, *, init: Initialisation = "zeros", seed: Seed = 0,
        dtype: DTypeLike = np.float32,
    ) -> None:
        n_features = check_size(n_features, "n_features")
        n_classes = check_size(n_classes, "n_classes", minimum=2)
        init = check_choice(init, "init", INITIALISATIONS)
        dtype = check_dtype(dtype)
        self.init, self.seed = init, seed
        network = Sequential(Linear(n_features, n_classes, init=init, seed=as_generator(seed), dtype=dtype))
        super().__init__(n_features, n_classes, network, dtype)

    @property
    def n_classes(self) -> int:
        return self.n_outputs

    def _arguments(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features, "n_classes": self.n_classes, "init": self.init,
            "seed": _seed_for_config(self.seed), "dtype": self.dtype.name,
        }


class LogisticRegression(Model):
    r"""Logistic regression: logits :math:`z = x W^\top + b`, :math:`P(t = 1 \mid x) = \sigma(z)`.

    ``n_outputs=1`` is binary classification; ``n_outputs=K`` is multi-label
    classification with K independent sigmoids. Trained with
    :func:`crossent.sigmoid_binary_cross_entropy`, whose gradient is
    :math:`(\sigma(z) - t) / (N K)` (the mean over all elements).

    For ``n_outputs=1`` :meth:`forward` returns (N, 1) logits like every model,
    but :meth:`loss_and_backward` and :meth:`input_gradient` hand the loss
    logits of shape (N,) and take labels of shape (N,) or (N, 1);
    :meth:`predict_proba` returns the (N,) probabilities of class 1 and
    :meth:`predict` (N,) labels.

    Parameters
    ----------
    n_features : int >= 1
    n_outputs : int >= 1, default 1
    init : {"zeros", "he", "xavier"}, default "zeros"
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Shapes
    ------
    X (N, n_features) -> logits (N, n_outputs); probabilities and labels
    (N,) for one output, (N, n_outputs) otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import LogisticRegression
    >>> model = LogisticRegression(2)
    >>> X, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([1, 0])
    >>> round(float(model.loss_and_backward(X, y)), 4)  # log 2 at zero weights
    0.6931
    >>> model.predict_proba(X), model.predict(X)
    (array([0.5, 0.5], dtype=float32), array([1, 1]))
    """

    default_loss = "sigmoid_binary_cross_entropy"

    def __init__(
        self, n_features: int, n_outputs: int = 1, *, init: Initialisation = "zeros", seed: Seed = 0,
        dtype: DTypeLike = np.float32,
    ) -> None:
        n_features = check_size(n_features, "n_features")
        n_outputs = check_size(n_outputs, "n_outputs")
        init = check_choice(init, "init", INITIALISATIONS)
        dtype = check_dtype(dtype)
        self.init, self.seed = init, seed
        network = Sequential(Linear(n_features, n_outputs, init=init, seed=as_generator(seed), dtype=dtype))
        super().__init__(n_features, n_outputs, network, dtype)

    def _loss_pair(self, logits: np.ndarray, y: ArrayLike) -> tuple[NDArray[Any], Any]:
        if self.n_outputs != 1:
            return logits, y
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        return logits[:, 0], labels

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Sigmoid of the logits: (N,) probabilities of class 1 for one output, else (N, n_outputs)."""
        probabilities = sigmoid(self.forward(X))
        return probabilities[:, 0] if self.n_outputs == 1 else probabilities

    def predict(self, X: ArrayLike) -> np.ndarray:
        """``(predict_proba(X) >= 0.5)`` as int64 labels: (N,) or (N, n_outputs)."""
        return (self.predict_proba(X) >= 0.5).astype(np.int64)

    def _arguments(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features, "n_outputs": self.n_outputs, "init": self.init,
            "seed": _seed_for_config(self.seed), "dtype": self.dtype.name,
        }


class MLP(_SoftmaxOutput, Model):
    r"""Multilayer perceptron: (Linear, activation[, Dropout]) per hidden layer, then a Linear to logits.

    With ``hidden_sizes=(H1, H2)`` the network is
    ``Linear(D, H1), act, [Dropout], Linear(H1, H2), act, [Dropout], Linear(H2, C)``
    -- the layout of PyTorch's ``nn.Sequential``, so parameter names match its
    ``state_dict`` (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ... without dropout).
    Dropout layers exist only when ``dropout > 0`` and act only in training.

    Backward through layer :math:`l` with pre-activation :math:`a_l` and
    upstream :math:`\delta_l = \partial L / \partial a_l` (the output layer's
    :math:`\delta` is the loss's fused gradient):
    :math:`\partial W_l = \delta_l^\top h_{l-1}`, :math:`\partial b_l = \sum_n \delta_{l,n}`,
    :math:`\delta_{l-1} = (\delta_l W_l) \odot \phi'(a_{l-1})`.

    Parameters
    ----------
    n_features : int >= 1
    hidden_sizes : int or sequence of int >= 1
        Widths of the hidden layers (may be empty: softmax regression).
    n_classes : int >= 2
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
    dropout : float in [0, 1), default 0
        Drop probability after each hidden activation.
    init : {"he", "xavier", "zeros"} or None, default None
        None picks He for ReLU and Xavier/Glorot for tanh and sigmoid.
        Applies to every Linear layer; biases start at zero.
    seed : int >= 0 or numpy.random.Generator, default 0
        One generator, drawn from layer by layer, then by the dropout masks.
    dtype : float32 or float64, default float32

    Shapes
    ------
    X (N, n_features) -> logits (N, n_classes).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import MLP
    >>> model = MLP(4, [8], 3, seed=0)
    >>> model.parameter_names(), model.n_parameters
    (['0.weight', '0.bias', '2.weight', '2.bias'], 67)
    >>> X, y = np.random.default_rng(0).normal(size=(5, 4)), np.array([0, 1, 2, 1, 0])
    >>> loss = float(model.loss_and_backward(X, y))
    >>> model.predict(X).shape, model.predict_proba(X).shape
    ((5,), (5, 3))
    """

    default_loss = "cross_entropy"

    def __init__(
        self,
        n_features: int,
        hidden_sizes: int | Sequence[int],
        n_classes: int,
        *,
        activation: Activation = "relu",
        dropout: float = 0.0,
        init: Initialisation | None = None,
        seed: Seed = 0,
        dtype: DTypeLike = np.float32,
    ) -> None:
        n_features = check_size(n_features, "n_features")
        hidden_sizes = self._check_hidden_sizes(hidden_sizes)
        n_classes = check_size(n_classes, "n_classes", minimum=2)
        activation = check_choice(activation, "activation", tuple(ACTIVATIONS))
        dropout = check_scalar(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        if init is not None:
            init = check_choice(init, "init", INITIALISATIONS)
        dtype = check_dtype(dtype)
        rng = as_generator(seed)
        self.hidden_sizes, self.activation, self.dropout = hidden_sizes, activation, dropout
        self.init, self.seed = init, seed

        layer_init = DEFAULT_INIT[activation] if init is None else init
        layers = hidden_layers(n_features, hidden_sizes, activation, dropout, layer_init, rng, dtype)
        last_width = hidden_sizes[-1] if hidden_sizes else n_features
        layers.append(Linear(last_width, n_classes, init=layer_init, seed=rng, dtype=dtype))
        super().__init__(n_features, n_classes, Sequential(*layers), dtype)

    @staticmethod
    def _check_hidden_sizes(hidden_sizes: int | Sequence[int]) -> tuple[int, ...]:
        if isinstance(hidden_sizes, (str, bytes)) or hidden_sizes is None:
            raise TypeError(f"hidden_sizes must be an integer or a sequence of integers, got {_describe(hidden_sizes)}")
        values: Any = [hidden_sizes] if np.ndim(hidden_sizes) == 0 else hidden_sizes  # anything, until checked
        try:
            sizes = list(values)
        except TypeError:
            raise TypeError(
                f"hidden_sizes must be an integer or a sequence of integers, got {_describe(hidden_sizes)}"
            ) from None
        return tuple(check_size(size, f"hidden_sizes[{index}]") for index, size in enumerate(sizes))

    @property
    def n_classes(self) -> int:
        return self.n_outputs

    def _arguments(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features, "hidden_sizes": list(self.hidden_sizes),
            "n_classes": self.n_classes, "activation": self.activation, "dropout": self.dropout,
            "init": self.init, "seed": _seed_for_config(self.seed), "dtype": self.dtype.name,
        }


#: class name (as in ``config()["class"]``) -> model class
MODELS: dict[str, type[Model]] = {cls.__name__: cls for cls in (SoftmaxRegression, LogisticRegression, MLP)}


def model_from_config(config: Mapping[str, Any]) -> Model:
    """Build an untrained model of the architecture :meth:`Model.config` describes.

    Set the weights afterwards by name::

        twin = model_from_config(model.config())
        for name, parameter in zip(twin.parameter_names(), twin.parameters()):
            parameter[...] = weights[name]

    A ``seed`` of None (the original was seeded by a Generator) becomes 0; it
    only decides the initial weights and the dropout masks.

    Examples
    --------
    >>> from crossent.nn import MLP, model_from_config
    >>> config = MLP(784, [800], 10, dropout=0.2).config()
    >>> config["class"], config["hidden_sizes"], config["dropout"]
    ('MLP', [800], 0.2)
    >>> model_from_config(config).parameter_names()
    ['0.weight', '0.bias', '3.weight', '3.bias']
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict as returned by Model.config(), got {_describe(config)}")
    name = config.get("class")
    if name not in MODELS:
        raise ValueError(
            f"config['class'] must be one of {', '.join(repr(key) for key in MODELS)}, got {_describe(name)}"
        )
    cls = MODELS[name]
    arguments = {key: value for key, value in config.items() if key != "class"}
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(arguments) - accepted)
    if unknown:
        raise ValueError(
            f"config for {name} has unknown arguments {unknown}; {name} takes {sorted(accepted)}"
        )
    if arguments.get("seed", 0) is None:
        arguments["seed"] = 0
    return cls(**arguments)
