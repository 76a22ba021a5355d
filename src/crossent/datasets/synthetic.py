r"""Seeded two-dimensional toy data sets: Gaussian blobs, two moons and interleaved spirals.

Each generator returns ``(X, y)`` with ``X`` of shape (n_samples, 2) and
``y`` of shape (n_samples,) int64 labels. The classes are balanced (their
sizes differ by at most one: the first ``n_samples % n_classes`` classes get
the extra sample), the rows are shuffled, and the same ``seed`` gives the same
data. Two features are what :func:`crossent.plots.plot_decision_surface` draws,
which makes these sets the quickest way to *see* what a classifier learned:

==================  ===================================  ==========================================
generator           separable by                         what it shows
==================  ===================================  ==========================================
``make_blobs``      a linear model (up to the overlap    softmax regression's straight boundaries
                    that ``spread`` creates)
``make_moons``      a small MLP                          a boundary a linear model cannot draw
``make_spirals``    a wider MLP                          that depth/width buys curved regions
==================  ===================================  ==========================================

All arithmetic is done in float64 and the result is cast to ``dtype`` once.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .._typing import FloatArray, Seed
from .._validation import _describe, check_finite_scalar
from .preprocessing import check_loader_options

__all__ = ["make_blobs", "make_moons", "make_spirals"]

#: distance between the centres of neighbouring blobs, in units of ``spread``'s scale
BLOB_CENTRE_DISTANCE = 4.0


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def _check_seed(seed: object) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer >= 0 or a numpy.random.Generator, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be an integer >= 0 or a numpy.random.Generator, got {int(seed)}")
    return np.random.default_rng(int(seed))


def _class_sizes(n_samples: int, n_classes: int) -> np.ndarray:
    """Balanced class sizes: ``n_samples // n_classes`` each, one more for the first remainder classes."""
    sizes = np.full(n_classes, n_samples // n_classes, dtype=np.int64)
    sizes[: n_samples % n_classes] += 1
    return sizes


def _check_sizes(n_samples: object, n_classes: object, *, minimum_per_class: int = 1) -> tuple[int, int]:
    n_classes = _check_count(n_classes, "n_classes", 2)
    n_samples = _check_count(n_samples, "n_samples", 1)
    if n_samples < minimum_per_class * n_classes:
        raise ValueError(
            f"n_samples must be at least {minimum_per_class * n_classes} so that each of the "
            f"{n_classes} classes gets {minimum_per_class} sample(s), got {n_samples}"
        )
    return n_samples, n_classes


def _shuffled(
    points: np.ndarray, labels: np.ndarray, rng: np.random.Generator, dtype: np.dtype
) -> tuple[FloatArray, NDArray[np.int64]]:
    order = rng.permutation(labels.size)
    return points[order].astype(dtype), labels[order]


def make_blobs(
    n_samples: int = 300, n_classes: int = 3, *, spread: float = 1.0, seed: Seed = 0, dtype: DTypeLike = np.float32
) -> tuple[FloatArray, NDArray[np.int64]]:
    r"""Isotropic Gaussian blobs, one per class, centred on a circle.

    Class :math:`k` of :math:`C` is drawn from
    :math:`\mathcal N(\mu_k, \sigma^2 I)` with :math:`\sigma` = ``spread`` and

    .. math::

        \mu_k = R\,\big(\cos(2\pi k / C),\ \sin(2\pi k / C)\big), \qquad
        R = \frac{2}{\sin(\pi / C)},

    so neighbouring centres are exactly 4 apart whatever :math:`C` is. With
    ``spread=1`` two neighbouring blobs overlap a little (a point is closer to
    the wrong centre with probability :math:`\Phi(-2) \approx 2.3\%`); a
    linear model separates them up to that overlap.

    Parameters
    ----------
    n_samples : int, default 300
        Total number of points (at least one per class).
    n_classes : int >= 2, default 3
    spread : float >= 0, default 1.0
        Standard deviation of each coordinate around its centre.
    seed : int >= 0 or numpy.random.Generator, default 0
        Same seed, same data. A Generator is used (and advanced) as is.
    dtype : float32 or float64, default float32

    Returns
    -------
    X : ndarray of shape (n_samples, 2), ``dtype``
    y : ndarray of shape (n_samples,), int64 labels in [0, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.datasets.synthetic import make_blobs
    >>> X, y = make_blobs(7, 3, seed=0)
    >>> X.shape, X.dtype, np.bincount(y).tolist()
    ((7, 2), dtype('float32'), [3, 2, 2])
    """
    n_samples, n_classes = _check_sizes(n_samples, n_classes)
    spread = check_finite_scalar(spread, "spread", low=0.0)
    dtype = check_loader_options(dtype, "none")
    rng = _check_seed(seed)

    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    radius = (BLOB_CENTRE_DISTANCE / 2) / math.sin(math.pi / n_classes)
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), _class_sizes(n_samples, n_classes))
    points = centres[labels] + spread * rng.standard_normal((n_samples, 2))
    return _shuffled(points, labels, rng, dtype)


def make_moons(
    n_samples: int = 300, *, noise: float = 0.1, seed: Seed = 0, dtype: DTypeLike = np.float32
) -> tuple[FloatArray, NDArray[np.int64]]:
    r"""Two interleaving half circles (scikit-learn's geometry), with Gaussian noise.

    Class 0 is the upper arc :math:`(\cos t, \sin t)`, class 1 the lower arc
    :math:`(1 - \cos t,\ \tfrac12 - \sin t)`, each for :math:`t` evenly spaced
    in :math:`[0, \pi]`; then ``noise`` times standard normal noise is added to
    every coordinate. The arcs have radius 1 and interlock, so no straight line
    separates them, while a small MLP does (for ``noise`` up to about 0.2).

    Parameters
    ----------
    n_samples : int >= 2, default 300
        Total number of points; class 0 gets the extra point when it is odd.
    noise : float >= 0, default 0.1
        Standard deviation of the noise added to each coordinate.
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Returns
    -------
    X : ndarray of shape (n_samples, 2), ``dtype``
    y : ndarray of shape (n_samples,), int64 labels in {0, 1}

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.datasets.synthetic import make_moons
    >>> X, y = make_moons(4, noise=0.0)  # just the ends of the two arcs
    >>> sorted(map(tuple, np.round(X[y == 0], 3).tolist())), sorted(map(tuple, X[y == 1].tolist()))
    ([(-1.0, 0.0), (1.0, 0.0)], [(0.0, 0.5), (2.0, 0.5)])
    """
    n_samples, _ = _check_sizes(n_samples, 2)
    noise = check_finite_scalar(noise, "noise", low=0.0)
    dtype = check_loader_options(dtype, "none")
    rng = _check_seed(seed)

    upper_size, lower_size = _class_sizes(n_samples, 2)
    upper = np.linspace(0.0, np.pi, upper_size)
    lower = np.linspace(0.0, np.pi, lower_size)
    points = np.concatenate([
        np.stack([np.cos(upper), np.sin(upper)], axis=1),
        np.stack([1.0 - np.cos(lower), 0.5 - np.sin(lower)], axis=1),
    ])
    labels = np.repeat(np.array([0, 1], dtype=np.int64), [upper_size, lower_size])
    points += noise * rng.standard_normal(points.shape)
    return _shuffled(points, labels, rng, dtype)


def make_spirals(
    n_samples: int = 300, n_classes: int = 3, *, noise: float = 0.2, turns: float = 1.0, seed: Seed = 0,
    dtype: DTypeLike = np.float32,
) -> tuple[FloatArray, NDArray[np.int64]]:
    r"""Interleaved spiral arms, one per class, with noise on the angle.

    Arm :math:`k` of :math:`C` holds points at radii :math:`r` evenly spaced
    in :math:`(0, 1]` (:math:`r_i = i / n_k`, :math:`i = 1..n_k`) and angles

    .. math::

        \theta = 2\pi\Big(\text{turns}\cdot r + \frac{k}{C}\Big) + \text{noise}\cdot\varepsilon,
        \qquad \varepsilon \sim \mathcal N(0, 1),
        \qquad x = r\,(\cos\theta,\ \sin\theta).

    The noise is an angle in radians (as in the CS231n spiral), so it blurs
    each arm along its own curve more than across to its neighbours, whose
    angle differs by :math:`2\pi / C` at every radius. Near the centre the arms
    meet and a few points are ambiguous.

    Parameters
    ----------
    n_samples : int, default 300
        Total number of points (at least one per class).
    n_classes : int >= 2, default 3
    noise : float >= 0, default 0.2
        Standard deviation of the angle noise, in radians.
    turns : float > 0, default 1.0
        Full turns each arm makes from the centre out to radius 1.
    seed : int >= 0 or numpy.random.Generator, default 0
    dtype : float32 or float64, default float32

    Returns
    -------
    X : ndarray of shape (n_samples, 2), ``dtype``, inside the unit disc
    y : ndarray of shape (n_samples,), int64 labels in [0, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.datasets.synthetic import make_spirals
    >>> X, y = make_spirals(300, 3, seed=0)
    >>> X.shape, np.bincount(y).tolist(), bool(np.all(np.hypot(X[:, 0], X[:, 1]) <= 1 + 1e-6))
    ((300, 2), [100, 100, 100], True)
    """
    n_samples, n_classes = _check_sizes(n_samples, n_classes)
    noise = check_finite_scalar(noise, "noise", low=0.0)
    turns = check_finite_scalar(turns, "turns", low=0.0, low_inclusive=False)
    dtype = check_loader_options(dtype, "none")
    rng = _check_seed(seed)

    sizes = _class_sizes(n_samples, n_classes)
    labels = np.repeat(np.arange(n_classes, dtype=np.int64), sizes)
    # the radius runs 1/n_k, 2/n_k, ..., 1 along each arm: no point sits exactly on the shared centre
    radii = np.concatenate([np.arange(1, size + 1) / size for size in sizes])
    angles = 2 * np.pi * (turns * radii + labels / n_classes) + noise * rng.standard_normal(n_samples)
    points = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _shuffled(points, labels, rng, dtype)
