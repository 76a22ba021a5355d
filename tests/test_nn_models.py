"""Tests for crossent.nn.models: gradients (finite differences, PyTorch), predictions, config, errors."""

import json

import numpy as np
import pytest

import crossent
from crossent.losses import CrossEntropyLoss, SigmoidBinaryCrossEntropyLoss
from crossent.nn import MLP, LogisticRegression, SoftmaxRegression, model_from_config

N, D, C = 6, 5, 3


def twin(model):
    """An identically seeded model of the same architecture holding a copy of ``model``'s parameters."""
    copy = model_from_config(model.config())
    for target, source in zip(copy.parameters(), model.parameters()):
        target[...] = source
    return copy


def loss_value(model, X, y, loss, training, sample_weight=None):
    """The loss computed the plain way: forward, then the loss on the logits."""
    logits = model.forward(X, training=training)
    if isinstance(model, LogisticRegression) and model.n_outputs == 1:
        logits, y = logits[:, 0], np.asarray(y).reshape(-1)
    batch = {} if sample_weight is None else {"sample_weight": sample_weight}
    return float(loss(logits, y, **batch))


def check_model_gradients(model, X, y, loss, sample_weight=None, tolerance=1e-7):
    """gradcheck every parameter gradient of loss_and_backward (training mode) and input_gradient (eval mode).

    Every evaluation starts from a fresh :func:`twin`, so a dropout layer draws
    the same mask each time (its generator restarts from the model's seed).
    """
    analytic_model = twin(model)
    value = analytic_model.loss_and_backward(X, y, loss, sample_weight=sample_weight)
    assert float(value) == pytest.approx(loss_value(twin(model), X, y, loss, True, sample_weight), rel=1e-12)
    for index, name in enumerate(model.parameter_names()):
        def objective(parameter, index=index):
            fresh = twin(model)
            fresh.parameters()[index][...] = parameter
            return loss_value(fresh, X, y, loss, True, sample_weight)

        result = crossent.gradcheck(objective, model.parameters()[index], analytic_model.gradients()[index])
        assert result.max_relative_error < tolerance, f"gradient of {name}: {result}"

    grad_X = twin(model).input_gradient(X, y, loss, sample_weight=sample_weight)
    assert grad_X.shape == np.shape(X)
    result = crossent.gradcheck(lambda Z: loss_value(twin(model), Z, y, loss, False, sample_weight), X, grad_X)
    assert result.max_relative_error < tolerance, f"input gradient: {result}"


def data(rng, n_classes=C, n=N, d=D):
    X = rng.normal(size=(n, d))
    y = np.arange(n) % n_classes
    return X, y


# =========================================================================== finite differences


@pytest.mark.parametrize("use_sample_weight", [False, True])
def test_softmax_regression_gradients(rng, use_sample_weight):
    X, y = data(rng)
    model = SoftmaxRegression(D, C, init="xavier", seed=1, dtype=np.float64)
    model.parameters()[1][:] = rng.normal(size=C)
    weight = rng.uniform(0.5, 2.0, N) if use_sample_weight else None
    check_model_gradients(model, X, y, CrossEntropyLoss(), sample_weight=weight)


def test_softmax_regression_gradients_with_probability_targets_and_options(rng):
    X, _ = data(rng)
    target = rng.dirichlet(np.ones(C), size=N)
    model = SoftmaxRegression(D, C, init="he", seed=2, dtype=np.float64)
    check_model_gradients(model, X, target, CrossEntropyLoss(label_smoothing=0.1, reduction="sum"))


@pytest.mark.parametrize("label_shape", ["flat", "column"])
def test_binary_logistic_regression_gradients(rng, label_shape):
    X, _ = data(rng)
    y = np.array([0, 1, 1, 0, 1, 0])
    y = y if label_shape == "flat" else y[:, None]
    model = LogisticRegression(D, init="xavier", seed=3, dtype=np.float64)
    check_model_gradients(model, X, y, SigmoidBinaryCrossEntropyLoss())


def test_multilabel_logistic_regression_gradients(rng):
    X, _ = data(rng)
    y = rng.integers(0, 2, size=(N, 4)).astype(np.float64)
    model = LogisticRegression(D, 4, init="he", seed=4, dtype=np.float64)
    check_model_gradients(model, X, y, SigmoidBinaryCrossEntropyLoss(pos_weight=np.array([1.0, 2.0, 0.5, 1.0])))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_mlp_gradients(rng, activation):
    X, y = data(rng)
    model = MLP(D, [7, 6], C, activation=activation, seed=5, dtype=np.float64)
    for bias in model.parameters()[1::2]:
        bias[:] = rng.normal(size=bias.shape) * 0.1  # non-zero biases exercise the bias path
    check_model_gradients(model, X, y, CrossEntropyLoss())


def test_mlp_with_dropout_gradients_use_the_training_mask(rng):
    X, y = data(rng)
    model = MLP(D, [8], C, dropout=0.3, seed=6, dtype=np.float64)
    check_model_gradients(model, X, y, CrossEntropyLoss())
    # the mask matters: training-mode gradients differ from evaluation-mode ones
    trained = twin(model)
    trained.loss_and_backward(X, y, CrossEntropyLoss())
    no_dropout = MLP(D, [8], C, dropout=0.0, seed=6, dtype=np.float64)
    for target, source in zip(no_dropout.parameters(), model.parameters()):
        target[...] = source
    no_dropout.loss_and_backward(X, y, CrossEntropyLoss())
    assert not np.allclose(trained.gradients()[0], no_dropout.gradients()[0])


def test_a_wrong_gradient_fails_the_check(rng):
    """The harness can fail: a model that forgets the 1/N of the mean is caught."""
    X, y = data(rng)

    class Unscaled(SoftmaxRegression):
        def loss_and_backward(self, X, y, loss=None, *, sample_weight=None):
            value = super().loss_and_backward(X, y, loss, sample_weight=sample_weight)
            for gradient in self.gradients():
                gradient *= len(X)
            return value

    model = Unscaled(D, C, init="xavier", dtype=np.float64)
    model.loss_and_backward(X, y, CrossEntropyLoss())
    analytic = model.gradients()[0]

    def objective(weight):
        fresh = SoftmaxRegression(D, C, dtype=np.float64)
        fresh.parameters()[0][...] = weight
        return loss_value(fresh, X, y, CrossEntropyLoss(), True)

    assert not crossent.gradcheck(objective, model.parameters()[0], analytic).passed


# =========================================================================== PyTorch oracle


def torch_mlp(torch, model):
    """The PyTorch twin of an MLP without dropout, with our weights copied in by name."""
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[model.activation]
    widths = [model.n_features, *model.hidden_sizes]
    layers = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), activation()]
    layers.append(torch.nn.Linear(widths[-1], model.n_classes))
    reference = torch.nn.Sequential(*layers).double()
    state = {name: torch.from_numpy(parameter.copy()) for name, parameter in
             zip(model.parameter_names(), model.parameters())}
    reference.load_state_dict(state)  # strict: the names must match PyTorch's exactly
    return reference


def assert_relative(actual, expected, rtol):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    assert float(np.max(np.abs(actual - expected))) <= rtol * scale


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_mlp_matches_torch_in_float64(rng, activation):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    X, y = rng.normal(size=(32, 20)), rng.integers(0, 10, 32)
    model = MLP(20, [30, 16], 10, activation=activation, seed=8, dtype=np.float64)
    for bias in model.parameters()[1::2]:
        bias[:] = rng.normal(size=bias.shape) * 0.1
    reference = torch_mlp(torch, model)

    X_torch = torch.from_numpy(X).requires_grad_(True)
    logits_torch = reference(X_torch)
    loss_torch = F.cross_entropy(logits_torch, torch.from_numpy(y))
    loss_torch.backward()

    np.testing.assert_allclose(model.forward(X), logits_torch.detach().numpy(), rtol=1e-10, atol=1e-12)
    value = model.loss_and_backward(X, y, CrossEntropyLoss())
    assert float(value) == pytest.approx(loss_torch.item(), rel=1e-10)
    torch_gradients = dict(reference.named_parameters())
    for name, gradient in zip(model.parameter_names(), model.gradients()):
        assert_relative(gradient, torch_gradients[name].grad.numpy(), 1e-10)
    assert_relative(model.input_gradient(X, y, CrossEntropyLoss()), X_torch.grad.numpy(), 1e-10)


def test_mlp_matches_torch_in_float32(rng):
    torch = pytest.importorskip("torch")
    X, y = rng.normal(size=(64, 20)).astype(np.float32), rng.integers(0, 10, 64)
    model = MLP(20, [40], 10, seed=9)
    reference = torch_mlp(torch, twin_in_float64(model))
    loss_torch = torch.nn.functional.cross_entropy(reference(torch.from_numpy(X).double()), torch.from_numpy(y))
    loss_torch.backward()
    value = model.loss_and_backward(X, y, CrossEntropyLoss())
    assert value.dtype == np.float32
    assert float(value) == pytest.approx(loss_torch.item(), rel=1e-5)
    for (name, reference_parameter), gradient in zip(reference.named_parameters(), model.gradients()):
        assert gradient.dtype == np.float32
        assert_relative(gradient, reference_parameter.grad.numpy(), 1e-4)


def twin_in_float64(model):
    config = dict(model.config(), dtype="float64")
    copy = model_from_config(config)
    for target, source in zip(copy.parameters(), model.parameters()):
        target[...] = source
    return copy


def test_softmax_regression_with_sample_weight_matches_torch(rng):
    torch = pytest.importorskip("torch")
    X, y = rng.normal(size=(16, D)), rng.integers(0, C, 16)
    weight = rng.uniform(0.1, 3.0, 16)
    model = SoftmaxRegression(D, C, init="xavier", seed=10, dtype=np.float64)
    W = torch.from_numpy(model.parameters()[0].copy()).requires_grad_(True)
    b = torch.zeros(C, dtype=torch.float64, requires_grad=True)
    per_row = torch.nn.functional.cross_entropy(torch.from_numpy(X) @ W.T + b, torch.from_numpy(y), reduction="none")
    loss_torch = (per_row * torch.from_numpy(weight)).sum() / weight.sum()
    loss_torch.backward()
    value = model.loss_and_backward(X, y, CrossEntropyLoss(), sample_weight=weight)
    assert float(value) == pytest.approx(loss_torch.item(), rel=1e-12)
    assert_relative(model.gradients()[0], W.grad.numpy(), 1e-12)
    assert_relative(model.gradients()[1], b.grad.numpy(), 1e-12)


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_logistic_regression_matches_torch(rng, n_outputs):
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(12, D))
    y = rng.integers(0, 2, size=(12,) if n_outputs == 1 else (12, n_outputs))
    model = LogisticRegression(D, n_outputs, init="xavier", seed=11, dtype=np.float64)
    W = torch.from_numpy(model.parameters()[0].copy()).requires_grad_(True)
    b = torch.zeros(n_outputs, dtype=torch.float64, requires_grad=True)
    logits = torch.from_numpy(X) @ W.T + b
    target = torch.from_numpy(y.reshape(12, n_outputs).astype(np.float64))
    loss_torch = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    loss_torch.backward()
    value = model.loss_and_backward(X, y)  # the default loss: sigmoid binary cross-entropy
    assert float(value) == pytest.approx(loss_torch.item(), rel=1e-12)
    assert_relative(model.gradients()[0], W.grad.numpy(), 1e-12)
    assert_relative(model.gradients()[1], b.grad.numpy(), 1e-12)
    probabilities = torch.sigmoid(logits).detach().numpy()
    np.testing.assert_allclose(model.predict_proba(X), probabilities[:, 0] if n_outputs == 1 else probabilities,
                               rtol=1e-12)


# =========================================================================== predictions


def test_softmax_predictions(rng):
    X = rng.normal(size=(40, D))
    for model in (SoftmaxRegression(D, C, init="he", seed=1), MLP(D, [16], C, seed=1)):
        probabilities = model.predict_proba(X)
        assert probabilities.shape == (40, C) and probabilities.dtype == np.float32
        assert np.all(probabilities >= 0)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
        labels = model.predict(X)
        assert labels.shape == (40,) and labels.dtype.kind == "i"
        np.testing.assert_array_equal(labels, np.argmax(probabilities, axis=1))


def test_logistic_predictions(rng):
    X = rng.normal(size=(40, D))
    binary = LogisticRegression(D, init="he", seed=2)
    probabilities = binary.predict_proba(X)
    assert probabilities.shape == (40,) and np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities, crossent.sigmoid(binary.forward(X)[:, 0]))
    np.testing.assert_array_equal(binary.predict(X), (probabilities >= 0.5).astype(int))
    assert 0 < binary.predict(X).sum() < 40  # both classes predicted: the test can tell them apart

    multilabel = LogisticRegression(D, 4, init="he", seed=2)
    assert multilabel.forward(X).shape == (40, 4)
    assert multilabel.predict_proba(X).shape == (40, 4) and multilabel.predict(X).shape == (40, 4)
    assert set(np.unique(multilabel.predict(X))) == {0, 1}


def test_predictions_use_evaluation_mode():
    X = np.random.default_rng(0).normal(size=(10, D))
    model = MLP(D, [32], C, dropout=0.5, seed=3)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(X))


def test_default_losses():
    assert SoftmaxRegression(2, 2).default_loss == "cross_entropy"
    assert MLP(2, [3], 2).default_loss == "cross_entropy"
    assert LogisticRegression(2).default_loss == "sigmoid_binary_cross_entropy"
    assert isinstance(crossent.get_loss(LogisticRegression(2).default_loss), SigmoidBinaryCrossEntropyLoss)


# =========================================================================== behaviour of the step


def test_loss_and_backward_overwrites_gradients_and_accepts_names(rng):
    X, y = data(rng)
    model = MLP(D, [8], C, seed=1, dtype=np.float64)
    first = float(model.loss_and_backward(X, y))
    once = [gradient.copy() for gradient in model.gradients()]
    assert float(model.loss_and_backward(X, y, "cross_entropy")) == first
    for before, after in zip(once, model.gradients()):
        np.testing.assert_array_equal(before, after)


def test_input_gradient_leaves_parameter_gradients_alone_and_ignores_dropout(rng):
    X, y = data(rng)
    model = MLP(D, [16], C, dropout=0.5, seed=2, dtype=np.float64)
    model.loss_and_backward(X, y)
    saved = [gradient.copy() for gradient in model.gradients()]
    first = model.input_gradient(X, y)
    np.testing.assert_array_equal(first, model.input_gradient(X, y))
    for before, after in zip(saved, model.gradients()):
        np.testing.assert_array_equal(before, after)
    no_dropout = MLP(D, [16], C, seed=2, dtype=np.float64)
    for target, source in zip(no_dropout.parameters(), model.parameters()):
        target[...] = source
    np.testing.assert_allclose(first, no_dropout.input_gradient(X, y), rtol=1e-14)


def test_fast_gradient_sign_step_increases_the_loss(rng):
    X, y = data(rng, n=50)
    model = MLP(D, [16], C, seed=4, dtype=np.float64)
    loss = CrossEntropyLoss()
    before = loss_value(model, X, y, loss, False)
    adversarial = X + 0.1 * np.sign(model.input_gradient(X, y, loss))
    assert loss_value(model, adversarial, y, loss, False) > before


@pytest.mark.parametrize("make_model", [
    lambda: SoftmaxRegression(2, 3),
    lambda: MLP(2, [16], 3, seed=0),
    lambda: MLP(2, [16], 3, activation="tanh", dropout=0.1, seed=0),
])
def test_gradient_descent_learns_separable_blobs(make_model):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = np.repeat(np.arange(3), 50)
    X = (centres[y] + rng.normal(size=(150, 2)) * 0.5).astype(np.float32)
    model = make_model()
    first = float(model.loss_and_backward(X, y))
    for _ in range(100):
        model.loss_and_backward(X, y)
        for parameter, gradient in zip(model.parameters(), model.gradients()):
            parameter -= 0.5 * gradient
    assert float(model.loss_and_backward(X, y)) < 0.2 * first
    assert np.mean(model.predict(X) == y) > 0.95


def test_float32_model_agrees_with_its_float64_twin(rng):
    X, y = rng.normal(size=(32, D)), rng.integers(0, C, 32)
    model = MLP(D, [16, 8], C, activation="tanh", seed=5)
    model.loss_and_backward(X, y)
    exact = twin_in_float64(model)
    exact.loss_and_backward(X, y)
    for low, high in zip(model.gradients(), exact.gradients()):
        assert low.dtype == np.float32 and high.dtype == np.float64
        assert_relative(low, high, 1e-5)


def test_n_parameters():
    assert MLP(784, [800], 10).n_parameters == 784 * 800 + 800 + 800 * 10 + 10
    assert SoftmaxRegression(784, 10).n_parameters == 7850
    assert LogisticRegression(5, 2).n_parameters == 12


# =========================================================================== seeds and configuration


def test_same_seed_same_model_different_seed_different_model():
    first, second, other = MLP(D, [8, 4], C, seed=3), MLP(D, [8, 4], C, seed=3), MLP(D, [8, 4], C, seed=4)
    for a, b in zip(first.parameters(), second.parameters()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.parameters()[0], other.parameters()[0])
    assert not np.array_equal(first.parameters()[2], other.parameters()[2])


def test_mlp_init_follows_the_activation():
    relu = MLP(400, [300], 10, seed=0, dtype=np.float64).parameters()[0]
    assert abs(relu.std() / np.sqrt(2 / 400) - 1) < 0.02
    tanh = MLP(400, [300], 10, activation="tanh", seed=0, dtype=np.float64).parameters()[0]
    bound = np.sqrt(6 / 700)
    assert np.abs(tanh).max() <= bound and abs(tanh.var() / (bound**2 / 3) - 1) < 0.02
    forced = MLP(400, [300], 10, activation="tanh", init="he", seed=0, dtype=np.float64).parameters()[0]
    assert np.abs(forced).max() > bound


@pytest.mark.parametrize("model", [
    SoftmaxRegression(D, C, init="xavier", seed=3),
    LogisticRegression(D, 2, seed=1, dtype=np.float64),
    MLP(D, (8, 6), C, activation="sigmoid", dropout=0.2, seed=7),
    MLP(D, 4, C, init="xavier", seed=np.int64(2)),
])
def test_config_round_trip(model, rng):
    config = json.loads(json.dumps(model.config()))
    assert config["class"] == type(model).__name__
    rebuilt = model_from_config(config)
    assert type(rebuilt) is type(model) and rebuilt.config() == model.config()
    assert rebuilt.parameter_names() == model.parameter_names()
    for a, b in zip(rebuilt.parameters(), model.parameters()):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # same seed: the same untrained weights
    # weights set by name give the same predictions as the original's after "training"
    for parameter in model.parameters():
        parameter += rng.normal(size=parameter.shape).astype(parameter.dtype)
    weights = dict(zip(model.parameter_names(), model.parameters()))
    rebuilt = model_from_config(config)
    for name, parameter in zip(rebuilt.parameter_names(), rebuilt.parameters()):
        parameter[...] = weights[name]
    X = rng.normal(size=(7, D))
    np.testing.assert_array_equal(rebuilt.predict_proba(X), model.predict_proba(X))


def test_config_of_a_generator_seeded_model():
    model = MLP(D, [4], C, seed=np.random.default_rng(0))
    assert model.config()["seed"] is None
    assert model_from_config(model.config()).parameter_names() == model.parameter_names()


@pytest.mark.parametrize("config, error, pattern", [
    ({"class": "Perceptron"}, ValueError, r"config\['class'\] must be one of"),
    ({"n_features": 3}, ValueError, r"config\['class'\]"),
    ({"class": "MLP", "n_features": 3, "hidden_sizes": [2], "n_classes": 2, "depth": 4}, ValueError,
     r"unknown arguments \['depth'\]"),
    ([("class", "MLP")], TypeError, "config must be a dict"),
])
def test_model_from_config_rejects_bad_configs(config, error, pattern):
    with pytest.raises(error, match=pattern):
        model_from_config(config)


# =========================================================================== bad arguments


@pytest.mark.parametrize("build, error, pattern", [
    (lambda: SoftmaxRegression(-3, 2), ValueError, "n_features must be an integer >= 1, got -3"),
    (lambda: SoftmaxRegression(3, 1), ValueError, "n_classes must be an integer >= 2, got 1"),
    (lambda: LogisticRegression(3, 0), ValueError, "n_outputs must be an integer >= 1, got 0"),
    (lambda: LogisticRegression(3, init="ones"), ValueError, "init must be one of"),
    (lambda: MLP(3, [4, -1], 2), ValueError, r"hidden_sizes\[1\] must be an integer >= 1, got -1"),
    (lambda: MLP(3, [4.5], 2), TypeError, r"hidden_sizes\[0\] must be an integer"),
    (lambda: MLP(3, "64", 2), TypeError, "hidden_sizes must be an integer or a sequence"),
    (lambda: MLP(3, [4], -2), ValueError, "n_classes must be an integer >= 2, got -2"),
    (lambda: MLP(3, [4], 2, activation="gelu"), ValueError,
     "activation must be one of 'relu', 'tanh', 'sigmoid', got 'gelu'"),
    (lambda: MLP(3, [4], 2, init="orthogonal"), ValueError, "init must be one of"),
    (lambda: MLP(3, [4], 2, dropout=1.0), ValueError, r"dropout must lie in \[0, 1\), got 1.0"),
    (lambda: MLP(3, [4], 2, dropout=float("nan")), ValueError, "dropout must be a number, got nan"),
    (lambda: MLP(3, [4], 2, dropout=-0.5), ValueError, "dropout must lie in"),
    (lambda: MLP(3, [4], 2, dtype=np.float16), TypeError, "dtype must be float32 or float64"),
    (lambda: MLP(3, [4], 2, seed=-5), ValueError, "seed must be an integer >= 0"),
])
def test_constructors_reject_bad_arguments(build, error, pattern):
    with pytest.raises(error, match=pattern):
        build()


def test_forward_rejects_a_wrong_input_width_naming_the_shapes():
    model = MLP(4, [8], 3)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\) for MLP\(n_features=4\), got shape \(2, 3\)"):
        model.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\).*got shape \(4,\)"):
        model.predict(np.ones(4))
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\)"):
        model.loss_and_backward(np.ones((2, 5)), np.array([0, 1]))
    with pytest.raises(TypeError, match="X must be an array of real numbers"):
        model.forward(np.array([["a", "b", "c", "d"]]))


def test_bad_targets_and_losses_are_reported():
    model = SoftmaxRegression(4, 3)
    X = np.ones((2, 4))
    with pytest.raises(ValueError, match="target"):
        model.loss_and_backward(X, np.array([0, 3]))  # label 3 of 3 classes
    with pytest.raises(TypeError, match="loss must be a loss name or an object with value_and_grad"):
        model.loss_and_backward(X, np.array([0, 1]), loss=42)
    with pytest.raises(ValueError, match="loss must be one of"):
        model.loss_and_backward(X, np.array([0, 1]), loss="hinge")
    with pytest.raises(TypeError, match="sample_weight"):  # the sigmoid loss takes no sample_weight
        LogisticRegression(4).loss_and_backward(X, np.array([0, 1]), sample_weight=np.ones(2))
