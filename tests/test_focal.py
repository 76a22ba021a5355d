import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crossent
import reference_variants as reference
from cases_variants import IGNORE, label_problem, none_or_list
from crossent.losses.focal import (
    FocalLoss,
    focal_loss,
    focal_loss_grad,
    focal_loss_value_and_grad,
)

N, C = 6, 5
ALPHA_KINDS = [None, "scalar", "class"]
GRID = list(itertools.product(
    [0.0, 0.5, 1.0, 2.0, 3.7], ALPHA_KINDS, [False, True], [False, True], ["mean", "sum", "none"]
))


def _ids(params):
    return "-".join(str(p) for p in params)


def _options(rng, gamma, alpha_kind, with_sw, with_ignore, reduction):
    logits, target, sample_weight = label_problem(
        rng, N, C, with_sample_weight=with_sw, with_ignore=with_ignore)
    alpha = {None: None, "scalar": 0.25, "class": rng.uniform(0.1, 1.0, C)}[alpha_kind]
    options = dict(gamma=gamma, alpha=alpha, sample_weight=sample_weight,
                   ignore_index=IGNORE if with_ignore else None, reduction=reduction)
    return logits, target, options


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    logits, target, options = _options(rng, *params)
    value, grad = focal_loss_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.focal_loss(
        logits.tolist(), target.tolist(),
        **{**options, "alpha": options["alpha"] if options["alpha"] is None or np.isscalar(options["alpha"])
           else options["alpha"].tolist(), "sample_weight": none_or_list(options["sample_weight"])})
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(focal_loss(logits, target, **options), value)
    np.testing.assert_array_equal(focal_loss_grad(logits, target, **options), grad)


@pytest.mark.parametrize("params", GRID[::2], ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    logits, target, options = _options(rng, *params)
    result = crossent.gradcheck(
        lambda x: np.sum(focal_loss(x, target, **options)), logits,
        lambda x: focal_loss_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


def _torch_focal(torch, logits, target, gamma, alpha, sample_weight, reduction, axis=1):
    """The textbook formula -alpha_y (1 - p)^gamma log p, straight from log_softmax."""
    valid = target != IGNORE
    labels = torch.where(valid, target, torch.zeros_like(target))
    log_p = torch.log_softmax(logits, dim=axis).gather(axis, labels.unsqueeze(axis)).squeeze(axis)
    p = log_p.exp()
    rows = -(1 - p) ** gamma * log_p
    if alpha is not None:
        rows = rows * (alpha[labels] if alpha.ndim else alpha)
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
    gamma, alpha_kind, with_sw, with_ignore, reduction = params
    shape = (N, C) if layout == "2d" else (3, C, 2, 3)
    logits = rng.normal(size=shape) * 2
    row_shape = shape[:1] + shape[2:]
    target = rng.integers(0, C, row_shape)
    if with_ignore:
        target.reshape(-1)[[0, 4]] = IGNORE
    alpha = {None: None, "scalar": 0.25, "class": rng.uniform(0.1, 1.0, C)}[alpha_kind]
    sample_weight = rng.uniform(0.2, 2.0, row_shape) if with_sw else None
    logits_t = torch.tensor(logits, requires_grad=True)
    expected = _torch_focal(
        torch, logits_t, torch.tensor(target), gamma,
        None if alpha is None else torch.tensor(alpha),
        None if sample_weight is None else torch.tensor(sample_weight), reduction)
    expected.sum().backward()
    value, grad = focal_loss_value_and_grad(
        logits, target, gamma=gamma, alpha=alpha, sample_weight=sample_weight,
        ignore_index=IGNORE if with_ignore else None, reduction=reduction, axis=1)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("with_rows", [False, True])
def test_gamma_zero_is_softmax_cross_entropy_exactly(reduction, with_rows, rng):
    logits, target, sample_weight = label_problem(
        rng, 8, C, scale=3, with_sample_weight=with_rows, with_ignore=with_rows)
    options = dict(sample_weight=sample_weight, ignore_index=IGNORE if with_rows else None,
                   reduction=reduction)
    for dtype in (np.float64, np.float32):
        value, grad = focal_loss_value_and_grad(logits.astype(dtype), target, gamma=0.0, **options)
        ce_value, ce_grad = crossent.softmax_cross_entropy_value_and_grad(
            logits.astype(dtype), target, **options)
        np.testing.assert_array_equal(value, ce_value)
        np.testing.assert_array_equal(grad, ce_grad)
    # alpha is a class weight on the rows; it stays out of the mean's denominator, so it agrees
    # with softmax_cross_entropy(weight=alpha) for "sum"/"none", and not for the weighted mean
    alpha = rng.uniform(0.1, 1.0, C)
    value, grad = focal_loss_value_and_grad(logits, target, gamma=0.0, alpha=alpha, **options)
    ce_value, ce_grad = crossent.softmax_cross_entropy_value_and_grad(
        logits, target, weight=alpha, **options)
    if reduction == "mean":
        valid = target != IGNORE
        rows_weight = (1.0 if sample_weight is None else sample_weight) * valid
        ratio = np.sum(rows_weight * alpha[np.where(valid, target, 0)]) / np.sum(rows_weight)
        assert value == pytest.approx(ce_value * ratio, rel=1e-13)
    else:
        np.testing.assert_array_equal(value, ce_value)
        np.testing.assert_array_equal(grad, ce_grad)


@pytest.mark.parametrize("logits", [[40.0, 0.0, 0.0], [20.0, 0.0, 0.0], [1e4 + 20, 1e4, 1e4]])
def test_easy_examples_keep_relative_accuracy(logits):
    # 1 - p_y = 2e^-d / (1 + 2e^-d): p_y rounds to 1.0 for d = 40 and 1 - p_y (also -expm1 of
    # z_y - LSE) would be 0 or off by 4e-7; the loss and the gradient keep full relative accuracy
    logits = np.array([logits])
    gap = logits[0, 0] - logits[0, 1]
    small = 2 * math.exp(-gap)
    one_minus_p = small / (1 + small)
    log_p = -math.log1p(small)
    p = 1 / (1 + small)
    for gamma in (0.5, 2.0):
        value, grad = focal_loss_value_and_grad(logits, np.array([0]), gamma=gamma)
        assert value == pytest.approx(-(one_minus_p**gamma) * log_p, rel=1e-14)
        factor = one_minus_p**gamma - gamma * p * one_minus_p ** (gamma - 1) * log_p
        # the non-target entries factor * p_c are accurate relative to themselves; the target
        # entry factor * (p_y - 1) is accurate relative to factor (p_y - 1 cancels)
        np.testing.assert_allclose(grad[0, 1:], factor * math.exp(-gap) * p, rtol=1e-13)
        assert abs(grad[0, 0] + factor * one_minus_p) <= 1e-15 * factor
    value = crossent.losses.focal.focal_loss(logits, np.array([0]), gamma=0.0)
    assert value == crossent.softmax_cross_entropy(logits, np.array([0]))  # CE's own arithmetic


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_target_probability_exactly_one_gives_zero_loss_and_gradient(dtype):
    # gamma < 1 makes (1 - p)^(gamma - 1) infinite at p = 1; the limit of the gradient is 0
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1.0, 2.0]], dtype=dtype)
    value, grad = focal_loss_value_and_grad(logits, np.array([0, 2]), gamma=0.3, reduction="none")
    assert value[0] == 0 and np.isfinite(value).all()
    assert not grad[0].any() and np.isfinite(grad).all()


class TestStability:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("scale,shift", [(1e4, 0.0), (1.0, 1e4), (1e4, -1e4)])
    @pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
    def test_huge_and_shifted_logits(self, dtype, scale, shift, gamma, rng):
        base = rng.normal(size=(8, 6))
        logits = (base * scale + shift).astype(dtype)
        target = rng.integers(0, 6, 8)
        value, grad = focal_loss_value_and_grad(logits, target, gamma=gamma, alpha=0.25)
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value) and np.isfinite(grad).all()
        unshifted = (base * scale).astype(dtype)
        np.testing.assert_allclose(
            value, focal_loss(unshifted, target, gamma=gamma, alpha=0.25),
            rtol=1e-2 if dtype == np.float32 else 1e-9, atol=1e-30)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
    def test_masked_classes(self, dtype, gamma):
        logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [0.5, -np.inf, 0.0],
                           [-np.inf] * 3], dtype=dtype)
        alpha = np.array([0.5, 2.0, 1.0])
        value, grad = focal_loss_value_and_grad(
            logits, np.array([2, 1, 1, 0]), gamma=gamma, alpha=alpha, reduction="none")
        assert np.isfinite(value[:2]).all() and value[1] == 0
        assert value[2] == np.inf and value[3] == np.inf  # the target class at -inf
        assert np.isfinite(grad).all()
        # p_y = 0: the focal factor is 1 and the gradient is alpha_y (p - onehot(y))
        p = crossent.softmax(logits[2].astype(np.float64))
        np.testing.assert_allclose(grad[2], 2.0 * (p - [0, 1, 0]), rtol=1e-6)
        np.testing.assert_array_equal(grad[3], [-0.5, 0, 0])
        assert grad[0, 1] == 0 and grad[1, 0] == 0
        mean = focal_loss(logits[:2], np.array([2, 1]), gamma=gamma)
        assert np.isfinite(mean)

    def test_ignored_row_with_masked_label_zero(self):
        logits = np.array([[-np.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
        value, grad = focal_loss_value_and_grad(logits, np.array([-1, 2]), ignore_index=-1)
        assert np.isfinite(value) and not grad[0].any()

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4),
        st.integers(0, 3),
        st.floats(0.0, 5.0),
        st.sampled_from([np.float32, np.float64]),
    )
    def test_property_finite(self, row, label, gamma, dtype):
        logits = np.array([row], dtype=dtype)
        value, grad = focal_loss_value_and_grad(logits, np.array([label]), gamma=gamma)
        assert np.isfinite(value) and value >= 0
        assert np.isfinite(grad).all()
        assert abs(float(grad.astype(np.float64).sum())) <= 1e-3 * max(1.0, float(np.abs(grad).max()))


def test_float32_close_to_float64(rng):
    logits = rng.normal(size=(64, 10)) * 5
    target = rng.integers(0, 10, 64)
    options = dict(gamma=1.5, alpha=rng.uniform(0.1, 1.0, 10), sample_weight=rng.uniform(0, 2, 64))
    v32, g32 = focal_loss_value_and_grad(logits.astype(np.float32), target, **options)
    v64, g64 = focal_loss_value_and_grad(logits, target, **options)
    assert isinstance(v32, np.float32) and g32.dtype == np.float32
    assert isinstance(v64, np.float64) and g64.dtype == np.float64
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    assert focal_loss(logits.astype(np.float32), target, reduction="none").dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_class_axis_anywhere_equals_moving_it_last(axis, rng):
    logits = rng.normal(size=(3, 4, 5))
    n_classes = logits.shape[axis]
    row_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % 3)
    target = rng.integers(0, n_classes, row_shape)
    options = dict(gamma=1.5, alpha=rng.uniform(0.1, 1, n_classes), reduction="none")
    value, grad = focal_loss_value_and_grad(logits, target, axis=axis, **options)
    moved = np.moveaxis(logits, axis, -1)
    flat_value, flat_grad = focal_loss_value_and_grad(
        moved.reshape(-1, n_classes), target.reshape(-1), **options)
    np.testing.assert_allclose(value, flat_value.reshape(row_shape), rtol=1e-14)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), flat_grad.reshape(moved.shape), rtol=1e-14)


def test_mean_divides_by_sample_weights_not_alpha(rng):
    logits, target, _ = label_problem(rng, N, C)
    alpha = rng.uniform(0.1, 1.0, C)
    sample_weight = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 0.5])
    rows = focal_loss(logits, target, alpha=alpha, reduction="none")
    value = focal_loss(logits, target, alpha=alpha, sample_weight=sample_weight)
    assert value == pytest.approx(np.sum(sample_weight * rows) / sample_weight.sum(), rel=1e-14)
    every_row_ignored = focal_loss_value_and_grad(logits, np.full(N, 7), ignore_index=7)
    assert every_row_ignored[0] == 0.0 and not every_row_ignored[1].any()


class TestBadInput:
    logits = np.zeros((3, 4))
    target = np.array([0, 1, 2])

    @pytest.mark.parametrize("gamma,error,match", [
        (-0.5, ValueError, r"gamma must lie in \[0, inf\], got -0.5"),
        (float("nan"), ValueError, "gamma must be a number, got nan"),
        (float("inf"), ValueError, "gamma must be finite, got inf"),
        ("2", TypeError, "gamma must be a real number"),
    ])
    def test_bad_gamma(self, gamma, error, match):
        with pytest.raises(error, match=match):
            focal_loss(self.logits, self.target, gamma=gamma)

    @pytest.mark.parametrize("alpha,error,match", [
        (np.ones(3), ValueError,
         r"alpha must be a scalar or hold one weight per class, shape \(4,\), got \(3,\)"),
        (np.array([1.0, -1.0, 1.0, 1.0]), ValueError, r"alpha must be finite and >= 0; found -1.0"),
        (np.array([1.0, np.nan, 1.0, 1.0]), ValueError, "alpha must be finite"),
        (-0.25, ValueError, r"alpha must lie in \[0, inf\], got -0.25"),
        (float("inf"), ValueError, "alpha must be finite"),
        (True, TypeError, "alpha must be a number or an array"),
        ("a", TypeError, "alpha must be an array of numbers"),
    ])
    def test_bad_alpha(self, alpha, error, match):
        with pytest.raises(error, match=match):
            focal_loss(self.logits, self.target, alpha=alpha)

    def test_probability_targets_are_rejected(self):
        with pytest.raises(TypeError, match="target must hold integer class labels"):
            focal_loss(self.logits, np.full((3, 4), 0.25))

    def test_labels_shape_range_reduction_empty(self):
        with pytest.raises(ValueError, match=r"target .*found 4 at position \(1,\)"):
            focal_loss(self.logits, np.array([0, 4, 1]))
        with pytest.raises(ValueError, match=r"target .*shape \(3,\).*got \(2,\)"):
            focal_loss(self.logits, np.array([0, 1]))
        with pytest.raises(ValueError, match="reduction must be one of"):
            focal_loss(self.logits, self.target, reduction="avg")
        with pytest.raises(ValueError, match="logits is empty"):
            focal_loss(np.zeros((0, 4)), np.zeros(0, dtype=int))
        with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0"):
            focal_loss(self.logits, self.target, sample_weight=np.array([1.0, -1.0, 1.0]))


def test_loss_class(rng):
    logits, target, sample_weight = label_problem(rng, N, C, with_sample_weight=True)
    loss = FocalLoss(gamma=1.0, alpha=0.5, reduction="sum")
    assert loss(logits, target, sample_weight=sample_weight) == focal_loss(
        logits, target, gamma=1.0, alpha=0.5, reduction="sum", sample_weight=sample_weight)
    value, grad = loss.value_and_grad(logits, target)
    assert value == focal_loss(logits, target, gamma=1.0, alpha=0.5, reduction="sum")
    np.testing.assert_array_equal(grad, focal_loss_grad(logits, target, gamma=1.0, alpha=0.5,
                                                        reduction="sum"))
    np.testing.assert_array_equal(loss.grad(logits, target), grad)
    assert loss.reduction == "sum"
    with pytest.raises(TypeError, match="unexpected option 'beta'"):
        FocalLoss(beta=1.0)
    with pytest.raises(TypeError, match="does not take 'mask'"):
        loss(logits, target, mask=np.ones(N))
