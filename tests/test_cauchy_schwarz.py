import itertools
import math

import numpy as np
import pytest

import crossent
import reference_similarity as reference
from crossent.losses.cauchy_schwarz import (
    CauchySchwarzLoss,
    cauchy_schwarz_loss,
    cauchy_schwarz_loss_grad,
    cauchy_schwarz_loss_value_and_grad,
)

N, C = 6, 5


def _problem(rng, kind, with_sample_weight, with_ignore):
    logits = rng.normal(size=(N, C)) * 2
    if kind == "labels":
        target = rng.integers(0, C, N)
        if with_ignore:
            target[[0, 3]] = -1
    else:
        target = rng.dirichlet(np.ones(C), size=N)
        target[1, 2] = 0.0  # a class without target mass
        target /= target.sum(axis=1, keepdims=True)
    sample_weight = rng.uniform(0.2, 2.0, N) if with_sample_weight else None
    return logits, target, sample_weight


GRID = [
    params for params in itertools.product(["labels", "probabilities"], [False, True],
                                           [False, True], ["mean", "sum", "none"])
    if not (params[0] == "probabilities" and params[2])
]


def _ids(params):
    return "-".join(str(p) for p in params)


def _options(sample_weight, with_ignore, reduction):
    return dict(sample_weight=sample_weight, ignore_index=-1 if with_ignore else None,
                reduction=reduction)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, target, sample_weight = _problem(rng, kind, with_sw, with_ignore)
    options = _options(sample_weight, with_ignore, reduction)
    value, grad = cauchy_schwarz_loss_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.cauchy_schwarz(
        logits.tolist(), target.tolist(), None if sample_weight is None else sample_weight.tolist(),
        options["ignore_index"], reduction)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(cauchy_schwarz_loss(logits, target, **options), value)
    np.testing.assert_array_equal(cauchy_schwarz_loss_grad(logits, target, **options), grad)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, target, sample_weight = _problem(rng, kind, with_sw, with_ignore)
    options = _options(sample_weight, with_ignore, reduction)
    result = crossent.gradcheck(lambda x: np.sum(cauchy_schwarz_loss(x, target, **options)), logits,
                                lambda x: cauchy_schwarz_loss_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("kind", ["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["2d", "spatial"])
@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_matches_pytorch_formula(kind, reduction, layout, with_sample_weight, rng):
    """D_CS = -log(<t, p> / (|t| |p|)) written directly in torch (float64, autograd)."""
    torch = pytest.importorskip("torch")
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
    value, grad = cauchy_schwarz_loss_value_and_grad(
        logits, target, sample_weight=sample_weight, reduction=reduction, axis=axis)

    z = torch.tensor(np.moveaxis(logits, axis, -1), dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target_rows)
    p = torch.softmax(z, dim=-1)
    per_row = -torch.log((t * p).sum(-1) / (torch.linalg.vector_norm(t, dim=-1)
                                             * torch.linalg.vector_norm(p, dim=-1)))
    weight = torch.ones_like(per_row) if sample_weight is None else torch.tensor(sample_weight)
    per_row = per_row * weight
    expected = {"none": per_row, "sum": per_row.sum(), "mean": per_row.sum() / weight.sum()}[reduction]
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, np.moveaxis(z.grad.numpy(), -1, axis), rtol=1e-10, atol=1e-13)


def test_closed_forms_for_labels(rng):
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    value, grad = cauchy_schwarz_loss_value_and_grad(logits, labels, reduction="none")
    p = crossent.softmax(logits)
    rows = np.arange(N)
    # -log p_y + 1/2 log sum p^2 == 1/2 lse(2z) - z_y
    np.testing.assert_allclose(value, -np.log(p[rows, labels]) + 0.5 * np.log((p ** 2).sum(1)),
                               rtol=1e-13)
    np.testing.assert_allclose(value, 0.5 * crossent.logsumexp(2 * logits) - logits[rows, labels],
                               rtol=1e-13)
    # gradient softmax(2z) - onehot(y)
    np.testing.assert_allclose(grad, crossent.softmax(2 * logits) - np.eye(C)[labels], atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_one_hot_probabilities_equal_labels(reduction, rng):
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    weights = rng.uniform(0.2, 2.0, N)
    by_label = cauchy_schwarz_loss_value_and_grad(logits, labels, sample_weight=weights,
                                                  reduction=reduction)
    by_distribution = cauchy_schwarz_loss_value_and_grad(logits, np.eye(C)[labels],
                                                         sample_weight=weights, reduction=reduction)
    np.testing.assert_allclose(by_distribution[0], by_label[0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(by_distribution[1], by_label[1], rtol=1e-15, atol=1e-17)


def test_zero_exactly_when_prediction_is_proportional_to_target(rng):
    logits = rng.normal(size=(N, C))
    target = crossent.softmax(logits)
    value, grad = cauchy_schwarz_loss_value_and_grad(logits, target, reduction="none")
    np.testing.assert_allclose(value, 0, atol=1e-15)
    np.testing.assert_allclose(grad, 0, atol=1e-15)
    others = rng.dirichlet(np.ones(C), size=N)
    assert (cauchy_schwarz_loss(logits, others, reduction="none") > 0).all()


def test_confident_correct_prediction_keeps_relative_accuracy():
    # loss = 1/2 log(1 + 2 e^-60): far below the float64 epsilon of the log-sum-exp itself
    value = cauchy_schwarz_loss(np.array([[30.0, 0.0, 0.0]]), np.array([0]))
    assert value == pytest.approx(0.5 * math.log1p(2 * math.exp(-60.0)), rel=1e-14)
    assert value > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
def test_stability_large_and_shifted_logits(dtype, kind, rng):
    base = rng.normal(size=(N, C))
    target = rng.integers(0, C, N) if kind == "labels" else rng.dirichlet(np.ones(C), N).astype(dtype)
    reference_value, reference_grad = cauchy_schwarz_loss_value_and_grad(base, target)
    for shift in (1e4, -1e4):
        value, grad = cauchy_schwarz_loss_value_and_grad((base + shift).astype(dtype), target)
        assert value.dtype == dtype and grad.dtype == dtype
        tolerance = 1e-9 if dtype == np.float64 else 5e-3
        np.testing.assert_allclose(value, reference_value, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(grad, reference_grad, atol=tolerance)
    value, grad = cauchy_schwarz_loss_value_and_grad((base * 1e4).astype(dtype), target,
                                                     reduction="none")
    assert np.isfinite(value).all() and np.isfinite(grad).all() and (value >= -1e-6).all()
    # the loss grows like the logit gap: 1/2 lse(2z) - z_y ~ max z - z_y
    if kind == "labels":
        big = base * 1e4
        gap = big.max(axis=1) - big[np.arange(N), target]
        np.testing.assert_allclose(value, gap, rtol=1e-6, atol=1.0)


def test_infinite_exactly_where_target_and_prediction_do_not_overlap():
    logits = np.array([
        [-np.inf, 0.0, 1.0],
        [0.0, -np.inf, 1.0],
        [-np.inf, -np.inf, 2.0],
        [-np.inf, -np.inf, -np.inf],
    ])
    labels = np.array([0, 0, 2, 1])
    value, grad = cauchy_schwarz_loss_value_and_grad(logits, labels, reduction="none")
    assert value[0] == np.inf and value[3] == np.inf
    assert np.isfinite(value[[1, 2]]).all() and value[2] == 0.0
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad[0], crossent.softmax(2 * np.array([-np.inf, 0.0, 1.0])) - [1, 0, 0])
    np.testing.assert_array_equal(grad[3], [0.0, -1.0, 0.0])
    # probability targets: finite as long as some target class is possible (unlike cross-entropy)
    target = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    masked = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, 1.0]])
    value, grad = cauchy_schwarz_loss_value_and_grad(masked, target, reduction="none")
    p = crossent.softmax(masked[0])
    assert value[0] == pytest.approx(-np.log(0.5 * p[1] / (np.sqrt(0.5) * np.linalg.norm(p))),
                                     rel=1e-14)
    assert value[1] == np.inf
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad[1], [-0.5, -0.5, 1.0])  # softmax(2z) - t
    assert np.isinf(crossent.softmax_cross_entropy(masked[:1], target[:1]))


def test_float32_agrees_with_float64(rng):
    logits = rng.normal(size=(50, C)) * 3
    for target in (rng.integers(0, C, 50), rng.dirichlet(np.ones(C), 50)):
        value64, grad64 = cauchy_schwarz_loss_value_and_grad(logits, target)
        target32 = target.astype(np.float32) if target.dtype.kind == "f" else target
        value32, grad32 = cauchy_schwarz_loss_value_and_grad(logits.astype(np.float32), target32)
        assert value32.dtype == np.float32 and grad32.dtype == np.float32
        np.testing.assert_allclose(value32, value64, rtol=1e-5)
        np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-7)


def test_every_row_ignored_gives_zero_mean_and_zero_gradient(rng):
    value, grad = cauchy_schwarz_loss_value_and_grad(rng.normal(size=(3, C)), np.full(3, -1),
                                                     ignore_index=-1)
    assert value == 0.0 and not grad.any()


def test_bad_inputs(rng):
    logits = rng.normal(size=(3, C))
    labels = np.array([0, 1, 2])
    with pytest.raises(ValueError, match="target must be probability distributions"):
        cauchy_schwarz_loss(logits, np.full((3, C), 0.5))
    with pytest.raises(ValueError, match=r"target must be probabilities \(>= 0\)"):
        cauchy_schwarz_loss(logits, np.array([[1.5, -0.5, 0, 0, 0]] * 3))
    with pytest.raises(ValueError, match="target of floating dtype must be probabilities"):
        cauchy_schwarz_loss(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="ignore_index applies to class-label targets only"):
        cauchy_schwarz_loss(logits, np.eye(3, C), ignore_index=0)
    with pytest.raises(TypeError, match="got dtype bool"):
        cauchy_schwarz_loss(logits, np.eye(3, C, dtype=bool))
    with pytest.raises(ValueError, match=r"target holds class labels in \[0, 4\]; found -3"):
        cauchy_schwarz_loss(logits, np.array([0, -3, 1]))
    with pytest.raises(ValueError, match="sample_weight must have one weight per row"):
        cauchy_schwarz_loss(logits, labels, sample_weight=np.ones((3, C)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        cauchy_schwarz_loss(logits, labels, reduction=None)
    with pytest.raises(TypeError, match="logits must be an array of numbers"):
        cauchy_schwarz_loss("logits", labels)


def test_loss_class(rng):
    logits = rng.normal(size=(4, C))
    labels = rng.integers(0, C, 4)
    weights = rng.uniform(0.5, 2.0, 4)
    loss = CauchySchwarzLoss(reduction="none")
    expected = cauchy_schwarz_loss(logits, labels, reduction="none", sample_weight=weights)
    np.testing.assert_array_equal(loss(logits, labels, sample_weight=weights), expected)
    value, grad = loss.value_and_grad(logits, labels, sample_weight=weights)
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(
        grad, cauchy_schwarz_loss_grad(logits, labels, reduction="none", sample_weight=weights))
    with pytest.raises(TypeError, match="unexpected option 'label_smoothing'"):
        CauchySchwarzLoss(label_smoothing=0.1)
