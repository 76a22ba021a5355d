import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crossent
import reference_variants as reference
from cases_variants import IGNORE, none_or_list
from crossent.losses.poly1 import (
    Poly1CrossEntropyLoss,
    poly1_cross_entropy,
    poly1_cross_entropy_grad,
    poly1_cross_entropy_value_and_grad,
)

N, C = 6, 5
GRID = [
    params
    for params in itertools.product(
        ["labels", "probabilities"], [None, "class", "matrix"], [False, True], [False, True],
        [0.0, 0.2], [1.0, -0.7, 3.0], ["mean", "sum", "none"])
    if not (params[0] == "probabilities" and params[3])
]


def _ids(params):
    return "-".join(str(p) for p in params)


def _problem(rng, kind, weight_kind, with_sw, with_ignore, smoothing, epsilon, reduction):
    logits = rng.normal(size=(N, C)) * 2
    if kind == "labels":
        target = rng.integers(0, C, N)
        if with_ignore:
            target[[1, 3]] = IGNORE
    else:
        target = rng.dirichlet(np.ones(C), size=N)
    weight = {None: None, "class": rng.uniform(0.2, 2.0, C),
              "matrix": rng.uniform(0.2, 2.0, (N, C))}[weight_kind]
    options = dict(epsilon=epsilon, label_smoothing=smoothing, weight=weight,
                   sample_weight=rng.uniform(0.2, 2.0, N) if with_sw else None,
                   ignore_index=IGNORE if with_ignore else None, reduction=reduction)
    return logits, target, options


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    logits, target, options = _problem(rng, *params)
    value, grad = poly1_cross_entropy_value_and_grad(logits, target, **options)
    expected_value, expected_grad = reference.poly1_cross_entropy(
        logits.tolist(), target.tolist(),
        **{**options, "weight": none_or_list(options["weight"]),
           "sample_weight": none_or_list(options["sample_weight"])})
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(poly1_cross_entropy(logits, target, **options), value)
    np.testing.assert_array_equal(poly1_cross_entropy_grad(logits, target, **options), grad)


@pytest.mark.parametrize("params", GRID[::3], ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    logits, target, options = _problem(rng, *params)
    result = crossent.gradcheck(
        lambda x: np.sum(poly1_cross_entropy(x, target, **options)), logits,
        lambda x: poly1_cross_entropy_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("params", [p for p in GRID if p[5] != 3.0], ids=_ids)
def test_epsilon_zero_is_softmax_cross_entropy_exactly(params, rng):
    logits, target, options = _problem(rng, *params)
    options["epsilon"] = 0.0
    for dtype in (np.float64, np.float32):
        value, grad = poly1_cross_entropy_value_and_grad(
            logits.astype(dtype), target if params[0] == "labels" else target.astype(dtype), **options)
        del_options = {k: v for k, v in options.items() if k != "epsilon"}
        ce_value, ce_grad = crossent.softmax_cross_entropy_value_and_grad(
            logits.astype(dtype), target if params[0] == "labels" else target.astype(dtype),
            **del_options)
        np.testing.assert_array_equal(value, ce_value)
        np.testing.assert_array_equal(grad, ce_grad)


def _torch_poly1(torch, logits, target, epsilon, smoothing, weight, sample_weight, reduction,
                 labels, axis=1):
    """The paper's recipe: pt = sum(y * softmax), CE + epsilon (1 - pt), y label-smoothed;
    CE from torch's own F.cross_entropy with the same weight and label_smoothing."""
    F = torch.nn.functional
    n_classes = logits.shape[axis]
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE,
                         label_smoothing=smoothing, reduction="none")
    if labels:
        valid = target != IGNORE
        safe = torch.where(valid, target, torch.zeros_like(target))
        hard = F.one_hot(safe, n_classes).movedim(-1, axis).to(logits.dtype)
        class_weight = torch.ones(n_classes, dtype=logits.dtype) if weight is None else weight
        picked = class_weight[safe]
    else:
        valid = torch.ones(ce.shape, dtype=torch.bool)
        hard = target
        picked = torch.ones_like(ce)
    y = (1 - smoothing) * hard + smoothing / n_classes
    pt = (y * torch.softmax(logits, dim=axis)).sum(axis)
    rows_weight = valid.to(logits.dtype)
    if sample_weight is not None:
        rows_weight = rows_weight * sample_weight
    rows = ce * rows_weight + epsilon * (1 - pt) * rows_weight * picked
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / (rows_weight * picked).sum()


TORCH_GRID = [p for p in GRID if p[1] != "matrix"][::2]


@pytest.mark.parametrize("params", TORCH_GRID, ids=_ids)
@pytest.mark.parametrize("layout", ["2d", "spatial"])
def test_matches_pytorch_textbook_formula(params, layout, rng):
    torch = pytest.importorskip("torch")
    kind, weight_kind, with_sw, with_ignore, smoothing, epsilon, reduction = params
    shape = (N, C) if layout == "2d" else (3, C, 2, 3)
    logits = rng.normal(size=shape) * 2
    row_shape = shape[:1] + shape[2:]
    if kind == "labels":
        target = rng.integers(0, C, row_shape)
        if with_ignore:
            target.reshape(-1)[[0, 4]] = IGNORE
    else:
        target = np.moveaxis(rng.dirichlet(np.ones(C), size=row_shape), -1, 1)
    weight = rng.uniform(0.2, 2.0, C) if weight_kind == "class" else None
    sample_weight = rng.uniform(0.2, 2.0, row_shape) if with_sw else None
    logits_t = torch.tensor(logits, requires_grad=True)
    expected = _torch_poly1(
        torch, logits_t, torch.tensor(target), epsilon, smoothing,
        None if weight is None else torch.tensor(weight),
        None if sample_weight is None else torch.tensor(sample_weight), reduction,
        labels=kind == "labels")
    expected.sum().backward()
    value, grad = poly1_cross_entropy_value_and_grad(
        logits, target, epsilon=epsilon, label_smoothing=smoothing, weight=weight,
        sample_weight=sample_weight, ignore_index=IGNORE if with_ignore else None,
        reduction=reduction, axis=1)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_weighted_mean_of_both_terms(rng):
    torch = pytest.importorskip("torch")
    logits = rng.normal(size=(N, C))
    target = rng.integers(0, C, N)
    weight = rng.uniform(0.2, 2.0, C)
    ce_mean = torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(target), weight=torch.tensor(weight)).item()
    p = crossent.softmax(logits)[np.arange(N), target]
    value = poly1_cross_entropy(logits, target, epsilon=2.0, weight=weight)
    picked = weight[target]
    assert value == pytest.approx(ce_mean + 2.0 * np.sum(picked * (1 - p)) / np.sum(picked), rel=1e-13)
    # a weighted mean: scaling every weight changes nothing
    assert poly1_cross_entropy(logits, target, epsilon=2.0, weight=10 * weight) == pytest.approx(
        value, rel=1e-13)


def test_one_hot_probabilities_equal_labels(rng):
    logits = rng.normal(size=(N, C)) * 3
    labels = rng.integers(0, C, N)
    onehot = np.eye(C)[labels]
    for smoothing in (0.0, 0.3):
        options = dict(epsilon=1.5, label_smoothing=smoothing, reduction="none")
        value, grad = poly1_cross_entropy_value_and_grad(logits, labels, **options)
        value_p, grad_p = poly1_cross_entropy_value_and_grad(logits, onehot, **options)
        np.testing.assert_allclose(value_p, value, rtol=1e-14)
        np.testing.assert_allclose(grad_p, grad, rtol=1e-13, atol=1e-16)


def test_confident_example_keeps_relative_accuracy_of_the_poly_term():
    # p_t rounds to 1; 1 - p_t = 2e^-40 / (1 + 2e^-40) is still resolved, for labels and one-hot
    logits = np.array([[40.0, 0.0, 0.0]])
    small = 2 * np.exp(-40.0)
    ce = crossent.softmax_cross_entropy(logits, np.array([0]), reduction="none")
    for target in (np.array([0]), np.array([[1.0, 0.0, 0.0]])):
        value = poly1_cross_entropy(logits, target, epsilon=1.0, reduction="none")
        np.testing.assert_allclose(value - ce, small / (1 + small), rtol=1e-14)


class TestStability:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("scale,shift", [(1e4, 0.0), (1.0, 1e4), (1e4, -1e4)])
    @pytest.mark.parametrize("kind", ["labels", "probabilities"])
    def test_huge_and_shifted_logits(self, dtype, scale, shift, kind, rng):
        base = rng.normal(size=(8, 6))
        logits = (base * scale + shift).astype(dtype)
        target = (rng.integers(0, 6, 8) if kind == "labels"
                  else rng.dirichlet(np.ones(6), size=8).astype(dtype))
        options = dict(epsilon=2.0, label_smoothing=0.1)
        value, grad = poly1_cross_entropy_value_and_grad(logits, target, **options)
        assert value.dtype == dtype and grad.dtype == dtype
        assert np.isfinite(value) and np.isfinite(grad).all()
        np.testing.assert_allclose(
            value, poly1_cross_entropy((base * scale).astype(dtype), target, **options),
            rtol=1e-3 if dtype == np.float32 else 1e-9)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_masked_classes(self, dtype):
        logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [0.5, -np.inf, 0.0],
                           [-np.inf] * 3], dtype=dtype)
        target = np.array([2, 1, 1, 0])
        value, grad = poly1_cross_entropy_value_and_grad(logits, target, epsilon=-2.0, reduction="none")
        ce, ce_grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, reduction="none")
        assert value[1] == 0 and np.isfinite(value[:2]).all()
        assert value[2] == np.inf and value[3] == np.inf  # infinite exactly where CE is
        assert np.isfinite(grad).all() and grad[0, 1] == 0
        # p_t = 0 at a masked target: the poly term -2 (1 - 0) adds nothing to the gradient
        np.testing.assert_array_equal(grad[3], ce_grad[3])
        np.testing.assert_allclose(grad[2], ce_grad[2], rtol=1e-6)
        # probability targets with no mass on the masked classes
        probabilities = np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]], dtype=dtype)
        value, grad = poly1_cross_entropy_value_and_grad(logits[:2], probabilities, reduction="none")
        assert np.isfinite(value).all() and np.isfinite(grad).all() and value[1] == 0

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4),
        st.integers(0, 3),
        st.floats(-5.0, 5.0),
        st.sampled_from([np.float32, np.float64]),
    )
    def test_property_finite(self, row, label, epsilon, dtype):
        logits = np.array([row], dtype=dtype)
        value, grad = poly1_cross_entropy_value_and_grad(
            logits, np.array([label]), epsilon=epsilon, label_smoothing=0.1)
        assert np.isfinite(value) and np.isfinite(grad).all()


def test_float32_close_to_float64(rng):
    logits = rng.normal(size=(64, 10)) * 5
    target = rng.integers(0, 10, 64)
    options = dict(epsilon=2.0, label_smoothing=0.1, weight=rng.uniform(0.5, 2, 10),
                   sample_weight=rng.uniform(0, 2, 64))
    v32, g32 = poly1_cross_entropy_value_and_grad(logits.astype(np.float32), target, **options)
    v64, g64 = poly1_cross_entropy_value_and_grad(logits, target, **options)
    assert isinstance(v32, np.float32) and g32.dtype == np.float32
    assert isinstance(v64, np.float64) and g64.dtype == np.float64
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    assert poly1_cross_entropy(logits.astype(np.float32), target, reduction="none").dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("kind", ["labels", "probabilities"])
def test_class_axis_anywhere_equals_moving_it_last(axis, kind, rng):
    logits = rng.normal(size=(3, 4, 5))
    n_classes = logits.shape[axis]
    row_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % 3)
    if kind == "labels":
        target = rng.integers(0, n_classes, row_shape)
        flat_target = target.reshape(-1)
    else:
        target = np.moveaxis(rng.dirichlet(np.ones(n_classes), size=row_shape), -1, axis)
        flat_target = np.moveaxis(target, axis, -1).reshape(-1, n_classes)
    options = dict(epsilon=1.5, label_smoothing=0.1, reduction="none")
    value, grad = poly1_cross_entropy_value_and_grad(logits, target, axis=axis, **options)
    moved = np.moveaxis(logits, axis, -1)
    flat_value, flat_grad = poly1_cross_entropy_value_and_grad(
        moved.reshape(-1, n_classes), flat_target, **options)
    np.testing.assert_allclose(value, flat_value.reshape(row_shape), rtol=1e-14)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), flat_grad.reshape(moved.shape), rtol=1e-14)


def test_every_row_ignored_gives_zero(rng):
    logits = rng.normal(size=(N, C))
    value, grad = poly1_cross_entropy_value_and_grad(logits, np.full(N, 7), ignore_index=7)
    assert value == 0.0 and not grad.any()


class TestBadInput:
    logits = np.zeros((3, 4))
    target = np.array([0, 1, 2])

    @pytest.mark.parametrize("name,value,error,match", [
        ("epsilon", float("nan"), ValueError, "epsilon must be a number, got nan"),
        ("epsilon", float("inf"), ValueError, "epsilon must be finite, got inf"),
        ("epsilon", "1", TypeError, "epsilon must be a real number"),
        ("label_smoothing", 1.5, ValueError, r"label_smoothing must lie in \[0, 1\], got 1.5"),
        ("weight", np.ones(3), ValueError, r"weight .*\(4,\), got \(3,\)"),
        ("weight", np.array([1.0, -1.0, 1.0, 1.0]), ValueError, "weight must be finite and >= 0"),
    ])
    def test_bad_options(self, name, value, error, match):
        with pytest.raises(error, match=match):
            poly1_cross_entropy(self.logits, self.target, **{name: value})

    def test_bad_targets(self):
        with pytest.raises(ValueError, match=r"row at position \(2,\) sums to"):
            target = np.full((3, 4), 0.25)
            target[2, 0] = 0.5
            poly1_cross_entropy(self.logits, target)
        with pytest.raises(ValueError, match="sample_weight=0"):
            poly1_cross_entropy(self.logits, np.full((3, 4), 0.25), ignore_index=-1)
        with pytest.raises(ValueError, match=r"target of floating dtype.*astype\(int\)"):
            poly1_cross_entropy(self.logits, np.array([0.0, 1.0, 2.0]))
        with pytest.raises(ValueError, match="reduction must be one of"):
            poly1_cross_entropy(self.logits, self.target, reduction="batchmean")


def test_loss_class(rng):
    logits = rng.normal(size=(N, C))
    target = rng.integers(0, C, N)
    sample_weight = rng.uniform(0.2, 2.0, N)
    options = dict(epsilon=-0.5, label_smoothing=0.1)
    loss = Poly1CrossEntropyLoss(**options)
    assert loss(logits, target, sample_weight=sample_weight) == poly1_cross_entropy(
        logits, target, sample_weight=sample_weight, **options)
    value, grad = loss.value_and_grad(logits, target)
    assert value == poly1_cross_entropy(logits, target, **options)
    np.testing.assert_array_equal(grad, poly1_cross_entropy_grad(logits, target, **options))
    with pytest.raises(TypeError, match="unexpected option 'z_loss'"):
        Poly1CrossEntropyLoss(z_loss=1e-4)
