"""Training on the real MNIST, and the speed paths of the training loop kept honest.

The smoke test trains softmax regression with :func:`crossent.fit` on 20000
MNIST training images for 2 epochs and checks the accuracy on the 10000 test
images: at least 0.90 (it reaches about 0.91; a broken loss, gradient, shuffle
or optimiser step lands far below). It is not a timing test:
``benchmarks/mnist_training.py`` measures speed.

MNIST is read from ``../shared/data/mnist`` beside the repository. Without it
the test is skipped -- except in CI (``CI=true``), where the folder is always
there and a missing one is an error.

The other tests pin down what the speed work must not change: the loss's fast
path for plain class labels gives the general path's value and gradient bit
for bit, and fit's batches, gathered in chunks into reused buffers, are
exactly ``X[order[start:stop]]`` of the epoch's permutation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import crossent
import crossent.train
from crossent.datasets import load_mnist
from crossent.nn import MLP, SoftmaxRegression

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _mnist_present() -> bool:
    return all((MNIST_DIR / name).is_file() or (MNIST_DIR / f"{name}.gz").is_file() for name in MNIST_FILES)


@pytest.fixture(scope="module")
def mnist():
    if not _mnist_present():
        message = f"MNIST IDX files not found in {MNIST_DIR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI runs with shared/ beside the clone, so this is an error there")
        pytest.skip(message)
    return load_mnist(MNIST_DIR, download=False)


def test_softmax_regression_on_mnist_reaches_90_percent(mnist):
    X_train, y_train, X_test, y_test = mnist
    assert X_train.dtype == np.float32 and X_train.shape == (60000, 784)
    model = SoftmaxRegression(784, 10)
    history = crossent.fit(
        model, X_train[:20000], y_train[:20000], optimizer="momentum", lr=0.1, momentum=0.9,
        epochs=2, batch_size=128, seed=0, progress=False,
    )
    result = crossent.evaluate(model, X_test, y_test)
    assert result["n_samples"] == 10000
    assert result["accuracy"] >= 0.90, result["accuracy"]
    # the running training accuracy of the second epoch agrees with the held-out one
    assert history["train_accuracy"][-1] >= 0.88
    assert history["train_loss"][-1] < history["train_loss"][0]


# --------------------------------------------------------------------------- the loss's fast path


def _logits_with_special_rows(rng, dtype):
    logits = rng.normal(scale=4.0, size=(64, 7)).astype(dtype)
    logits[0] = [40.0, 0, 0, 0, 0, 0, 0]  # one dominant class: -log p of it is 8.5e-18-ish, kept relative
    logits[1, 2] = -np.inf  # an impossible class that is not the label
    logits[2, 4] = logits[2, 5] = logits[2].max() + 1  # a tie for the maximum
    logits[3] = [1e4, -1e4, 0, 3, 1e4, 2, 1]  # large magnitudes, tied maximum
    logits[4, 3] = -np.inf  # the label's class is impossible: +inf loss, finite gradient
    return logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1])
def test_label_fast_path_equals_general_path_bit_for_bit(rng, dtype, reduction, label_smoothing):
    logits = _logits_with_special_rows(rng, dtype)
    if label_smoothing:  # with smoothing an impossible class costs +inf on every row: keep them finite
        logits[np.isinf(logits)] = -30.0
    labels = rng.integers(0, 7, size=64)
    labels[0], labels[1], labels[4] = 0, 3, 3
    options = {"reduction": reduction, "label_smoothing": label_smoothing}
    fast = crossent.softmax_cross_entropy_value_and_grad(logits, labels, **options)
    # all-ones sample weights take the general path and must change nothing
    general = crossent.softmax_cross_entropy_value_and_grad(
        logits, labels, sample_weight=np.ones(64, dtype=dtype), **options
    )
    np.testing.assert_array_equal(fast[0], general[0])
    np.testing.assert_array_equal(fast[1], general[1])
    assert np.asarray(fast[0]).dtype == dtype and fast[1].dtype == dtype
    assert np.isfinite(fast[1]).all()
    value_only = crossent.softmax_cross_entropy(logits, labels, **options)
    np.testing.assert_array_equal(value_only, fast[0])
    loss_object = crossent.losses.CrossEntropyLoss(**options).value_and_grad(logits, labels)
    np.testing.assert_array_equal(loss_object[1], fast[1])


@pytest.mark.parametrize("special", ["all -inf row", "nan", "+inf"])
def test_rows_the_fast_path_leaves_to_the_general_path(rng, special):
    logits = rng.normal(size=(16, 5))
    if special == "all -inf row":
        logits[3] = -np.inf
    elif special == "nan":
        logits[3, 1] = np.nan
    else:
        logits[3, 1] = np.inf
    labels = rng.integers(0, 5, size=16)
    with np.errstate(invalid="ignore"):
        fast = crossent.softmax_cross_entropy_value_and_grad(logits, labels, reduction="none")
        general = crossent.softmax_cross_entropy_value_and_grad(
            logits, labels, reduction="none", sample_weight=np.ones(16)
        )
    np.testing.assert_array_equal(fast[0], general[0])
    np.testing.assert_array_equal(fast[1], general[1])
    # the other rows are unaffected by the special one
    assert np.isfinite(np.delete(fast[0], 3)).all()


def test_fast_path_still_validates_labels():
    logits = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="found 3 at position"):
        crossent.softmax_cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="found -1 at position"):
        crossent.softmax_cross_entropy(logits, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match="shape"):
        crossent.softmax_cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        crossent.softmax_cross_entropy(logits, np.array([0, 1, 2, 2]), reduction="average")


# --------------------------------------------------------------------------- fit's batches


def _reference_fit(model, X, y, *, lr, epochs, batch_size, seed):
    """fit's documented algorithm written out with fancy indexing: X[order[start:stop]] per batch."""
    loss = crossent.losses.CrossEntropyLoss()
    optimizer = crossent.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            rows = order[start : start + batch_size]
            logits = model.forward(X[rows], training=True)
            _, grad = loss.value_and_grad(logits, y[rows])
            model.backward(grad, need_input_grad=False)
            optimizer.step(model.gradients())


@pytest.mark.parametrize("gather_bytes", [crossent.train.GATHER_BYTES, 3000])
def test_fit_batches_are_the_permuted_rows(rng, monkeypatch, gather_bytes):
    # 3000 bytes: chunks of 2 batches of 5 rows of 24 float32 features, so chunk edges and the last,
    # partial batch (103 = 10 * 10 + 3 rows) are all exercised
    monkeypatch.setattr(crossent.train, "GATHER_BYTES", gather_bytes)
    X = rng.normal(size=(103, 24)).astype(np.float32)
    y = rng.integers(0, 4, size=103)
    X_before, y_before = X.copy(), y.copy()
    trained = MLP(24, [16], 4, seed=3)
    reference = MLP(24, [16], 4, seed=3)
    history = crossent.fit(trained, X, y, optimizer="momentum", lr=0.05, momentum=0.9,
                           epochs=3, batch_size=5, seed=11, progress=False)
    _reference_fit(reference, X, y, lr=0.05, epochs=3, batch_size=5, seed=11)
    for ours, theirs in zip(trained.parameters(), reference.parameters()):
        np.testing.assert_array_equal(ours, theirs)
    assert len(history) == 3
    # the caller's arrays are read, never reordered
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
