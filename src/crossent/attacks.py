r"""Adversarial examples from the input gradient of the loss: FGSM and PGD, and adversarial training.

An attack looks for an input :math:`x'` close to a correctly classified
:math:`x` that the model gets wrong, by *increasing* the loss
:math:`L(f(x'), y)` within a ball of radius :math:`\varepsilon` around
:math:`x`. Both attacks here use the gradient :math:`g = \nabla_x L`, which
every model computes with :meth:`crossent.nn.Model.input_gradient`: the loss's
fused gradient with respect to the logits (:math:`(\mathrm{softmax}(z) - t)/N`
for cross-entropy) sent back through the network to the input.

``fgsm`` -- the fast gradient sign method (Goodfellow et al., 2015), one step:

.. math::
    x' = \mathrm{clip}_{[lo, hi]}\bigl(x + \varepsilon\, d(g(x))\bigr),
    \qquad d(g) = \mathrm{sign}(g) \ (L^\infty), \quad d(g) = g / \lVert g \rVert_2 \ (L^2).

Each maximises the first-order change of the loss :math:`g \cdot \delta` over its
ball: :math:`\delta = \varepsilon\,\mathrm{sign}(g)` gives :math:`\varepsilon \lVert g \rVert_1`
(:math:`L^\infty`), :math:`\delta = \varepsilon\, g / \lVert g \rVert_2` gives
:math:`\varepsilon \lVert g \rVert_2` (:math:`L^2`, the fast gradient method).

``pgd`` -- projected gradient descent on the negative loss (Madry et al., 2018):
from a random point of the ball (or :math:`x` itself), ``steps`` steps of size
:math:`\alpha` (``step``), each followed by the projection :math:`\Pi` back onto
the ball and the valid range:

.. math::
    x^{0} = \Pi(x + \delta_0), \qquad x^{t+1} = \Pi\bigl(x^{t} + \alpha\, d(g(x^{t}))\bigr),

and the last iterate is returned (not the one with the highest loss).

Conventions
-----------
* **Balls are per row.** Every row :math:`x_i` of ``X`` gets its own ball
  :math:`\lVert x'_i - x_i \rVert \le \varepsilon` (over all its features).
* **Projection.** :math:`L^\infty`: each feature is clipped to
  :math:`[\max(lo, x - \varepsilon), \min(hi, x + \varepsilon)]`, the exact
  projection onto the intersection of the ball and the range. :math:`L^2`: the
  perturbation is rescaled, :math:`\delta \leftarrow \delta \min(1, \varepsilon / \lVert \delta \rVert_2)`,
  then clipped to ``clip``. Clipping moves every feature towards :math:`x`'s
  own value (which lies in the range), so it never leaves the ball; the result
  is in both sets, though not always the nearest such point (the usual PGD
  practice). Both hold up to one rounding of the model's dtype.
* **Step.** ``step=None`` is :math:`\alpha = 2.5\,\varepsilon / \text{steps}`:
  enough to cross the ball (:math:`2\varepsilon`) within the steps, with room
  for the projection to undo some of them.
* **Random start.** :math:`L^\infty`: :math:`\delta_0 \sim U[-\varepsilon, \varepsilon]`
  per feature (Madry et al.). :math:`L^2`: uniform in the ball's volume --
  a direction :math:`u = n / \lVert n \rVert_2` with :math:`n \sim \mathcal N(0, I_D)`
  and a radius :math:`\varepsilon\, U^{1/D}` with :math:`U \sim U[0, 1]` (for
  :math:`D` = 784 the radius is almost always above :math:`0.99\varepsilon`).
  Drawn in float64 from ``numpy.random.default_rng(seed)``: the normal
  (or uniform) array first, then the radii.
* **Zero gradients.** A feature whose gradient is exactly zero does not move
  under :math:`L^\infty` (:math:`\mathrm{sign}(0) = 0`, as in PyTorch), and a row
  whose whole gradient is zero (a softmax saturated in the model's dtype) does
  not move under :math:`L^2` (its direction is taken as zero, not 0/0).
* **The loss.** ``loss=None`` is the model's default loss (cross-entropy;
  binary cross-entropy for :class:`~crossent.nn.LogisticRegression`) with its
  mean reduction. The mean's :math:`1/N` and any positive scale of the loss
  change neither the sign nor the direction, so an attack on a batch is the
  same as row by row. The model runs in evaluation mode (no dropout).
* **Input space.** ``eps`` and ``clip`` are in the units of ``X`` as the model
  receives it. A model trained on normalised inputs :math:`x' = (x - o)/s`
  should be attacked in the raw space, where pixel ranges and budgets are
  defined: wrap it in :class:`NormalizedModel` (the input gradient becomes
  :math:`g' / s`). ``crossent attack`` does this with the normaliser saved in
  the model file.
* **dtype.** The attack runs in the model's dtype and returns an array of it.

Shapes
------
X (N, n_features) -> adversarial X of the same shape, the model's dtype;
y as the loss takes it (labels (N,) or probabilities (N, C)).

Examples
--------
>>> import numpy as np
>>> from crossent import attacks, nn
>>> model = nn.SoftmaxRegression(2, 2)
>>> model.parameters()[0][...] = [[1.0, 0.0], [0.0, 1.0]]  # logits z = x: class = the larger feature
>>> X, y = np.array([[0.75, 0.25]]), np.array([0])
>>> attacks.fgsm(model, X, y, eps=0.375)          # sign of dL/dx = (-1, +1)
array([[0.375, 0.625]], dtype=float32)
>>> attacks.pgd(model, X, y, eps=0.375, norm="2", random_start=False).round(4)  # 0.375 (-1, 1) / sqrt(2)
array([[0.4848, 0.5152]], dtype=float32)
>>> attacks.robust_accuracy(model, X, y, eps=0.375, attack="fgsm")
0.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import LossLike, Seed
from ._validation import _describe, as_float_array, check_finite_scalar

if TYPE_CHECKING:
    from .datasets import Normalizer
    from .nn import Model

__all__ = ["fgsm", "pgd", "robust_accuracy", "ATTACKS", "NormalizedModel", "AdversarialTraining"]

# --------------------------------------------------------------------------- argument checks


def _check_model(model) -> None:
    for method in ("forward", "input_gradient"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"model must be a crossent model (with forward and input_gradient), got {_describe(model)}"
            )


def _check_norm(norm) -> str:
    if isinstance(norm, str) and norm.lower() in ("inf", "linf", "l-inf"):
        return "inf"
    if isinstance(norm, str) and norm.lower() in ("2", "l2"):
        return "2"
    if isinstance(norm, numbers.Real) and not isinstance(norm, bool) and (norm == math.inf or norm == 2):
        return "inf" if norm == math.inf else "2"
    raise ValueError(f"norm must be 'inf' or '2', got {_describe(norm)}")


def _check_clip(clip):
    if clip is None:
        return None
    if isinstance(clip, (str, bytes)) or not hasattr(clip, "__len__") or len(clip) != 2:
        raise TypeError(f"clip must be None or a pair (low, high), got {_describe(clip)}")
    low = check_finite_scalar(clip[0], "clip[0]")
    high = check_finite_scalar(clip[1], "clip[1]")
    if not low < high:
        raise ValueError(f"clip must be a range (low, high) with low < high, got {_describe(clip)}")
    return (low, high)


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an integer, got {_describe(steps)}")
    if steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


def _check_seed(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, a non-negative integer or a numpy.random.Generator, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _first_outside(X: np.ndarray, low: float, high: float):
    bad = (X < low) | (X > high)
    if not bad.any():
        return None
    position = tuple(int(i) for i in np.argwhere(bad)[0])
    return position, X[position].item()


def _check_inputs(model, X, clip) -> np.ndarray:
    """``X`` as a new array of the model's dtype, checked finite and inside ``clip``."""
    X = as_float_array(X, "X")
    dtype = np.dtype(getattr(model, "dtype", X.dtype))
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X is empty: an attack needs at least one row")
    X = X.astype(dtype, copy=True)
    if not np.isfinite(X).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"X must be finite; found {X[row, column].item()!r} at row {row}, column {column}")
    if clip is not None:
        outside = _first_outside(X, *clip)
        if outside is not None:
            (row, column), value = outside
            raise ValueError(
                f"X must lie in the clip range [{clip[0]:g}, {clip[1]:g}] the attack keeps inputs in; found "
                f"{value!r} at row {row}, column {column} (pass clip=None for unbounded inputs, or the range "
                f"of X's units)"
            )
    return X


# --------------------------------------------------------------------------- the two attacks


def _ascent_direction(gradient: np.ndarray, norm: str, out: np.ndarray) -> np.ndarray:
    """d(g) into ``out`` (not ``gradient`` itself): sign(g) for L-inf, g / ||g||_2 per row for L2 (zero rows: 0)."""
    # np.sign in place (out=gradient) runs about ten times slower than into another array
    if norm == "inf":
        return np.sign(gradient, out=out)
    lengths = np.sqrt(np.einsum("ij,ij->i", gradient, gradient))[:, None]
    out[lengths[:, 0] == 0] = 0
    return np.divide(gradient, lengths, out=out, where=lengths > 0)


def _project(adversarial, X, eps, norm, clip, box) -> np.ndarray:
    """Back into the eps ball around X and the clip range, in place."""
    if norm == "inf":  # np.maximum then np.minimum: faster than np.clip with array bounds
        np.maximum(adversarial, box[0], out=adversarial)
        return np.minimum(adversarial, box[1], out=adversarial)
    perturbation = adversarial - X
    lengths = np.sqrt(np.einsum("ij,ij->i", perturbation, perturbation))[:, None]
    too_long = lengths[:, 0] > eps
    if too_long.any():
        perturbation[too_long] *= eps / lengths[too_long]
        np.add(X, perturbation, out=adversarial)
    if clip is not None:
        np.clip(adversarial, clip[0], clip[1], out=adversarial)
    return adversarial


def _linf_box(X, eps, clip):
    """Per feature [max(lo, x - eps), min(hi, x + eps)]: the L-inf ball and the range together."""
    lower, upper = X - X.dtype.type(eps), X + X.dtype.type(eps)
    if clip is not None:
        np.maximum(lower, clip[0], out=lower)
        np.minimum(upper, clip[1], out=upper)
    return lower, upper


def _random_start(rng: np.random.Generator, shape: tuple, eps: float, norm: str) -> np.ndarray:
    if norm == "inf":
        return rng.uniform(-eps, eps, size=shape)
    directions = rng.standard_normal(shape)
    lengths = np.sqrt(np.einsum("ij,ij->i", directions, directions))[:, None]
    radii = eps * rng.uniform(0.0, 1.0, size=(shape[0], 1)) ** (1.0 / shape[1])
    return directions * (radii / lengths)


def fgsm(
    model: Model | NormalizedModel, X: ArrayLike, y: ArrayLike, eps: float, *, norm: str | float = "inf",
    loss: str | LossLike | None = None, clip: tuple[float, float] | None = (0.0, 1.0),
) -> np.ndarray:
    r"""Fast gradient sign method: one step up the loss, :math:`x + \varepsilon\,\mathrm{sign}(\nabla_x L)`.

    .. math::
        x' = \mathrm{clip}_{[lo, hi]}\bigl(x + \varepsilon\, d(\nabla_x L(f(x), y))\bigr),

    with :math:`d(g) = \mathrm{sign}(g)` for ``norm="inf"`` and
    :math:`g / \lVert g \rVert_2` (per row) for ``norm="2"`` (the fast gradient
    method). One forward and one backward pass. Conventions (balls per row,
    zero gradients, input space, dtype): see :mod:`crossent.attacks`.

    Parameters
    ----------
    model : crossent model
        Anything with ``forward`` and ``input_gradient(X, y, loss)`` (every
        :mod:`crossent.nn` model, a :class:`NormalizedModel`).
    X : array_like, shape (N, n_features)
        Inputs inside ``clip``.
    y : array_like
        Targets as the loss takes them (class labels (N,), ...).
    eps : float >= 0
        Radius of the ball, in ``X``'s units.
    norm : {"inf", "2"}, default "inf"
    loss : Loss, str or None
        The loss whose gradient is followed (None: the model's default).
    clip : (low, high) or None, default (0.0, 1.0)
        The valid input range (pixels scaled to [0, 1]); None for no range.

    Returns
    -------
    numpy.ndarray, shape (N, n_features), the model's dtype
        The adversarial inputs (a new array; ``X`` is not modified).

    Shapes
    ------
    X (N, n_features) -> (N, n_features).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent import nn
    >>> from crossent.attacks import fgsm
    >>> model = nn.SoftmaxRegression(3, 2)
    >>> model.parameters()[0][...] = [[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]]
    >>> fgsm(model, np.array([[0.5, 0.5, 0.5]]), np.array([0]), eps=0.1)  # feature 3 has no gradient
    array([[0.4, 0.6, 0.5]], dtype=float32)
    """
    _check_model(model)
    eps = check_finite_scalar(eps, "eps", low=0.0)
    norm = _check_norm(norm)
    clip = _check_clip(clip)
    X = _check_inputs(model, X, clip)
    perturbation = _ascent_direction(model.input_gradient(X, y, loss), norm, out=np.empty_like(X))
    perturbation *= X.dtype.type(eps)
    X += perturbation
    if clip is not None:
        np.clip(X, clip[0], clip[1], out=X)
    return X


def pgd(
    model: Model | NormalizedModel, X: ArrayLike, y: ArrayLike, eps: float, *, step: float | None = None,
    steps: int = 10, norm: str | float = "inf", random_start: bool = True, seed: Seed | None = None,
    loss: str | LossLike | None = None, clip: tuple[float, float] | None = (0.0, 1.0),
) -> np.ndarray:
    r"""Projected gradient descent attack (Madry et al., 2018): ``steps`` projected steps up the loss.

    .. math::
        x^{0} = \Pi(x + \delta_0), \qquad
        x^{t+1} = \Pi\bigl(x^{t} + \alpha\, d(\nabla_x L(f(x^{t}), y))\bigr), \qquad t = 0, \dots, T - 1,

    where :math:`d(g) = \mathrm{sign}(g)` (``norm="inf"``) or
    :math:`g / \lVert g \rVert_2` per row (``norm="2"``), :math:`\Pi` projects
    onto the ball :math:`\lVert x' - x \rVert \le \varepsilon` and the range
    ``clip``, :math:`\delta_0` is the random start (zero without it) and
    :math:`x^{T}` is returned. The step default, the random start's
    distribution and the projection are described in :mod:`crossent.attacks`.
    Cost: ``steps`` forward and backward passes.

    Parameters
    ----------
    model, X, y, eps, norm, loss, clip
        As in :func:`fgsm`.
    step : float > 0 or None, default None
        :math:`\alpha`, in ``X``'s units; None: ``2.5 * eps / steps``.
    steps : int >= 1, default 10
    random_start : bool, default True
        Start from a uniform random point of the ball (then clipped to the range).
    seed : None, int >= 0 or numpy.random.Generator
        For the random start: the same seed gives the same result. None draws
        fresh entropy (a different start at every call).

    Returns
    -------
    numpy.ndarray, shape (N, n_features), the model's dtype
        The last iterate :math:`x^{T}` (a new array; ``X`` is not modified).

    Shapes
    ------
    X (N, n_features) -> (N, n_features).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent import nn
    >>> from crossent.attacks import pgd
    >>> model = nn.SoftmaxRegression(2, 2)
    >>> model.parameters()[0][...] = [[1.0, 0.0], [0.0, 1.0]]
    >>> X, y = np.array([[0.9, 0.3]]), np.array([0])
    >>> pgd(model, X, y, eps=0.2, step=0.1, steps=3, random_start=False)  # third step clipped by the ball
    array([[0.7, 0.5]], dtype=float32)
    >>> x_adv = pgd(model, X, y, eps=0.2, seed=0)
    >>> bool(np.abs(x_adv - X).max() <= 0.2 + 1e-7)
    True
    """
    _check_model(model)
    eps = check_finite_scalar(eps, "eps", low=0.0)
    steps = _check_steps(steps)
    if step is None:
        step = 2.5 * eps / steps
    else:
        step = check_finite_scalar(step, "step", low=0.0, low_inclusive=False)
    norm = _check_norm(norm)
    if not isinstance(random_start, (bool, np.bool_)):
        raise TypeError(f"random_start must be True or False, got {_describe(random_start)}")
    seed = _check_seed(seed)
    clip = _check_clip(clip)
    X = _check_inputs(model, X, clip)

    box = _linf_box(X, eps, clip) if norm == "inf" else None
    adversarial = X.copy()
    if random_start and eps > 0:
        adversarial += _random_start(np.random.default_rng(seed), X.shape, eps, norm).astype(X.dtype)
        _project(adversarial, X, eps, norm, clip, box)
    alpha = X.dtype.type(step)
    direction = np.empty_like(X)
    for _ in range(steps):
        _ascent_direction(model.input_gradient(adversarial, y, loss), norm, out=direction)
        direction *= alpha
        adversarial += direction
        _project(adversarial, X, eps, norm, clip, box)
    return adversarial


#: attack name -> function, for :func:`robust_accuracy`, :class:`AdversarialTraining` and the command line
ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def _accuracy(model, X, y) -> float:
    from .train import _correct

    logits = model.forward(X)
    correct, counted = _correct(model, logits, np.asarray(y))
    return correct / counted


def robust_accuracy(
    model: Model | NormalizedModel, X: ArrayLike, y: ArrayLike, eps: float, *,
    attack: str | Callable[..., NDArray[Any]] = "pgd", **options: Any,
) -> float:
    """Accuracy on the attacked inputs: the fraction of rows still classified correctly.

    A row the model already gets wrong counts as wrong (robust accuracy is at
    most the clean accuracy, up to a random start that happens to fix a
    mistake). ``eps=0`` with ``attack="fgsm"`` is the clean accuracy.

    Parameters
    ----------
    model, X, y, eps
        As in :func:`fgsm`; ``y`` holds the true class labels (or 0/1 targets
        for a logistic model).
    attack : {"fgsm", "pgd"} or callable, default "pgd"
        A callable is called as ``attack(model, X, y, eps, **options)``.
    **options
        Passed to the attack (``steps``, ``norm``, ``seed``, ``clip``, ...).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from crossent import nn
    >>> from crossent.attacks import robust_accuracy
    >>> model = nn.SoftmaxRegression(2, 2)
    >>> model.parameters()[0][...] = [[1.0, 0.0], [0.0, 1.0]]
    >>> X, y = np.array([[0.9, 0.1], [0.6, 0.5]]), np.array([0, 0])
    >>> robust_accuracy(model, X, y, eps=0.1, steps=5, seed=0)  # the second row has a margin of 0.1 only
    0.5
    """
    if isinstance(attack, str):
        if attack not in ATTACKS:
            names = ", ".join(repr(name) for name in ATTACKS)
            raise ValueError(f"attack must be one of {names} or a callable, got {attack!r}")
        attack = ATTACKS[attack]
    elif not callable(attack):
        raise TypeError(f"attack must be an attack name or a callable, got {_describe(attack)}")
    adversarial = attack(model, X, y, eps, **options)
    return _accuracy(model, adversarial, y)


# --------------------------------------------------------------------------- attacks in the raw input space


class NormalizedModel:
    r"""A model with its input normalisation in front: takes raw inputs :math:`x`, feeds :math:`(x - o)/s`.

    The attacks' ball and range live in the raw space (pixels in [0, 1]),
    while the model was trained on normalised inputs :math:`x' = (x - o)/s`
    (:class:`crossent.datasets.Normalizer`). Through this wrapper the input
    gradient is taken with respect to the raw input,
    :math:`\partial L / \partial x = (\partial L / \partial x') / s`, so an
    :math:`L^\infty` budget of 0.1 means 0.1 of the pixel range for every
    pixel, whatever its standard deviation. The wrapper also trains
    (:func:`crossent.fit` on raw inputs): ``forward``, ``backward``,
    ``parameters`` and ``gradients`` pass through, the parameters are the
    wrapped model's own arrays.

    Parameters
    ----------
    model : crossent model
    normalizer : crossent.datasets.Normalizer
        Fitted (or method "none").

    Shapes
    ------
    X (N, n_features) raw -> logits (N, n_outputs); input gradients (N, n_features).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent import nn
    >>> from crossent.attacks import NormalizedModel
    >>> from crossent.datasets import Normalizer
    >>> model = nn.SoftmaxRegression(2, 2)
    >>> model.parameters()[0][...] = [[1.0, 0.0], [0.0, 1.0]]
    >>> raw = NormalizedModel(model, Normalizer("standardize").fit(np.array([[0.0, 0.0], [0.5, 1.0]])))
    >>> X, y = np.array([[0.25, 0.5]]), np.array([0])
    >>> raw.input_gradient(X, y) / model.input_gradient(raw.normalizer.transform(X), y)  # 1 / s
    array([[4., 2.]], dtype=float32)
    """

    def __init__(self, model: Model | NormalizedModel, normalizer: Normalizer) -> None:
        _check_model(model)
        if not callable(getattr(normalizer, "transform", None)) or not hasattr(normalizer, "scale"):
            raise TypeError(f"normalizer must be a crossent.datasets.Normalizer, got {_describe(normalizer)}")
        if normalizer.method != "none" and normalizer.scale is None:
            raise ValueError(f"normalizer {normalizer!r} is not fitted: fit it on the training inputs first")
        self.model, self.normalizer = model, normalizer
        n_features = getattr(model, "n_features", None)
        self._scale = None if normalizer.method == "none" else np.asarray(normalizer.scale)
        if self._scale is not None and n_features is not None and self._scale.size != n_features:
            raise ValueError(
                f"normalizer was fitted on {self._scale.size} features but the model takes {n_features}"
            )

    def __repr__(self) -> str:
        return f"NormalizedModel({self.model!r}, {self.normalizer!r})"

    def __getattr__(self, name: str) -> Any:
        # dtype, n_features, n_outputs, default_loss, config, ...: the wrapped model's
        if name in ("model", "normalizer", "_scale"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @overload
    def _raw(self, gradient: None) -> None: ...
    @overload
    def _raw(self, gradient: NDArray[Any]) -> NDArray[Any]: ...
    def _raw(self, gradient: NDArray[Any] | None) -> NDArray[Any] | None:
        if gradient is None or self._scale is None:
            return gradient
        gradient /= self._scale.astype(gradient.dtype)
        return gradient

    def forward(self, X: ArrayLike, training: bool = False) -> np.ndarray:
        """Logits of the normalised ``X``."""
        return self.model.forward(self.normalizer.transform(X), training=training)

    def backward(
        self, grad_output: ArrayLike, *, need_input_grad: bool = True, need_parameter_grads: bool = True
    ) -> NDArray[Any] | None:
        """dL/dlogits -> dL/d(raw X) (divided by the scale); fills the wrapped model's gradients."""
        return self._raw(self.model.backward(grad_output, need_input_grad=need_input_grad,
                                             need_parameter_grads=need_parameter_grads))

    def input_gradient(
        self, X: ArrayLike, y: ArrayLike, loss: str | LossLike | None = None, *, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        r""":math:`\partial L / \partial x` with respect to the raw input (see the class docstring)."""
        return self._raw(self.model.input_gradient(self.normalizer.transform(X), y, loss,
                                                   sample_weight=sample_weight))

    def loss_and_backward(
        self, X: ArrayLike, y: ArrayLike, loss: str | LossLike | None = None, *, sample_weight: ArrayLike | None = None
    ) -> Any:
        return self.model.loss_and_backward(self.normalizer.transform(X), y, loss, sample_weight=sample_weight)

    def predict(self, X: ArrayLike) -> np.ndarray:
        return self.model.predict(self.normalizer.transform(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        return self.model.predict_proba(self.normalizer.transform(X))

    def parameters(self) -> list[np.ndarray]:
        return self.model.parameters()

    def gradients(self) -> list[np.ndarray]:
        return self.model.gradients()


# --------------------------------------------------------------------------- adversarial training


#: keyword -> attacks it applies to
_TRAINING_OPTIONS = {
    "eps": ("fgsm", "pgd"), "norm": ("fgsm", "pgd"), "clip": ("fgsm", "pgd"), "loss": ("fgsm", "pgd"),
    "ratio": ("fgsm", "pgd"), "steps": ("pgd",), "step": ("pgd",), "random_start": ("pgd",),
}


@dataclass(frozen=True)
class AdversarialTraining:
    r"""How :func:`crossent.fit` attacks each minibatch before its gradient step.

    Adversarial training (Goodfellow et al., 2015; Madry et al., 2018)
    minimises the loss at the attacked inputs,
    :math:`\min_\theta \mathbb E\, \max_{\lVert \delta \rVert \le \varepsilon} L(f_\theta(x + \delta), y)`,
    the inner maximum approximated by :func:`fgsm` or :func:`pgd` at the
    current weights. In every minibatch of :math:`B` rows the first
    :math:`k = \lfloor \text{ratio} \cdot B + 1/2 \rfloor` rows (a random subset:
    the batches are shuffled) are replaced by their attacked versions and the
    others stay clean; ``ratio=1`` attacks them all, ``ratio=0.5`` trains on
    a half-and-half mix (Goodfellow et al.'s equal weighting of the clean and
    adversarial loss, without doubling the batch). The random start of step
    ``s`` of epoch ``e`` comes from a generator seeded with
    ``(seed, e, s)``, so runs and resumed runs are reproducible.

    Build it with :meth:`from_arguments` (what ``fit(adversarial=...,
    adversarial_options=...)`` does) or directly.

    Parameters
    ----------
    attack : {"fgsm", "pgd"}
    eps : float >= 0
    norm : {"inf", "2"}, default "inf"
    steps : int >= 1, default 10 (pgd only)
    step : float > 0 or None (pgd only; None: 2.5 * eps / steps)
    random_start : bool, default True (pgd only)
    ratio : float in (0, 1], default 1
        Fraction of each minibatch replaced by attacked rows.
    clip : (low, high) or None, default (0.0, 1.0)
        The training inputs must lie in this range (checked before training).
    loss : Loss, str or None
        The loss the attack increases; None: the loss being trained (the
        inner maximisation of the min-max objective).

    Examples
    --------
    >>> from crossent.attacks import AdversarialTraining
    >>> AdversarialTraining.from_arguments("pgd", {"eps": 0.1, "steps": 7}).config()["step"]
    0.03571428571428571
    """

    attack: str
    eps: float
    norm: str = "inf"
    steps: int = 10
    step: float | None = None
    random_start: bool = True
    ratio: float = 1.0
    clip: tuple[float, float] | None = (0.0, 1.0)
    loss: str | LossLike | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attack, str) or self.attack not in ATTACKS:
            raise ValueError(f"adversarial must be None, 'fgsm' or 'pgd', got {_describe(self.attack)}")
        set_field = object.__setattr__  # frozen: normalise the fields once, here
        set_field(self, "eps", check_finite_scalar(self.eps, "eps", low=0.0))
        set_field(self, "norm", _check_norm(self.norm))
        set_field(self, "steps", _check_steps(self.steps))
        if self.step is not None:
            set_field(self, "step", check_finite_scalar(self.step, "step", low=0.0, low_inclusive=False))
        if not isinstance(self.random_start, (bool, np.bool_)):
            raise TypeError(f"random_start must be True or False, got {_describe(self.random_start)}")
        set_field(self, "ratio", check_finite_scalar(self.ratio, "ratio", low=0.0, high=1.0, low_inclusive=False))
        set_field(self, "clip", _check_clip(self.clip))

    @classmethod
    def from_arguments(
        cls, adversarial: str | AdversarialTraining, options: dict[str, Any] | None = None
    ) -> AdversarialTraining:
        """From ``fit``'s ``adversarial`` ("fgsm"/"pgd" or an AdversarialTraining) and ``adversarial_options``."""
        if isinstance(adversarial, cls):
            if options:
                raise ValueError("adversarial_options must be empty when adversarial is an AdversarialTraining")
            return adversarial
        if not isinstance(adversarial, str) or adversarial not in ATTACKS:
            raise ValueError(f"adversarial must be None, 'fgsm' or 'pgd', got {_describe(adversarial)}")
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise TypeError(f"adversarial_options must be a dict, got {_describe(options)}")
        for key in options:
            if key not in _TRAINING_OPTIONS:
                raise ValueError(
                    f"adversarial_options has an unknown key {key!r}; known: {', '.join(_TRAINING_OPTIONS)}"
                )
            if adversarial not in _TRAINING_OPTIONS[key]:
                raise ValueError(
                    f"adversarial_options[{key!r}] applies to 'pgd' only (got adversarial={adversarial!r})"
                )
        if "eps" not in options:
            raise ValueError("adversarial_options must give 'eps', the radius of the attack's ball")
        return cls(adversarial, **options)

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings (``step`` resolved; ``loss`` as its config, None for the training loss)."""
        settings = {"attack": self.attack, "eps": self.eps, "norm": self.norm, "ratio": self.ratio,
                    "clip": None if self.clip is None else list(self.clip)}
        if self.attack == "pgd":
            settings.update(steps=self.steps, step=2.5 * self.eps / self.steps if self.step is None else self.step,
                            random_start=self.random_start)
        loss_config = getattr(self.loss, "config", None)
        settings["loss"] = loss_config() if callable(loss_config) else self.loss
        return settings

    def check_inputs(self, X: np.ndarray) -> None:
        """Fail before training when the training inputs are not in the ``clip`` range."""
        if self.clip is None:
            return
        outside = _first_outside(X, *self.clip)
        if outside is not None:
            (row, column), value = outside
            raise ValueError(
                f"adversarial training keeps inputs in clip=({self.clip[0]:g}, {self.clip[1]:g}), but X holds "
                f"{value!r} at row {row}, column {column}; give adversarial_options['clip'] the range of X "
                f"(or None), or train on raw inputs through crossent.attacks.NormalizedModel"
            )

    def perturb(
        self, model: Model | NormalizedModel, X: NDArray[Any], y: NDArray[Any], loss: str | LossLike | None,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The minibatch to train on: its first ``ratio`` share of rows attacked (a new array)."""
        n_attacked = int(math.floor(self.ratio * X.shape[0] + 0.5))
        if n_attacked == 0:
            return X
        loss = self.loss if self.loss is not None else loss
        options: dict[str, Any] = {"norm": self.norm, "loss": loss, "clip": self.clip}
        if self.attack == "pgd":
            options.update(step=self.step, steps=self.steps, random_start=self.random_start, seed=rng)
        attacked = ATTACKS[self.attack](model, X[:n_attacked], y[:n_attacked], self.eps, **options)
        if n_attacked == X.shape[0]:
            return attacked
        mixed = X.astype(attacked.dtype, copy=True)
        mixed[:n_attacked] = attacked
        return mixed
