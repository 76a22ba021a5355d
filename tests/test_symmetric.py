import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crossent
import reference_variants as reference
from cases_variants import IGNORE, label_problem, none_or_list
from crossent.losses.symmetric import (
    SymmetricCrossEntropyLoss,
    symmetric_cross_entropy,
    symmetric_cross_entropy_grad,
    symmetric_cross_entropy_value_and_grad,
)

N, C = 6, 5
# (alpha, beta, log_zero): the paper's CIFAR-10 and CIFAR-100 settings, RCE only, CE only,
# the PyTorch reproduction's A = log(1e-4)
SETTINGS = [(0.1, 1.0, -4.0), (6.0, 0.1, -4.0), (0.0, 1.0, -4.0), (1.0, 0.0, -4.0),
            (0.5, 2.0, math.log(1e-4))]
GRID = list(itertools.product(SETTINGS, [False, True], [False, True], ["mean", "sum", "none"]))


def _ids(params):
    return "-".join(str(p) for p in params)


def _options(rng, setting, with_sw, with_ignore, reduction):
    alpha, beta, log_zero = setting
    logits, target, sample_weight = label_problem(
        rng, N, C, with_sample_weight=with_sw, with_ignore=with_ignore)
    options = dict(alpha=alpha, beta=beta, log_zero=log_zero, sample_weight=sample_weight,
                   ignore_index=IGNORE if with_ignore else None, reduction=reduction)
    return logits, target, options


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    logits, target, options = _options(rng, *params)
    value, grad = symmetric_cross_entropy_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.symmetric_cross_entropy(
        logits.tolist(), target.tolist(),
        **{**options, "sample_weight": none_or_list(options["sample_weight"])})
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(symmetric_cross_entropy(logits, target, **options), value)
    np.testing.assert_array_equal(symmetric_cross_entropy_grad(logits, target, **options), grad)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    logits, target, options = _options(rng, *params)
    result = crossent.gradcheck(
        lambda x: np.sum(symmetric_cross_entropy(x, target, **options)), logits,
        lambda x: symmetric_cross_entropy_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


def _torch_sce(torch, logits, target, alpha, beta, log_zero, sample_weight, reduction, axis=1):
    """alpha * CE + beta * RCE with RCE = -sum_c p_c log(y_c), log 0 := A, from log_softmax."""
    valid = target != IGNORE
    labels = torch.where(valid, target, torch.zeros_like(target))
    log_probs = torch.log_softmax(logits, dim=axis)
    onehot = torch.nn.functional.one_hot(labels, logits.shape[axis]).movedim(-1, axis).to(logits.dtype)
    log_labels = (1 - onehot) * log_zero  # log 1 = 0, log 0 := A
    ce = -(onehot * log_probs).sum(axis)
    rce = -(log_probs.exp() * log_labels).sum(axis)
    rows = alpha * ce + beta * rce
    weight = valid.to(logits.dtype)
    if sample_weight is not None:
        weight = weight * sample_weight
    rows = rows * weight
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / weight.sum()


@pytest.mark.parametrize("params", GRID[::2], ids=_ids)
@pytest.mark.parametrize("layout", ["2d", "spatial"])
def test_matches_pytorch_textbook_formula(params, layout, rng):
    torch = pytest.importorskip("torch")
    (alpha, beta, log_zero), with_sw, with_ignore, reduction = params
    shape = (N, C) if layout == "2d" else (3, C, 2, 3)
    logits = rng.normal(size=shape) * 2
    row_shape = shape[:1] + shape[2:]
    target = rng.integers(0, C, row_shape)
    if with_ignore:
        target.reshape(-1)[[0, 4]] = IGNORE
    sample_weight = rng.uniform(0.2, 2.0, row_shape) if with_sw else None
    logits_t = torch.tensor(logits, requires_grad=True)
    expected = _torch_sce(torch, logits_t, torch.tensor(target), alpha, beta, log_zero,
                          None if sample_weight is None else torch.tensor(sample_weight), reduction)
    expected.sum().backward()
    value, grad = symmetric_cross_entropy_value_and_grad(
        logits, target, alpha=alpha, beta=beta, log_zero=log_zero, sample_weight=sample_weight,
        ignore_index=IGNORE if with_ignore else None, reduction=reduction, axis=1)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_matches_the_pytorch_reproduction_with_log_zero_of_1e_minus_4(rng):
    """HanxunH/SCELoss-Reproduce clamps the one-hot label to [1e-4, 1] (A = ln 1e-4) and the softmax
    to [1e-7, 1]; with every probability above 1e-7 the clamp of the softmax is inactive."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = rng.normal(size=(16, 10))
    target = rng.integers(0, 10, 16)
    pred_t = torch.tensor(logits, requires_grad=True)
    labels = torch.tensor(target)
    ce = F.cross_entropy(pred_t, labels)
    pred = torch.clamp(F.softmax(pred_t, dim=1), min=1e-7, max=1.0)
    label_one_hot = torch.clamp(F.one_hot(labels, 10).double(), min=1e-4, max=1.0)
    rce = (-1 * torch.sum(pred * torch.log(label_one_hot), dim=1)).mean()
    expected = 0.1 * ce + 1.0 * rce
    expected.backward()
    assert pred.min() > 1e-7
    value, grad = symmetric_cross_entropy_value_and_grad(
        logits, target, alpha=0.1, beta=1.0, log_zero=math.log(1e-4))
    np.testing.assert_allclose(value, expected.item(), rtol=1e-10)
    np.testing.assert_allclose(grad, pred_t.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_special_cases(rng):
    logits, target, sample_weight = label_problem(rng, N, C, with_sample_weight=True)
    options = dict(sample_weight=sample_weight, reduction="none")
    ce = crossent.softmax_cross_entropy(logits, target, **options)
    p = crossent.softmax(logits)[np.arange(N), target]
    # beta = 0: alpha * CE; alpha = 0: the scaled mean absolute error -A (1 - p_t)
    np.testing.assert_allclose(
        symmetric_cross_entropy(logits, target, alpha=2.0, beta=0.0, **options), 2 * ce, rtol=1e-14)
    np.testing.assert_allclose(
        symmetric_cross_entropy(logits, target, alpha=0.0, beta=3.0, log_zero=-4.0, **options),
        sample_weight * 12.0 * (1 - p), rtol=1e-14)
    # the defaults are the paper's CIFAR-10 setting: alpha = 0.1, beta = 1, A = -4
    np.testing.assert_allclose(
        symmetric_cross_entropy(logits, target, **options),
        0.1 * ce + sample_weight * 4.0 * (1 - p), rtol=1e-14)
    # the mean divides by the sum of sample weights
    mean = symmetric_cross_entropy(logits, target, sample_weight=sample_weight)
    assert mean == pytest.approx(
        np.sum(symmetric_cross_entropy(logits, target, **options)) / sample_weight.sum(), rel=1e-14)


def test_easy_example_keeps_relative_accuracy():
    logits = np.array([[40.0, 0.0, 0.0], [20.0, 0.0, 0.0]])
    small = 2 * np.exp(-np.array([40.0, 20.0]))
    expected = 0.1 * np.log1p(small) + 4.0 * small / (1 + small)
    value = symmetric_cross_entropy(logits, np.array([0, 0]), reduction="none")
    np.testing.assert_allclose(value, expected, rtol=1e-14)


class TestStability:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("scale,shift", [(1e4, 0.0), (1.0, 1e4), (1e4, -1e4)])
    def test_huge_and_shifted_logits(self, dtype, scale, shift, rng):
        base = rng.normal(size=(8, 6))
        logits = (base * scale + shift).astype(dtype)
        target = rng.integers(0, 6, 8)
        value, grad = symmetric_cross_entropy_value_and_grad(logits, target)
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value) and np.isfinite(grad).all()
        np.testing.assert_allclose(
            value, symmetric_cross_entropy((base * scale).astype(dtype), target),
            rtol=1e-3 if dtype == np.float32 else 1e-9)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_masked_classes(self, dtype):
        logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [0.5, -np.inf, 0.0],
                           [-np.inf] * 3], dtype=dtype)
        target = np.array([2, 1, 1, 0])
        value, grad = symmetric_cross_entropy_value_and_grad(logits, target, reduction="none")
        assert np.isfinite(value[:2]).all() and value[1] == 0
        assert value[2] == np.inf and value[3] == np.inf
        assert np.isfinite(grad).all() and grad[0, 1] == 0
        p = crossent.softmax(logits[2].astype(np.float64))
        np.testing.assert_allclose(grad[2], 0.1 * (p - [0, 1, 0]), rtol=1e-6)  # coefficient alpha
        # without the CE term the loss is bounded: -beta A (1 - p_t) = 4 at p_t = 0
        value, grad = symmetric_cross_entropy_value_and_grad(
            logits, target, alpha=0.0, reduction="none")
        np.testing.assert_array_equal(value[2:], [4.0, 4.0])
        assert np.isfinite(grad).all() and not grad[2:].any()

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4),
        st.integers(0, 3),
        st.sampled_from([np.float32, np.float64]),
    )
    def test_property_finite(self, row, label, dtype):
        logits = np.array([row], dtype=dtype)
        value, grad = symmetric_cross_entropy_value_and_grad(logits, np.array([label]))
        assert np.isfinite(value) and value >= 0
        assert np.isfinite(grad).all()


def test_float32_close_to_float64(rng):
    logits = rng.normal(size=(64, 10)) * 5
    target = rng.integers(0, 10, 64)
    options = dict(alpha=0.5, beta=2.0, sample_weight=rng.uniform(0, 2, 64))
    v32, g32 = symmetric_cross_entropy_value_and_grad(logits.astype(np.float32), target, **options)
    v64, g64 = symmetric_cross_entropy_value_and_grad(logits, target, **options)
    assert isinstance(v32, np.float32) and g32.dtype == np.float32
    assert isinstance(v64, np.float64) and g64.dtype == np.float64
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    assert symmetric_cross_entropy(logits.astype(np.float32), target, reduction="none").dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_class_axis_anywhere_equals_moving_it_last(axis, rng):
    logits = rng.normal(size=(3, 4, 5))
    n_classes = logits.shape[axis]
    row_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % 3)
    target = rng.integers(0, n_classes, row_shape)
    value, grad = symmetric_cross_entropy_value_and_grad(logits, target, axis=axis, reduction="none")
    moved = np.moveaxis(logits, axis, -1)
    flat_value, flat_grad = symmetric_cross_entropy_value_and_grad(
        moved.reshape(-1, n_classes), target.reshape(-1), reduction="none")
    np.testing.assert_allclose(value, flat_value.reshape(row_shape), rtol=1e-14)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), flat_grad.reshape(moved.shape), rtol=1e-14)


def test_every_row_ignored_gives_zero(rng):
    logits, _, _ = label_problem(rng, N, C)
    value, grad = symmetric_cross_entropy_value_and_grad(logits, np.full(N, 7), ignore_index=7)
    assert value == 0.0 and not grad.any()


class TestBadInput:
    logits = np.zeros((3, 4))
    target = np.array([0, 1, 2])

    @pytest.mark.parametrize("name,value,error,match", [
        ("alpha", -0.1, ValueError, r"alpha must lie in \[0, inf\], got -0.1"),
        ("alpha", float("inf"), ValueError, "alpha must be finite, got inf"),
        ("beta", float("nan"), ValueError, "beta must be a number, got nan"),
        ("beta", "1", TypeError, "beta must be a real number"),
        ("log_zero", 1.0, ValueError, r"log_zero must lie in \[-inf, 0\], got 1.0"),
        ("log_zero", -float("inf"), ValueError, "log_zero must be finite, got -inf"),
    ])
    def test_bad_options(self, name, value, error, match):
        with pytest.raises(error, match=match):
            symmetric_cross_entropy(self.logits, self.target, **{name: value})

    def test_probability_targets_and_bad_labels(self):
        with pytest.raises(TypeError, match="target must hold integer class labels"):
            symmetric_cross_entropy(self.logits, np.full((3, 4), 0.25))
        with pytest.raises(ValueError, match=r"target .*\[0, 3\].*found 9"):
            symmetric_cross_entropy(self.logits, np.array([0, 9, 2]))
        with pytest.raises(ValueError, match=r"axis=3 is out of range"):
            symmetric_cross_entropy(self.logits, self.target, axis=3)


def test_loss_class(rng):
    logits, target, sample_weight = label_problem(rng, N, C, with_sample_weight=True)
    options = dict(alpha=6.0, beta=0.1)
    loss = SymmetricCrossEntropyLoss(**options)
    assert loss(logits, target, sample_weight=sample_weight) == symmetric_cross_entropy(
        logits, target, sample_weight=sample_weight, **options)
    value, grad = loss.value_and_grad(logits, target)
    assert value == symmetric_cross_entropy(logits, target, **options)
    np.testing.assert_array_equal(grad, symmetric_cross_entropy_grad(logits, target, **options))
    with pytest.raises(TypeError, match="unexpected option 'A'"):
        SymmetricCrossEntropyLoss(A=-4.0)
