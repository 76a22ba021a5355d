"""Tests for the element-wise binary losses: sigmoid BCE, BCE on probabilities, sigmoid focal loss."""

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossent
import reference_binary as reference
from crossent.losses import binary
from crossent.losses.binary import (
    BCELoss,
    BCEWithLogitsLoss,
    BinaryCrossEntropyLoss,
    SigmoidBinaryCrossEntropyLoss,
    SigmoidFocalLoss,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_value_and_grad,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_grad,
    sigmoid_binary_cross_entropy_value_and_grad,
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_value_and_grad,
)

N, C = 4, 3
REDUCTIONS = ("mean", "sum", "none")
TARGET_KINDS = ("hard", "soft", "int", "bool")


def assert_close(actual, expected, rtol):
    """Relative agreement, with entries judged against the largest magnitude (gradients have near-zeros)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def make_target(rng, kind, shape=(N, C)):
    labels = rng.integers(0, 2, shape)
    labels.flat[0], labels.flat[1] = 0, 1  # both classes present
    if kind == "hard":
        return labels.astype(np.float64)
    if kind == "soft":
        return rng.uniform(0.0, 1.0, shape)
    if kind == "int":
        return labels
    return labels.astype(bool)


def make_weight(rng, kind):
    return {None: None, "sample": rng.uniform(0.5, 2.0, (N, 1)),
            "full": rng.uniform(0.5, 2.0, (N, C)), "class": rng.uniform(0.5, 2.0, C)}[kind]


def summed(func, reduction):
    """Scalar objective for gradcheck: the loss, or the sum of the per-element losses."""
    return (lambda z: np.sum(func(z))) if reduction == "none" else func


# =========================================================================== sigmoid BCE

BCE_COMBINATIONS = list(itertools.product(
    TARGET_KINDS, (None, "sample", "full"), (False, True), (0.0, 0.2), REDUCTIONS))


def bce_case(target_kind, weight_kind, use_pos_weight, smoothing, reduction, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, C)) * 2.5
    target = make_target(rng, target_kind)
    options = dict(weight=make_weight(rng, weight_kind),
                   pos_weight=rng.uniform(0.5, 3.0, C) if use_pos_weight else None,
                   label_smoothing=smoothing, reduction=reduction)
    return logits, target, options


@pytest.mark.parametrize("combination", BCE_COMBINATIONS, ids=str)
def test_sigmoid_bce_matches_reference(combination):
    logits, target, options = bce_case(*combination)
    value, grad = sigmoid_binary_cross_entropy_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.sigmoid_binary_cross_entropy(
        logits, np.asarray(target, dtype=np.float64), **options)
    assert_close(value, expected_value, 1e-12)
    assert_close(grad, expected_grad, 1e-12)
    assert_close(sigmoid_binary_cross_entropy(logits, target, **options), value, 0)
    assert_close(sigmoid_binary_cross_entropy_grad(logits, target, **options), grad, 0)


@pytest.mark.parametrize("combination", BCE_COMBINATIONS, ids=str)
def test_sigmoid_bce_gradcheck(combination):
    logits, target, options = bce_case(*combination)
    func = summed(lambda z: sigmoid_binary_cross_entropy(z, target, **options), options["reduction"])
    result = crossent.gradcheck(func, logits, lambda z: sigmoid_binary_cross_entropy_grad(z, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("combination", BCE_COMBINATIONS, ids=str)
def test_sigmoid_bce_matches_torch(combination):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    logits, target, options = bce_case(*combination)
    eps = options["label_smoothing"]
    smoothed = np.asarray(target, dtype=np.float64) * (1 - eps) + eps / 2
    x = torch.tensor(logits, requires_grad=True)
    as_tensor = lambda a: None if a is None else torch.tensor(a)  # noqa: E731
    loss = functional.binary_cross_entropy_with_logits(
        x, torch.tensor(smoothed), weight=as_tensor(options["weight"]),
        pos_weight=as_tensor(options["pos_weight"]), reduction=options["reduction"])
    loss.sum().backward()
    value, grad = sigmoid_binary_cross_entropy_value_and_grad(logits, target, **options)
    assert_close(value, loss.detach().numpy(), 1e-10)
    assert_close(grad, x.grad.numpy(), 1e-10)


def test_sigmoid_bce_torch_pos_weight_broadcasts_along_last_axis():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits, target = rng.normal(size=(2, 3, 4)) * 3, rng.uniform(size=(2, 3, 4))
    pos_weight = rng.uniform(0.5, 3.0, 4)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits), torch.tensor(target), pos_weight=torch.tensor(pos_weight), reduction="sum")
    assert_close(sigmoid_binary_cross_entropy(logits, target, pos_weight=pos_weight, reduction="sum"),
                 expected.numpy(), 1e-12)


def test_sigmoid_bce_is_minus_log_likelihood_and_mean_over_elements():
    logits = np.array([[2.0, -1.0, 0.0]])
    target = np.array([[1, 0, 1]])
    p = 1 / (1 + np.exp(-logits))
    expected = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    assert sigmoid_binary_cross_entropy(logits, target) == pytest.approx(expected, rel=1e-14)
    # weights scale elements but the mean still divides by the number of elements
    weight = np.array([0.0, 0.0, 2.0])
    losses = sigmoid_binary_cross_entropy(logits, target, reduction="none")
    assert sigmoid_binary_cross_entropy(logits, target, weight=weight) == pytest.approx(
        2.0 * losses[0, 2] / 3, rel=1e-14)
    value, grad = sigmoid_binary_cross_entropy_value_and_grad(logits, target, weight=np.zeros(3))
    assert value == 0.0 and not grad.any()


def test_sigmoid_bce_label_smoothing_formula():
    logits, target = np.array([1.5, -0.5]), np.array([1.0, 0.0])
    assert sigmoid_binary_cross_entropy(logits, target, label_smoothing=0.2) == pytest.approx(
        float(sigmoid_binary_cross_entropy(logits, np.array([0.9, 0.1]))), rel=1e-15)


# =========================================================================== BCE on probabilities

PROBABILITY_COMBINATIONS = list(itertools.product(TARGET_KINDS, (None, "sample", "class"), REDUCTIONS))


def probability_case(target_kind, weight_kind, reduction, seed=1, boundary=True):
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.02, 0.98, (N, C))
    if boundary:  # exact 0 and 1, and a probability whose log is clamped
        probs[0, 0], probs[1, 1], probs[2, 2] = 0.0, 1.0, 1e-60
    target = make_target(rng, target_kind)
    return probs, target, dict(weight=make_weight(rng, weight_kind), reduction=reduction)


@pytest.mark.parametrize("combination", PROBABILITY_COMBINATIONS, ids=str)
def test_bce_matches_reference_including_clamp(combination):
    probs, target, options = probability_case(*combination)
    value, grad = binary_cross_entropy_value_and_grad(probs, target, **options)
    expected_value, expected_grad = reference.binary_cross_entropy(
        probs, np.asarray(target, dtype=np.float64), **options)
    assert_close(value, expected_value, 1e-12)
    assert_close(grad, expected_grad, 1e-12)
    assert np.isfinite(grad).all() and np.all(np.isfinite(value))
    assert_close(binary_cross_entropy(probs, target, **options), value, 0)
    assert_close(binary_cross_entropy_grad(probs, target, **options), grad, 0)


@pytest.mark.parametrize("combination", PROBABILITY_COMBINATIONS, ids=str)
def test_bce_gradcheck_interior(combination):
    probs, target, options = probability_case(*combination, boundary=False)
    func = summed(lambda p: binary_cross_entropy(p, target, **options), options["reduction"])
    result = crossent.gradcheck(func, probs, lambda p: binary_cross_entropy_grad(p, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("combination", PROBABILITY_COMBINATIONS, ids=str)
def test_bce_matches_torch(combination):
    """Values agree everywhere (the clamp included); gradients in the interior."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    for boundary in (True, False):
        probs, target, options = probability_case(*combination, boundary=boundary)
        p = torch.tensor(probs, requires_grad=True)
        weight = None if options["weight"] is None else torch.tensor(
            np.broadcast_to(options["weight"], (N, C)).copy())
        loss = functional.binary_cross_entropy(
            p, torch.tensor(np.asarray(target, dtype=np.float64)), weight=weight,
            reduction=options["reduction"])
        assert_close(binary_cross_entropy(probs, target, **options), loss.detach().numpy(), 1e-10)
        if not boundary:
            loss.sum().backward()
            assert_close(binary_cross_entropy_grad(probs, target, **options), p.grad.numpy(), 1e-10)


def test_bce_clamped_gradient_is_exact_derivative_of_clamped_loss():
    probs = np.array([0.0, 1.0, 1e-60, 1.0 - 1e-17, 0.5])
    target = np.array([1.0, 0.0, 0.25, 1.0, 1.0])
    losses = binary_cross_entropy(probs, target, reduction="none")
    np.testing.assert_array_equal(losses[:2], [100.0, 100.0])
    assert losses[2] == pytest.approx(0.25 * 100 - 0.75 * math.log1p(-1e-60), rel=1e-15)
    grad = binary_cross_entropy_grad(probs, target, reduction="sum")
    # p = 0, y = 1: log p is clamped, the (1 - y) term has weight 0 -> 0
    # p = 1e-60: only the (1 - y)/(1 - p) term survives
    np.testing.assert_allclose(grad, [0.0, 0.0, 0.75, -1.0, -2.0], rtol=1e-15)


def test_bce_small_probabilities_are_accurate():
    """log(1 - p) is evaluated as log1p(-p): exact for tiny p, as PyTorch does."""
    probs = np.array([1e-10, 1e-20])
    expected = [1e-10 + 0.5e-20, 1e-20]  # -log(1 - p) = p + p^2 / 2 + ...
    np.testing.assert_allclose(binary_cross_entropy(probs, np.zeros(2), reduction="none"), expected, rtol=1e-15)


def test_bce_probability_float32_clamp():
    probs = np.array([0.0, 1.0, 1e-45], dtype=np.float32)
    value, grad = binary_cross_entropy_value_and_grad(probs, np.array([1.0, 0.0, 1.0]), reduction="none")
    assert value.dtype == grad.dtype == np.float32
    np.testing.assert_array_equal(value, [100.0, 100.0, 100.0])
    assert np.isfinite(grad).all()


# =========================================================================== focal loss

FOCAL_COMBINATIONS = list(itertools.product(
    TARGET_KINDS, (0.25, None, -1.0, 1.0), (0.0, 0.5, 2.0), (None, "full"), REDUCTIONS))


def focal_case(target_kind, alpha, gamma, weight_kind, reduction, seed=2, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(N, C)) * scale
    target = make_target(rng, target_kind)
    return logits, target, dict(alpha=alpha, gamma=gamma, weight=make_weight(rng, weight_kind),
                                reduction=reduction)


@pytest.mark.parametrize("combination", FOCAL_COMBINATIONS, ids=str)
def test_focal_matches_reference(combination):
    logits, target, options = focal_case(*combination)
    value, grad = sigmoid_focal_loss_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.sigmoid_focal_loss(
        logits, np.asarray(target, dtype=np.float64), **options)
    assert_close(value, expected_value, 1e-12)
    assert_close(grad, expected_grad, 1e-12)
    assert_close(sigmoid_focal_loss(logits, target, **options), value, 0)
    assert_close(sigmoid_focal_loss_grad(logits, target, **options), grad, 0)


@pytest.mark.parametrize("combination", FOCAL_COMBINATIONS, ids=str)
def test_focal_gradcheck(combination):
    logits, target, options = focal_case(*combination)
    func = summed(lambda z: sigmoid_focal_loss(z, target, **options), options["reduction"])
    result = crossent.gradcheck(func, logits, lambda z: sigmoid_focal_loss_grad(z, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.5, 0.9, 1.0, 2.0])
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
def test_focal_gradcheck_saturated_logits(gamma, target_kind):
    """Where 1 - p_t is tiny (confident and right) the d/dx (1 - p_t)^gamma term matters most."""
    rng = np.random.default_rng(5)
    target = make_target(rng, target_kind, (2, 6))
    logits = np.where(np.asarray(target) > 0.5, 1.0, -1.0) * np.array([3.0, 8.0, 15.0, 25.0, 33.0, 1.0])
    options = dict(gamma=gamma, reduction="sum")
    result = crossent.gradcheck(lambda z: sigmoid_focal_loss(z, target, **options), logits,
                                lambda z: sigmoid_focal_loss_grad(z, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


def torch_sigmoid_focal_loss(torch, inputs, targets, alpha, gamma, weight, reduction):
    """torchvision.ops.sigmoid_focal_loss (v0.20) transcribed, plus crossent's optional weight."""
    functional = torch.nn.functional
    p = torch.sigmoid(inputs)
    ce_loss = functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if weight is not None:
        loss = loss * weight
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


@pytest.mark.parametrize("combination", FOCAL_COMBINATIONS, ids=str)
def test_focal_matches_torchvision_formula(combination):
    torch = pytest.importorskip("torch")
    logits, target, options = focal_case(*combination)
    x = torch.tensor(logits, requires_grad=True)
    alpha = -1.0 if options["alpha"] is None else options["alpha"]
    weight = None if options["weight"] is None else torch.tensor(options["weight"])
    loss = torch_sigmoid_focal_loss(torch, x, torch.tensor(np.asarray(target, dtype=np.float64)),
                                    alpha, options["gamma"], weight, options["reduction"])
    loss.sum().backward()
    value, grad = sigmoid_focal_loss_value_and_grad(logits, target, **options)
    assert_close(value, loss.detach().numpy(), 1e-10)
    assert_close(grad, x.grad.numpy(), 1e-10)


def test_focal_with_gamma_zero_and_no_alpha_is_bce():
    rng = np.random.default_rng(7)
    logits, target = rng.normal(size=(5, 4)) * 4, rng.uniform(size=(5, 4))
    for reduction in REDUCTIONS:
        focal = sigmoid_focal_loss_value_and_grad(logits, target, alpha=None, gamma=0.0, reduction=reduction)
        bce = sigmoid_binary_cross_entropy_value_and_grad(logits, target, reduction=reduction)
        assert_close(focal[0], bce[0], 1e-15)
        assert_close(focal[1], bce[1], 1e-15)


def test_focal_default_alpha_weights_positives():
    # one positive and one negative with the same confidence: alpha_t = 0.25 vs 0.75
    losses = sigmoid_focal_loss(np.array([-1.0, 1.0]), np.array([1, 0]), reduction="none")
    assert losses[1] == pytest.approx(3 * losses[0], rel=1e-14)
    assert sigmoid_focal_loss(np.array([-1.0, 1.0]), np.array([1, 0]), alpha=-0.5, reduction="none")[0] == (
        pytest.approx(4 * losses[0], rel=1e-14))


# =========================================================================== stability

LOGIT_LOSSES = [
    ("bce", sigmoid_binary_cross_entropy_value_and_grad, {}),
    ("bce_options", sigmoid_binary_cross_entropy_value_and_grad,
     dict(weight=np.array([1.0, 2.0, 0.5]), pos_weight=np.array([2.0, 1.0, 3.0]), label_smoothing=0.1)),
    ("focal", sigmoid_focal_loss_value_and_grad, {}),
    ("focal_gamma_half", sigmoid_focal_loss_value_and_grad, dict(gamma=0.5, alpha=None)),
    ("focal_gamma_zero", sigmoid_focal_loss_value_and_grad, dict(gamma=0.0)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transform", ["scale", "shift_up", "shift_down"])
@pytest.mark.parametrize("target_kind", ["hard", "soft"])
@pytest.mark.parametrize("name, value_and_grad, options", LOGIT_LOSSES, ids=[c[0] for c in LOGIT_LOSSES])
def test_logit_losses_stable_at_extreme_logits(name, value_and_grad, options, target_kind, transform, dtype):
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(N, C))
    logits = {"scale": logits * 1e4, "shift_up": logits + 1e4, "shift_down": logits - 1e4}[transform]
    target = make_target(rng, target_kind)
    for reduction in REDUCTIONS:
        value, grad = value_and_grad(logits.astype(dtype), target, reduction=reduction, **options)
        assert np.all(np.isfinite(value)) and np.isfinite(grad).all()
        assert np.asarray(value).dtype == grad.dtype == dtype
        assert np.abs(grad).max() <= 5.0  # |dl/dx| <= w * max(1, pw) (focal: <= 1 + gamma)


def test_sigmoid_bce_exact_values_at_extreme_logits():
    logits = np.array([1e4, -1e4, 1e4, -1e4, 1e4 + 1.0])
    target = np.array([0, 1, 1, 0, 0])
    for dtype in (np.float32, np.float64):
        value, grad = sigmoid_binary_cross_entropy_value_and_grad(
            logits.astype(dtype), target, reduction="none")
        np.testing.assert_array_equal(value, np.array([1e4, 1e4, 0, 0, 1e4 + 1.0], dtype=dtype))
        np.testing.assert_array_equal(grad, [1, -1, 0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neg_inf_logits(dtype):
    """-inf is probability 0: free where the target is 0, +inf where it is positive, gradient finite."""
    logits = np.array([[-np.inf, 0.5, -np.inf], [1.0, -np.inf, -2.0]], dtype=dtype)
    target = np.array([[0.0, 1.0, 0.0], [0.0, 0.3, 1.0]])
    finite_target = np.where(np.isinf(logits), 0.0, target)
    for value_and_grad, options in [(sigmoid_binary_cross_entropy_value_and_grad, {}),
                                    (sigmoid_binary_cross_entropy_value_and_grad,
                                     dict(pos_weight=np.array([2.0, 3.0, 0.5]))),
                                    (sigmoid_focal_loss_value_and_grad, {}),
                                    (sigmoid_focal_loss_value_and_grad, dict(gamma=0.5, alpha=None))]:
        # target 0 at every -inf: the -inf entries cost nothing and have zero gradient
        losses, grad = value_and_grad(logits, finite_target, reduction="none", **options)
        assert np.isfinite(losses).all() and np.isfinite(grad).all()
        np.testing.assert_array_equal(losses[np.isinf(logits)], 0)
        np.testing.assert_array_equal(grad[np.isinf(logits)], 0)
        # the target 0.3 at logits[1, 1] = -inf: +inf loss there only, finite gradient
        losses, grad = value_and_grad(logits, target, reduction="none", **options)
        assert losses[1, 1] == np.inf
        assert np.isfinite(np.delete(losses.ravel(), 4)).all()
        assert np.isfinite(grad).all() and grad[1, 1] < 0
        for reduction in ("mean", "sum"):
            value, grad = value_and_grad(logits, target, reduction=reduction, **options)
            assert value == np.inf and np.isfinite(grad).all()
    # the gradient at -inf with target y is -pw * y (BCE), -alpha_t * y^(gamma+1) (focal)
    grad = sigmoid_binary_cross_entropy_grad(logits, target, pos_weight=np.array([2.0, 3.0, 0.5]), reduction="sum")
    assert grad[1, 1] == pytest.approx(-0.9, rel=1e-6)
    grad = sigmoid_focal_loss_grad(logits, target, gamma=2.0, alpha=0.25, reduction="sum")
    assert grad[1, 1] == pytest.approx(-(0.25 * 0.3 + 0.75 * 0.7) * 0.3**3, rel=1e-6)


def test_neg_inf_with_zero_weight_costs_nothing():
    logits, target = np.array([-np.inf, 0.0]), np.array([1.0, 1.0])
    value, grad = sigmoid_binary_cross_entropy_value_and_grad(logits, target, weight=np.array([0.0, 1.0]))
    assert value == pytest.approx(math.log(2) / 2) and np.isfinite(grad).all() and grad[0] == 0


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, (3, 4), elements=st.floats(-1e6, 1e6)),
       hnp.arrays(np.float64, (3, 4), elements=st.floats(0.0, 1.0)),
       st.floats(0.0, 3.0))
def test_property_finite_for_any_finite_logits(logits, target, gamma):
    for dtype in (np.float32, np.float64):
        x = logits.astype(dtype)
        value, grad = sigmoid_binary_cross_entropy_value_and_grad(x, target, reduction="sum")
        assert np.isfinite(value) and value >= 0 and np.isfinite(grad).all()
        assert np.abs(grad).max() <= 1.0 + 1e-6
        value, grad = sigmoid_focal_loss_value_and_grad(x, target, gamma=gamma, reduction="sum")
        assert np.isfinite(value) and value >= 0 and np.isfinite(grad).all()


# =========================================================================== dtypes

ALL_LOSSES = [
    ("sigmoid_bce", sigmoid_binary_cross_entropy_value_and_grad, False,
     dict(weight=np.array([1.0, 2.0, 0.5]), pos_weight=np.array([2.0, 1.0, 3.0]), label_smoothing=0.1)),
    ("bce", binary_cross_entropy_value_and_grad, True, dict(weight=np.array([1.0, 2.0, 0.5]))),
    ("focal", sigmoid_focal_loss_value_and_grad, False, dict(gamma=1.5)),
]


@pytest.mark.parametrize("name, value_and_grad, probability_input, options", ALL_LOSSES,
                         ids=[c[0] for c in ALL_LOSSES])
def test_float32_agrees_with_float64_and_dtype_preserved(name, value_and_grad, probability_input, options):
    rng = np.random.default_rng(13)
    raw = rng.uniform(0.05, 0.95, (N, C)) if probability_input else rng.normal(size=(N, C)) * 3
    target = rng.uniform(size=(N, C))
    for reduction in REDUCTIONS:
        value64, grad64 = value_and_grad(raw, target, reduction=reduction, **options)
        value32, grad32 = value_and_grad(raw.astype(np.float32), target.astype(np.float32),
                                         reduction=reduction, **options)
        assert np.asarray(value64).dtype == grad64.dtype == np.float64
        assert np.asarray(value32).dtype == grad32.dtype == np.float32
        if reduction != "none":
            assert np.ndim(value32) == 0 and isinstance(value32, np.float32)
        # float32 rounding of inputs (~6e-8) amplified by at most a few operations
        assert_close(value32, value64, 2e-6)
        assert_close(grad32, grad64, 2e-6)
    # float16 is computed in float32; integer probability inputs in float64
    assert sigmoid_binary_cross_entropy(raw.astype(np.float16), target).dtype == np.float32


def test_any_shape_and_scalar_input():
    rng = np.random.default_rng(17)
    logits, target = rng.normal(size=(2, 3, 4)), rng.uniform(size=(2, 3, 4))
    flat = sigmoid_binary_cross_entropy(logits.reshape(-1), target.reshape(-1), reduction="none")
    np.testing.assert_array_equal(sigmoid_binary_cross_entropy(logits, target, reduction="none"),
                                  flat.reshape(2, 3, 4))
    value, grad = sigmoid_focal_loss_value_and_grad(np.float64(0.5), 1.0)
    assert np.ndim(value) == 0 and grad.shape == ()
    assert binary_cross_entropy(0.5, 1, reduction="none").shape == ()


# =========================================================================== bad input


@pytest.mark.parametrize("value_and_grad, input_name", [
    (sigmoid_binary_cross_entropy_value_and_grad, "logits"),
    (binary_cross_entropy_value_and_grad, "probs"),
    (sigmoid_focal_loss_value_and_grad, "logits"),
])
def test_common_bad_input(value_and_grad, input_name):
    x, y = np.full((2, 3), 0.5), np.ones((2, 3))
    with pytest.raises(TypeError, match=input_name):
        value_and_grad("abc", y)
    with pytest.raises(ValueError, match=f"{input_name} is empty"):
        value_and_grad(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"target must have .*shape \(2, 3\).*got shape \(2,\)"):
        value_and_grad(x, np.ones(2))
    with pytest.raises(ValueError, match=r"target must be probabilities \(<= 1\); found 2.0 at position \(1, 2\)"):
        value_and_grad(x, np.array([[0, 1, 0], [1, 1, 2]]))
    with pytest.raises(ValueError, match=r"target must be probabilities \(>= 0\); found -0.5"):
        value_and_grad(x, np.array([[0, 1, 0], [1, -0.5, 1]]))
    with pytest.raises(ValueError, match="target must be probabilities, found nan at position"):
        value_and_grad(x, np.array([[0, 1, 0], [np.nan, 0, 1]]))
    with pytest.raises(TypeError, match="target"):
        value_and_grad(x, None)
    with pytest.raises(ValueError, match=r"weight must be finite and >= 0; found -1.0 at position \(1,\)"):
        value_and_grad(x, y, weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="weight must be finite and >= 0; found nan"):
        value_and_grad(x, y, weight=np.array([np.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"weight of shape \(2,\) cannot be broadcast to shape \(2, 3\)"):
        value_and_grad(x, y, weight=np.ones(2))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'batchmean'"):
        value_and_grad(x, y, reduction="batchmean")
    with pytest.raises(TypeError, match="unexpected keyword argument 'axis'"):
        value_and_grad(x, y, axis=0)


def test_sigmoid_bce_bad_options():
    x, y = np.zeros((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) cannot be broadcast"):
        sigmoid_binary_cross_entropy(x, y, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match="pos_weight must be finite and >= 0; found inf"):
        sigmoid_binary_cross_entropy(x, y, pos_weight=np.array([1.0, np.inf, 1.0]))
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\], got 1.5"):
        sigmoid_binary_cross_entropy(x, y, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing must be a number, got nan"):
        sigmoid_binary_cross_entropy(x, y, label_smoothing=float("nan"))
    with pytest.raises(TypeError, match="label_smoothing must be a real number"):
        sigmoid_binary_cross_entropy(x, y, label_smoothing="0.1")


@pytest.mark.parametrize("bad, shown, position", [
    (1.5, "1.5", r"\(1, 0\)"), (-1e-12, "-1e-12", r"\(1, 0\)"), (np.nan, "nan", r"\(1, 0\)"),
    (1.0 + 1e-15, "1.000000000000001", r"\(1, 0\)"),
])
def test_bce_probs_outside_unit_interval(bad, shown, position):
    probs = np.full((2, 2), 0.5)
    probs[1, 0] = bad
    message = rf"probs must be probabilities in \[0, 1\]; found .*{shown}.* at position {position}"
    with pytest.raises(ValueError, match=message):
        binary_cross_entropy(probs, np.ones((2, 2)))


def test_focal_bad_options():
    x, y = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\].*got 1.5"):
        sigmoid_focal_loss(x, y, alpha=1.5)
    with pytest.raises(ValueError, match="alpha must be a number, got nan"):
        sigmoid_focal_loss(x, y, alpha=float("nan"))
    with pytest.raises(TypeError, match="alpha must be a real number"):
        sigmoid_focal_loss(x, y, alpha="0.25")
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, inf\], got -1.0"):
        sigmoid_focal_loss(x, y, gamma=-1)
    with pytest.raises(ValueError, match="gamma must be finite"):
        sigmoid_focal_loss(x, y, gamma=float("inf"))


# =========================================================================== Loss classes


@pytest.mark.parametrize("loss_class, value, grad, probability_input, options", [
    (SigmoidBinaryCrossEntropyLoss, sigmoid_binary_cross_entropy, sigmoid_binary_cross_entropy_grad, False,
     dict(pos_weight=np.array([2.0, 1.0, 0.5]), label_smoothing=0.1, reduction="sum")),
    (BinaryCrossEntropyLoss, binary_cross_entropy, binary_cross_entropy_grad, True,
     dict(weight=np.array([2.0, 1.0, 0.5]), reduction="none")),
    (SigmoidFocalLoss, sigmoid_focal_loss, sigmoid_focal_loss_grad, False, dict(alpha=None, gamma=0.5)),
])
def test_loss_classes(loss_class, value, grad, probability_input, options):
    rng = np.random.default_rng(19)
    x = rng.uniform(0.1, 0.9, (N, C)) if probability_input else rng.normal(size=(N, C))
    y = rng.integers(0, 2, (N, C))
    loss = loss_class(**options)
    np.testing.assert_array_equal(loss(x, y), value(x, y, **options))
    computed_value, computed_grad = loss.value_and_grad(x, y)
    np.testing.assert_array_equal(computed_value, value(x, y, **options))
    np.testing.assert_array_equal(computed_grad, grad(x, y, **options))
    np.testing.assert_array_equal(loss.grad(x, y), grad(x, y, **options))
    assert loss.reduction == options.get("reduction", "mean")
    with pytest.raises(TypeError, match="unexpected option 'axis'"):
        loss_class(axis=0)
    with pytest.raises(TypeError, match="sample_weight"):
        loss(x, y, sample_weight=np.ones(N))


def test_loss_class_aliases_and_repr():
    assert BCEWithLogitsLoss is SigmoidBinaryCrossEntropyLoss
    assert BCELoss is BinaryCrossEntropyLoss
    assert repr(BCEWithLogitsLoss(label_smoothing=0.1)) == "SigmoidBinaryCrossEntropyLoss(label_smoothing=0.1)"
    assert SigmoidFocalLoss().reduction == "mean"


def test_derived_functions_carry_the_signature():
    import inspect

    for name in ("sigmoid_binary_cross_entropy", "binary_cross_entropy", "sigmoid_focal_loss"):
        function = getattr(binary, name)
        for suffix in ("_grad", "_value_and_grad"):
            derived = getattr(binary, name + suffix)
            assert derived.__name__ == name + suffix
            parameters = dict(inspect.signature(derived).parameters)
            if name == "sigmoid_binary_cross_entropy":  # its gradient can be written into out=
                assert parameters.pop("out").default is None
            assert list(parameters.values()) == list(inspect.signature(function).parameters.values())
        assert name in binary.__all__


def test_no_warnings_escape():
    """Saturated and masked inputs must not raise NumPy warnings (also enforced by filterwarnings=error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = np.array([-np.inf, -1e30, 1e30, 0.0, 800.0, -800.0])
        target = np.array([0.0, 0.0, 1.0, 0.5, 0.2, 0.8])
        for gamma in (0.0, 0.5, 2.0):
            sigmoid_focal_loss_value_and_grad(logits, target, gamma=gamma)
            sigmoid_focal_loss_value_and_grad(logits.astype(np.float32), target, gamma=gamma)
        sigmoid_binary_cross_entropy_value_and_grad(logits, target)
        binary_cross_entropy_value_and_grad(np.array([0.0, 1.0, 0.5]), np.array([0.0, 1.0, 1.0]))
