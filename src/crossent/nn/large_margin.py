r"""Large-margin softmax (L-Softmax; Liu, Wen, Yu and Yang, ICML 2016): output layer, loss and classifier.

The output layer has weights :math:`W` (C, D) and **no bias**, as in the paper
and in its reference Caffe layer (``LargeMarginInnerProduct``). For a row
:math:`x` with label :math:`y`, write :math:`z_j = w_j \cdot x`,
:math:`a = \lVert w_y \rVert`, :math:`b = \lVert x \rVert` and
:math:`\cos\theta = z_y / (a b)`. In training the logits are

.. math::

    f_j = z_j \quad (j \ne y), \qquad
    f_y = a\, b\, \psi(\theta), \qquad
    \psi(\theta) = (-1)^k \cos(m\theta) - 2k \quad
    \text{for } \theta \in \Big[\frac{k\pi}{m}, \frac{(k+1)\pi}{m}\Big],\ k = 0, \dots, m-1

with an integer margin :math:`m \ge 1`: with equal norms, class :math:`y`
wins only if :math:`\cos(m\theta_y) > \cos\theta_j`, a decision boundary
with an angular margin. :math:`\psi` falls monotonically from
:math:`\psi(0) = 1` to :math:`\psi(\pi) = 1 - 2m` and is continuously
differentiable (its second derivative jumps at :math:`\theta = j\pi/m`).
The loss is the usual softmax cross-entropy of these logits
(:func:`crossent.softmax_cross_entropy_value_and_grad`).

**No arccos.** As in the paper, :math:`\cos(m\theta)` is the Chebyshev
polynomial :math:`T_m(\cos\theta)` (the multiple-angle formula
:math:`\sum_n (-1)^n \binom{m}{2n} \cos^{m-2n}\theta\, (1 - \cos^2\theta)^n`),
evaluated by the recurrence :math:`T_{n+1} = 2cT_n - T_{n-1}`, and :math:`k`
is the number of thresholds :math:`\cos(j\pi/m)`, :math:`j = 1, \dots, m-1`,
above :math:`c = \cos\theta`. As a function of :math:`c`,
:math:`g(c) = (-1)^k T_m(c) - 2k`, with slope
:math:`s = g'(c) = (-1)^k m\, U_{m-1}(c)` and offset :math:`h = g(c) - c\, g'(c)`.
Because :math:`a b c = z_y`,

.. math::

    f_y = a b\, g(c) = s\, z_y + a b\, h

and differentiating, the terms in :math:`dc` cancel
(:math:`z_y\, ds + a b\, dh = g''(c)\,(z_y - a b c)\, dc = 0`), so

.. math::

    \frac{\partial f_y}{\partial x} = s\, w_y + h \frac{a}{b}\, x, \qquad
    \frac{\partial f_y}{\partial w_y} = s\, x + h \frac{b}{a}\, w_y .

At :math:`m = 1`, :math:`s = 1` and :math:`h = c - c = 0` exactly, so the
layer computes plain :math:`W x` -- and plain softmax cross-entropy -- bit for bit.

**Zero vectors.** When :math:`x = 0` or :math:`w_y = 0` the angle is
undefined. :math:`f_y = a b \psi` tends to 0, but for :math:`m \ge 2` it is
not differentiable there (positively homogeneous of degree 1, not linear).
Such rows take the plain logit and its gradient (:math:`s = 1`, :math:`h = 0`:
:math:`f_y = z_y = 0`, :math:`\partial f_y / \partial x = w_y`,
:math:`\partial f_y / \partial w_y = x`), so an output layer started at zero
takes a plain softmax step first. (The reference layer adds :math:`10^{-9}` to
:math:`a b` instead, which gives :math:`\cos\theta = 0` there.)

**Annealing.** Training uses :math:`\tilde f_y = (\beta z_y + f_y)/(1 + \beta)
= z_y + (f_y - z_y)/(1 + \beta)` (the second form keeps :math:`m = 1` and
:math:`\beta = \infty` exact), with

.. math::

    \beta_t = \max\big(\beta_{\min},\ \beta_0 (1 + \gamma t)^{-p}\big)

at training step :math:`t = 1, 2, \dots` -- the schedule of the reference
Caffe layer (``lambda = max(lambda_min, base * (1 + gamma * iteration)^(-power))``,
its counter advanced before each training forward). Its README gives
``base: 1000, gamma: 0.000025, power: 35, lambda_min: 0`` as the example; with
those, :math:`\beta` reaches 1 only after about 8,700 steps, so size
:math:`\gamma` to the run (``beta_gamma``) or switch annealing off with
``beta_start=0``. Large :math:`\beta` is plain softmax; :math:`\beta = 0` is
pure L-Softmax.

**Backward.** With :math:`G = \partial L / \partial \tilde f` (N, C),
:math:`\rho = 1/(1+\beta)` and :math:`t_n = \rho\, G_{n y_n}`:
:math:`\tilde G = G + t\,(s - 1)` on the target entries, then

.. math::

    \partial W = \tilde G^\top x + \operatorname{diag}\Big(\sum_{n: y_n = c} t_n h_n \frac{b_n}{a_c}\Big) W,
    \qquad
    \partial x = \tilde G W + \Big(t_n h_n \frac{a_{y_n}}{b_n}\Big)_n \odot x .

**Evaluation.** The margin needs the label, so it exists only in training:
``predict``/``predict_proba`` and every evaluation forward use the plain
scores :math:`W x` (the reference MNIST recipe likewise tests with the same
weights in its ``SINGLE``, i.e. :math:`m = 1`, mode).

Shapes
------
x (N, D), weight (C, D), labels (N,) integers in [0, C) -> logits (N, C).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._typing import FloatArray, LossValue, Seed
from .._validation import _describe, check_labels, check_reduction, check_scalar
from ..losses import Loss
from ..losses.cross_entropy import softmax_cross_entropy, softmax_cross_entropy_value_and_grad
from .layers import (
    INITIALISATIONS,
    Initialisation,
    Module,
    Sequential,
    _not_run,
    _upstream,
    as_generator,
    as_input,
    check_choice,
    check_dtype,
    check_size,
    initial_weight,
)
from .models import (
    ACTIVATIONS, DEFAULT_INIT, MLP, MODELS, Activation, Model, _seed_for_config, _SoftmaxOutput, hidden_layers,
)

__all__ = [
    "large_margin_psi",
    "large_margin_beta",
    "large_margin_logits",
    "large_margin_cross_entropy_value_and_grad",
    "LargeMarginLinear",
    "LargeMarginCrossEntropy",
    "LargeMarginSoftmaxClassifier",
]

#: the reference recipe's annealing (its README's example: base 1000, gamma 0.000025, power 35, lambda_min 0):
#: beta = 1 after about 8,700 steps, 0.1 after about 12,000; shorter runs should raise beta_gamma
DEFAULT_ANNEALING = {"beta_start": 1000.0, "beta_gamma": 2.5e-5, "beta_power": 35.0, "beta_min": 0.0}


# --------------------------------------------------------------------------- argument checks


def _check_margin(margin: object) -> int:
    return check_size(margin, "margin", minimum=1)


def _check_annealing(beta_start: float, beta_gamma: float, beta_power: float, beta_min: float) -> dict:
    return {
        "beta_start": check_scalar(beta_start, "beta_start", low=0.0),
        "beta_gamma": check_scalar(beta_gamma, "beta_gamma", low=0.0),
        "beta_power": check_scalar(beta_power, "beta_power", low=0.0),
        "beta_min": check_scalar(beta_min, "beta_min", low=0.0),
    }


def _check_step(step: object, name: str) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, got {_describe(step)}")
    if step < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {int(step)}")
    return int(step)


# --------------------------------------------------------------------------- the angle function


def _chebyshev(cosine: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """(T_m(c), T_m'(c)) by the three-term recurrences; T_m' = m U_{m-1}."""
    t_previous, t_current = np.ones_like(cosine), cosine  # T_0, T_1
    u_previous, u_current = np.zeros_like(cosine), np.ones_like(cosine)  # U_{-1}, U_0
    twice = 2.0 * cosine
    for _ in range(margin - 1):
        t_previous, t_current = t_current, twice * t_current - t_previous
        u_previous, u_current = u_current, twice * u_current - u_previous
    return t_current, margin * u_current


def _segment(cosine: np.ndarray, margin: int) -> np.ndarray:
    """k = #{j in 1..m-1 : c < cos(j pi / m)}: the piece [k pi/m, (k+1) pi/m] that holds theta."""
    # ascending thresholds cos((m-1) pi/m) < ... < cos(pi/m); at a threshold both pieces agree
    thresholds = np.cos(np.arange(margin - 1, 0, -1) * (math.pi / margin))
    return (margin - 1) - np.searchsorted(thresholds, cosine, side="right")


def _slope_and_offset(cosine: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """s = g'(c) and h = g(c) - c g'(c) for g(c) = (-1)^k T_m(c) - 2k (see the module docstring)."""
    chebyshev, derivative = _chebyshev(cosine, margin)
    segment = _segment(cosine, margin)
    sign = 1.0 - 2.0 * (segment % 2)
    slope = sign * derivative
    offset = sign * (chebyshev - cosine * derivative) - 2.0 * segment
    return slope, offset


def large_margin_psi(cos_theta: ArrayLike, margin: int) -> np.ndarray:
    r""":math:`\psi(\theta) = (-1)^k \cos(m\theta) - 2k` as a function of :math:`\cos\theta` (no arccos).

    Parameters
    ----------
    cos_theta : array_like
        Cosines, normally in [-1, 1] (values just outside, from rounding, follow the polynomial).
    margin : int >= 1

    Returns
    -------
    float64 array of ``cos_theta``'s shape, in :math:`[1 - 2m, 1]` on [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import large_margin_psi
    >>> theta = np.array([0.0, np.pi / 4, np.pi / 2, np.pi])
    >>> np.round(large_margin_psi(np.cos(theta), 2), 6)  # cos 2t, then -cos 2t - 2
    array([ 1.,  0., -1., -3.])
    """
    margin = _check_margin(margin)
    cosine = np.asarray(cos_theta, dtype=np.float64)
    chebyshev, _ = _chebyshev(cosine, margin)
    segment = _segment(cosine, margin)
    return (1.0 - 2.0 * (segment % 2)) * chebyshev - 2.0 * segment


def large_margin_beta(
    step: int, *, beta_start: float, beta_gamma: float, beta_power: float, beta_min: float = 0.0
) -> float:
    r"""The annealing weight :math:`\beta_t = \max(\beta_{\min}, \beta_0 (1 + \gamma t)^{-p})`.

    Parameters
    ----------
    step : int >= 0
        :math:`t`, the number of training steps taken (the layer uses
        :math:`t = 1` at its first training step).
    beta_start, beta_gamma, beta_power, beta_min : float >= 0
        :math:`\beta_0`, :math:`\gamma`, :math:`p`, :math:`\beta_{\min}`.

    Examples
    --------
    >>> from crossent.nn import large_margin_beta
    >>> large_margin_beta(0, beta_start=1000, beta_gamma=0.1, beta_power=2)
    1000.0
    >>> large_margin_beta(10, beta_start=1000, beta_gamma=0.1, beta_power=2)  # 1000 / 2**2
    250.0
    >>> large_margin_beta(10**6, beta_start=1000, beta_gamma=0.1, beta_power=2, beta_min=5)
    5.0
    """
    step = _check_step(step, "step")
    options = _check_annealing(beta_start, beta_gamma, beta_power, beta_min)
    return _beta(step, **options)


def _beta(step: int, *, beta_start: float, beta_gamma: float, beta_power: float, beta_min: float) -> float:
    return max(beta_min, beta_start * (1.0 + beta_gamma * step) ** -beta_power)


# --------------------------------------------------------------------------- forward and backward


class _MarginCache:
    """What the backward through the target logits needs (all (N,) float64 but ``labels``)."""

    __slots__ = ("labels", "scaled_slope", "scaled_offset_x", "scaled_offset_w", "margin_weight")

    def __init__(
        self, labels: NDArray[np.int64], margin_weight: float, slope: FloatArray, offset: FloatArray,
        weight_norm: FloatArray, input_norm: FloatArray,
    ) -> None:
        self.labels = labels
        self.margin_weight = margin_weight
        self.scaled_slope = slope - 1.0  # the target logit's extra slope along w_y (0 at m = 1)
        regular = (weight_norm > 0) & (input_norm > 0)
        # h a/b multiplies x in dL/dx, h b/a multiplies w_y in dL/dW; both 0 on zero rows (h = 0 there)
        self.scaled_offset_x = np.divide(offset * weight_norm, input_norm,
                                         out=np.zeros_like(offset), where=regular)
        self.scaled_offset_w = np.divide(offset * input_norm, weight_norm,
                                         out=np.zeros_like(offset), where=regular)


def _margin_logits(
    x: FloatArray, weight: FloatArray, logits: FloatArray, labels: NDArray[np.int64], margin: int, beta: float
) -> tuple[FloatArray, _MarginCache]:
    """Training logits (a new array) and the cache for :func:`_margin_backward`."""
    rows = np.arange(labels.size)
    target_logit = logits[rows, labels].astype(np.float64)
    # norms in float64: O(N D + C D), small next to the O(N C D) product that made the logits
    weight_norm = np.sqrt(np.einsum("cd,cd->c", weight, weight, dtype=np.float64))[labels]
    input_norm = np.sqrt(np.einsum("nd,nd->n", x, x, dtype=np.float64))
    norm_product = weight_norm * input_norm
    regular = norm_product > 0  # False for a zero vector (and for NaN, which then flows through z)
    cosine = np.divide(target_logit, norm_product, out=np.zeros_like(target_logit), where=regular)
    slope, offset = _slope_and_offset(cosine, margin)
    slope[~regular], offset[~regular] = 1.0, 0.0  # the plain logit on zero rows
    margin_logit = slope * target_logit + norm_product * np.where(regular, offset, 0.0)
    margin_weight = 1.0 / (1.0 + beta)  # 0 for beta = inf: plain softmax exactly
    training = logits.copy()
    training[rows, labels] = target_logit + margin_weight * (margin_logit - target_logit)
    return training, _MarginCache(labels, margin_weight, slope, offset, weight_norm, input_norm)


def _margin_backward(
    grad: FloatArray, x: FloatArray, weight: FloatArray, cache: _MarginCache, *, need_input_grad: bool,
    weight_grad: FloatArray | None = None,
) -> FloatArray | None:
    """dL/dx (or None) from dL/d(training logits); writes dL/dW into ``weight_grad`` when given."""
    labels = cache.labels
    rows = np.arange(labels.size)
    target_grad = cache.margin_weight * grad[rows, labels].astype(np.float64)
    adjusted = grad.copy()
    adjusted[rows, labels] += (target_grad * cache.scaled_slope).astype(grad.dtype)
    if weight_grad is not None:
        np.matmul(adjusted.T, x, out=weight_grad)
        per_class = np.bincount(labels, weights=target_grad * cache.scaled_offset_w, minlength=weight.shape[0])
        weight_grad += per_class.astype(weight.dtype)[:, None] * weight
    if not need_input_grad:
        return None
    input_grad = adjusted @ weight
    input_grad += (target_grad * cache.scaled_offset_x).astype(x.dtype)[:, None] * x
    return input_grad


def _as_pair(x: ArrayLike, weight: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, weight = np.asarray(x), np.asarray(weight)
    for name, array in (("x", x), ("weight", weight)):
        if array.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"weight must have shape (C, D), got shape {weight.shape}")
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape (N, {weight.shape[1]}) to match weight, got shape {x.shape}")
    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    return x.astype(dtype, copy=False), weight.astype(dtype, copy=False)


def large_margin_logits(
    x: ArrayLike, weight: ArrayLike, labels: ArrayLike, *, margin: int, beta: float = 0.0
) -> np.ndarray:
    r"""The training logits of L-Softmax: :math:`W x` with the target entries replaced by :math:`\tilde f_y`.

    See the module docstring for :math:`\tilde f_y = z_y + (f_y - z_y)/(1+\beta)`.

    Parameters
    ----------
    x : array_like, shape (N, D)
    weight : array_like, shape (C, D)
    labels : integer array_like, shape (N,), values in [0, C)
    margin : int >= 1
    beta : float >= 0 (``inf`` allowed: plain logits), default 0

    Returns
    -------
    (N, C) array of the common float dtype of ``x`` and ``weight`` (float32 at least).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import large_margin_logits
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> x = np.array([[1.0, 1.0]])  # 45 degrees from both rows of W
    >>> large_margin_logits(x, W, [0], margin=1)
    array([[1., 1.]])
    >>> np.round(large_margin_logits(x, W, [0], margin=2), 6)  # |w||x| cos(90 deg) = 0
    array([[0., 1.]])
    """
    x, weight = _as_pair(x, weight)
    margin = _check_margin(margin)
    beta = check_scalar(beta, "beta", low=0.0)
    labels = check_labels(labels, (x.shape[0],), weight.shape[0], None, name="labels")
    return _margin_logits(x, weight, x @ weight.T, labels, margin, beta)[0]


def large_margin_cross_entropy_value_and_grad(
    x: ArrayLike, weight: ArrayLike, labels: ArrayLike, *, margin: int, beta: float = 0.0,
    sample_weight: ArrayLike | None = None,
) -> tuple[LossValue, FloatArray, FloatArray]:
    r"""L-Softmax loss and its gradients: ``(value, dL/dx, dL/dweight)``.

    .. math:: L = \frac{1}{\sum_n s_n} \sum_n s_n \Big(\log \sum_j e^{\tilde f_{nj}} - \tilde f_{n y_n}\Big)

    (the mean of :func:`crossent.softmax_cross_entropy` over the training
    logits of :func:`large_margin_logits`), with the gradients of the module
    docstring. At ``margin=1`` or ``beta=inf`` this is softmax cross-entropy
    of :math:`x W^\top` exactly.

    Parameters
    ----------
    x, weight, labels, margin, beta
        As in :func:`large_margin_logits`.
    sample_weight : array_like (N,), optional
        As in :func:`crossent.softmax_cross_entropy`.

    Returns
    -------
    value : numpy scalar
    grad_x : array (N, D)
    grad_weight : array (C, D)

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import large_margin_cross_entropy_value_and_grad
    >>> x, W, y = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1])
    >>> value, grad_x, grad_W = large_margin_cross_entropy_value_and_grad(x, W, y, margin=2)
    >>> grad_x.shape, grad_W.shape, bool(value > 0)
    ((1, 2), (2, 2), True)
    """
    x, weight = _as_pair(x, weight)
    margin = _check_margin(margin)
    beta = check_scalar(beta, "beta", low=0.0)
    labels = check_labels(labels, (x.shape[0],), weight.shape[0], None, name="labels")
    training, cache = _margin_logits(x, weight, x @ weight.T, labels, margin, beta)
    batch = {} if sample_weight is None else {"sample_weight": sample_weight}
    value, grad = softmax_cross_entropy_value_and_grad(training, labels, **batch)
    weight_grad = np.empty_like(weight)
    input_grad = _margin_backward(grad, x, weight, cache, need_input_grad=True, weight_grad=weight_grad)
    assert input_grad is not None  # asked for with need_input_grad=True
    return value, input_grad, weight_grad


# --------------------------------------------------------------------------- the layer


class LargeMarginLinear(Module):
    r"""L-Softmax output layer: :math:`z = x W^\top` (no bias), with the margin put on by its loss.

    ``forward`` returns the plain scores :math:`x W^\top`: what evaluation and
    prediction use. In training, :class:`LargeMarginCrossEntropy` asks the
    layer for :meth:`margin_logits` of the last training forward's rows and
    labels; the backward that follows is then the backward of those training
    logits (the formulas of :mod:`crossent.nn.large_margin`), otherwise that
    of :math:`x W^\top` (:math:`\partial W = G^\top x`, :math:`\partial x = G W`).

    Every training forward advances the annealing counter
    :attr:`annealing_step` (:math:`t`) before computing, as the reference layer
    does; :attr:`beta` is :math:`\beta_t`.

    Parameters
    ----------
    in_features, out_features : int >= 1
    margin : int >= 1, default 2
    beta_start, beta_gamma, beta_power, beta_min : float >= 0
        The annealing schedule (defaults: ``DEFAULT_ANNEALING``).
    annealing_step : int >= 0, default 0
        Training steps already taken (to resume a schedule).
    init : {"he", "xavier", "zeros"}, default "he"
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Shapes
    ------
    x (N, in_features) -> (N, out_features). Parameter ``weight`` (out_features, in_features).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import LargeMarginLinear
    >>> layer = LargeMarginLinear(3, 4, margin=3, beta_start=0.0, dtype=np.float64)
    >>> x = np.random.default_rng(0).normal(size=(5, 3))
    >>> plain = layer.forward(x, training=True)
    >>> training = layer.margin_logits(np.array([0, 1, 2, 3, 0]))
    >>> bool(np.all(training <= plain + 1e-12))  # psi(theta) <= cos(theta): the target logit only drops
    True
    >>> layer.backward(np.ones((5, 4))).shape, layer.annealing_step
    ((5, 3), 1)
    """

    def __init__(
        self, in_features: int, out_features: int, *, margin: int = 2,
        beta_start: float = DEFAULT_ANNEALING["beta_start"], beta_gamma: float = DEFAULT_ANNEALING["beta_gamma"],
        beta_power: float = DEFAULT_ANNEALING["beta_power"], beta_min: float = DEFAULT_ANNEALING["beta_min"],
        annealing_step: int = 0, init: Initialisation = "he", seed: Seed = 0, dtype: DTypeLike = np.float32,
    ) -> None:
        self.in_features = check_size(in_features, "in_features")
        self.out_features = check_size(out_features, "out_features")
        self.margin = _check_margin(margin)
        self.annealing = _check_annealing(beta_start, beta_gamma, beta_power, beta_min)
        self.annealing_step = _check_step(annealing_step, "annealing_step")
        self.init = check_choice(init, "init", INITIALISATIONS)
        self.dtype = check_dtype(dtype)
        self.weight = initial_weight((self.out_features, self.in_features), self.init, as_generator(seed),
                                     self.dtype)
        self.weight_grad = np.zeros_like(self.weight)
        self._input: NDArray[Any] | None = None
        self._output: NDArray[Any] | None = None
        self._training = False
        # set by margin_logits: the backward is then through the training logits
        self._margin_cache: _MarginCache | None = None

    @property
    def beta(self) -> float:
        r""":math:`\beta_t` at the current :attr:`annealing_step` (the value the last training step used)."""
        return _beta(self.annealing_step, **self.annealing)

    @property
    def annealing_finished(self) -> bool:
        r"""Whether :math:`\beta` has reached its floor ``beta_min`` (after which the training objective stays put)."""
        return self.beta <= self.annealing["beta_min"]

    def forward(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        x = as_input(x, "x", self.dtype, self.in_features, self)
        if training:
            self.annealing_step += 1
        output = x @ self.weight.T
        self._input, self._output, self._training, self._margin_cache = x, output, bool(training), None
        return output

    def is_training_output(self, logits: object) -> bool:
        """Whether ``logits`` is the output of the last forward and that forward was a training one."""
        return self._training and logits is self._output

    def margin_logits(self, labels: ArrayLike, *, beta: float | None = None) -> np.ndarray:
        r"""The training logits of the last forward's rows for ``labels`` (a new array); arms the backward.

        Parameters
        ----------
        labels : integer array_like (N,), values in [0, out_features)
        beta : float >= 0, optional
            Default :attr:`beta`.
        """
        if self._input is None or self._output is None:  # both set by forward
            raise RuntimeError("LargeMarginLinear.margin_logits was called before forward: nothing is cached")
        labels = check_labels(labels, (self._input.shape[0],), self.out_features, None, name="labels")
        beta = self.beta if beta is None else check_scalar(beta, "beta", low=0.0)
        training, self._margin_cache = _margin_logits(self._input, self.weight, self._output, labels,
                                                      self.margin, beta)
        return training

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> FloatArray | None:
        x = self._input
        if x is None:
            raise _not_run("LargeMarginLinear")
        grad = _upstream(grad_output, (x.shape[0], self.out_features), self.dtype, "LargeMarginLinear")
        if self._margin_cache is not None:
            return _margin_backward(grad, x, self.weight, self._margin_cache, need_input_grad=need_input_grad,
                                    weight_grad=self.weight_grad if need_parameter_grads else None)
        if need_parameter_grads:
            np.matmul(grad.T, x, out=self.weight_grad)
        return grad @ self.weight if need_input_grad else None

    def parameters(self) -> list[np.ndarray]:
        return [self.weight]

    def gradients(self) -> list[np.ndarray]:
        return [self.weight_grad]

    def parameter_names(self) -> list[str]:
        return ["weight"]

    def __repr__(self) -> str:
        return (f"LargeMarginLinear(in_features={self.in_features}, out_features={self.out_features}, "
                f"margin={self.margin})")


# --------------------------------------------------------------------------- the loss


class LargeMarginCrossEntropy(Loss):
    r"""Softmax cross-entropy that puts the L-Softmax margin on the training logits of its layer.

    Called with the output of the layer's last **training** forward, it
    replaces the target logits by :meth:`LargeMarginLinear.margin_logits` and
    returns :func:`crossent.softmax_cross_entropy_value_and_grad` of the
    result; the gradient it returns is with respect to those training logits,
    which is what the layer's next backward expects. Called with any other
    array -- the output of an evaluation forward (the validation loss of
    :func:`crossent.fit`, :func:`crossent.evaluate`, ``input_gradient``), or a
    copy of a training output -- it is plain softmax cross-entropy of it.

    Targets are integer class labels. ``sample_weight`` is passed on per call.
    :meth:`config` describes the loss outside training (``CrossEntropyLoss``):
    the margin is part of the model's configuration, not of the loss's.

    Parameters
    ----------
    layer : LargeMarginLinear
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`crossent.softmax_cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import LargeMarginCrossEntropy, LargeMarginLinear
    >>> layer = LargeMarginLinear(2, 3, margin=2, beta_start=0.0, dtype=np.float64)
    >>> loss = LargeMarginCrossEntropy(layer)
    >>> x, y = np.array([[1.0, 0.5], [0.2, -1.0]]), np.array([0, 2])
    >>> training = float(loss(layer.forward(x, training=True), y))
    >>> evaluation = float(loss(layer.forward(x), y))
    >>> training > evaluation  # the margin makes the training problem harder
    True
    """

    function = softmax_cross_entropy
    call_arguments = ("sample_weight",)

    def __init__(self, layer: LargeMarginLinear, *, reduction: str = "mean") -> None:
        if not isinstance(layer, LargeMarginLinear):
            raise TypeError(f"layer must be a LargeMarginLinear, got {_describe(layer)}")
        reduction = check_reduction(reduction)
        self.layer = layer
        self.options = {} if reduction == "mean" else {"reduction": reduction}

    def _call(
        self, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any], compute_grad: bool
    ) -> tuple[Any, Any]:
        unknown = sorted(set(batch_arguments) - {"sample_weight"})
        if unknown:
            raise TypeError(f"LargeMarginCrossEntropy does not take {unknown[0]!r}")
        if self.layer.is_training_output(input):
            input = self.layer.margin_logits(target)
        if compute_grad:
            return softmax_cross_entropy_value_and_grad(input, target, **self.options, **batch_arguments)
        return softmax_cross_entropy(input, target, **self.options, **batch_arguments), None

    def config(self) -> dict[str, Any]:
        return {"class": "CrossEntropyLoss", "options": dict(self.options)}

    def __repr__(self) -> str:
        reduction = "" if not self.options else f", reduction={self.options['reduction']!r}"
        return f"LargeMarginCrossEntropy(margin={self.layer.margin}{reduction})"


# --------------------------------------------------------------------------- the classifier


class LargeMarginSoftmaxClassifier(_SoftmaxOutput, Model):
    r"""A classifier trained with the L-Softmax loss: optional hidden layers, then :class:`LargeMarginLinear`.

    With ``hidden_sizes=(H1, ...)`` the network is that of :class:`MLP`
    (``Linear, activation[, Dropout]`` per hidden layer, biases included)
    with the last ``Linear`` replaced by a bias-free :class:`LargeMarginLinear`;
    with ``hidden_sizes=()`` it is a linear classifier. Its
    :attr:`default_loss` is a :class:`LargeMarginCrossEntropy` bound to the
    output layer, so :func:`crossent.fit` and :meth:`loss_and_backward` train
    with the margin when no other loss is given. Predictions
    (:meth:`predict`, :meth:`predict_proba`) and every evaluation use the plain
    scores :math:`W h` (the margin needs the label).

    :meth:`config` records the output layer's :attr:`annealing_step`, so a
    saved and reloaded model continues its :math:`\beta` schedule.

    Parameters
    ----------
    n_features : int >= 1
    n_classes : int >= 2
    margin : int >= 1, default 2
        :math:`m`; 1 is softmax cross-entropy on bias-free logits.
    hidden_sizes : int or sequence of int >= 1, default ()
    activation : {"relu", "tanh", "sigmoid"}, default "relu"
    dropout : float in [0, 1), default 0
    init : {"he", "xavier", "zeros"} or None, default None
        None: He for ReLU, Xavier/Glorot for tanh and sigmoid; every layer.
    beta_start, beta_gamma, beta_power, beta_min : float >= 0
        Annealing :math:`\beta_t = \max(\beta_{\min}, \beta_0 (1 + \gamma t)^{-p})`;
        defaults ``DEFAULT_ANNEALING``, the reference recipe's 1000, 2.5e-5, 35
        and 0, with which :math:`\beta` reaches 1 after about 8,700 steps: for
        a shorter run raise ``beta_gamma`` (``(1000 ** (1 / 35) - 1) / (T / 2)``
        reaches 1 at step T/2). ``beta_start=0`` trains with the full margin
        from the first step, which can shrink the features of a network
        trained from scratch towards 0; ``beta_min`` >= 1 (half the plain
        logit kept) is the safer floor without batch normalisation
        (``crossent train --margin`` sizes gamma to the run and floors beta at 1).
    annealing_step : int >= 0, default 0
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Shapes
    ------
    X (N, n_features) -> logits (N, n_classes).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.nn import LargeMarginSoftmaxClassifier
    >>> model = LargeMarginSoftmaxClassifier(4, 3, margin=2, hidden_sizes=[8])
    >>> model.parameter_names()
    ['0.weight', '0.bias', '2.weight']
    >>> X, y = np.random.default_rng(0).normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2])
    >>> loss = float(model.loss_and_backward(X, y))
    >>> model.predict(X).shape, model.config()["annealing_step"]
    ((6,), 1)
    """

    def __init__(
        self, n_features: int, n_classes: int, *, margin: int = 2, hidden_sizes: int | Sequence[int] = (),
        activation: Activation = "relu", dropout: float = 0.0, init: Initialisation | None = None,
        beta_start: float = DEFAULT_ANNEALING["beta_start"], beta_gamma: float = DEFAULT_ANNEALING["beta_gamma"],
        beta_power: float = DEFAULT_ANNEALING["beta_power"], beta_min: float = DEFAULT_ANNEALING["beta_min"],
        annealing_step: int = 0, seed: Seed = 0, dtype: DTypeLike = np.float32,
    ) -> None:
        n_features = check_size(n_features, "n_features")
        n_classes = check_size(n_classes, "n_classes", minimum=2)
        margin = _check_margin(margin)
        hidden_sizes = MLP._check_hidden_sizes(hidden_sizes)
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
        layers.append(LargeMarginLinear(
            hidden_sizes[-1] if hidden_sizes else n_features, n_classes, margin=margin, beta_start=beta_start, beta_gamma=beta_gamma,
            beta_power=beta_power, beta_min=beta_min, annealing_step=annealing_step, init=layer_init,
            seed=rng, dtype=dtype,
        ))
        super().__init__(n_features, n_classes, Sequential(*layers), dtype)
        self._margin_loss = LargeMarginCrossEntropy(self.output_layer)

    @property
    def default_loss(self) -> LargeMarginCrossEntropy:  # type: ignore[override]  # read-only: bound to this model
        """The L-Softmax loss bound to this model's output layer."""
        return self._margin_loss

    @property
    def output_layer(self) -> LargeMarginLinear:
        return cast(LargeMarginLinear, self.network[-1])  # built as the last layer in __init__

    @property
    def n_classes(self) -> int:
        return self.n_outputs

    @property
    def margin(self) -> int:
        return self.output_layer.margin

    @property
    def beta(self) -> float:
        r""":math:`\beta_t` of the last training step (:math:`\beta_0` before the first)."""
        return self.output_layer.beta

    @property
    def annealing_finished(self) -> bool:
        r"""Whether :math:`\beta` has reached ``beta_min``: until then every step trains a harder objective
        than the last (the training loss can rise), and :func:`crossent.fit`'s ``early_stopping`` does not
        compare epochs."""
        return self.output_layer.annealing_finished

    def _arguments(self) -> dict[str, Any]:
        layer = self.output_layer
        return {
            "n_features": self.n_features, "n_classes": self.n_classes, "margin": layer.margin,
            "hidden_sizes": list(self.hidden_sizes), "activation": self.activation, "dropout": self.dropout,
            "init": self.init, **layer.annealing, "annealing_step": layer.annealing_step,
            "seed": _seed_for_config(self.seed), "dtype": self.dtype.name,
        }


# models.py cannot import this module (it builds on models.py), so the class registers itself here;
# importing crossent.nn imports this module, so model_from_config and crossent.load always know it
MODELS[LargeMarginSoftmaxClassifier.__name__] = LargeMarginSoftmaxClassifier
