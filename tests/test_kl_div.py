"""Tests for kl_div (PyTorch's torch.nn.functional.kl_div semantics, default reduction "batchmean")."""

import itertools
import math
import warnings

import numpy as np
import pytest

import crossent
import reference_binary as reference
from crossent.losses.kullback_leibler import KLDivLoss, kl_div, kl_div_grad, kl_div_value_and_grad

REDUCTIONS = ("batchmean", "mean", "sum", "none")
SHAPES = ((5,), (4, 3), (3, 4, 2))


def assert_close(actual, expected, rtol):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def make_case(shape, log_target, seed=0, zeros=True):
    """log_softmax inputs along the last axis and targets with a few exact zeros."""
    rng = np.random.default_rng(seed)
    log_probs = crossent.log_softmax(rng.normal(size=shape) * 2)
    target = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    if zeros:
        target.reshape(-1)[:: 3] = 0.0  # unnormalised afterwards: allowed
    if log_target:
        with np.errstate(divide="ignore"):
            target = np.log(target)
    return log_probs, target


def summed(func, reduction):
    return (lambda z: np.sum(func(z))) if reduction == "none" else func


COMBINATIONS = list(itertools.product(SHAPES, (False, True), REDUCTIONS))


@pytest.mark.parametrize("shape, log_target, reduction", COMBINATIONS, ids=str)
def test_matches_reference(shape, log_target, reduction):
    log_probs, target = make_case(shape, log_target)
    value, grad = kl_div_value_and_grad(log_probs, target, log_target=log_target, reduction=reduction)
    expected_value, expected_grad = reference.kl_div(log_probs, target, log_target, reduction)
    assert_close(value, expected_value, 1e-12)
    assert_close(grad, expected_grad, 1e-12)
    assert_close(kl_div(log_probs, target, log_target=log_target, reduction=reduction), value, 0)
    assert_close(kl_div_grad(log_probs, target, log_target=log_target, reduction=reduction), grad, 0)


@pytest.mark.parametrize("shape, log_target, reduction", COMBINATIONS, ids=str)
def test_gradcheck(shape, log_target, reduction):
    log_probs, target = make_case(shape, log_target)
    options = dict(log_target=log_target, reduction=reduction)
    func = summed(lambda x: kl_div(x, target, **options), reduction)
    result = crossent.gradcheck(func, log_probs, lambda x: kl_div_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("shape, log_target, reduction", COMBINATIONS, ids=str)
def test_matches_torch(shape, log_target, reduction):
    torch = pytest.importorskip("torch")
    # no zero targets: PyTorch's log_target loss is exp(-inf) * (-inf - x) = NaN there
    log_probs, target = make_case(shape, log_target, zeros=not log_target)
    x = torch.tensor(log_probs, requires_grad=True)
    with warnings.catch_warnings():  # PyTorch warns that "mean" is not the true KL
        warnings.simplefilter("ignore", UserWarning)
        loss = torch.nn.functional.kl_div(x, torch.tensor(target), reduction=reduction, log_target=log_target)
    loss.sum().backward()
    value, grad = kl_div_value_and_grad(log_probs, target, log_target=log_target, reduction=reduction)
    assert_close(value, loss.detach().numpy(), 1e-10)
    assert_close(grad, x.grad.numpy(), 1e-10)


@pytest.mark.parametrize("log_target", [False, True])
def test_torch_scalar_input_batchmean_is_sum(log_target):
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.kl_div(torch.tensor(-1.2, dtype=torch.float64),
                                          torch.tensor(0.3 if not log_target else -0.5, dtype=torch.float64),
                                          reduction="batchmean", log_target=log_target)
    value = kl_div(-1.2, 0.3 if not log_target else -0.5, log_target=log_target)
    assert value == pytest.approx(float(expected), rel=1e-14)


def test_batchmean_is_mean_kl_divergence_per_row():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 5)) * 3
    p = rng.dirichlet(np.ones(5), size=6)
    expected = np.mean(crossent.kl_divergence(p, crossent.softmax(logits)))
    assert kl_div(crossent.log_softmax(logits), p) == pytest.approx(expected, rel=1e-13)
    # log_target gives the same number from log p
    assert kl_div(crossent.log_softmax(logits), np.log(p), log_target=True) == pytest.approx(expected, rel=1e-13)
    # "mean" also divides by the number of classes
    assert kl_div(crossent.log_softmax(logits), p, reduction="mean") == pytest.approx(expected / 5, rel=1e-13)


def test_target_need_not_be_normalised():
    log_probs = np.log(np.array([[0.5, 0.5]]))
    target = np.array([[2.0, 0.0]])
    assert kl_div(log_probs, target) == pytest.approx(2.0 * (math.log(2.0) - math.log(0.5)), rel=1e-15)


# =========================================================================== zero targets and -inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_target_at_neg_inf_input_is_zero_not_nan(dtype):
    """PyTorch gives NaN (0 * -inf) here; the KL convention 0 log 0 = 0 gives 0."""
    log_probs = np.array([[-np.inf, 0.0], [np.log(0.3), np.log(0.7)]], dtype=dtype)
    target = np.array([[0.0, 1.0], [0.5, 0.5]])
    for log_target in (False, True):
        with np.errstate(divide="ignore"):  # log 0 = -inf: a log-target of probability 0
            t = np.log(target) if log_target else target
        losses, grad = kl_div_value_and_grad(log_probs, t, log_target=log_target, reduction="none")
        assert losses[0, 0] == 0 and losses[0, 1] == 0 and grad[0, 0] == 0
        assert np.isfinite(losses).all() and np.isfinite(grad).all()
        assert losses.dtype == grad.dtype == dtype
    torch = pytest.importorskip("torch")
    torch_losses = torch.nn.functional.kl_div(torch.tensor(log_probs), torch.tensor(target.astype(dtype)),
                                              reduction="none")
    assert math.isnan(float(torch_losses[0, 0]))  # the documented deviation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_target", [False, True])
def test_positive_target_at_neg_inf_input_is_inf(dtype, log_target):
    log_probs = np.array([[-np.inf, 0.0], [np.log(0.3), np.log(0.7)]], dtype=dtype)
    target = np.array([[0.25, 0.75], [0.5, 0.5]])
    t = np.log(target) if log_target else target
    losses, grad = kl_div_value_and_grad(log_probs, t, log_target=log_target, reduction="none")
    assert losses[0, 0] == np.inf and np.isfinite(np.delete(losses.ravel(), 0)).all()
    for reduction in ("batchmean", "mean", "sum"):
        value, grad = kl_div_value_and_grad(log_probs, t, log_target=log_target, reduction=reduction)
        assert value == np.inf and np.isfinite(grad).all()
    assert grad[0, 0] == pytest.approx(-0.25, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transform", ["scale", "shift"])
@pytest.mark.parametrize("log_target", [False, True])
def test_stable_with_saturated_log_probabilities(dtype, transform, log_target):
    """log_softmax of logits scaled to 1e4 or shifted by 1e4, with masked (-inf) classes where the target is 0."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 6))
    logits = logits * 1e4 if transform == "scale" else logits + 1e4
    target = rng.dirichlet(np.ones(6), size=4)
    target[:, 0] = 0.0
    logits[:, 0] = -np.inf
    log_probs = crossent.log_softmax(logits.astype(dtype))
    with np.errstate(divide="ignore"):
        t = (np.log(target) if log_target else target).astype(dtype)
    for reduction in REDUCTIONS:
        value, grad = kl_div_value_and_grad(log_probs, t, log_target=log_target, reduction=reduction)
        assert np.all(np.isfinite(value)) and np.isfinite(grad).all()
        assert np.asarray(value).dtype == grad.dtype == dtype


def test_float32_agrees_with_float64():
    log_probs, target = make_case((4, 5), False, seed=4)
    for log_target in (False, True):
        with np.errstate(divide="ignore"):
            t = np.log(target) if log_target else target
        for reduction in REDUCTIONS:
            value64, grad64 = kl_div_value_and_grad(log_probs, t, log_target=log_target, reduction=reduction)
            value32, grad32 = kl_div_value_and_grad(log_probs.astype(np.float32), t.astype(np.float32),
                                                    log_target=log_target, reduction=reduction)
            assert grad32.dtype == np.float32 and np.asarray(value32).dtype == np.float32
            # each element is t * (log t - x): a few float32 roundings of O(1) terms
            assert_close(value32, value64, 1e-5)
            assert_close(grad32, grad64, 1e-6)


# =========================================================================== bad input


def test_bad_input():
    x, t = np.log(np.full((2, 3), 1 / 3)), np.full((2, 3), 1 / 3)
    with pytest.raises(TypeError, match="log_probs"):
        kl_div("abc", t)
    with pytest.raises(ValueError, match="log_probs is empty"):
        kl_div(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"target must have log_probs' shape \(2, 3\), got shape \(3,\)"):
        kl_div(x, np.ones(3) / 3)
    with pytest.raises(ValueError, match=r"target must be finite and >= 0; found -0.1 at position \(1, 2\)"):
        kl_div(x, np.array([[0.5, 0.5, 0.0], [0.5, 0.6, -0.1]]))
    with pytest.raises(ValueError, match="target must be finite and >= 0; found nan"):
        kl_div(x, np.array([[np.nan, 0.5, 0.5], [0.5, 0.5, 0.0]]))
    with pytest.raises(ValueError, match="target must be finite and >= 0; found inf"):
        kl_div(x, np.array([[np.inf, 0.5, 0.5], [0.5, 0.5, 0.0]]))
    with pytest.raises(ValueError, match=r"target with log_target=True .* found nan at position \(0, 1\)"):
        kl_div(x, np.array([[0.0, np.nan, -1.0], [-1.0, -1.0, -1.0]]), log_target=True)
    with pytest.raises(ValueError, match=r"target with log_target=True .* found inf at position \(1, 0\)"):
        kl_div(x, np.array([[0.0, -1.0, -1.0], [np.inf, -1.0, -1.0]]), log_target=True)
    with pytest.raises(TypeError, match="log_target must be True or False, got 1"):
        kl_div(x, t, log_target=1)
    with pytest.raises(ValueError,
                       match="reduction must be one of 'batchmean', 'mean', 'sum', 'none', got 'batch_mean'"):
        kl_div(x, t, reduction="batch_mean")
    with pytest.raises(TypeError, match="target"):
        kl_div(x, None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'axis'"):
        kl_div(x, t, axis=0)


# =========================================================================== Loss class


def test_loss_class():
    log_probs, target = make_case((4, 3), False)
    loss = KLDivLoss()
    assert loss.reduction == "batchmean"
    assert loss(log_probs, target) == kl_div(log_probs, target)
    value, grad = KLDivLoss(reduction="sum").value_and_grad(log_probs, target)
    assert value == kl_div(log_probs, target, reduction="sum")
    np.testing.assert_array_equal(grad, kl_div_grad(log_probs, target, reduction="sum"))
    np.testing.assert_array_equal(KLDivLoss(log_target=True).grad(log_probs, np.log(target + 0.1)),
                                  kl_div_grad(log_probs, np.log(target + 0.1), log_target=True))
    assert repr(KLDivLoss(reduction="sum")) == "KLDivLoss(reduction='sum')"
    with pytest.raises(TypeError, match="unexpected option 'weight'"):
        KLDivLoss(weight=np.ones(3))
