import itertools
import math

import numpy as np
import pytest

import crossent
import reference_similarity as reference
from crossent.losses.quadratic import (
    MeanSquaredErrorLoss,
    mean_squared_error,
    mean_squared_error_grad,
    mean_squared_error_value_and_grad,
)

N, C = 6, 4


def _ids(params):
    return "-".join(str(p) for p in params)


# ---------------------------------------------------------------- softmax

def _softmax_problem(rng, kind, with_sample_weight, with_ignore):
    logits = rng.normal(size=(N, C)) * 2
    if kind == "labels":
        target = rng.integers(0, C, N)
        if with_ignore:
            target[[2, 5]] = -100
    else:
        target = rng.dirichlet(np.ones(C), size=N)
    sample_weight = rng.uniform(0.2, 2.0, N) if with_sample_weight else None
    return logits, target, sample_weight


SOFTMAX_GRID = [
    params for params in itertools.product(["labels", "probabilities"], [False, True],
                                           [False, True], ["mean", "sum", "none"])
    if not (params[0] == "probabilities" and params[2])
]


@pytest.mark.parametrize("params", SOFTMAX_GRID, ids=_ids)
def test_softmax_matches_naive_reference(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, target, sample_weight = _softmax_problem(rng, kind, with_sw, with_ignore)
    options = dict(sample_weight=sample_weight, ignore_index=-100 if with_ignore else None,
                   reduction=reduction)
    value, grad = mean_squared_error_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.squared_error_softmax(
        logits.tolist(), target.tolist(), None if sample_weight is None else sample_weight.tolist(),
        options["ignore_index"], reduction)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(mean_squared_error(logits, target, **options), value)
    np.testing.assert_array_equal(mean_squared_error_grad(logits, target, **options), grad)


@pytest.mark.parametrize("params", SOFTMAX_GRID, ids=_ids)
def test_softmax_gradient_matches_finite_differences(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, target, sample_weight = _softmax_problem(rng, kind, with_sw, with_ignore)
    options = dict(sample_weight=sample_weight, ignore_index=-100 if with_ignore else None,
                   reduction=reduction)
    result = crossent.gradcheck(lambda x: np.sum(mean_squared_error(x, target, **options)), logits,
                                lambda x: mean_squared_error_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


# ---------------------------------------------------------------- sigmoid

def _sigmoid_problem(rng, kind, weight_kind, axis):
    logits = rng.normal(size=(N, C)) * 2
    if kind == "probabilities":
        target = rng.uniform(0, 1, (N, C))
        target[0, :2] = [0.0, 1.0]
    elif kind == "integer":
        target = rng.integers(0, 2, (N, C))
    else:
        target = rng.random((N, C)) < 0.5
    per_row = N if axis == -1 else C
    sample_weight = {
        None: None,
        "rows": rng.uniform(0.2, 2.0, per_row),
        "elements": rng.uniform(0.0, 2.0, (N, C)),
    }[weight_kind]
    if weight_kind == "elements":
        sample_weight[1, 1] = 0.0
    return logits, target, sample_weight


def _element_weights(sample_weight, axis):
    if sample_weight is None:
        return None
    if sample_weight.ndim == 2:
        return sample_weight
    return np.broadcast_to(sample_weight[:, None] if axis == -1 else sample_weight[None, :], (N, C))


SIGMOID_GRID = list(itertools.product(["probabilities", "integer", "bool"],
                                      [None, "rows", "elements"], [-1, 0], ["mean", "sum", "none"]))


@pytest.mark.parametrize("params", SIGMOID_GRID, ids=_ids)
def test_sigmoid_matches_naive_reference(params, rng):
    kind, weight_kind, axis, reduction = params
    logits, target, sample_weight = _sigmoid_problem(rng, kind, weight_kind, axis)
    value, grad = mean_squared_error_value_and_grad(
        logits, target, activation="sigmoid", sample_weight=sample_weight, reduction=reduction,
        axis=axis)
    weights = _element_weights(sample_weight, axis)
    expected_value, expected_grad = reference.squared_error_sigmoid(
        logits.tolist(), target.astype(float).tolist(), None if weights is None else weights.tolist(),
        reduction)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    if reduction == "none":
        assert np.shape(value) == (N, C)


@pytest.mark.parametrize("params", SIGMOID_GRID[::2], ids=_ids)
def test_sigmoid_gradient_matches_finite_differences(params, rng):
    kind, weight_kind, axis, reduction = params
    logits, target, sample_weight = _sigmoid_problem(rng, kind, weight_kind, axis)
    options = dict(activation="sigmoid", sample_weight=sample_weight, reduction=reduction, axis=axis)
    result = crossent.gradcheck(lambda x: np.sum(mean_squared_error(x, target, **options)), logits,
                                lambda x: mean_squared_error_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


# ---------------------------------------------------------------- PyTorch

@pytest.mark.parametrize("kind", ["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["2d", "spatial"])
@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_softmax_matches_pytorch(kind, reduction, layout, with_sample_weight, rng):
    """1/2 sum_c (softmax(z) - y)^2 per row in torch (float64, autograd); F.mse_loss for the plain case."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape = (N, C) if layout == "2d" else (3, C, 2, 2)
    axis = -1 if layout == "2d" else 1
    batch_shape = shape[:1] + shape[2:] if layout == "spatial" else shape[:1]
    logits = rng.normal(size=shape) * 3
    if kind == "labels":
        target = rng.integers(0, C, batch_shape)
        target_rows = np.eye(C)[target]
    else:
        target_rows = rng.dirichlet(np.ones(C), size=batch_shape)
        target = np.moveaxis(target_rows, -1, axis)
    sample_weight = rng.uniform(0.2, 2.0, batch_shape) if with_sample_weight else None
    value, grad = mean_squared_error_value_and_grad(logits, target, sample_weight=sample_weight,
                                                    reduction=reduction, axis=axis)

    z = torch.tensor(np.moveaxis(logits, axis, -1), dtype=torch.float64, requires_grad=True)
    a = torch.softmax(z, dim=-1)
    t = torch.tensor(target_rows)
    per_row = 0.5 * F.mse_loss(a, t, reduction="none").sum(-1)
    weight = torch.ones_like(per_row) if sample_weight is None else torch.tensor(sample_weight)
    per_row = per_row * weight
    expected = {"none": per_row, "sum": per_row.sum(), "mean": per_row.sum() / weight.sum()}[reduction]
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, np.moveaxis(z.grad.numpy(), -1, axis), rtol=1e-10, atol=1e-13)
    if reduction == "mean" and sample_weight is None:
        # PyTorch's mse_loss averages over N*C elements and has no 1/2: ours = C/2 * theirs
        plain = F.mse_loss(a.detach(), t).item()
        assert float(value) == pytest.approx(C / 2 * plain, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight_kind", [None, "rows", "elements"])
def test_sigmoid_matches_pytorch(reduction, weight_kind, rng):
    """activation="sigmoid" is 0.5 * F.mse_loss(sigmoid(z), y) (weighted: sum w l / sum w)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits, target, sample_weight = _sigmoid_problem(rng, "probabilities", weight_kind, -1)
    value, grad = mean_squared_error_value_and_grad(logits, target, activation="sigmoid",
                                                    sample_weight=sample_weight, reduction=reduction)
    z = torch.tensor(logits, requires_grad=True)
    weights = _element_weights(sample_weight, -1)
    if weights is None:
        expected = 0.5 * F.mse_loss(torch.sigmoid(z), torch.tensor(target), reduction=reduction)
    else:
        w = torch.tensor(np.array(weights))
        per_element = 0.5 * F.mse_loss(torch.sigmoid(z), torch.tensor(target), reduction="none") * w
        expected = {"none": per_element, "sum": per_element.sum(),
                    "mean": per_element.sum() / w.sum()}[reduction]
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-13)


# ---------------------------------------------------------------- the learning slowdown

def test_sigmoid_gradient_carries_sigma_prime_that_cross_entropy_cancels(rng):
    logits = rng.normal(size=(N, C)) * 4
    target = rng.integers(0, 2, (N, C)).astype(float)
    a = crossent.sigmoid(logits)
    mse = mean_squared_error_grad(logits, target, activation="sigmoid", reduction="sum")
    np.testing.assert_allclose(mse, (a - target) * a * (1 - a), rtol=1e-12, atol=1e-300)
    # the binary cross-entropy gradient is a - y: the quadratic cost's is sigma'(z) times it
    np.testing.assert_allclose(mse, (a - target) * crossent.sigmoid(logits) * crossent.sigmoid(-logits),
                               rtol=1e-12)
    # a saturated, wrong unit (Nielsen's example): the gradient all but vanishes
    stuck = mean_squared_error_grad(np.array([8.0]), np.array([0.0]), activation="sigmoid")
    assert 0 < stuck[0] < 4e-4


def test_saturated_units_keep_their_tiny_gradient():
    # z = 40, y = 1: a - y = -sigmoid(-40) ~ -4e-18, which 1 - a would round to 0
    value, grad = mean_squared_error_value_and_grad(np.array([40.0, -40.0]), np.array([1.0, 0.0]),
                                                    activation="sigmoid", reduction="none")
    small = math.exp(-40.0) / (1 + math.exp(-40.0))
    np.testing.assert_allclose(value, [0.5 * small ** 2] * 2, rtol=1e-14)
    np.testing.assert_allclose(grad, [-small ** 2 * (1 - small), small ** 2 * (1 - small)], rtol=1e-14)
    # softmax with a confident correct label: 1 - a_y = sum of the other probabilities
    value = mean_squared_error(np.array([[40.0, 0.0, 0.0]]), np.array([0]))
    other = math.exp(-40.0) / (1 + 2 * math.exp(-40.0))
    assert value == pytest.approx(0.5 * ((2 * other) ** 2 + 2 * other ** 2), rel=1e-14)


# ---------------------------------------------------------------- stability and dtypes

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_stability(dtype, activation, rng):
    base = rng.normal(size=(N, C))
    target = rng.integers(0, C, N) if activation == "softmax" else rng.integers(0, 2, (N, C))
    for x in (base * 1e4, base + 1e4, base - 1e4, base * 1e4 + 1e4):
        value, grad = mean_squared_error_value_and_grad(x.astype(dtype), target, activation=activation,
                                                        reduction="none")
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value).all() and np.isfinite(grad).all()
        bound = 1.0 if activation == "softmax" else 0.5
        assert (value >= 0).all() and (value <= bound).all()
    # -inf entries: bounded activations, finite loss everywhere; a row that is all -inf has a = 0
    x = base.astype(dtype)
    x[0, :] = -np.inf
    x[1, 0] = -np.inf
    value, grad = mean_squared_error_value_and_grad(x, target, activation=activation, reduction="none")
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    if activation == "softmax":
        assert value[0] == 0.5 and not grad[0].any()
    else:
        np.testing.assert_array_equal(value[0], 0.5 * target[0])
        assert not grad[0].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_shift_invariance(dtype, rng):
    base = rng.normal(size=(N, C))
    labels = rng.integers(0, C, N)
    expected_value, expected_grad = mean_squared_error_value_and_grad(base, labels)
    value, grad = mean_squared_error_value_and_grad((base + 1e4).astype(dtype), labels)
    tolerance = 1e-9 if dtype == np.float64 else 5e-3
    np.testing.assert_allclose(value, expected_value, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(grad, expected_grad, atol=tolerance)


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_float32_agrees_with_float64(activation, rng):
    logits = rng.normal(size=(50, C)) * 3
    target = rng.dirichlet(np.ones(C), 50) if activation == "softmax" else rng.uniform(0, 1, (50, C))
    value64, grad64 = mean_squared_error_value_and_grad(logits, target, activation=activation)
    value32, grad32 = mean_squared_error_value_and_grad(logits.astype(np.float32),
                                                        target.astype(np.float32), activation=activation)
    assert value32.dtype == np.float32 and grad32.dtype == np.float32
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-8)


def test_all_weights_zero_gives_zero_mean(rng):
    logits = rng.normal(size=(3, C))
    for activation, target in (("softmax", np.array([0, 1, 2])), ("sigmoid", np.zeros((3, C)))):
        value, grad = mean_squared_error_value_and_grad(logits, target, activation=activation,
                                                        sample_weight=np.zeros(3))
        assert value == 0.0 and not grad.any()


# ---------------------------------------------------------------- errors and the Loss class

def test_bad_inputs(rng):
    logits = rng.normal(size=(3, C))
    labels = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="activation must be one of 'softmax', 'sigmoid', got 'tanh'"):
        mean_squared_error(logits, labels, activation="tanh")
    with pytest.raises(ValueError, match="ignore_index applies to activation='softmax'"):
        mean_squared_error(logits, np.zeros((3, C)), activation="sigmoid", ignore_index=-100)
    with pytest.raises(ValueError, match="target with an integer dtype must hold 0 or 1.*found 2"):
        mean_squared_error(logits, np.full((3, C), 2), activation="sigmoid")
    with pytest.raises(ValueError, match=r"target must be probabilities \(<= 1\); found 1.5"):
        mean_squared_error(logits, np.full((3, C), 1.5), activation="sigmoid")
    with pytest.raises(ValueError, match="target for activation='sigmoid' must have the logits' shape"
                                         ".*activation='softmax'"):
        mean_squared_error(logits, labels, activation="sigmoid")
    with pytest.raises(ValueError, match=r"sample_weight for activation='sigmoid' must have one weight "
                                         r"per row, shape \(3,\), or one per element"):
        mean_squared_error(logits, np.zeros((3, C)), activation="sigmoid", sample_weight=np.ones(C + 1))
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        mean_squared_error(logits, np.zeros((3, C)), activation="sigmoid",
                           sample_weight=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(TypeError, match="target must hold 0/1 labels or floating probabilities"):
        mean_squared_error(logits, np.full((3, C), "a"), activation="sigmoid")
    with pytest.raises(ValueError, match="target must be probability distributions"):
        mean_squared_error(logits, np.full((3, C), 0.5))
    with pytest.raises(TypeError, match="got dtype bool"):
        mean_squared_error(logits, np.zeros((3, C), dtype=bool))
    with pytest.raises(ValueError, match=r"target holds class labels in \[0, 3\]; found 4"):
        mean_squared_error(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mean_squared_error(logits, labels, reduction="mean ")
    with pytest.raises(ValueError, match="reduction must be one of"):
        mean_squared_error(logits, np.zeros((3, C)), activation="sigmoid", reduction="avg")
    with pytest.raises(ValueError, match="logits is empty"):
        mean_squared_error(np.zeros((0, C)), np.zeros((0, C)), activation="sigmoid")


def test_loss_class(rng):
    logits = rng.normal(size=(4, C))
    target = rng.uniform(0, 1, (4, C))
    weights = rng.uniform(0.5, 2.0, 4)
    loss = MeanSquaredErrorLoss(activation="sigmoid")
    expected = mean_squared_error(logits, target, activation="sigmoid", sample_weight=weights)
    assert loss(logits, target, sample_weight=weights) == expected
    value, grad = loss.value_and_grad(logits, target, sample_weight=weights)
    assert value == expected
    np.testing.assert_array_equal(
        grad, mean_squared_error_grad(logits, target, activation="sigmoid", sample_weight=weights))
    assert MeanSquaredErrorLoss()(logits, np.array([0, 1, 2, 3])) == mean_squared_error(
        logits, np.array([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="unexpected option 'label_smoothing'"):
        MeanSquaredErrorLoss(label_smoothing=0.1)
