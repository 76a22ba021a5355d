r"""The cross-entropy method for optimisation: Gaussian CEM, CEM with gradient steps, and Bernoulli CEM.

The cross-entropy method (Rubinstein 1997; de Boer, Kroese, Mannor and
Rubinstein, "A Tutorial on the Cross-Entropy Method", Annals of Operations
Research 134, 2005) minimises a function :math:`f` by repeating three steps on
a parametric sampling distribution :math:`g(\cdot; v_t)`:

1. draw :math:`N` candidates :math:`x_1, \dots, x_N \sim g(\cdot; v_t)` and
   evaluate :math:`f(x_i)`;
2. keep the :math:`k = \lceil \rho N \rceil` best of them, the *elite set*
   :math:`E_t`; the worst elite value is the threshold
   :math:`\gamma_t = \max_{i \in E_t} f(x_i)`;
3. refit the distribution by maximum likelihood to the elites,
   :math:`\hat v = \arg\max_v \sum_{i \in E_t} \log g(x_i; v)` -- the
   minimiser of the cross-entropy between the elites' empirical distribution
   and :math:`g(\cdot; v)`, hence the name -- and smooth it with the previous
   parameters, :math:`v_{t+1} = \alpha \hat v + (1 - \alpha) v_t`.

:func:`minimize` does this for real vectors with a Gaussian (diagonal or full
covariance) and, given the gradient of :math:`f`, takes gradient steps on the
candidates before the elites are chosen (Bharadhwaj, Xie and Shkurti,
"Model-Predictive Control via Cross-Entropy and Gradient-Based Optimization",
L4DC 2020). :func:`minimize_binary` does it for 0/1 vectors with independent
Bernoulli components (the tutorial's Max-Cut example). Both return a
:class:`CEMResult`, a dict with attribute access like
``scipy.optimize.OptimizeResult``. Randomness comes only from a
:class:`numpy.random.Generator` built from ``seed``: the same seed gives the
same result. Nothing here needs SciPy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ._typing import Seed
from ._validation import _describe, check_finite_scalar, check_scalar

__all__ = [
    "minimize",
    "minimize_binary",
    "CEMResult",
    "reflect_into_box",
    "dynamic_smoothing_weight",
    "BOUNDS_HANDLING",
    "COVARIANCES",
]

COVARIANCES = ("diagonal", "full")
BOUNDS_HANDLING = ("reflect", "resample")

#: resampling gives up when it has drawn this many candidates per requested sample
#: (the box then holds a tiny fraction of the sampling distribution's mass)
RESAMPLE_DRAWS_PER_SAMPLE = 1000

STATUS_SPREAD, STATUS_STALLED, STATUS_MAX_ITER, STATUS_MAX_NFEV, STATUS_DEGENERATE = 0, 1, 2, 3, 4


class CEMResult(dict):
    """The outcome of :func:`minimize` or :func:`minimize_binary`: a dict whose keys are also attributes.

    Like ``scipy.optimize.OptimizeResult``: ``result.x`` is ``result["x"]``.

    Keys
    ----
    x : ndarray
        The best candidate evaluated (not the final mean of the distribution).
    fun : float
        ``f(x)``.
    nit, nfev, njev : int
        Iterations run, evaluations of ``f`` (every candidate, counted once)
        and of ``grad`` (:func:`minimize` only).
    success : bool
        True when a convergence rule stopped the run, False when a budget
        (``max_iter``, ``max_nfev``) did.
    status : int
        0 spread below ``tol``; 1 no improvement beyond ``ftol`` in ``patience``
        iterations; 2 ``max_iter`` reached; 3 ``max_nfev`` reached;
        4 the probabilities degenerated (:func:`minimize_binary`).
    message : str
    history : dict of ndarray
        One entry per iteration (see the function that returned the result).

    Examples
    --------
    >>> result = CEMResult(x=1.0, fun=2.0)
    >>> result.fun, sorted(result)
    (2.0, ['fun', 'x'])
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    __setattr__ = dict.__setitem__
    __delattr__ = dict.__delitem__

    def __dir__(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(len(key) for key in self) + 1
        lines = []
        for key, value in self.items():
            if key == "history":
                text = "{" + ", ".join(f"{name}: ({len(column)} rows)" for name, column in value.items()) + "}"
            else:
                text = repr(value).replace("\n", "\n" + " " * (width + 2))
            lines.append(f"{key.rjust(width)}: {text}")
        return "\n".join(lines)


# -- argument checks ------------------------------------------------------------------------------


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def _check_optional_int(value, name: str, minimum: int) -> int | None:
    return None if value is None else _check_int(value, name, minimum)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def _check_callable(value, name: str, required: bool = True):
    if value is None and not required:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {_describe(value)}")
    return value


def _check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {expected}, got {_describe(value)}")
    return value


def _generator(seed) -> np.random.Generator:
    """``seed`` as a Generator: None (fresh entropy), an integer >= 0, or a Generator used as is."""
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, an integer >= 0 or a numpy.random.Generator, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be None, an integer >= 0 or a numpy.random.Generator, got {int(seed)}")
    return np.random.default_rng(int(seed))


def _real_vector(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, got {_describe(value)}")
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_bounds(bounds) -> tuple[np.ndarray, np.ndarray] | None:
    """``bounds`` as (lower, upper) float64 vectors; pairs (d, 2) or an object with ``lb`` / ``ub``."""
    if bounds is None:
        return None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):  # scipy.optimize.Bounds, without importing SciPy
        lower, upper = _real_vector(bounds.lb, "bounds.lb"), _real_vector(bounds.ub, "bounds.ub")
        try:
            lower, upper = (np.atleast_1d(side).copy() for side in np.broadcast_arrays(lower, upper))
        except ValueError:
            raise ValueError(f"bounds.lb and bounds.ub must have one shape, got {lower.shape} and {upper.shape}") from None
        if lower.ndim != 1:
            raise ValueError(f"bounds.lb and bounds.ub must be vectors, got shape {lower.shape}")
    else:
        pairs = _real_vector(bounds, "bounds")
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(f"bounds must be a sequence of (low, high) pairs, shape (d, 2), got shape {pairs.shape}")
        lower, upper = pairs[:, 0].copy(), pairs[:, 1].copy()
    if lower.shape[0] == 0:
        raise ValueError("bounds must hold at least one (low, high) pair, got none")
    if np.isnan(lower).any() or np.isnan(upper).any():
        raise ValueError(f"bounds must not contain nan, found one in pair {_first_bad(np.isnan(lower) | np.isnan(upper))}")
    bad = ~(lower < upper) | (lower == np.inf) | (upper == -np.inf)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"bounds[{i}] must satisfy low < high (a fixed coordinate is a constant, not a variable), "
                         f"got ({float(lower[i])!r}, {float(upper[i])!r})")
    return lower, upper


def _check_x0(x0, box) -> np.ndarray:
    if x0 is None:
        if box is None or not (np.isfinite(box[0]).all() and np.isfinite(box[1]).all()):
            raise ValueError("x0 is required unless bounds are finite in every coordinate "
                             "(the initial mean is then the centre of the box), got x0=None")
        return (box[0] + box[1]) / 2
    x0 = _real_vector(x0, "x0")
    if x0.ndim != 1 or x0.size == 0:
        raise ValueError(f"x0 must be a non-empty vector, shape (d,), got shape {x0.shape}")
    if not np.isfinite(x0).all():
        i = _first_bad(~np.isfinite(x0))
        raise ValueError(f"x0 must be finite, got {float(x0[i])!r} at position {i}")
    if box is not None and box[0].size != x0.size:
        raise ValueError(f"bounds must give one (low, high) pair per coordinate of x0 ({x0.size}), "
                         f"got {box[0].size}")
    if box is not None:
        outside = (x0 < box[0]) | (x0 > box[1])
        if outside.any():
            i = _first_bad(outside)
            raise ValueError(f"x0 must lie inside bounds; x0[{i}]={float(x0[i])!r} is outside "
                             f"[{float(box[0][i])!r}, {float(box[1][i])!r}]")
    return x0


def _check_sigma0(sigma0, box, dimension: int) -> np.ndarray:
    if sigma0 is None:
        sigma = np.ones(dimension)
        if box is not None:
            width = box[1] - box[0]
            finite = np.isfinite(width)
            sigma[finite] = width[finite] / 2
        return sigma
    sigma = _real_vector(sigma0, "sigma0")
    if sigma.ndim > 1 or (sigma.ndim == 1 and sigma.shape[0] != dimension):
        raise ValueError(f"sigma0 must be a positive number or a vector of {dimension} positive numbers, "
                         f"got shape {sigma.shape}")
    sigma = np.broadcast_to(sigma, (dimension,)).copy()
    bad = ~(np.isfinite(sigma) & (sigma > 0))
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"sigma0 must be finite and > 0, got {float(sigma[i])!r}" + (f" at position {i}" if dimension > 1 else ""))
    return sigma


def _elite_count(elite_frac: float, population: int) -> int:
    # the tutorial's ceil(rho N); the small offset keeps 0.1 * 100 (= 10.000000000000002 in floats) at 10
    count = max(1, math.ceil(elite_frac * population - 1e-9))
    if count < 2:
        raise ValueError(f"elite_frac * population must give at least 2 elites (one sample has no spread), "
                         f"got elite_frac={elite_frac!r} with population={population}")
    return count


# -- evaluation -----------------------------------------------------------------------------------


def _check_values(values, count: int, where: str) -> np.ndarray:
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{where} must return real numbers, got {_describe(values)}") from None
    if values.shape != (count,):
        raise ValueError(f"{where} must return one value per sample, shape ({count},), got shape {values.shape}")
    bad = np.isnan(values) | (values == -np.inf)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"{where} returned {float(values[i])!r} for sample {i}; values must be real numbers or +inf "
                         f"(+inf ranks last; nan cannot be ranked and -inf means f is unbounded below)")
    return values


def _read_only(array: np.ndarray) -> np.ndarray:
    # the candidates are refitted after f has seen them: f must not change them
    view = array.view()
    view.flags.writeable = False
    return view


def _evaluate(f, samples: np.ndarray, batch: bool) -> np.ndarray:
    if batch:
        return _check_values(f(_read_only(samples)), samples.shape[0],
                             "f (batch=True: one call on the (n, d) samples)")
    values = np.empty(samples.shape[0])
    for i, sample in enumerate(samples):
        value = f(sample.copy())
        if np.ndim(value) != 0:
            raise ValueError(f"f (batch=False) must return one real number per sample, got an array of shape "
                             f"{np.shape(value)}")
        try:
            values[i] = value
        except (TypeError, ValueError):
            raise TypeError(f"f (batch=False) must return a real number, got {_describe(value)}") from None
    return _check_values(values, samples.shape[0], "f (batch=False)")


def _gradients(grad, samples: np.ndarray, batch: bool) -> np.ndarray:
    if batch:
        gradients = np.asarray(grad(_read_only(samples)), dtype=np.float64)
    else:
        gradients = np.asarray([np.asarray(grad(sample.copy()), dtype=np.float64) for sample in samples])
    if gradients.shape != samples.shape:
        per = "(n, d) for the (n, d) samples" if batch else "(d,) per sample"
        raise ValueError(f"grad must return gradients of shape {per}; for samples of shape {samples.shape} "
                         f"got shape {gradients.shape}")
    if not np.isfinite(gradients).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(gradients))[0])
        raise ValueError(f"grad returned {float(gradients[row, column])!r} at sample {row}, coordinate {column}; "
                         f"gradients must be finite")
    return gradients


# -- sampling inside bounds -----------------------------------------------------------------------


def reflect_into_box(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    r"""Fold ``x`` into ``[lower, upper]`` by mirror reflection at the walls, as often as it takes.

    With width :math:`w = u - l`, a coordinate maps to :math:`l + \mathrm{tri}(x - l)` where
    :math:`\mathrm{tri}(y) = y \bmod 2w` if that is :math:`\le w`, else :math:`2w - (y \bmod 2w)`
    (a triangle wave). A one-sided bound reflects once (:math:`x \mapsto 2l - x` below
    :math:`l`); an infinite pair leaves the coordinate as it is.

    Shapes: x (n, d), lower and upper (d,) -> (n, d).

    Examples
    --------
    >>> reflect_into_box(np.array([[-0.25, 1.5, 3.25]]), np.zeros(3), np.ones(3))
    array([[0.25, 0.5 , 0.75]])
    """
    x = np.array(x, dtype=np.float64)
    both = np.isfinite(lower) & np.isfinite(upper)
    if both.any():
        low, width = lower[both], (upper - lower)[both]
        folded = np.mod(x[:, both] - low, 2 * width)
        x[:, both] = low + np.where(folded > width, 2 * width - folded, folded)
    only_lower = np.isfinite(lower) & ~both
    if only_lower.any():
        x[:, only_lower] = np.where(x[:, only_lower] < lower[only_lower], 2 * lower[only_lower] - x[:, only_lower],
                                    x[:, only_lower])
    only_upper = np.isfinite(upper) & ~both
    if only_upper.any():
        x[:, only_upper] = np.where(x[:, only_upper] > upper[only_upper], 2 * upper[only_upper] - x[:, only_upper],
                                    x[:, only_upper])
    return x


class _Gaussian:
    """The sampling distribution: mean, and either standard deviations or a covariance matrix."""

    def __init__(self, mean: np.ndarray, sigma: np.ndarray, full: bool) -> None:
        self.mean = mean.copy()
        self.full = full
        self.std = sigma.copy()
        self.cov = np.diag(sigma**2) if full else None

    def _covariance(self) -> np.ndarray:
        """The covariance matrix of a full-covariance distribution."""
        assert self.cov is not None  # set whenever self.full
        return self.cov

    def spread(self) -> float:
        """The largest standard deviation of one coordinate."""
        return float(np.sqrt(np.max(np.diag(self._covariance())))) if self.full else float(np.max(self.std))

    def _factor(self) -> np.ndarray:
        try:
            return np.linalg.cholesky(self._covariance())
        except np.linalg.LinAlgError:
            # semi-definite to rounding once a direction has collapsed: factor through the eigenvalues
            eigenvalues, eigenvectors = np.linalg.eigh(self._covariance())
            return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))

    def draw(self, rng: np.random.Generator, count: int, factor: np.ndarray | None = None) -> np.ndarray:
        """``count`` samples; ``factor`` is a square root of the covariance (computed when not given)."""
        noise = rng.standard_normal((count, self.mean.size))
        if self.full:
            return self.mean + noise @ (self._factor() if factor is None else factor).T
        return self.mean + noise * self.std

    def draw_in_box(
        self, rng: np.random.Generator, count: int, box: tuple[np.ndarray, np.ndarray] | None, handling: str
    ) -> np.ndarray:
        factor = self._factor() if self.full else None
        samples = self.draw(rng, count, factor)
        if box is None:
            return samples
        lower, upper = box
        if handling == "reflect":
            return reflect_into_box(samples, lower, upper)
        # rejection: redraw what fell outside. Coordinates are independent under a diagonal covariance,
        # so redrawing a coordinate alone samples the same truncated Gaussian as redrawing the whole row
        outside = (samples < lower) | (samples > upper)
        if not self.full:
            drawn: float = count
            while outside.any():
                rows, columns = np.nonzero(outside)
                drawn += rows.size / self.mean.size
                self._check_draws(drawn, count)
                samples[rows, columns] = self.mean[columns] + rng.standard_normal(rows.size) * self.std[columns]
                outside = (samples < lower) | (samples > upper)
            return samples
        bad_rows = np.flatnonzero(outside.any(axis=1))
        floor = 1.0 / RESAMPLE_DRAWS_PER_SAMPLE
        acceptance, drawn = max(1.0 - bad_rows.size / count, floor), count
        while bad_rows.size:
            # draw enough candidates at once for the acceptance rate seen so far
            candidates_wanted = int(min(RESAMPLE_DRAWS_PER_SAMPLE * count,
                                        math.ceil(1.2 * bad_rows.size / acceptance)))
            drawn += candidates_wanted
            self._check_draws(drawn, count)
            candidates = self.draw(rng, candidates_wanted, factor)
            inside = candidates[~((candidates < lower) | (candidates > upper)).any(axis=1)]
            acceptance = max(inside.shape[0] / candidates_wanted, floor)
            taken = min(inside.shape[0], bad_rows.size)
            samples[bad_rows[:taken]] = inside[:taken]
            bad_rows = bad_rows[taken:]
        return samples

    @staticmethod
    def _check_draws(drawn: float, count: int) -> None:
        if drawn > RESAMPLE_DRAWS_PER_SAMPLE * count:
            raise RuntimeError(
                f"bounds_handling='resample' drew more than {RESAMPLE_DRAWS_PER_SAMPLE} candidates per sample "
                f"without filling the population of {count}: the box holds almost none of the sampling "
                f"distribution's mass (typically a full covariance concentrated at a corner in many "
                f"dimensions). Use bounds_handling='reflect'"
            )

    def refit(self, elites: np.ndarray, smoothing: float, spread_smoothing: float) -> None:
        """Maximum-likelihood fit to ``elites``, mean smoothed by ``smoothing``, std / covariance by ``spread_smoothing``."""
        elite_mean = elites.mean(axis=0)
        if self.full:
            centred = elites - elite_mean
            elite_cov = centred.T @ centred / elites.shape[0]
            cov = spread_smoothing * elite_cov + (1 - spread_smoothing) * self._covariance()
            self.cov = (cov + cov.T) / 2  # keep it exactly symmetric against rounding
            self.std = np.sqrt(np.diag(self.cov))
        else:
            self.std = spread_smoothing * elites.std(axis=0) + (1 - spread_smoothing) * self.std
        self.mean = smoothing * elite_mean + (1 - smoothing) * self.mean


def dynamic_smoothing_weight(iteration: int, beta: float, q: float) -> float:
    r"""The tutorial's dynamic smoothing weight :math:`\beta_t = \beta - \beta (1 - 1/t)^q` of iteration ``t`` >= 1.

    It starts at :math:`\beta_1 = \beta` and falls like :math:`\beta q / t`, so
    the spread shrinks ever more slowly: polynomially in :math:`t` instead of
    geometrically, which keeps the distribution from freezing before the mean
    has arrived (de Boer et al. 2005, section on continuous optimisation).

    Examples
    --------
    >>> [round(dynamic_smoothing_weight(t, 0.8, 5), 4) for t in (1, 2, 10)]
    [0.8, 0.775, 0.3276]
    """
    return beta - beta * (1.0 - 1.0 / iteration) ** q


def _stalled(best_so_far: list, patience: int, ftol: float) -> bool:
    if len(best_so_far) <= patience:
        return False
    improvement = best_so_far[-1 - patience] - best_so_far[-1]
    return improvement <= ftol * max(1.0, abs(best_so_far[-1]))


def minimize(
    f: Callable[..., Any],
    x0: ArrayLike | None = None,
    *,
    bounds: Any = None,
    population: int | None = None,
    elite_frac: float = 0.1,
    smoothing: float = 0.7,
    dynamic_smoothing: tuple[float, float] | None = None,
    sigma0: float | ArrayLike | None = None,
    covariance: Literal["diagonal", "full"] = "diagonal",
    max_iter: int = 1000,
    max_nfev: int | None = None,
    tol: float = 1e-8,
    ftol: float = 1e-12,
    patience: int = 50,
    seed: Seed | None = None,
    batch: bool = True,
    grad: Callable[..., Any] | None = None,
    grad_steps: int = 0,
    grad_lr: float = 1e-2,
    bounds_handling: Literal["reflect", "resample"] = "reflect",
) -> CEMResult:
    r"""Minimise ``f`` over real vectors with the Gaussian cross-entropy method, optionally with gradient steps.

    Iteration :math:`t` draws :math:`N` = ``population`` candidates
    :math:`x_i \sim \mathcal N(\mu_t, \Sigma_t)`, evaluates them, keeps the
    :math:`k = \lceil \rho N \rceil` best (:math:`\rho` = ``elite_frac``; ties
    keep the earlier sample) and refits by maximum likelihood to those elites:

    .. math::

        \hat\mu = \frac1k \sum_{i \in E_t} x_i, \qquad
        \hat\Sigma = \frac1k \sum_{i \in E_t} (x_i - \hat\mu)(x_i - \hat\mu)^\top

    (divided by :math:`k`, not :math:`k - 1`: the maximum-likelihood
    estimate, centred on the elites' own mean). Smoothing with
    :math:`\alpha` = ``smoothing`` then gives the next distribution:

    * mean: :math:`\mu_{t+1} = \alpha \hat\mu + (1 - \alpha) \mu_t`;
    * ``covariance="diagonal"``: the **standard deviations** are smoothed,
      :math:`\sigma_{t+1} = \alpha \hat\sigma + (1 - \alpha) \sigma_t`
      elementwise, with :math:`\hat\sigma_j^2 = \hat\Sigma_{jj}` (as in
      de Boer et al. 2005);
    * ``covariance="full"``: the **covariance matrix** is smoothed,
      :math:`\Sigma_{t+1} = \alpha \hat\Sigma + (1 - \alpha) \Sigma_t` (a convex
      combination, so it stays positive semi-definite, and positive definite
      when :math:`\Sigma_t` is -- even with fewer than :math:`d + 1` elites).
      On a diagonal :math:`\Sigma` this smooths variances, not standard
      deviations: from :math:`\sigma_t = 1` to :math:`\hat\sigma = 0`,
      :math:`\alpha = 0.7` gives :math:`\sigma_{t+1} = \sqrt{0.3} \approx 0.55`
      here and :math:`0.3` with ``"diagonal"``.

    ``smoothing=1`` is the unsmoothed method. The initial distribution is
    :math:`\mathcal N(x_0, \operatorname{diag}(\sigma_0^2))`.

    **Premature convergence.** Along a slope the elites' spread is a fixed
    fraction of the current one (about 0.41 for :math:`\rho = 0.1`), so with a
    constant weight the spread shrinks geometrically and the mean travels only
    a few :math:`\sigma_0` in all, whatever :math:`\alpha`: on curved valleys
    such as Rosenbrock's the distribution can freeze before the minimum.
    ``dynamic_smoothing=(beta, q)`` replaces :math:`\alpha` in the std /
    covariance update (not in the mean's) by
    :math:`\beta_t = \beta - \beta (1 - 1/t)^q` at iteration :math:`t = 1, 2,
    \dots` (de Boer et al. 2005 suggest :math:`\beta \in [0.8, 0.99]`,
    :math:`q \in [5, 10]`), which falls like :math:`\beta q / t`: the spread
    then shrinks polynomially, at the price of more iterations near the
    minimum. A larger ``sigma0`` or ``covariance="full"`` helps as well.
    Measured on Rosenbrock 2-D (``benchmarks/cem.py``, 100 candidates, 20
    seeds, target :math:`f \le 10^{-6}`): 0 of 20 runs with ``"diagonal"``, 8
    with ``"full"``, 20 with ``"full"`` and ``dynamic_smoothing=(0.8, 5)`` (at
    about 3.4 times the evaluations), 20 with 3 gradient steps per candidate.

    **CEM with gradient steps** (Bharadhwaj et al. 2020): with ``grad`` and
    ``grad_steps`` :math:`= m > 0`, every candidate takes :math:`m` steps of
    gradient descent, :math:`x \leftarrow x - \eta \nabla f(x)` with
    :math:`\eta` = ``grad_lr``, before it is evaluated and the elites are
    chosen; the distribution is refitted to the moved candidates. Only the
    moved candidates are evaluated (``nfev`` grows by :math:`N` per
    iteration, ``njev`` by :math:`m N`). ``grad`` is not called when
    ``grad_steps=0``.

    **Bounds**: nothing is clipped silently. With ``bounds_handling="reflect"``
    (default) a sample outside :math:`[l, u]` is mirrored at the wall it
    crossed, as often as needed (:func:`reflect_into_box`; the candidates then
    follow the Gaussian folded into the box). ``"resample"`` redraws the
    samples that fell outside until all are inside, so the candidates follow
    the Gaussian truncated to the box exactly; it raises ``RuntimeError`` when
    that needs more than 1000 draws per sample. A gradient step that leaves the
    box is projected back onto it (projected gradient descent:
    :math:`x \leftarrow \min(\max(x - \eta \nabla f(x), l), u)`). The mean stays
    inside the box (a convex combination of points inside it), so ``f`` is only
    ever evaluated inside the bounds. A full covariance aligns with the level
    sets of ``f``, which meet the walls obliquely at a corner: a minimum where
    two or more bounds are active is then often missed. Measured on a 3-D
    sphere whose minimum is a corner of the box, 100 candidates, seeds 0-19,
    within 1e-4: ``"full"`` 0 of 20 (either handling), ``"diagonal"`` 20 of 20
    with reflection and 16 of 20 with resampling; a minimum on one wall is
    found by both covariances.

    **Stopping**, checked after each iteration in this order:

    * ``tol``: the largest standard deviation of a coordinate,
      :math:`\max_j \sqrt{\Sigma_{jj}}`, is below ``tol`` (status 0, success);
    * ``ftol`` / ``patience``: the best value found has improved by at most
      ``ftol * max(1, |best|)`` over the last ``patience`` iterations (status 1,
      success);
    * ``max_iter`` iterations have run (status 2, not a success);
    * before an iteration: it would take the evaluations of ``f`` beyond
      ``max_nfev`` (status 3, not a success). ``nfev`` never exceeds ``max_nfev``.

    Parameters
    ----------
    f : callable
        ``batch=True``: ``f(X)`` takes all candidates, a read-only (n, d)
        float64 array, and returns their n values. ``batch=False``: ``f(x)``
        takes one (d,) array (a copy) and returns a real number. Values are real or ``+inf``
        (ranked last); nan and ``-inf`` raise ``ValueError``.
    x0 : array_like (d,), optional
        Initial mean. Default: the centre of ``bounds`` (which must then be finite).
    bounds : sequence of (low, high) pairs (d, 2), or an object with ``lb`` and ``ub``, optional
        ``low < high``; ``-inf`` / ``inf`` leave a side open. ``x0`` must lie inside.
    population : int >= 2, default ``max(100, 20 d)``
        Candidates per iteration, :math:`N`.
    elite_frac : float in (0, 1], default 0.1
        :math:`\rho`; :math:`\lceil \rho N \rceil` must be at least 2.
        ``"full"`` needs more than :math:`d` elites for the estimate
        :math:`\hat\Sigma` to have full rank.
    smoothing : float in (0, 1], default 0.7
        :math:`\alpha`.
    dynamic_smoothing : tuple of two floats, optional
        ``(beta, q)`` with ``beta`` in (0, 1], ``q`` > 0: the std / covariance smoothing weight
        becomes :math:`\beta_t` (see above) instead of ``smoothing``.
    sigma0 : float or array_like (d,), default ``(high - low) / 2`` per bounded coordinate, else 1
        Initial standard deviations. Make them about as large as the distance
        from ``x0`` to the minimum (see "Premature convergence").
    covariance : {"diagonal", "full"}, default "diagonal"
        "full" learns correlations (rotated, ill-conditioned problems) at
        :math:`O(d^2)` memory and an :math:`O(d^3)` Cholesky factorisation per
        iteration.
    max_iter : int >= 1, default 1000
    max_nfev : int, optional
        Budget of evaluations of ``f``; at least ``population``.
    tol : float >= 0, default 1e-8
    ftol : float >= 0, default 1e-12
    patience : int >= 1, default 50
    seed : None, int >= 0 or numpy.random.Generator
        Same seed, same result. A Generator is used and advanced as is.
    batch : bool, default True
    grad : callable, optional
        Gradient of ``f``: ``grad(X)`` (n, d) -> (n, d) when ``batch=True``,
        ``grad(x)`` (d,) -> (d,) otherwise. Must be finite.
    grad_steps : int >= 0, default 0
    grad_lr : float > 0, default 0.01
    bounds_handling : {"reflect", "resample"}, default "reflect"

    Returns
    -------
    CEMResult
        ``x`` (the best candidate evaluated), ``fun``, ``nit``, ``nfev``,
        ``njev``, ``success``, ``status``, ``message``, the final distribution
        (``mean``, ``std`` and, for ``"full"``, ``cov``) and ``history``, a dict
        of arrays with one entry per iteration: ``best`` (the iteration's best
        value), ``mean`` (the mean of its values), ``elite_threshold``
        (:math:`\gamma_t`, the worst elite value), ``best_so_far``, ``spread``
        (the largest standard deviation after the refit) and ``nfev``
        (cumulative).

    Shapes
    ------
    x0 (d,); bounds (d, 2); f: (n, d) -> (n,) or (d,) -> scalar; grad: the
    shape of its input; result ``x``, ``mean``, ``std`` (d,); ``cov`` (d, d);
    every ``history`` column (nit,).

    Raises
    ------
    TypeError
        An argument of the wrong kind (``f`` not callable, a string for a number, ...).
    ValueError
        An argument out of range, naming it and the offending value; or ``f`` /
        ``grad`` returning the wrong shape, nan or ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent import cem
    >>> def sphere(X):
    ...     return np.sum((X - [1.0, -2.0]) ** 2, axis=1)
    >>> result = cem.minimize(sphere, x0=[0.0, 0.0], seed=0)
    >>> result.success, np.round(result.x, 6).tolist(), result.message
    (True, [1.0, -2.0], 'the largest standard deviation fell below tol=1e-08')
    >>> again = cem.minimize(sphere, x0=[0.0, 0.0], seed=0)
    >>> bool(np.array_equal(result.x, again.x)), result.nfev == again.nfev
    (True, True)
    """
    f = _check_callable(f, "f")
    box = _check_bounds(bounds)
    x0 = _check_x0(x0, box)
    dimension = x0.size
    population = max(100, 20 * dimension) if population is None else _check_int(population, "population", 2)
    elite_frac = check_scalar(elite_frac, "elite_frac", low=0.0, high=1.0, low_inclusive=False)
    n_elite = _elite_count(elite_frac, population)
    smoothing = check_scalar(smoothing, "smoothing", low=0.0, high=1.0, low_inclusive=False)
    if dynamic_smoothing is not None:
        if isinstance(dynamic_smoothing, (str, bytes)) or not hasattr(dynamic_smoothing, "__len__") \
                or len(dynamic_smoothing) != 2:
            raise ValueError(f"dynamic_smoothing must be None or a pair (beta, q), got {_describe(dynamic_smoothing)}")
        dynamic_beta = check_scalar(dynamic_smoothing[0], "dynamic_smoothing beta", low=0.0, high=1.0,
                                    low_inclusive=False)
        dynamic_q = check_finite_scalar(dynamic_smoothing[1], "dynamic_smoothing q", low=0.0, low_inclusive=False)
    sigma = _check_sigma0(sigma0, box, dimension)
    full = _check_choice(covariance, "covariance", COVARIANCES) == "full"
    max_iter = _check_int(max_iter, "max_iter", 1)
    max_nfev = _check_optional_int(max_nfev, "max_nfev", 1)
    if max_nfev is not None and max_nfev < population:
        raise ValueError(f"max_nfev must allow one iteration of population={population} evaluations, got {max_nfev}")
    tol = check_finite_scalar(tol, "tol", low=0.0)
    ftol = check_finite_scalar(ftol, "ftol", low=0.0)
    patience = _check_int(patience, "patience", 1)
    rng = _generator(seed)
    batch = _check_bool(batch, "batch")
    grad = _check_callable(grad, "grad", required=False)
    grad_steps = _check_int(grad_steps, "grad_steps", 0)
    if grad_steps > 0 and grad is None:
        raise ValueError(f"grad_steps={grad_steps} needs grad, the gradient of f; got grad=None")
    grad_lr = check_finite_scalar(grad_lr, "grad_lr", low=0.0, low_inclusive=False)
    handling = _check_choice(bounds_handling, "bounds_handling", BOUNDS_HANDLING)

    distribution = _Gaussian(x0, sigma, full)
    history: dict[str, list[Any]] = {
        name: [] for name in ("best", "mean", "elite_threshold", "best_so_far", "spread", "nfev")
    }
    best_x, best_value = None, math.inf
    nfev = njev = nit = 0
    status = STATUS_MAX_ITER
    while True:
        if max_nfev is not None and nfev + population > max_nfev:
            status = STATUS_MAX_NFEV
            break
        samples = distribution.draw_in_box(rng, population, box, handling)
        for _ in range(grad_steps):
            samples = samples - grad_lr * _gradients(grad, samples, batch)
            njev += population
            if box is not None:
                np.clip(samples, box[0], box[1], out=samples)
        values = _evaluate(f, samples, batch)
        nfev += population
        nit += 1

        order = np.argsort(values, kind="stable")
        elites = samples[order[:n_elite]]
        if values[order[0]] < best_value or best_x is None:
            best_value, best_x = float(values[order[0]]), samples[order[0]].copy()
        spread_smoothing = smoothing if dynamic_smoothing is None else \
            dynamic_smoothing_weight(nit, dynamic_beta, dynamic_q)
        distribution.refit(elites, smoothing, spread_smoothing)

        spread = distribution.spread()
        history["best"].append(values[order[0]])
        history["mean"].append(values.mean())
        history["elite_threshold"].append(values[order[n_elite - 1]])
        history["best_so_far"].append(best_value)
        history["spread"].append(spread)
        history["nfev"].append(nfev)
        if spread < tol:
            status = STATUS_SPREAD
            break
        if _stalled(history["best_so_far"], patience, ftol):
            status = STATUS_STALLED
            break
        if nit >= max_iter:
            status = STATUS_MAX_ITER
            break

    messages = {
        STATUS_SPREAD: f"the largest standard deviation fell below tol={tol:g}",
        STATUS_STALLED: f"the best value improved by at most ftol={ftol:g} (relative) in the last {patience} iterations",
        STATUS_MAX_ITER: f"max_iter={max_iter} iterations reached",
        STATUS_MAX_NFEV: f"the next iteration would exceed max_nfev={max_nfev} evaluations",
    }
    result = CEMResult(
        x=best_x, fun=best_value, nit=nit, nfev=nfev, njev=njev,
        success=status in (STATUS_SPREAD, STATUS_STALLED), status=status, message=messages[status],
        mean=distribution.mean, std=distribution.std,
    )
    if full:
        result["cov"] = distribution.cov
    result["history"] = {name: np.asarray(column, dtype=np.float64 if name != "nfev" else np.int64)
                         for name, column in history.items()}
    return result


def minimize_binary(
    f: Callable[..., Any],
    n: int,
    *,
    population: int | None = None,
    elite_frac: float = 0.1,
    smoothing: float = 0.7,
    p0: float | ArrayLike = 0.5,
    max_iter: int = 1000,
    max_nfev: int | None = None,
    tol: float = 1e-3,
    ftol: float = 0.0,
    patience: int = 20,
    seed: Seed | None = None,
    batch: bool = True,
) -> CEMResult:
    r"""Minimise ``f`` over 0/1 vectors of length ``n`` with the Bernoulli cross-entropy method.

    Iteration :math:`t` draws :math:`N` = ``population`` vectors with
    independent components :math:`x_{ij} \sim \mathrm{Bernoulli}(p_{t,j})`,
    keeps the :math:`k = \lceil \rho N \rceil` with the smallest values
    (ties keep the earlier sample) and refits by maximum likelihood -- the
    elites' frequency of ones -- then smooths:

    .. math::

        \hat p_j = \frac1k \sum_{i \in E_t} x_{ij}, \qquad
        p_{t+1} = \alpha \hat p + (1 - \alpha) p_t .

    A component started at exactly 0 or 1 stays there (every sample agrees
    with it), which fixes it: the Max-Cut example of de Boer et al. (2005)
    sets :math:`p_1 = 1` to remove the symmetry between a cut and its
    complement. To maximise, minimise ``-f``.

    **Stopping**, checked after each iteration in this order:

    * the probabilities have degenerated: every :math:`p_j` lies within
      ``tol`` of 0 or 1, :math:`\max_j \min(p_j, 1 - p_j) \le` ``tol``
      (status 4, success; the distribution then proposes one vector);
    * ``ftol`` / ``patience``: the best value found has improved by at most
      ``ftol * max(1, |best|)`` over the last ``patience`` iterations
      (status 1, success);
    * ``max_iter`` (status 2) or, before an iteration, ``max_nfev``
      (status 3): not a success.

    Parameters
    ----------
    f : callable
        ``batch=True``: ``f(X)`` takes a read-only (N, n) float64 array of 0.0
        and 1.0 and returns N values; ``batch=False``: ``f(x)`` takes one (n,) array
        and returns a real number. ``+inf`` ranks last; nan and ``-inf`` raise.
    n : int >= 1
        Length of the vectors.
    population : int >= 2, default ``max(100, 10 n)``
    elite_frac : float in (0, 1], default 0.1
    smoothing : float in (0, 1], default 0.7
    p0 : float or array_like (n,) in [0, 1], default 0.5
        Initial probabilities of a one.
    max_iter : int >= 1, default 1000
    max_nfev : int >= population, optional
    tol : float in [0, 0.5), default 1e-3
    ftol : float >= 0, default 0 (stop only when the best value has not improved at all)
    patience : int >= 1, default 20
    seed : None, int >= 0 or numpy.random.Generator
    batch : bool, default True

    Returns
    -------
    CEMResult
        ``x`` (the best vector evaluated, float64 0/1), ``fun``, ``p`` (the final
        probabilities), ``nit``, ``nfev``, ``success``, ``status``, ``message`` and
        ``history``: ``best``, ``mean``, ``elite_threshold``, ``best_so_far``,
        ``degeneracy`` (:math:`\max_j \min(p_j, 1 - p_j)` after the update) and
        ``nfev``, each (nit,), and ``p``, (nit, n): the probabilities after each
        iteration.

    Shapes
    ------
    f: (N, n) -> (N,) or (n,) -> scalar; result ``x``, ``p`` (n,); ``history["p"]`` (nit, n).

    Examples
    --------
    Max-Cut of a 4-cycle (edges 0-1, 1-2, 2-3, 3-0): the best cut separates
    {0, 2} from {1, 3} and cuts all four edges.

    >>> import numpy as np
    >>> from crossent import cem
    >>> weights = np.zeros((4, 4))
    >>> for i, j in [(0, 1), (1, 2), (2, 3), (3, 0)]:
    ...     weights[i, j] = weights[j, i] = 1.0
    >>> def negative_cut(X):  # sum of w_ij over pairs on different sides, each pair once
    ...     return -np.einsum("ni,ij,nj->n", X, weights, 1 - X)
    >>> result = cem.minimize_binary(negative_cut, 4, p0=[1.0, 0.5, 0.5, 0.5], seed=0)
    >>> result.x.tolist(), result.fun, result.success
    ([1.0, 0.0, 1.0, 0.0], -4.0, True)
    """
    f = _check_callable(f, "f")
    n = _check_int(n, "n", 1)
    population = max(100, 10 * n) if population is None else _check_int(population, "population", 2)
    elite_frac = check_scalar(elite_frac, "elite_frac", low=0.0, high=1.0, low_inclusive=False)
    n_elite = _elite_count(elite_frac, population)
    smoothing = check_scalar(smoothing, "smoothing", low=0.0, high=1.0, low_inclusive=False)
    p = _real_vector(p0, "p0")
    if p.ndim > 1 or (p.ndim == 1 and p.shape[0] != n):
        raise ValueError(f"p0 must be a probability or a vector of n={n} probabilities, got shape {p.shape}")
    p = np.broadcast_to(p, (n,)).copy()
    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"p0 must lie in [0, 1], got {float(p[i])!r}" + (f" at position {i}" if n > 1 else ""))
    max_iter = _check_int(max_iter, "max_iter", 1)
    max_nfev = _check_optional_int(max_nfev, "max_nfev", 1)
    if max_nfev is not None and max_nfev < population:
        raise ValueError(f"max_nfev must allow one iteration of population={population} evaluations, got {max_nfev}")
    tol = check_finite_scalar(tol, "tol", low=0.0, high=0.5, high_inclusive=False)
    ftol = check_finite_scalar(ftol, "ftol", low=0.0)
    patience = _check_int(patience, "patience", 1)
    rng = _generator(seed)
    batch = _check_bool(batch, "batch")

    history: dict[str, list[Any]] = {
        name: [] for name in ("best", "mean", "elite_threshold", "best_so_far", "degeneracy", "nfev", "p")
    }
    best_x, best_value = None, math.inf
    nfev = nit = 0
    status = STATUS_MAX_ITER
    while True:
        if max_nfev is not None and nfev + population > max_nfev:
            status = STATUS_MAX_NFEV
            break
        samples = (rng.random((population, n)) < p).astype(np.float64)
        values = _evaluate(f, samples, batch)
        nfev += population
        nit += 1

        order = np.argsort(values, kind="stable")
        if values[order[0]] < best_value or best_x is None:
            best_value, best_x = float(values[order[0]]), samples[order[0]].copy()
        p = smoothing * samples[order[:n_elite]].mean(axis=0) + (1 - smoothing) * p

        degeneracy = float(np.max(np.minimum(p, 1 - p)))
        history["best"].append(values[order[0]])
        history["mean"].append(values.mean())
        history["elite_threshold"].append(values[order[n_elite - 1]])
        history["best_so_far"].append(best_value)
        history["degeneracy"].append(degeneracy)
        history["nfev"].append(nfev)
        history["p"].append(p.copy())
        if degeneracy <= tol:
            status = STATUS_DEGENERATE
            break
        if _stalled(history["best_so_far"], patience, ftol):
            status = STATUS_STALLED
            break
        if nit >= max_iter:
            status = STATUS_MAX_ITER
            break

    messages = {
        STATUS_DEGENERATE: f"every probability is within tol={tol:g} of 0 or 1",
        STATUS_STALLED: f"the best value improved by at most ftol={ftol:g} (relative) in the last {patience} iterations",
        STATUS_MAX_ITER: f"max_iter={max_iter} iterations reached",
        STATUS_MAX_NFEV: f"the next iteration would exceed max_nfev={max_nfev} evaluations",
    }
    columns = {name: np.asarray(column, dtype=np.int64 if name == "nfev" else np.float64)
               for name, column in history.items() if name != "p"}
    columns["p"] = np.asarray(history["p"], dtype=np.float64).reshape(nit, n)
    return CEMResult(
        x=best_x, fun=best_value, p=p, nit=nit, nfev=nfev,
        success=status in (STATUS_DEGENERATE, STATUS_STALLED), status=status, message=messages[status],
        history=columns,
    )
