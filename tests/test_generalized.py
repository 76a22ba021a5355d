import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crossent
import reference_variants as reference
from cases_variants import IGNORE, label_problem, none_or_list
from crossent.losses.generalized import (
    GeneralizedCrossEntropyLoss,
    generalized_cross_entropy,
    generalized_cross_entropy_grad,
    generalized_cross_entropy_value_and_grad,
)

N, C = 6, 5
GRID = list(itertools.product(
    [0.05, 0.3, 0.7, 1.0], [None, 0.1, 0.3], [False, True], [False, True], ["mean", "sum", "none"]
))


def _ids(params):
    return "-".join(str(p) for p in params)


def _options(rng, q, truncation, with_sw, with_ignore, reduction):
    logits, target, sample_weight = label_problem(
        rng, N, C, with_sample_weight=with_sw, with_ignore=with_ignore)
    options = dict(q=q, truncation=truncation, sample_weight=sample_weight,
                   ignore_index=IGNORE if with_ignore else None, reduction=reduction)
    return logits, target, options


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    logits, target, options = _options(rng, *params)
    value, grad = generalized_cross_entropy_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.generalized_cross_entropy(
        logits.tolist(), target.tolist(),
        **{**options, "sample_weight": none_or_list(options["sample_weight"])})
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(generalized_cross_entropy(logits, target, **options), value)
    np.testing.assert_array_equal(generalized_cross_entropy_grad(logits, target, **options), grad)


def test_truncation_is_exercised(rng):
    # the grid above must contain rows on both sides of the threshold
    logits, target, _ = label_problem(rng, N, C)
    p = crossent.softmax(logits)[np.arange(N), target]
    assert (p <= 0.3).any() and (p > 0.3).any()


@pytest.mark.parametrize("params", GRID[::2], ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    logits, target, options = _options(rng, *params)
    result = crossent.gradcheck(
        lambda x: np.sum(generalized_cross_entropy(x, target, **options)), logits,
        lambda x: generalized_cross_entropy_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


def _torch_gce(torch, logits, target, q, truncation, sample_weight, reduction, axis=1):
    """The paper's formula (1 - p^q) / q (truncated: L_q(k) where p <= k), from log_softmax."""
    valid = target != IGNORE
    labels = torch.where(valid, target, torch.zeros_like(target))
    p = torch.log_softmax(logits, dim=axis).gather(axis, labels.unsqueeze(axis)).squeeze(axis).exp()
    rows = (1 - p**q) / q
    if truncation is not None:
        rows = torch.where(p > truncation, rows, torch.full_like(rows, (1 - truncation**q) / q))
    weight = valid.to(logits.dtype)
    if sample_weight is not None:
        weight = weight * sample_weight
    rows = rows * weight
    if reduction == "none":
        return rows
    return rows.sum() if reduction == "sum" else rows.sum() / weight.sum()


@pytest.mark.parametrize("params", GRID[::3], ids=_ids)
@pytest.mark.parametrize("layout", ["2d", "spatial"])
def test_matches_pytorch_textbook_formula(params, layout, rng):
    torch = pytest.importorskip("torch")
    q, truncation, with_sw, with_ignore, reduction = params
    shape = (N, C) if layout == "2d" else (3, C, 2, 3)
    logits = rng.normal(size=shape) * 2
    row_shape = shape[:1] + shape[2:]
    target = rng.integers(0, C, row_shape)
    if with_ignore:
        target.reshape(-1)[[0, 4]] = IGNORE
    sample_weight = rng.uniform(0.2, 2.0, row_shape) if with_sw else None
    logits_t = torch.tensor(logits, requires_grad=True)
    expected = _torch_gce(torch, logits_t, torch.tensor(target), q, truncation,
                          None if sample_weight is None else torch.tensor(sample_weight), reduction)
    expected.sum().backward()
    value, grad = generalized_cross_entropy_value_and_grad(
        logits, target, q=q, truncation=truncation, sample_weight=sample_weight,
        ignore_index=IGNORE if with_ignore else None, reduction=reduction, axis=1)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_small_q_approaches_cross_entropy(reduction, rng):
    logits, target, sample_weight = label_problem(rng, 8, C, scale=3, with_sample_weight=True,
                                                  with_ignore=True)
    options = dict(sample_weight=sample_weight, ignore_index=IGNORE, reduction=reduction)
    ce_value, ce_grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, **options)
    previous = np.inf
    for q in (1e-2, 1e-4, 1e-6, 1e-8):
        value, grad = generalized_cross_entropy_value_and_grad(logits, target, q=q, **options)
        # L_q = -log p (1 - q log p / 2 + ...): the error shrinks in proportion to q
        error = np.max(np.abs(value - ce_value) / np.abs(ce_value).max())
        assert error < 5 * q * np.abs(ce_value).max()
        assert error < previous or error < 1e-15
        previous = error
        np.testing.assert_allclose(grad, ce_grad, rtol=20 * q, atol=20 * q * np.abs(ce_grad).max())
    # the expm1 form loses nothing to cancellation: at q = 1e-12, (1 - p**q) / q would be noise
    np.testing.assert_allclose(
        generalized_cross_entropy(logits, target, q=1e-12, **options), ce_value, rtol=1e-10)


def test_q_one_is_one_minus_p_and_loss_is_bounded_by_one_over_q(rng):
    logits, target, _ = label_problem(rng, N, C)
    p = crossent.softmax(logits)[np.arange(N), target]
    np.testing.assert_allclose(
        generalized_cross_entropy(logits, target, q=1.0, reduction="none"), 1 - p, rtol=1e-14)
    masked = np.array([[-np.inf, 0.0, 1.0]])
    value, grad = generalized_cross_entropy_value_and_grad(masked, np.array([0]), q=0.25)
    assert value == 4.0 and not grad.any()


def test_easy_example_keeps_relative_accuracy():
    logits = np.array([[40.0, 0.0, 0.0], [20.0, 0.0, 0.0]])
    small = 2 * np.exp(-np.array([40.0, 20.0]))
    log_p = -np.log1p(small)
    value = generalized_cross_entropy(logits, np.array([0, 0]), q=0.5, reduction="none")
    np.testing.assert_allclose(value, -np.expm1(0.5 * log_p) / 0.5, rtol=1e-14)
    assert value[0] > 0


def test_truncation_constant_and_zero_gradient_below_threshold():
    logits = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    value, grad = generalized_cross_entropy_value_and_grad(
        logits, np.array([0, 0]), q=0.5, truncation=0.4, reduction="none")
    assert value[0] == pytest.approx((1 - math.sqrt(0.4)) / 0.5, rel=1e-15)
    assert value[1] == pytest.approx((1 - math.sqrt(0.6)) / 0.5, rel=1e-14)
    assert not grad[0].any() and grad[1].any()
    # right at the threshold: p <= k is truncated, p > k is not
    k = 0.4
    for p_target, truncated in ((k * (1 - 1e-9), True), (k * (1 + 1e-9), False)):
        rest = (1 - p_target) / 2
        edge_value, edge_grad = generalized_cross_entropy_value_and_grad(
            np.log(np.array([[p_target, rest, rest]])), np.array([0]), q=0.5, truncation=k)
        assert (edge_value == pytest.approx((1 - math.sqrt(k)) / 0.5, rel=1e-15)) == truncated
        assert (not edge_grad.any()) == truncated
    # truncated rows stay in the mean's denominator
    mean = generalized_cross_entropy(logits, np.array([0, 0]), q=0.5, truncation=0.4)
    assert mean == pytest.approx(value.sum() / 2, rel=1e-15)


class TestStability:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("scale,shift", [(1e4, 0.0), (1.0, 1e4), (1e4, -1e4)])
    @pytest.mark.parametrize("truncation", [None, 0.5])
    def test_huge_and_shifted_logits(self, dtype, scale, shift, truncation, rng):
        base = rng.normal(size=(8, 6))
        logits = (base * scale + shift).astype(dtype)
        target = rng.integers(0, 6, 8)
        value, grad = generalized_cross_entropy_value_and_grad(
            logits, target, q=0.3, truncation=truncation)
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value) and np.isfinite(grad).all()
        assert 0 <= value <= 1 / 0.3 * (1 + 1e-6)
        np.testing.assert_allclose(
            value, generalized_cross_entropy((base * scale).astype(dtype), target, q=0.3,
                                             truncation=truncation),
            rtol=1e-3 if dtype == np.float32 else 1e-9)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_masked_classes(self, dtype):
        logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [0.5, -np.inf, 0.0],
                           [-np.inf] * 3], dtype=dtype)
        value, grad = generalized_cross_entropy_value_and_grad(
            logits, np.array([2, 1, 1, 0]), q=0.5, reduction="none")
        assert value.dtype == dtype
        assert value[1] == 0 and value[2] == 2.0 and value[3] == 2.0  # bounded by 1/q
        assert np.isfinite(value).all() and np.isfinite(grad).all()
        assert not grad[1:].any() and grad[0, 1] == 0

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4),
        st.integers(0, 3),
        st.floats(1e-6, 1.0),
        st.sampled_from([np.float32, np.float64]),
    )
    def test_property_finite_and_bounded(self, row, label, q, dtype):
        logits = np.array([row], dtype=dtype)
        value, grad = generalized_cross_entropy_value_and_grad(logits, np.array([label]), q=q)
        assert np.isfinite(value) and 0 <= value <= (1 / q) * (1 + 1e-6)
        assert np.isfinite(grad).all()


def test_float32_close_to_float64(rng):
    logits = rng.normal(size=(64, 10)) * 5
    target = rng.integers(0, 10, 64)
    options = dict(q=0.4, sample_weight=rng.uniform(0, 2, 64))
    v32, g32 = generalized_cross_entropy_value_and_grad(logits.astype(np.float32), target, **options)
    v64, g64 = generalized_cross_entropy_value_and_grad(logits, target, **options)
    assert isinstance(v32, np.float32) and g32.dtype == np.float32
    assert isinstance(v64, np.float64) and g64.dtype == np.float64
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    none32 = generalized_cross_entropy(logits.astype(np.float32), target, truncation=0.5, reduction="none")
    assert none32.dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_class_axis_anywhere_equals_moving_it_last(axis, rng):
    logits = rng.normal(size=(3, 4, 5))
    n_classes = logits.shape[axis]
    row_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % 3)
    target = rng.integers(0, n_classes, row_shape)
    options = dict(q=0.5, truncation=0.1, reduction="none")
    value, grad = generalized_cross_entropy_value_and_grad(logits, target, axis=axis, **options)
    moved = np.moveaxis(logits, axis, -1)
    flat_value, flat_grad = generalized_cross_entropy_value_and_grad(
        moved.reshape(-1, n_classes), target.reshape(-1), **options)
    np.testing.assert_allclose(value, flat_value.reshape(row_shape), rtol=1e-14)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), flat_grad.reshape(moved.shape), rtol=1e-14)


def test_every_row_ignored_gives_zero(rng):
    logits, _, _ = label_problem(rng, N, C)
    value, grad = generalized_cross_entropy_value_and_grad(logits, np.full(N, 7), ignore_index=7)
    assert value == 0.0 and not grad.any()


class TestBadInput:
    logits = np.zeros((3, 4))
    target = np.array([0, 1, 2])

    @pytest.mark.parametrize("q,error,match", [
        (0.0, ValueError, r"q must lie in \(0, 1\], got 0.0"),
        (1.5, ValueError, r"q must lie in \(0, 1\], got 1.5"),
        (float("nan"), ValueError, "q must be a number, got nan"),
        (None, TypeError, "q must be a real number"),
    ])
    def test_bad_q(self, q, error, match):
        with pytest.raises(error, match=match):
            generalized_cross_entropy(self.logits, self.target, q=q)

    @pytest.mark.parametrize("truncation,error,match", [
        (0.0, ValueError, r"truncation must lie in \(0, 1\), got 0.0"),
        (1.0, ValueError, r"truncation must lie in \(0, 1\), got 1.0"),
        (float("nan"), ValueError, "truncation must be a number, got nan"),
        ("0.5", TypeError, "truncation must be a real number"),
    ])
    def test_bad_truncation(self, truncation, error, match):
        with pytest.raises(error, match=match):
            generalized_cross_entropy(self.logits, self.target, truncation=truncation)

    def test_probability_targets_and_bad_labels(self):
        with pytest.raises(TypeError, match="target must hold integer class labels"):
            generalized_cross_entropy(self.logits, np.full((3, 4), 0.25))
        with pytest.raises(ValueError, match=r"target .*found -3 at position \(2,\)"):
            generalized_cross_entropy(self.logits, np.array([0, 1, -3]), ignore_index=-1)
        with pytest.raises(ValueError, match="reduction must be one of"):
            generalized_cross_entropy(self.logits, self.target, reduction=None)
        with pytest.raises(ValueError, match=r"sample_weight must have one weight per row"):
            generalized_cross_entropy(self.logits, self.target, sample_weight=np.ones(2))


def test_loss_class(rng):
    logits, target, sample_weight = label_problem(rng, N, C, with_sample_weight=True)
    options = dict(q=0.3, truncation=0.2)
    loss = GeneralizedCrossEntropyLoss(**options)
    assert loss(logits, target, sample_weight=sample_weight) == generalized_cross_entropy(
        logits, target, sample_weight=sample_weight, **options)
    value, grad = loss.value_and_grad(logits, target)
    assert value == generalized_cross_entropy(logits, target, **options)
    np.testing.assert_array_equal(grad, generalized_cross_entropy_grad(logits, target, **options))
    with pytest.raises(TypeError, match="unexpected option 'gamma'"):
        GeneralizedCrossEntropyLoss(gamma=1.0)
