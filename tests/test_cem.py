"""crossent.cem: Gaussian and Bernoulli cross-entropy method, CEM with gradient steps, bounds, stopping, arguments."""

import itertools
import math

import numpy as np
import pytest

from crossent import cem


def rosenbrock(X):
    return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1)


def sphere_at(center):
    center = np.asarray(center, dtype=float)

    def value(X):
        return np.sum((X - center) ** 2, axis=1)

    def gradient(X):
        return 2.0 * (X - center)

    return value, gradient


class Recorder:
    """Wraps a batch objective and keeps every candidate it was asked to evaluate."""

    def __init__(self, function):
        self.function, self.calls = function, []

    def __call__(self, X):
        self.calls.append(np.array(X, copy=True))
        return self.function(X)

    @property
    def points(self):
        return np.concatenate(self.calls)


# -- continuous CEM -----------------------------------------------------------------------------


def test_finds_the_rosenbrock_minimum_in_two_dimensions():
    # seed 0 fixed; with these settings 16 of seeds 0-19 reach 1e-4 (the rest stop in the valley)
    result = cem.minimize(rosenbrock, [-1.5, 2.0], covariance="full", sigma0=3.0, population=300, seed=0)
    assert result.success, result.message
    np.testing.assert_allclose(result.x, [1.0, 1.0], atol=1e-4)
    assert result.fun < 1e-8
    assert result.fun == pytest.approx(float(rosenbrock(result.x[None])[0]), abs=0)


def test_result_fields_and_history_are_consistent():
    value, _ = sphere_at([0.5, -1.0, 2.0])
    recorder = Recorder(value)
    result = cem.minimize(recorder, np.zeros(3), sigma0=3.0, population=40, elite_frac=0.25, seed=3)
    history = result.history
    assert set(history) == {"best", "mean", "elite_threshold", "best_so_far", "spread", "nfev"}
    assert all(column.shape == (result.nit,) for column in history.values())
    assert result.nfev == 40 * result.nit == history["nfev"][-1] == recorder.points.shape[0]
    assert result.njev == 0
    # recompute every column from the candidates the objective saw
    for iteration, batch in enumerate(recorder.calls):
        values = np.sort(value(batch))
        assert history["best"][iteration] == values[0]
        assert history["mean"][iteration] == pytest.approx(value(batch).mean(), rel=1e-12)
        assert history["elite_threshold"][iteration] == values[9]  # ceil(0.25 * 40) = 10 elites
    np.testing.assert_array_equal(history["best_so_far"], np.minimum.accumulate(history["best"]))
    assert result.fun == history["best_so_far"][-1] == value(result.x[None])[0]
    assert result.success and result.status in (0, 1)
    if result.status == 0:
        assert history["spread"][-1] < 1e-8
    else:  # f is about spread**2 here, so the best value stalls at 1e-12 before the spread reaches 1e-8
        assert history["best_so_far"][-51] - history["best_so_far"][-1] <= 1e-12
        assert history["best_so_far"][-52] - history["best_so_far"][-1] > 1e-12
    assert result.std.shape == (3,) and "cov" not in result
    assert result.x in recorder.points  # x is an evaluated candidate, not the final mean
    assert result.fun == pytest.approx(0.0, abs=1e-14)


def test_one_iteration_is_the_maximum_likelihood_refit_with_smoothing():
    """The distribution after one iteration, recomputed from the candidates with naive loops."""
    value, _ = sphere_at([2.0, -1.0])
    for covariance in ("diagonal", "full"):
        recorder = Recorder(value)
        x0, sigma0, alpha = np.array([0.3, 0.1]), np.array([1.5, 0.5]), 0.6
        result = cem.minimize(recorder, x0, sigma0=sigma0, population=20, elite_frac=0.3, smoothing=alpha,
                              covariance=covariance, max_iter=1, seed=11)
        samples = recorder.points
        scores = value(samples)
        elites = [samples[i] for i in sorted(range(20), key=lambda i: scores[i])[:6]]
        mean = [sum(e[j] for e in elites) / 6 for j in range(2)]
        cov = [[sum((e[a] - mean[a]) * (e[b] - mean[b]) for e in elites) / 6 for b in range(2)] for a in range(2)]
        np.testing.assert_allclose(result.mean, alpha * np.array(mean) + (1 - alpha) * x0, rtol=1e-12)
        if covariance == "diagonal":  # standard deviations are smoothed
            expected_std = alpha * np.sqrt(np.diag(cov)) + (1 - alpha) * sigma0
            np.testing.assert_allclose(result.std, expected_std, rtol=1e-12)
        else:  # the covariance matrix is smoothed
            expected_cov = alpha * np.array(cov) + (1 - alpha) * np.diag(sigma0**2)
            np.testing.assert_allclose(result.cov, expected_cov, rtol=1e-12)
            np.testing.assert_allclose(result.std, np.sqrt(np.diag(expected_cov)), rtol=1e-12)
        assert result.status == 2 and not result.success and result.nit == 1


def test_dynamic_smoothing_uses_the_tutorial_weight_for_the_spread_only():
    value, _ = sphere_at([1.0])
    weights = [cem.dynamic_smoothing_weight(t, 0.8, 5) for t in (1, 2, 3)]
    assert weights == pytest.approx([0.8, 0.8 - 0.8 * 0.5**5, 0.8 - 0.8 * (2 / 3) ** 5], rel=1e-15)
    recorder = Recorder(value)
    result = cem.minimize(recorder, [0.0], sigma0=1.0, population=10, elite_frac=0.5, smoothing=0.7,
                          dynamic_smoothing=(0.8, 5), max_iter=3, seed=2)
    mean, std = 0.0, 1.0
    for batch, weight in zip(recorder.calls, weights):
        elites = batch[np.argsort(value(batch), kind="stable")[:5], 0]
        std = weight * elites.std() + (1 - weight) * std
        mean = 0.7 * elites.mean() + 0.3 * mean
    assert result.std[0] == pytest.approx(std, rel=1e-12)
    assert result.mean[0] == pytest.approx(mean, rel=1e-12)


def test_full_covariance_beats_diagonal_on_a_rotated_ill_conditioned_quadratic():
    dimension = 4
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(dimension, dimension)))
    hessian = rotation @ np.diag(np.logspace(0, 4, dimension)) @ rotation.T  # condition number 1e4
    center = np.array([1.0, -2.0, 0.5, 3.0])

    def quadratic(X):
        shifted = X - center
        return np.einsum("ni,ij,nj->n", shifted, hessian, shifted)

    options = dict(x0=np.zeros(dimension), sigma0=2.0, population=100, max_nfev=20_000, seed=5)
    full = cem.minimize(quadratic, covariance="full", **options)
    diagonal = cem.minimize(quadratic, covariance="diagonal", **options)
    assert full.success and full.fun < 1e-12
    np.testing.assert_allclose(full.x, center, atol=1e-5)
    assert diagonal.fun > 1e6 * full.fun
    assert full.cov.shape == (dimension, dimension)
    np.testing.assert_allclose(full.cov, full.cov.T, rtol=0, atol=0)


def test_gradient_steps_converge_in_fewer_iterations_on_a_smooth_problem():
    value, gradient = sphere_at([1.0, -2.0, 0.5, 3.0, -1.0])
    options = dict(x0=np.zeros(5), sigma0=3.0, population=100, seed=4)
    plain = cem.minimize(value, **options)
    hybrid = cem.minimize(value, grad=gradient, grad_steps=2, grad_lr=0.1, **options)
    assert plain.success and hybrid.success
    assert hybrid.nit < plain.nit, (hybrid.nit, plain.nit)
    # the iteration at which the best value first drops below 1e-6 (seeds 0-19: always earlier with gradient steps)
    reached_plain = np.flatnonzero(plain.history["best_so_far"] < 1e-6)
    reached_hybrid = np.flatnonzero(hybrid.history["best_so_far"] < 1e-6)
    assert reached_hybrid.size and reached_plain.size and reached_hybrid[0] < reached_plain[0]
    assert hybrid.njev == 2 * hybrid.nfev and hybrid.nfev == 100 * hybrid.nit


def test_gradient_steps_are_taken_before_the_candidates_are_evaluated():
    value, gradient = sphere_at([0.0, 0.0])
    moved = []

    def recording_gradient(X):
        moved.append(X.copy())
        return gradient(X)

    recorder = Recorder(value)
    cem.minimize(recorder, [3.0, 3.0], population=8, elite_frac=0.5, max_iter=1, seed=0,
                 grad=recording_gradient, grad_steps=2, grad_lr=0.25)
    # f sees x - 0.25 * 2x applied twice = x / 4 of the drawn candidates
    np.testing.assert_allclose(moved[1], moved[0] / 2, rtol=1e-15)
    np.testing.assert_allclose(recorder.points, moved[0] / 4, rtol=1e-15)


def test_same_seed_same_result_and_batch_false_is_the_same_run():
    value, _ = sphere_at([0.3, -0.7, 1.1])
    first = cem.minimize(value, np.zeros(3), population=30, seed=123)
    second = cem.minimize(value, np.zeros(3), population=30, seed=123)
    generator = cem.minimize(value, np.zeros(3), population=30, seed=np.random.default_rng(123))
    one_at_a_time = cem.minimize(lambda x: float(np.sum((x - [0.3, -0.7, 1.1]) ** 2)), np.zeros(3),
                                 population=30, seed=123, batch=False)
    other = cem.minimize(value, np.zeros(3), population=30, seed=124)
    for run in (second, generator, one_at_a_time):
        np.testing.assert_array_equal(run.x, first.x)
        assert run.nit == first.nit and run.nfev == first.nfev
        for name in first.history:
            np.testing.assert_array_equal(run.history[name], first.history[name])
    assert not np.array_equal(other.x, first.x)


def test_batch_false_passes_one_vector_at_a_time():
    shapes = []

    def scalar_objective(x):
        shapes.append(x.shape)
        return float(x @ x)

    result = cem.minimize(scalar_objective, [1.0, 1.0], population=10, elite_frac=0.2, max_iter=2, seed=0,
                          batch=False)
    assert shapes == [(2,)] * 20 and result.nfev == 20


# -- bounds ---------------------------------------------------------------------------------------


def naive_reflect(value, low, high):
    """Mirror at the wall crossed, one crossing at a time, until inside."""
    while value < low or value > high:
        value = 2 * low - value if value < low else 2 * high - value
    return value


def test_reflect_into_box_matches_repeated_mirroring():
    rng = np.random.default_rng(0)
    lower = np.array([0.0, -1.0, -np.inf, 2.0, -np.inf])
    upper = np.array([1.0, 3.0, 5.0, np.inf, np.inf])
    points = rng.normal(scale=8.0, size=(200, 5))
    reflected = cem.reflect_into_box(points, lower, upper)
    expected = np.array([[naive_reflect(v, lo, hi) for v, lo, hi in zip(row, lower, upper)] for row in points])
    np.testing.assert_allclose(reflected, expected, rtol=0, atol=1e-12)
    assert np.all((reflected >= lower) & (reflected <= upper))
    inside = rng.uniform([0.0, -1.0, -10.0, 2.0, -10.0], [1.0, 3.0, 5.0, 10.0, 10.0], size=(10, 5))
    np.testing.assert_array_equal(cem.reflect_into_box(inside, lower, upper), inside)


@pytest.mark.parametrize("covariance, handling", list(itertools.product(cem.COVARIANCES, cem.BOUNDS_HANDLING)))
def test_every_candidate_lies_in_the_bounds_and_the_boundary_optimum_is_found(covariance, handling):
    bounds = [(-1.0, 1.0), (-2.0, 2.0), (0.0, 10.0)]
    # diagonal: the unconstrained minimum lies outside the box in every coordinate, so the constrained one is
    # the corner (1, -2, 10). full: outside in the first coordinate only, minimum (1, 0.3, 4) on one wall (a
    # full covariance misses corners where several bounds are active, see the docstring). Seeds 0-19 all pass.
    center = np.array([3.0, -4.0, 12.0] if covariance == "diagonal" else [1.5, 0.3, 4.0])
    expected = np.array([1.0, -2.0, 10.0] if covariance == "diagonal" else [1.0, 0.3, 4.0])
    value, gradient = sphere_at(center)
    lower, upper = np.array(bounds).T
    for gradient_steps in (0, 1):  # a gradient step that leaves the box is projected back onto it
        recorder = Recorder(value)
        result = cem.minimize(recorder, bounds=bounds, covariance=covariance, bounds_handling=handling,
                              population=200, seed=1, grad=gradient, grad_steps=gradient_steps, grad_lr=0.4)
        points = recorder.points
        assert np.all((points >= lower) & (points <= upper))
        assert result.success
        np.testing.assert_allclose(result.x, expected, atol=1e-6)
        if gradient_steps == 0:  # clipping would pile a good part of the first, wide batch onto the walls
            first_batch = recorder.calls[0]
            assert not np.any((first_batch == lower) | (first_batch == upper))


def test_reflection_is_the_documented_fold_of_the_gaussian_draws():
    recorder = Recorder(lambda X: X[:, 0] ** 2)
    cem.minimize(recorder, [0.9], bounds=[(0.0, 1.0)], sigma0=2.0, population=50, max_iter=1, seed=8)
    draws = 0.9 + 2.0 * np.random.default_rng(8).standard_normal((50, 1))
    expected = [[naive_reflect(v, 0.0, 1.0)] for v in draws[:, 0]]
    np.testing.assert_allclose(recorder.points, expected, rtol=0, atol=1e-14)


def truncated_normal_mean(mean, std, low, high):
    def phi(z):
        return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def cdf(z):
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    a, b = (low - mean) / std, (high - mean) / std
    return mean + std * (phi(a) - phi(b)) / (cdf(b) - cdf(a))


@pytest.mark.parametrize("covariance", cem.COVARIANCES)
def test_resampling_draws_the_truncated_gaussian(covariance):
    recorder = Recorder(lambda X: X[:, 0] ** 2)
    n = 20_000
    cem.minimize(recorder, [0.8, 0.0], bounds=[(-0.5, 1.0), (-3.0, 3.0)], sigma0=1.0, population=n,
                 max_iter=1, seed=0, bounds_handling="resample", covariance=covariance)
    first = recorder.points[:, 0]
    expected = truncated_normal_mean(0.8, 1.0, -0.5, 1.0)
    standard_error = first.std() / math.sqrt(n)
    assert abs(first.mean() - expected) < 5 * standard_error
    # the reflected sample of the same distribution has a different mean: the test can tell them apart
    reflected = Recorder(lambda X: X[:, 0] ** 2)
    cem.minimize(reflected, [0.8, 0.0], bounds=[(-0.5, 1.0), (-3.0, 3.0)], sigma0=1.0, population=n,
                 max_iter=1, seed=0, covariance=covariance)
    assert abs(reflected.points[:, 0].mean() - expected) > 10 * standard_error


def test_resampling_gives_up_with_an_error_when_the_box_holds_no_mass():
    # a full covariance at a corner of a 12-dimensional box keeps about 2**-12 of its mass inside
    dimension = 12
    with pytest.raises(RuntimeError, match="reflect"):
        cem.minimize(lambda X: X.sum(axis=1), np.zeros(dimension), bounds=[(0.0, 1.0)] * dimension,
                     sigma0=0.5, covariance="full", bounds_handling="resample", population=50, seed=0)


# -- stopping rules -------------------------------------------------------------------------------


def test_max_nfev_is_never_exceeded():
    value, _ = sphere_at([5.0, 5.0])
    result = cem.minimize(value, [0.0, 0.0], population=30, max_nfev=100, seed=0)
    assert result.nfev == 90 and result.nit == 3 and result.status == 3 and not result.success
    assert "max_nfev=100" in result.message


def test_max_iter_stops_without_success():
    value, _ = sphere_at([5.0, 5.0])
    result = cem.minimize(value, [0.0, 0.0], population=30, max_iter=4, seed=0)
    assert result.nit == 4 and result.status == 2 and not result.success and "max_iter=4" in result.message


def test_a_flat_function_stops_for_lack_of_improvement():
    # the spread of a flat function does not shrink, so only the improvement rule can stop it
    result = cem.minimize(lambda X: np.ones(len(X)), [0.0, 0.0], population=20, elite_frac=0.5, patience=7,
                          seed=0)
    assert result.status == 1 and result.success and result.nit == 8
    assert result.history["spread"][-1] > 0.1


def test_infinite_values_rank_last():
    def half_plane(X):
        return np.where(X[:, 0] > 0, np.inf, np.sum((X - [-1.0, 2.0]) ** 2, axis=1))

    result = cem.minimize(half_plane, [0.0, 0.0], population=50, seed=0)
    np.testing.assert_allclose(result.x, [-1.0, 2.0], atol=1e-6)


# -- Bernoulli CEM --------------------------------------------------------------------------------


def cut_values(X, weights):
    """Total weight of the edges between the ones and the zeros of each row of X."""
    return np.einsum("ni,ij,nj->n", X, weights, 1.0 - X)


def brute_force_max_cut(weights):
    n = weights.shape[0]
    best = -1.0
    for bits in itertools.product((0.0, 1.0), repeat=n - 1):
        side = (1.0,) + bits  # node 0 on side 1: a cut and its complement are the same cut
        value = sum(weights[i, j] for i in range(n) for j in range(i + 1, n) if side[i] != side[j])
        best = max(best, value)
    return best


def test_bernoulli_cem_finds_the_maximum_cut_of_a_small_graph():
    rng = np.random.default_rng(7)
    n = 12
    weights = np.triu(rng.uniform(0.0, 1.0, (n, n)) * (rng.random((n, n)) < 0.6), 1)
    weights = weights + weights.T
    optimum = brute_force_max_cut(weights)
    p0 = np.full(n, 0.5)
    p0[0] = 1.0  # fixes node 0, as in the tutorial
    result = cem.minimize_binary(lambda X: -cut_values(X, weights), n, p0=p0, population=200, seed=0)
    assert result.success and result.status == 4
    assert -result.fun == pytest.approx(optimum, rel=1e-12)
    assert cut_values(result.x[None], weights)[0] == pytest.approx(optimum, rel=1e-12)
    assert result.x[0] == 1.0 and set(np.unique(result.x)) <= {0.0, 1.0}
    # the probabilities have degenerated onto the optimal cut
    assert np.max(np.minimum(result.p, 1 - result.p)) <= 1e-3
    np.testing.assert_array_equal(np.round(result.p), result.x)


def test_bernoulli_refit_history_and_degenerate_components():
    recorder = Recorder(lambda X: -X.sum(axis=1))
    p0 = np.array([0.0, 1.0, 0.5, 0.5])
    result = cem.minimize_binary(recorder, 4, p0=p0, population=20, elite_frac=0.2, smoothing=0.6,
                                 max_iter=3, tol=0.0, seed=1)
    assert result.history["p"].shape == (3, 4)
    assert set(result.history) == {"best", "mean", "elite_threshold", "best_so_far", "degeneracy", "nfev", "p"}
    p = p0
    for batch, recorded in zip(recorder.calls, result.history["p"]):
        elites = batch[np.argsort(-batch.sum(axis=1), kind="stable")[:4]]
        p = 0.6 * elites.mean(axis=0) + 0.4 * p
        np.testing.assert_allclose(recorded, p, rtol=1e-15)
    assert np.all(recorder.points[:, 0] == 0.0) and np.all(recorder.points[:, 1] == 1.0)
    np.testing.assert_allclose(result.history["degeneracy"], np.max(np.minimum(result.history["p"],
                                                                               1 - result.history["p"]), axis=1))
    assert result.status == 2 and result.nfev == 60


def test_bernoulli_same_seed_same_result():
    weights = np.ones((6, 6)) - np.eye(6)
    runs = [cem.minimize_binary(lambda X: -cut_values(X, weights), 6, population=50, seed=9) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    np.testing.assert_array_equal(runs[0].history["p"], runs[1].history["p"])
    assert -runs[0].fun == 9.0  # K6: three against three cut 9 edges


# -- arguments ------------------------------------------------------------------------------------


def _sphere(X):
    return np.sum(X**2, axis=1)


BAD_MINIMIZE_ARGUMENTS = [
    (dict(f=None), TypeError, "f must be callable"),
    (dict(x0=None), ValueError, "x0 is required"),
    (dict(x0=[[1.0, 2.0]]), ValueError, r"x0 must be a non-empty vector.*\(1, 2\)"),
    (dict(x0=[1.0, np.nan]), ValueError, "x0 must be finite, got nan"),
    (dict(x0="ab"), TypeError, "x0 must be an array"),
    (dict(bounds=[(0.0, 1.0)]), ValueError, r"bounds must give one .* \(2\), got 1"),
    (dict(bounds=[(0.0, 1.0), (2.0, 2.0)]), ValueError, r"bounds\[1\] must satisfy low < high.*\(2\.0, 2\.0\)"),
    (dict(bounds=[0.0, 1.0]), ValueError, r"bounds must be a sequence of \(low, high\) pairs"),
    (dict(x0=[5.0, 0.0], bounds=[(0.0, 1.0), (-1.0, 1.0)]), ValueError, r"x0\[0\]=5\.0 is outside"),
    (dict(population=1), ValueError, "population must be an integer >= 2, got 1"),
    (dict(population=10.0), TypeError, "population must be an integer"),
    (dict(elite_frac=0.0), ValueError, r"elite_frac must lie in \(0, 1\], got 0\.0"),
    (dict(elite_frac=1.5), ValueError, r"elite_frac must lie in \(0, 1\], got 1\.5"),
    (dict(elite_frac=0.01, population=50), ValueError, "at least 2 elites.*elite_frac=0.01.*population=50"),
    (dict(smoothing=0.0), ValueError, r"smoothing must lie in \(0, 1\], got 0\.0"),
    (dict(smoothing="0.5"), TypeError, "smoothing must be a real number"),
    (dict(dynamic_smoothing=0.8), ValueError, r"dynamic_smoothing must be None or a pair \(beta, q\), got 0\.8"),
    (dict(dynamic_smoothing=(0.8, -1)), ValueError, "dynamic_smoothing q must lie in"),
    (dict(sigma0=-1.0), ValueError, "sigma0 must be finite and > 0, got -1.0"),
    (dict(sigma0=[1.0, 2.0, 3.0]), ValueError, r"sigma0 must be .* 2 positive numbers, got shape \(3,\)"),
    (dict(covariance="spherical"), ValueError, "covariance must be one of 'diagonal', 'full', got 'spherical'"),
    (dict(max_iter=0), ValueError, "max_iter must be an integer >= 1, got 0"),
    (dict(max_nfev=10, population=20), ValueError, "max_nfev must allow one iteration of population=20.*got 10"),
    (dict(tol=-1.0), ValueError, r"tol must lie in \[0, inf\], got -1\.0"),
    (dict(tol=np.inf), ValueError, "tol must be finite"),
    (dict(ftol=np.nan), ValueError, "ftol must be a number, got nan"),
    (dict(patience=0), ValueError, "patience must be an integer >= 1, got 0"),
    (dict(seed=-3), ValueError, "seed must be .* got -3"),
    (dict(seed=1.5), TypeError, "seed must be None, an integer"),
    (dict(batch=1), TypeError, "batch must be True or False, got 1"),
    (dict(grad="nope"), TypeError, "grad must be callable"),
    (dict(grad_steps=2), ValueError, "grad_steps=2 needs grad"),
    (dict(grad_steps=-1, grad=lambda X: X), ValueError, "grad_steps must be an integer >= 0, got -1"),
    (dict(grad_lr=0.0, grad=lambda X: X, grad_steps=1), ValueError, r"grad_lr must lie in \(0, inf\], got 0\.0"),
    (dict(bounds_handling="clip"), ValueError, "bounds_handling must be one of 'reflect', 'resample', got 'clip'"),
]


@pytest.mark.parametrize("overrides, error, message", BAD_MINIMIZE_ARGUMENTS,
                         ids=[f"{next(iter(case[0]))}-{i}" for i, case in enumerate(BAD_MINIMIZE_ARGUMENTS)])
def test_minimize_rejects_bad_arguments(overrides, error, message):
    arguments = dict(f=_sphere, x0=[0.5, 0.5], population=20, max_iter=2, seed=0)
    arguments.update(overrides)
    f = arguments.pop("f")
    with pytest.raises(error, match=message):
        cem.minimize(f, **arguments)


@pytest.mark.parametrize("objective, gradient, batch, message", [
    (lambda X: np.ones((len(X), 1)), None, True, r"one value per sample, shape \(20,\), got shape \(20, 1\)"),
    (lambda X: np.where(np.arange(len(X)) == 3, np.nan, 1.0), None, True, "returned nan for sample 3"),
    (lambda X: np.full(len(X), -np.inf), None, True, "returned -inf for sample 0"),
    (lambda x: np.nan, None, False, "returned nan for sample 0"),
    (_sphere, lambda X: X[:, :1], True, r"grad must return gradients of shape \(n, d\).*got shape \(20, 1\)"),
    (_sphere, lambda X: X * np.nan, True, "grad returned nan at sample 0, coordinate 0"),
])
def test_bad_objective_or_gradient_output_is_named(objective, gradient, batch, message):
    with pytest.raises(ValueError, match=message):
        cem.minimize(objective, [0.5, 0.5], population=20, max_iter=2, seed=0, batch=batch, grad=gradient,
                     grad_steps=0 if gradient is None else 1)


def test_a_non_numeric_value_from_a_per_sample_objective_is_a_type_error():
    with pytest.raises(TypeError, match="must return a real number, got 'x'"):
        cem.minimize(lambda x: "x", [0.0], population=20, seed=0, batch=False)
    with pytest.raises(ValueError, match=r"one real number per sample, got an array of shape \(1,\)"):
        cem.minimize(lambda x: x[:1], [0.0, 1.0], population=20, seed=0, batch=False)


def test_the_objective_and_gradient_cannot_change_the_candidates():
    def overwrite(X):
        X[:] = 0.0
        return X.sum(axis=1)

    with pytest.raises(ValueError, match="read-only"):
        cem.minimize(overwrite, [1.0, 1.0], population=20, seed=0)
    with pytest.raises(ValueError, match="read-only"):
        cem.minimize(_sphere, [1.0, 1.0], population=20, seed=0, grad=overwrite, grad_steps=1)
    with pytest.raises(ValueError, match="read-only"):
        cem.minimize_binary(overwrite, 3, population=20, seed=0)


BAD_BINARY_ARGUMENTS = [
    (dict(n=0), ValueError, "n must be an integer >= 1, got 0"),
    (dict(n=2.5), TypeError, "n must be an integer"),
    (dict(p0=1.5), ValueError, r"p0 must lie in \[0, 1\], got 1\.5"),
    (dict(p0=[0.5, 0.5]), ValueError, r"p0 must be a probability or a vector of n=3 .* \(2,\)"),
    (dict(tol=0.5), ValueError, r"tol must lie in \[0, 0\.5\), got 0\.5"),
    (dict(population=1), ValueError, "population must be an integer >= 2, got 1"),
    (dict(smoothing=2.0), ValueError, r"smoothing must lie in \(0, 1\], got 2\.0"),
    (dict(max_nfev=5), ValueError, "max_nfev must allow one iteration"),
    (dict(f=3), TypeError, "f must be callable"),
]


@pytest.mark.parametrize("overrides, error, message", BAD_BINARY_ARGUMENTS,
                         ids=[next(iter(case[0])) for case in BAD_BINARY_ARGUMENTS])
def test_minimize_binary_rejects_bad_arguments(overrides, error, message):
    arguments = dict(f=lambda X: X.sum(axis=1), n=3, population=20, seed=0)
    arguments.update(overrides)
    f, n = arguments.pop("f"), arguments.pop("n")
    with pytest.raises(error, match=message):
        cem.minimize_binary(f, n, **arguments)


def test_result_behaves_like_an_optimize_result():
    result = cem.minimize(_sphere, [1.0], population=20, max_iter=3, seed=0)
    assert result.x is result["x"] and "history" in dir(result)
    with pytest.raises(AttributeError):
        result.missing
    text = repr(result)
    assert "fun:" in text and "history: {best: (3 rows)" in text
