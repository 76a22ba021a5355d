import math

import numpy as np
import pytest

import crossent
from crossent import nn, optim
from crossent.losses import CrossEntropyLoss, FocalLoss
from crossent.train import TrainingDivergedError


def _blobs(rng, n=300, n_classes=3, n_features=4, spread=0.6):
    centers = rng.normal(size=(n_classes, n_features)) * 3
    y = rng.integers(0, n_classes, n)
    X = centers[y] + rng.normal(size=(n, n_features)) * spread
    return X.astype(np.float32), y


@pytest.mark.parametrize("batch_size", [None, 1, 16], ids=["full-batch-gd", "pure-sgd", "minibatch"])
def test_every_batching_decreases_the_loss_on_separable_data(batch_size, rng):
    X, y = _blobs(rng)
    model = nn.SoftmaxRegression(4, 3)
    before = crossent.evaluate(model, X, y)["loss"]
    epochs = 30 if batch_size is None else 3
    history = crossent.fit(model, X, y, batch_size=batch_size, epochs=epochs, optimizer="sgd",
                           lr=0.5 if batch_size is None else 0.05, progress=False)
    after = crossent.evaluate(model, X, y)
    assert after["loss"] < 0.5 * before
    assert after["accuracy"] > 0.95
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert len(history) == epochs


def test_full_batch_gd_is_plain_gradient_descent(rng):
    """One epoch of full-batch GD is exactly W <- W - lr * dL/dW of the mean loss."""
    X, y = _blobs(rng, n=50)
    X = X.astype(np.float64)
    model = nn.SoftmaxRegression(4, 3, dtype=np.float64)
    model.parameters()[0][...] = rng.normal(size=model.parameters()[0].shape)
    weight, bias = [p.copy() for p in model.parameters()]
    crossent.fit(model, X, y, batch_size=None, epochs=1, optimizer="gd", lr=0.3, progress=False)
    grad_logits = crossent.softmax_cross_entropy_grad(X @ weight.T + bias, y)
    np.testing.assert_allclose(model.parameters()[0], weight - 0.3 * grad_logits.T @ X, rtol=1e-12)
    np.testing.assert_allclose(model.parameters()[1], bias - 0.3 * grad_logits.sum(0), rtol=1e-12)


def test_same_seed_same_result_different_seed_differs(rng):
    X, y = _blobs(rng)
    runs = []
    for seed in (0, 0, 1):
        model = nn.MLP(4, [8], 3, seed=3)
        crossent.fit(model, X, y, epochs=2, batch_size=16, seed=seed, progress=False)
        runs.append(model.parameters()[0].copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_weighted_sum_of_losses_records_each_term(rng):
    X, y = _blobs(rng)
    model = nn.SoftmaxRegression(4, 3)
    loss = CrossEntropyLoss() + 0.5 * FocalLoss(gamma=2.0)
    history = crossent.fit(model, X, y, loss=loss, epochs=2, validation_split=0.2, progress=False)
    record = history.records[-1]
    assert record["train_loss"] == pytest.approx(
        record["train_loss/CrossEntropyLoss"] + 0.5 * record["train_loss/FocalLoss"], rel=1e-6)
    assert record["val_loss"] == pytest.approx(
        record["val_loss/CrossEntropyLoss"] + 0.5 * record["val_loss/FocalLoss"], rel=1e-6)
    # a z-loss term is one option of the cross-entropy
    history = crossent.fit(nn.SoftmaxRegression(4, 3), X, y, loss=CrossEntropyLoss(z_loss=1e-3),
                           epochs=1, progress=False)
    assert math.isfinite(history["train_loss"][0])


def test_divergence_raises_with_epoch_step_and_learning_rate(rng):
    X, y = _blobs(rng)
    X = X * 1e30
    model = nn.SoftmaxRegression(4, 3)
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step \d+ \(learning rate 1e\+30\).*learning rate"):
        crossent.fit(model, X, y, epochs=3, lr=1e30, progress=False)


def test_early_stopping_restores_best_weights(rng):
    X, y = _blobs(rng, spread=3.0)
    X_val, y_val = _blobs(np.random.default_rng(5), spread=3.0)
    model = nn.MLP(4, [64], 3, seed=0)
    history = crossent.fit(model, X, y, validation_data=(X_val, y_val), epochs=200, batch_size=8,
                           optimizer="adam", lr=0.05, early_stopping=3, progress=False)
    assert history.stopped_early and len(history) < 200
    best = min(history["val_loss"])
    assert history["val_loss"][history.best_epoch] == best
    assert crossent.evaluate(model, X_val, y_val)["loss"] == pytest.approx(best, rel=1e-5)


def test_callbacks_can_stop_training(rng):
    X, y = _blobs(rng)
    seen = []

    def stop_after_two(record, model):
        seen.append(record["epoch"])
        return record["epoch"] < 2

    history = crossent.fit(nn.SoftmaxRegression(4, 3), X, y, epochs=10, callbacks=[stop_after_two],
                           progress=False)
    assert seen == [1, 2] and len(history) == 2


def test_evaluate_reports_metrics_consistently(rng):
    X, y = _blobs(rng)
    model = nn.SoftmaxRegression(4, 3)
    crossent.fit(model, X, y, epochs=5, progress=False)
    report = crossent.evaluate(model, X, y)
    confusion = np.array(report["confusion_matrix"])
    assert confusion.sum() == len(y)
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / len(y))
    assert report["accuracy"] == pytest.approx(np.mean(model.predict(X) == y))
    assert report["loss_bits"] == pytest.approx(report["loss"] / math.log(2))
    assert report["perplexity"] == pytest.approx(math.exp(report["loss"]))
    assert report["loss"] == pytest.approx(
        float(crossent.softmax_cross_entropy(model.forward(X), y)), rel=1e-5)
    recall = np.array(report["recall"])
    np.testing.assert_allclose(recall, np.diag(confusion) / confusion.sum(axis=1))


def test_logistic_regression_binary_and_multilabel(rng):
    X, y3 = _blobs(rng)
    y = (y3 == 1).astype(np.int64)
    model = nn.LogisticRegression(4)
    crossent.fit(model, X, y, epochs=20, lr=0.1, progress=False)
    report = crossent.evaluate(model, X, y)
    assert report["accuracy"] > 0.9 and np.array(report["confusion_matrix"]).shape == (2, 2)
    labels = np.eye(3)[y3].astype(np.float32)
    multi = nn.LogisticRegression(4, n_outputs=3)
    crossent.fit(multi, X, labels, epochs=20, lr=0.1, progress=False)
    assert crossent.evaluate(multi, X, labels)["accuracy"] > 0.9


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(epochs=0), ValueError, "epochs must be a positive integer, got 0"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer or None"),
    (dict(optimizer="adagrad"), ValueError, "optimizer must be one of gd, sgd"),
    (dict(loss="crossentropy"), ValueError, "loss must be one of"),
    (dict(validation_split=1.0), ValueError, r"validation_split must lie in \[0, 1\)"),
    (dict(early_stopping=0), ValueError, "early_stopping must be a positive number"),
])
def test_bad_arguments(kwargs, error, match, rng):
    X, y = _blobs(rng, n=20)
    with pytest.raises(error, match=match):
        crossent.fit(nn.SoftmaxRegression(4, 3), X, y, progress=False, **kwargs)


def test_mismatched_rows(rng):
    X, y = _blobs(rng, n=20)
    with pytest.raises(ValueError, match="X and y must have the same number of rows, got 20 and 19"):
        crossent.fit(nn.SoftmaxRegression(4, 3), X, y[:-1], progress=False)


def test_schedule_sets_the_learning_rate_per_step(rng):
    X, y = _blobs(rng, n=64)
    model = nn.SoftmaxRegression(4, 3)
    history = crossent.fit(model, X, y, epochs=4, batch_size=16, lr=0.1, schedule="cosine", progress=False)
    rates = history["lr"]
    assert rates[0] < 0.1 and all(a > b for a, b in zip(rates, rates[1:]))


def test_progress_bar_draws_only_when_asked():
    import io

    stream = io.StringIO()
    bar = crossent.progress.ProgressBar(2, 10, enabled=True, stream=stream, interval=0)
    bar.start_epoch(0)
    bar.update(5, 160, 0.5, 0.9)
    bar.end_epoch("epoch 1/2: done")
    text = stream.getvalue()
    assert "epoch 1/2" in text and "5/10" in text and "loss 0.5000" in text and "acc 90.00%" in text
    silent = io.StringIO()
    auto = crossent.progress.ProgressBar(2, 10, enabled="auto", stream=silent)
    auto.start_epoch(0)
    auto.update(10, 100, 0.1, 0.9)
    assert silent.getvalue() == ""  # StringIO is not a terminal


def test_non_finite_features_are_named(rng):
    X, y = _blobs(rng, n=20)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite; found nan at row 3, column 2"):
        crossent.fit(nn.SoftmaxRegression(4, 3), X, y, progress=False)
    with pytest.raises(ValueError, match="X must be finite"):
        crossent.evaluate(nn.SoftmaxRegression(4, 3), X, y)


def test_binary_accuracy_uses_the_predict_threshold():
    model = nn.LogisticRegression(2)  # zero weights: every logit is exactly 0, probability 0.5
    X = np.ones((6, 2), dtype=np.float32)
    y = np.array([1, 1, 1, 1, 0, 0])
    assert crossent.evaluate(model, X, y)["accuracy"] == pytest.approx(np.mean(model.predict(X) == y))


def test_history_round_trip():
    history = crossent.History(records=[{"epoch": 1, "train_loss": 0.5}], stopped_early=True, best_epoch=0,
                               base_lr=0.05)
    again = crossent.History.from_dict(history.to_dict())
    assert again.to_dict() == history.to_dict()
