"""The 2-D toy data sets: shapes, dtypes, balance, seeding, geometry, argument checks and learnability."""

import numpy as np
import pytest

import crossent
from crossent.datasets.synthetic import make_blobs, make_moons, make_spirals
from crossent.nn import MLP, SoftmaxRegression

GENERATORS = {
    "blobs": lambda **kw: make_blobs(**kw),
    "moons": lambda **kw: make_moons(**kw),
    "spirals": lambda **kw: make_spirals(**kw),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_shapes_and_dtypes(name):
    X, y = GENERATORS[name](n_samples=61)
    assert X.shape == (61, 2) and X.dtype == np.float32
    assert y.shape == (61,) and y.dtype == np.int64
    assert np.isfinite(X).all()
    X64, y64 = GENERATORS[name](n_samples=61, dtype=np.float64)
    assert X64.dtype == np.float64
    # float32 is the float64 data rounded once, not a different draw
    np.testing.assert_array_equal(X64.astype(np.float32), X)
    np.testing.assert_array_equal(y64, y)


@pytest.mark.parametrize(
    "make, n_samples, expected_counts",
    [
        (lambda n: make_blobs(n, 3), 301, [101, 100, 100]),
        (lambda n: make_blobs(n, 4), 300, [75, 75, 75, 75]),
        (lambda n: make_moons(n), 7, [4, 3]),
        (lambda n: make_spirals(n, 5), 13, [3, 3, 3, 2, 2]),
        (lambda n: make_spirals(n, 2), 2, [1, 1]),
    ],
)
def test_classes_are_balanced(make, n_samples, expected_counts):
    _, y = make(n_samples)
    assert np.bincount(y, minlength=len(expected_counts)).tolist() == expected_counts


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_data_and_rows_are_shuffled(name):
    make = GENERATORS[name]
    X1, y1 = make(n_samples=200, seed=7)
    X2, y2 = make(n_samples=200, seed=7)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = make(n_samples=200, seed=8)
    assert not np.array_equal(X1, X3)
    # a Generator seeds the same way as its integer seed
    X4, y4 = make(n_samples=200, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(X4, X1)
    np.testing.assert_array_equal(y4, y1)
    # shuffled: the labels are not in blocks (a sorted label vector changes only C - 1 times)
    assert np.count_nonzero(np.diff(y1)) > 50


def test_blob_centres_are_four_apart_on_a_circle():
    for n_classes in (2, 3, 6):
        X, y = make_blobs(600 * n_classes, n_classes, spread=0.05, seed=1, dtype=np.float64)
        centres = np.array([X[y == k].mean(axis=0) for k in range(n_classes)])
        neighbours = np.linalg.norm(centres - np.roll(centres, -1, axis=0), axis=1)
        np.testing.assert_allclose(neighbours, 4.0, atol=0.02)
        radii = np.linalg.norm(centres, axis=1)
        np.testing.assert_allclose(radii, 2 / np.sin(np.pi / n_classes), atol=0.02)
        # spread is the per-coordinate standard deviation
        np.testing.assert_allclose(X[y == 0].std(axis=0), 0.05, rtol=0.15)


def test_noise_free_moons_lie_on_the_two_arcs():
    X, y = make_moons(101, noise=0.0, dtype=np.float64)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-12)
    assert upper[:, 1].min() >= -1e-12
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-12)
    assert lower[:, 1].max() <= 0.5 + 1e-12
    # the noise has the requested standard deviation
    noisy, labels = make_moons(4000, noise=0.1, seed=3, dtype=np.float64)
    clean, clean_labels = make_moons(4000, noise=0.0, seed=3, dtype=np.float64)
    np.testing.assert_array_equal(labels, clean_labels)  # same shuffle: the noise is drawn first either way
    np.testing.assert_allclose((noisy - clean).std(), 0.1, rtol=0.05)


def test_noise_free_spirals_follow_the_formula():
    n_classes, turns = 4, 1.5
    X, y = make_spirals(400, n_classes, noise=0.0, turns=turns, dtype=np.float64)
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.min() > 0 and radius.max() == pytest.approx(1.0)
    expected_angle = 2 * np.pi * (turns * radius + y / n_classes)
    # compare angles modulo 2 pi through their unit vectors
    np.testing.assert_allclose(X / radius[:, None], np.stack([np.cos(expected_angle), np.sin(expected_angle)], 1),
                               atol=1e-9)
    for label in range(n_classes):
        np.testing.assert_allclose(np.sort(radius[y == label]), np.arange(1, 101) / 100, atol=1e-12)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: make_blobs(0), "n_samples"),
        (lambda: make_blobs(2, 3), "n_samples"),
        (lambda: make_blobs(10, 1), "n_classes"),
        (lambda: make_blobs(10, spread=-1.0), "spread"),
        (lambda: make_blobs(10, spread=float("inf")), "spread"),
        (lambda: make_blobs(10, seed=-1), "seed"),
        (lambda: make_moons(1), "n_samples"),
        (lambda: make_moons(10, noise=-0.1), "noise"),
        (lambda: make_moons(10, noise=float("nan")), "noise"),
        (lambda: make_spirals(10, 0), "n_classes"),
        (lambda: make_spirals(10, noise=-1), "noise"),
        (lambda: make_spirals(10, turns=0.0), "turns"),
        (lambda: make_spirals(10, turns=-2.0), "turns"),
    ],
)
def test_bad_values_raise_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: make_blobs(10.0), "n_samples"),
        (lambda: make_blobs(10, True), "n_classes"),
        (lambda: make_moons(10, seed="zero"), "seed"),
        (lambda: make_moons(10, seed=1.5), "seed"),
        (lambda: make_spirals(10, noise="0.2"), "noise"),
        (lambda: make_spirals(10, dtype=np.int32), "dtype"),
    ],
)
def test_bad_types_raise_type_error_naming_the_argument(call, argument):
    with pytest.raises(TypeError, match=argument):
        call()


def _held_out_accuracy(model, make, *, epochs, lr):
    X, y = make(seed=0)
    X_test, y_test = make(seed=1)
    crossent.fit(model, X, y, optimizer="adam", lr=lr, epochs=epochs, batch_size=32, progress=False)
    return crossent.evaluate(model, X_test, y_test)["accuracy"]


def test_moons_need_a_nonlinear_model_and_a_small_mlp_learns_them():
    make = lambda seed: make_moons(300, noise=0.1, seed=seed)  # noqa: E731
    assert _held_out_accuracy(MLP(2, [16], 2, seed=0), make, epochs=60, lr=0.03) > 0.95
    assert _held_out_accuracy(SoftmaxRegression(2, 2), make, epochs=60, lr=0.05) < 0.93


def test_spirals_need_a_nonlinear_model_and_an_mlp_learns_them():
    make = lambda seed: make_spirals(300, 3, seed=seed)  # noqa: E731
    assert _held_out_accuracy(MLP(2, [64], 3, seed=0), make, epochs=60, lr=0.03) > 0.9
    assert _held_out_accuracy(SoftmaxRegression(2, 3), make, epochs=60, lr=0.05) < 0.6


def test_blobs_are_linearly_separable_up_to_their_overlap():
    make = lambda seed: make_blobs(300, 3, seed=seed)  # noqa: E731
    assert _held_out_accuracy(SoftmaxRegression(2, 3), make, epochs=30, lr=0.05) > 0.93
