"""Large-margin softmax (crossent.nn.large_margin): exactness at m = 1, finite differences against a naive
arccos reference, the angle function, the beta schedule, the zero-vector convention, training, saving, CLI."""

import math

import numpy as np
import pytest

import crossent
from crossent.cli import main
from crossent.datasets import load_digits
from crossent.nn import (
    LargeMarginCrossEntropy,
    LargeMarginLinear,
    LargeMarginSoftmaxClassifier,
    large_margin_beta,
    large_margin_cross_entropy_value_and_grad,
    large_margin_logits,
    large_margin_psi,
    model_from_config,
)


# --------------------------------------------------------------------------- naive reference (arccos, loops)


def reference_psi(theta: float, margin: int) -> float:
    """psi(theta) = (-1)^k cos(m theta) - 2k on [k pi/m, (k+1) pi/m], read straight off the paper."""
    k = min(int(theta * margin / math.pi), margin - 1)
    return (-1) ** k * math.cos(margin * theta) - 2 * k


def reference_loss(x, weight, labels, margin, beta=0.0) -> float:
    """Mean L-Softmax cross-entropy by loops: the angle from math.acos, zero vectors take the plain logit."""
    total = 0.0
    for n in range(len(x)):
        logits = [math.fsum(float(w) * float(v) for w, v in zip(row, x[n])) for row in weight]
        y = int(labels[n])
        norm_w = math.sqrt(math.fsum(float(v) ** 2 for v in weight[y]))
        norm_x = math.sqrt(math.fsum(float(v) ** 2 for v in x[n]))
        if norm_w * norm_x > 0:
            theta = math.acos(max(-1.0, min(1.0, logits[y] / (norm_w * norm_x))))
            margin_logit = norm_w * norm_x * reference_psi(theta, margin)
        else:
            margin_logit = logits[y]
        logits[y] = (beta * logits[y] + margin_logit) / (1.0 + beta)
        top = max(logits)
        total += top + math.log(math.fsum(math.exp(v - top) for v in logits)) - logits[y]
    return total / len(x)


def target_angles(x, weight, labels) -> np.ndarray:
    cosine = np.einsum("nd,nd->n", x, weight[labels]) / (
        np.linalg.norm(x, axis=1) * np.linalg.norm(weight[labels], axis=1))
    return np.arccos(np.clip(cosine, -1, 1))


def away_from_kinks(margin, seed, n=8, d=5, c=4):
    """Random float64 data whose target angles cover every piece [k pi/m, (k+1) pi/m], none within 15 % of
    a piece's width from its ends (where psi's second derivative jumps)."""
    rng = np.random.default_rng(seed)
    weight, labels = rng.normal(size=(c, d)), rng.integers(0, c, n)
    theta = (np.arange(n) % margin + rng.uniform(0.15, 0.85, n)) * math.pi / margin
    x = np.empty((n, d))
    for row in range(n):
        direction = weight[labels[row]] / np.linalg.norm(weight[labels[row]])
        across = rng.normal(size=d)
        across -= (across @ direction) * direction
        across /= np.linalg.norm(across)
        x[row] = rng.uniform(0.5, 2.0) * (math.cos(theta[row]) * direction + math.sin(theta[row]) * across)
    return x, weight, labels


# --------------------------------------------------------------------------- m = 1 and beta = inf are plain CE


@pytest.mark.parametrize("margin, beta", [(1, 0.0), (1, 3.0), (3, np.inf)])
def test_margin_one_and_infinite_beta_are_plain_cross_entropy_bit_for_bit(margin, beta):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 9)).astype(np.float32)
    weight = rng.normal(size=(6, 9)).astype(np.float32)
    labels = rng.integers(0, 6, 40)
    value, grad_x, grad_weight = large_margin_cross_entropy_value_and_grad(x, weight, labels, margin=margin,
                                                                           beta=beta)
    plain_value, plain_grad = crossent.softmax_cross_entropy_value_and_grad(x @ weight.T, labels)
    assert value == plain_value
    np.testing.assert_array_equal(grad_x, plain_grad @ weight)
    np.testing.assert_array_equal(grad_weight, plain_grad.T @ x)
    np.testing.assert_array_equal(large_margin_logits(x, weight, labels, margin=margin, beta=beta), x @ weight.T)


def test_margin_one_model_trains_exactly_like_plain_softmax_without_bias():
    X_train, y_train, _, _ = load_digits(seed=0)
    X_train, y_train = X_train[:300], y_train[:300]
    model = LargeMarginSoftmaxClassifier(64, 10, margin=1, init="zeros")
    weight = np.zeros((10, 64), dtype=np.float32)
    velocity = np.zeros_like(weight)
    crossent.fit(model, X_train, y_train, optimizer="momentum", lr=0.05, epochs=2, batch_size=50, shuffle=False)
    for _ in range(2):  # the same steps by hand: SGD with momentum 0.9 on softmax CE of X W^T
        for start in range(0, 300, 50):
            xb, yb = X_train[start:start + 50], y_train[start:start + 50]
            _, grad = crossent.softmax_cross_entropy_value_and_grad(xb @ weight.T, yb)
            velocity = 0.9 * velocity + grad.T @ xb
            weight -= np.float32(0.05) * velocity
    np.testing.assert_allclose(model.output_layer.weight, weight, rtol=1e-5, atol=1e-6)
    assert np.abs(model.output_layer.weight).max() > 0.05  # it did move


# --------------------------------------------------------------------------- finite differences, naive reference


@pytest.mark.parametrize("margin", [2, 3, 4])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_value_and_gradients_match_the_arccos_reference_and_finite_differences(margin, beta):
    x, weight, labels = away_from_kinks(margin, seed=margin)
    pieces = np.floor(target_angles(x, weight, labels) * margin / math.pi).astype(int)
    assert set(pieces) == set(range(margin))  # acute and obtuse angles: every k in 0..m-1 is checked
    value, grad_x, grad_weight = large_margin_cross_entropy_value_and_grad(x, weight, labels, margin=margin,
                                                                           beta=beta)
    assert float(value) == pytest.approx(reference_loss(x, weight, labels, margin, beta), rel=1e-12)
    by_x = crossent.gradcheck(lambda v: reference_loss(v, weight, labels, margin, beta), x, grad_x,
                              tolerance=1e-7)
    by_weight = crossent.gradcheck(lambda v: reference_loss(x, v, labels, margin, beta), weight, grad_weight,
                                   tolerance=1e-7)
    assert by_x, str(by_x)
    assert by_weight, str(by_weight)
    # the margin is doing something here: the loss differs from plain softmax cross-entropy
    assert float(value) > float(crossent.softmax_cross_entropy(x @ weight.T, labels)) + 1e-3


def test_whole_model_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 5)), rng.integers(0, 3, 8)
    model = LargeMarginSoftmaxClassifier(5, 3, margin=3, hidden_sizes=[6], activation="tanh", beta_start=0.5,
                                         beta_gamma=0.0, dtype=np.float64, seed=2)
    for parameter, gradient in zip(model.parameters(), model.gradients()):
        model.loss_and_backward(X, y)
        analytic = gradient.copy()

        def loss_at(value, parameter=parameter):
            saved = parameter.copy()
            parameter[...] = value
            result = float(model.loss_and_backward(X, y))
            parameter[...] = saved
            return result

        result = crossent.gradcheck(loss_at, parameter.copy(), analytic, tolerance=1e-7)
        assert result, str(result)


# --------------------------------------------------------------------------- zero vectors


@pytest.mark.parametrize("margin", [2, 3])
def test_zero_input_or_zero_weight_rows_take_the_plain_logit_and_its_gradient(margin):
    rng = np.random.default_rng(3)
    x, weight = rng.normal(size=(6, 4)), rng.normal(size=(3, 4))
    labels = np.array([0, 1, 2, 1, 2, 0])
    x[1] = 0.0       # a zero input (label 1)
    weight[2] = 0.0  # a zero weight row: rows 2 and 4 have label 2
    value, grad_x, grad_weight = large_margin_cross_entropy_value_and_grad(x, weight, labels, margin=margin)
    assert np.isfinite(value) and np.isfinite(grad_x).all() and np.isfinite(grad_weight).all()
    assert float(value) == pytest.approx(reference_loss(x, weight, labels, margin), rel=1e-12)

    training = large_margin_logits(x, weight, labels, margin=margin)
    assert training[1, 1] == 0.0 and training[2, 2] == 0.0 and training[4, 2] == 0.0
    _, grad = crossent.softmax_cross_entropy_value_and_grad(training, labels)
    # the zero input's gradient is that of the plain logits: G_n W
    np.testing.assert_allclose(grad_x[1], grad[1] @ weight, rtol=1e-12, atol=1e-15)
    # the zero weight row's gradient is that of the plain logits: sum_n G_nc x_n
    np.testing.assert_allclose(grad_weight[2], grad[:, 2] @ x, rtol=1e-12, atol=1e-15)
    # other rows keep their margin: the reference's derivative there still agrees
    regular = [0, 3, 5]
    numerical = crossent.numerical_gradient(lambda v: reference_loss(v, weight, labels, margin), x)
    np.testing.assert_allclose(grad_x[regular], numerical[regular], rtol=1e-6, atol=1e-8)


def test_zero_initialised_output_layer_takes_a_plain_softmax_step_first():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(10, 5)), rng.integers(0, 4, 10)
    model = LargeMarginSoftmaxClassifier(5, 4, margin=4, init="zeros", beta_start=0.0, dtype=np.float64)
    value = model.loss_and_backward(X, y)
    plain_value, plain_grad = crossent.softmax_cross_entropy_value_and_grad(np.zeros((10, 4)), y)
    assert value == pytest.approx(math.log(4)) and value == plain_value
    np.testing.assert_allclose(model.gradients()[0], plain_grad.T @ X, rtol=1e-14)


# --------------------------------------------------------------------------- psi


@pytest.mark.parametrize("margin", [1, 2, 3, 4, 5])
def test_psi_is_continuous_decreasing_and_equals_the_arccos_form(margin):
    theta = np.linspace(0.0, math.pi, 20001)
    psi = large_margin_psi(np.cos(theta), margin)
    assert psi[0] == pytest.approx(1.0) and psi[-1] == pytest.approx(1.0 - 2 * margin)
    steps = np.diff(psi)
    assert np.all(steps < 0), "psi must decrease strictly on [0, pi]"
    # continuity: |psi'(theta)| = m |sin(m theta)| <= m, so no step may exceed m times the grid spacing
    assert np.max(np.abs(steps)) <= margin * (theta[1] - theta[0]) * (1 + 1e-6)
    reference = np.array([reference_psi(t, margin) for t in theta])
    np.testing.assert_allclose(psi, reference, atol=1e-9)
    # across each threshold cos(j pi / m) the two pieces meet
    for j in range(1, margin):
        threshold = math.cos(j * math.pi / margin)
        below, above = np.nextafter(threshold, -2.0), np.nextafter(threshold, 2.0)
        assert abs(large_margin_psi(below, margin) - large_margin_psi(above, margin)) < 1e-12


def test_psi_uses_no_arccos_outside_the_unit_interval():
    """Rounding can put cos(theta) a hair above 1: the polynomial continues, nothing is NaN or clipped."""
    value = large_margin_psi(1.0 + 1e-12, 3)
    assert np.isfinite(value) and value > 1.0


# --------------------------------------------------------------------------- beta schedule


def test_beta_follows_its_formula_step_by_step_and_is_the_beta_used():
    options = {"beta_start": 100.0, "beta_gamma": 0.5, "beta_power": 2.0, "beta_min": 3.0}
    layer = LargeMarginLinear(3, 4, margin=2, dtype=np.float64, **options)
    x = np.random.default_rng(5).normal(size=(5, 3))
    labels = np.array([0, 1, 2, 3, 1])
    assert layer.beta == 100.0 and layer.annealing_step == 0
    seen = []
    for t in range(1, 13):
        logits = layer.forward(x, training=True)
        expected = max(3.0, 100.0 * (1 + 0.5 * t) ** -2.0)
        assert layer.annealing_step == t and layer.beta == pytest.approx(expected, rel=1e-15)
        assert large_margin_beta(t, **options) == layer.beta
        np.testing.assert_allclose(layer.margin_logits(labels),
                                   large_margin_logits(x, layer.weight, labels, margin=2, beta=expected),
                                   rtol=1e-14)
        assert np.array_equal(logits, x @ layer.weight.T)  # the forward itself stays plain
        layer.forward(x)  # an evaluation forward does not advance the schedule
        seen.append(layer.beta)
    assert seen[-1] == 3.0 and all(a >= b for a, b in zip(seen, seen[1:]))


def test_beta_schedule_validation():
    with pytest.raises(ValueError, match="beta_power"):
        large_margin_beta(1, beta_start=1.0, beta_gamma=1.0, beta_power=-1.0)
    with pytest.raises(TypeError, match="step"):
        large_margin_beta(1.5, beta_start=1.0, beta_gamma=1.0, beta_power=1.0)
    with pytest.raises(ValueError, match="margin"):
        LargeMarginSoftmaxClassifier(4, 3, margin=0)
    with pytest.raises(TypeError, match="margin"):
        LargeMarginSoftmaxClassifier(4, 3, margin=2.5)
    with pytest.raises(ValueError, match="annealing_step"):
        LargeMarginLinear(2, 2, annealing_step=-1)


# --------------------------------------------------------------------------- the loss object and the model


def test_evaluation_uses_plain_scores_and_plain_cross_entropy():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(12, 5)), rng.integers(0, 3, 12)
    model = LargeMarginSoftmaxClassifier(5, 3, margin=3, beta_start=0.0, dtype=np.float64)
    weight = model.output_layer.weight
    np.testing.assert_array_equal(model.forward(X), X @ weight.T)
    np.testing.assert_array_equal(model.predict(X), np.argmax(X @ weight.T, axis=1))
    loss = model.default_loss
    assert isinstance(loss, LargeMarginCrossEntropy)
    assert loss(model.forward(X), y) == crossent.softmax_cross_entropy(X @ weight.T, y)
    training = model.forward(X, training=True)
    assert loss(training, y) > loss(training.copy(), y)  # only the training output itself gets the margin
    report = crossent.evaluate(model, X, y)
    assert report["loss"] == pytest.approx(float(crossent.softmax_cross_entropy(X @ weight.T, y)))
    with pytest.raises(TypeError, match="integer class labels"):
        loss(model.forward(X, training=True), np.eye(3)[y])
    with pytest.raises(ValueError, match="labels"):
        loss(model.forward(X, training=True), np.full(12, 3))


def test_fit_trains_on_digits_to_over_90_percent_with_the_margin_on():
    X_train, y_train, X_test, y_test = load_digits(seed=0)
    steps = 15 * math.ceil(len(X_train) / 32)
    # beta falls from 1000 to 1 over the first half of the run, then on towards 0
    gamma = (1000.0 ** (1 / 35) - 1) / (steps / 2)
    model = LargeMarginSoftmaxClassifier(64, 10, margin=2, hidden_sizes=[64], beta_gamma=gamma, seed=0)
    history = crossent.fit(model, X_train, y_train, optimizer="momentum", lr=0.05, epochs=15, batch_size=32)
    assert model.output_layer.annealing_step == steps
    assert model.beta < 0.1  # the last epochs trained with (almost) the full margin
    accuracy = np.mean(model.predict(X_test) == y_test)
    assert accuracy > 0.90, (accuracy, history["train_loss"])


def test_early_stopping_compares_epochs_only_once_beta_reaches_its_floor():
    X_train, y_train, _, _ = load_digits(seed=0)
    X_train, y_train = X_train[:640], y_train[:640]
    epochs, batch = 20, 32
    gamma = (1000.0 ** (1 / 35) - 1) / (epochs * (640 // batch) / 2)  # beta = 1 = beta_min halfway
    model = LargeMarginSoftmaxClassifier(64, 10, margin=2, hidden_sizes=[32], beta_gamma=gamma, beta_min=1.0, seed=0)
    settled = []
    history = crossent.fit(model, X_train, y_train, optimizer="momentum", lr=0.05, epochs=epochs, batch_size=batch,
                           early_stopping=2, callbacks=[lambda record, m: settled.append(m.annealing_finished)])
    first_settled = settled.index(True)
    assert 8 <= first_settled <= 11  # about halfway
    # the training loss rises while beta falls (more than 2 epochs running): no stop, no best epoch, before that
    assert len(history) > first_settled
    assert history.best_epoch is None or history.best_epoch >= first_settled
    plain = LargeMarginSoftmaxClassifier(64, 10, margin=2, hidden_sizes=[32], beta_gamma=gamma, beta_start=0.0,
                                         beta_min=0.0, seed=0)
    assert plain.annealing_finished  # beta_start 0: nothing to anneal


def test_save_load_round_trip_keeps_weights_config_and_schedule(tmp_path):
    X_train, y_train, X_test, _ = load_digits(seed=0)
    model = LargeMarginSoftmaxClassifier(64, 10, margin=3, hidden_sizes=[16], dropout=0.1, beta_gamma=1e-3,
                                         beta_min=0.5, seed=7)
    crossent.fit(model, X_train[:200], y_train[:200], epochs=2, batch_size=50)
    path = tmp_path / "lsoftmax.npz"
    crossent.save(model, path, loss=model.default_loss)
    loaded = crossent.load(path)
    assert type(loaded) is LargeMarginSoftmaxClassifier
    assert loaded.config() == model.config() and loaded.config()["annealing_step"] == 8
    for name, a, b in zip(model.parameter_names(), model.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert loaded.beta == model.beta
    # one more identical step on both: same loss, same beta, same gradients
    for m in (model, loaded):
        m.loss_and_backward(X_train[:20], y_train[:20])
    assert loaded.beta == model.beta
    for a, b in zip(model.gradients(), loaded.gradients()):
        np.testing.assert_array_equal(a, b)
    assert type(model_from_config(model.config())) is LargeMarginSoftmaxClassifier
    # the stored loss is the evaluation loss: plain cross-entropy
    assert crossent.load_checkpoint(path).loss().config() == {"class": "CrossEntropyLoss", "options": {}}


# --------------------------------------------------------------------------- command line


@pytest.fixture
def no_mnist_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_cli_trains_saves_and_evaluates_with_a_margin(tmp_path, capsys, no_mnist_anywhere):
    model_file = tmp_path / "margin.npz"
    code = main(["train", "--model", "mlp", "--hidden", "32", "--margin", "2", "--optimizer", "momentum",
                 "--epochs", "6", "--seed", "0", "--save", str(model_file)])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "LargeMarginSoftmaxClassifier" in out and "LargeMarginCrossEntropy(margin=2)" in out
    assert float(out.split("test accuracy ")[1].split("%")[0]) > 85.0
    model = crossent.load(model_file)
    assert model.margin == 2 and model.hidden_sizes == (32,)
    assert model.beta == 1.0  # the command line anneals beta down to its floor 1 within the run
    code = main(["evaluate", str(model_file)])
    out, _ = capsys.readouterr()
    assert code == 0 and "LargeMarginSoftmaxClassifier" in out


def test_cli_resume_continues_the_margin_and_its_schedule(tmp_path, capsys, no_mnist_anywhere):
    model_file = tmp_path / "margin.npz"
    assert main(["train", "--model", "mlp", "--hidden", "16", "--margin", "3", "--epochs", "2",
                 "--save", str(model_file), "--quiet"]) == 0
    first = crossent.load(model_file)
    assert main(["train", "--resume", str(model_file), "--epochs", "3", "--save", str(model_file)]) == 0
    out, _ = capsys.readouterr()
    assert "LargeMarginCrossEntropy(margin=3)" in out
    resumed = crossent.load(model_file)
    assert resumed.margin == 3 and resumed.config()["beta_gamma"] == first.config()["beta_gamma"]
    assert resumed.output_layer.annealing_step == first.output_layer.annealing_step * 3 // 2
    assert main(["train", "--resume", str(model_file), "--epochs", "4", "--margin", "2"]) == 2


@pytest.mark.parametrize("arguments, message", [
    (["--margin", "0"], "--margin"),
    (["--margin", "two"], "--margin"),
    (["--model", "logistic", "--margin", "2"], "--margin"),
    (["--margin", "2", "--loss", "focal"], "--margin"),
])
def test_cli_rejects_a_bad_margin_in_one_line(arguments, message, capsys, no_mnist_anywhere):
    code = main(["train", "--epochs", "1", *arguments])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def test_loss_reduction_sum_and_none_and_a_bad_one():
    layer = LargeMarginLinear(3, 4, margin=2, beta_start=0.0, dtype=np.float64)
    x, y = np.random.default_rng(0).normal(size=(5, 3)), np.array([0, 1, 2, 3, 0])
    values = {}
    for reduction in ("mean", "sum", "none"):
        values[reduction] = LargeMarginCrossEntropy(layer, reduction=reduction)(layer.forward(x, training=True), y)
    assert values["none"].shape == (5,)
    np.testing.assert_allclose(values["sum"], values["none"].sum(), rtol=1e-14)
    np.testing.assert_allclose(values["mean"], values["none"].mean(), rtol=1e-14)
    assert LargeMarginCrossEntropy(layer, reduction="sum").config() == {"class": "CrossEntropyLoss",
                                                                       "options": {"reduction": "sum"}}
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        LargeMarginCrossEntropy(layer, reduction="avg")
