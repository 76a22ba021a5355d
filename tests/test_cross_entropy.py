import itertools

import numpy as np
import pytest

import crossent
import reference
from crossent.losses import CrossEntropyLoss, NLLLoss

N, C = 5, 4


def _problem(rng, kind, weight_kind, with_sample_weight, with_ignore):
    logits = rng.normal(size=(N, C)) * 2
    if kind == "labels":
        target = rng.integers(0, C, N)
        if with_ignore:
            target[[1, 3]] = -100
    else:
        target = rng.dirichlet(np.ones(C), size=N)
    weight = {
        None: None,
        "class": rng.uniform(0.2, 2.0, C),
        "matrix": rng.uniform(0.2, 2.0, (N, C)),
    }[weight_kind]
    sample_weight = rng.uniform(0.2, 2.0, N) if with_sample_weight else None
    return logits, target, weight, sample_weight


OPTION_GRID = [
    (kind, weight_kind, sw, ignore, smoothing, z, reduction)
    for kind, weight_kind, sw, ignore, smoothing, z, reduction in itertools.product(
        ["labels", "probabilities"], [None, "class", "matrix"], [False, True], [False, True],
        [0.0, 0.2], [0.0, 0.01], ["mean", "sum", "none"],
    )
    if not (kind == "probabilities" and ignore)
]


def _ids(params):
    return "-".join(str(p) for p in params)


def test_worked_example_cat_dog_bird():
    logits = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(crossent.softmax(logits), [0.2312, 0.6285, 0.1402], atol=5e-5)
    value, grad = crossent.softmax_cross_entropy_value_and_grad(logits[None], np.array([1]))
    assert round(float(value), 4) == 0.4644
    np.testing.assert_allclose(grad[0], [0.2312, -0.3715, 0.1402], atol=5e-5)
    assert value == pytest.approx(-np.log(np.exp(2) / np.exp(logits).sum()), rel=1e-15)


@pytest.mark.parametrize("params", OPTION_GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    kind, weight_kind, with_sw, with_ignore, smoothing, z, reduction = params
    logits, target, weight, sample_weight = _problem(rng, kind, weight_kind, with_sw, with_ignore)
    options = dict(weight=weight, sample_weight=sample_weight, label_smoothing=smoothing,
                   z_loss=z, reduction=reduction)
    ignore = -100 if with_ignore else None
    value, grad = crossent.softmax_cross_entropy_value_and_grad(
        logits, target, ignore_index=ignore, **options)
    expected_value, expected_grad = reference.softmax_cross_entropy(
        logits.tolist(), target.tolist(), ignore_index=ignore,
        **{**options, "weight": None if weight is None else weight.tolist(),
           "sample_weight": None if sample_weight is None else sample_weight.tolist()})
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    # the separate entry points agree with the one-pass one
    np.testing.assert_array_equal(
        crossent.softmax_cross_entropy(logits, target, ignore_index=ignore, **options), value)
    np.testing.assert_array_equal(
        crossent.softmax_cross_entropy_grad(logits, target, ignore_index=ignore, **options), grad)


@pytest.mark.parametrize("params", OPTION_GRID[::3], ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    kind, weight_kind, with_sw, with_ignore, smoothing, z, reduction = params
    logits, target, weight, sample_weight = _problem(rng, kind, weight_kind, with_sw, with_ignore)
    options = dict(weight=weight, sample_weight=sample_weight, label_smoothing=smoothing, z_loss=z,
                   reduction=reduction, ignore_index=-100 if with_ignore else None)

    def total(x):
        return np.sum(crossent.softmax_cross_entropy(x, target, **options))

    result = crossent.gradcheck(total, logits,
                                lambda x: crossent.softmax_cross_entropy_grad(x, target, **options))
    assert result.max_relative_error < 1e-6, str(result)


torch = None


def _torch():
    return pytest.importorskip("torch")


TORCH_GRID = [
    (kind, weight_kind, ignore, smoothing, reduction)
    for kind, weight_kind, ignore, smoothing, reduction in itertools.product(
        ["labels", "probabilities"], [None, "class"], [False, True], [0.0, 0.3],
        ["mean", "sum", "none"])
    if not (kind == "probabilities" and ignore)
]


@pytest.mark.parametrize("params", TORCH_GRID, ids=_ids)
@pytest.mark.parametrize("layout", ["2d", "spatial"])
def test_matches_pytorch(params, layout, rng):
    torch = _torch()
    kind, weight_kind, with_ignore, smoothing, reduction = params
    shape = (N, C) if layout == "2d" else (3, C, 2, 3)
    logits = rng.normal(size=shape) * 3
    label_shape = shape[:1] + shape[2:]
    if kind == "labels":
        target = rng.integers(0, C, label_shape)
        if with_ignore:
            target.reshape(-1)[[0, 4]] = -100
    else:
        target = np.moveaxis(rng.dirichlet(np.ones(C), size=label_shape), -1, 1)
    weight = rng.uniform(0.2, 2.0, C) if weight_kind == "class" else None
    logits_t = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(
        logits_t, torch.tensor(target), weight=None if weight is None else torch.tensor(weight),
        ignore_index=-100, label_smoothing=smoothing, reduction=reduction)
    expected.sum().backward()
    value, grad = crossent.softmax_cross_entropy_value_and_grad(
        logits, target, weight=weight, ignore_index=-100 if with_ignore else None,
        label_smoothing=smoothing, reduction=reduction, axis=1)
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, logits_t.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_pytorch_returns_nan_where_crossent_returns_zero_for_all_ignored(rng):
    torch = _torch()
    logits = rng.normal(size=(3, C))
    target = np.full(3, -100)
    assert torch.isnan(torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target)))
    value, grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, ignore_index=-100)
    assert value == 0.0 and isinstance(value, np.float64)
    assert not grad.any()


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_class_axis_anywhere_equals_moving_it_last(axis, rng):
    logits = rng.normal(size=(3, 4, 5))
    n_classes = logits.shape[axis]
    label_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % 3)
    target = rng.integers(0, n_classes, label_shape)
    weight = rng.uniform(0.5, 1.5, n_classes)
    options = dict(weight=weight, label_smoothing=0.1, z_loss=0.01, reduction="none")
    value, grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, axis=axis, **options)
    moved = np.moveaxis(logits, axis, -1)
    flat_value, flat_grad = crossent.softmax_cross_entropy_value_and_grad(
        moved.reshape(-1, n_classes), target.reshape(-1), **options)
    np.testing.assert_allclose(value, flat_value.reshape(label_shape), rtol=1e-14)
    np.testing.assert_allclose(np.moveaxis(grad, axis, -1), flat_grad.reshape(moved.shape), rtol=1e-14)
    assert value.shape == label_shape and grad.shape == logits.shape


def test_per_sample_per_class_weight_matches_pytorch_weighted_mean(rng):
    logits = rng.normal(size=(N, C))
    target = rng.integers(0, C, N)
    matrix = rng.uniform(0.2, 2.0, (N, C))
    value = crossent.softmax_cross_entropy(logits, target, weight=matrix)
    rows = np.arange(N)
    nll = -crossent.log_softmax(logits)[rows, target]
    picked = matrix[rows, target]
    assert value == pytest.approx(np.sum(picked * nll) / np.sum(picked), rel=1e-14)
    # a (C,) weight and the same weight repeated per row are the same thing
    class_weight = rng.uniform(0.2, 2.0, C)
    np.testing.assert_allclose(
        crossent.softmax_cross_entropy(logits, target, weight=np.tile(class_weight, (N, 1))),
        crossent.softmax_cross_entropy(logits, target, weight=class_weight), rtol=1e-14)


def test_sample_weight_scales_rows_and_enters_denominator(rng):
    logits = rng.normal(size=(N, C))
    target = rng.integers(0, C, N)
    sample_weight = np.array([1.0, 2.0, 0.0, 1.0, 3.0])
    per_row = crossent.softmax_cross_entropy(logits, target, reduction="none")
    value = crossent.softmax_cross_entropy(logits, target, sample_weight=sample_weight)
    assert value == pytest.approx(np.sum(sample_weight * per_row) / sample_weight.sum(), rel=1e-14)
    # integer weights are the same as repeating rows
    repeated = np.repeat(np.arange(N), sample_weight.astype(int))
    assert value == pytest.approx(
        crossent.softmax_cross_entropy(logits[repeated], target[repeated]), rel=1e-14)


def test_ignored_rows_contribute_nothing(rng):
    logits = rng.normal(size=(N, C))
    target = rng.integers(0, C, N)
    target[2] = 7
    value, grad = crossent.softmax_cross_entropy_value_and_grad(
        logits, target, ignore_index=7, label_smoothing=0.2, z_loss=0.1)
    keep = target != 7
    kept_value, kept_grad = crossent.softmax_cross_entropy_value_and_grad(
        logits[keep], target[keep], label_smoothing=0.2, z_loss=0.1)
    assert value == pytest.approx(kept_value, rel=1e-14)
    assert not grad[2].any()
    np.testing.assert_allclose(grad[keep], kept_grad, rtol=1e-14)


def test_ignore_index_may_be_a_valid_class(rng):
    logits = rng.normal(size=(N, C))
    target = np.array([0, 1, 2, 3, 0])
    value = crossent.softmax_cross_entropy(logits, target, ignore_index=0)
    expected = crossent.softmax_cross_entropy(logits[1:4], target[1:4])
    assert value == pytest.approx(expected, rel=1e-14)


def test_z_loss_adds_lambda_lse_squared(rng):
    logits = rng.normal(size=(N, C)) + 3
    target = rng.integers(0, C, N)
    lse = crossent.logsumexp(logits)
    plain = crossent.softmax_cross_entropy(logits, target)
    with_z = crossent.softmax_cross_entropy(logits, target, z_loss=1e-3)
    assert with_z - plain == pytest.approx(1e-3 * np.mean(lse**2), rel=1e-10)


def test_float32_in_float32_out_close_to_float64(rng):
    logits = rng.normal(size=(64, 10)) * 5
    target = rng.integers(0, 10, 64)
    options = dict(weight=rng.uniform(0.5, 2, 10), label_smoothing=0.1, z_loss=1e-3)
    v32, g32 = crossent.softmax_cross_entropy_value_and_grad(logits.astype(np.float32), target, **options)
    v64, g64 = crossent.softmax_cross_entropy_value_and_grad(logits, target, **options)
    assert isinstance(v32, np.float32) and g32.dtype == np.float32
    assert isinstance(v64, np.float64) and g64.dtype == np.float64
    np.testing.assert_allclose(v32, v64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    none32 = crossent.softmax_cross_entropy(logits.astype(np.float32), target, reduction="none")
    assert none32.dtype == np.float32


class TestStability:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("scale,shift", [(1e4, 0.0), (1.0, 1e4), (1e4, -1e4), (1e-4, 1e4)])
    def test_huge_and_shifted_logits(self, dtype, scale, shift, rng):
        base = rng.normal(size=(8, 6))
        logits = (base * scale + shift).astype(dtype)
        target = rng.integers(0, 6, 8)
        value, grad = crossent.softmax_cross_entropy_value_and_grad(
            logits, target, label_smoothing=0.1, z_loss=1e-6)
        assert np.isfinite(value) and np.isfinite(grad).all()
        # shifting the logits does not change the cross-entropy (without z-loss)
        unshifted = (base * scale).astype(dtype)
        np.testing.assert_allclose(
            crossent.softmax_cross_entropy(logits, target),
            crossent.softmax_cross_entropy(unshifted, target), rtol=1e-3 if dtype == np.float32 else 1e-9)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_masked_classes(self, dtype):
        logits = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf], [-np.inf] * 3], dtype=dtype)
        target = np.array([2, 1, 0])
        value, grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, reduction="none")
        assert np.isfinite(value[:2]).all() and value[1] == 0
        assert value[2] == np.inf  # the target class is at -inf: infinite loss ...
        assert np.isfinite(grad).all()  # ... but a finite gradient
        np.testing.assert_array_equal(grad[2], [-1, 0, 0])
        assert grad[0, 1] == 0 and grad[1, 0] == 0
        # the all -inf row can be ignored and the rest is finite
        value = crossent.softmax_cross_entropy(logits, np.array([2, 1, -1]), ignore_index=-1)
        assert np.isfinite(value)

    def test_target_class_at_minus_inf_gives_inf(self):
        logits = np.array([[0.0, -np.inf]])
        assert crossent.softmax_cross_entropy(logits, np.array([1])) == np.inf
        # smoothing puts mass on every class, so any -inf logit is an infinite loss
        assert crossent.softmax_cross_entropy(logits, np.array([0]), label_smoothing=0.1) == np.inf
        # ... unless that class carries zero weight
        value = crossent.softmax_cross_entropy(
            logits, np.array([0]), label_smoothing=0.1, weight=np.array([1.0, 0.0]))
        assert np.isfinite(value)


class TestBadInput:
    logits = np.zeros((3, 4))

    def test_float_labels_of_row_shape(self):
        with pytest.raises(ValueError, match=r"target of floating dtype.*astype\(int\)"):
            crossent.softmax_cross_entropy(self.logits, np.array([0.0, 1.0, 2.0]))

    def test_label_out_of_range_names_value_and_position(self):
        with pytest.raises(ValueError, match=r"target .*\[0, 3\].*found 4 at position \(1,\)"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 4, 1]))
        with pytest.raises(ValueError, match=r"found -1 at position \(2,\)"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, -1]), ignore_index=-100)

    @pytest.mark.parametrize("target", [np.array(["a", "b", "c"]), np.array([True, False, True])])
    def test_non_numeric_labels(self, target):
        with pytest.raises(TypeError, match="target"):
            crossent.softmax_cross_entropy(self.logits, target)

    def test_label_shape(self):
        with pytest.raises(ValueError, match=r"target .*shape \(3,\).*got \(4,\)"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2, 3]))

    def test_negative_probabilities(self):
        target = np.full((3, 4), 0.25)
        target[1] = [-0.5, 0.5, 0.5, 0.5]
        with pytest.raises(ValueError, match=r"target must be probabilities.*-0.5.*\(1, 0\)"):
            crossent.softmax_cross_entropy(self.logits, target)

    def test_unnormalised_probabilities(self):
        target = np.full((3, 4), 0.25)
        target[2, 0] = 0.3
        with pytest.raises(ValueError, match=r"row at position \(2,\) sums to 1.05"):
            crossent.softmax_cross_entropy(self.logits, target)

    def test_probability_tolerance_is_stated(self):
        target = np.full((3, 4), 0.25)
        target[0, 0] += 1e-10
        crossent.softmax_cross_entropy(self.logits, target)  # within sqrt(eps)

    @pytest.mark.parametrize("weight,match", [
        (np.ones(3), r"weight .*class weights.*\(4,\), got \(3,\)"),
        (np.ones((2, 4)), r"weight of shape \(2, 4\) cannot be broadcast to shape \(3, 4\)"),
        (np.array([1.0, -1.0, 1.0, 1.0]), r"weight must be finite and >= 0; found -1.0"),
        (np.array([1.0, np.nan, 1.0, 1.0]), r"weight must be finite"),
    ])
    def test_bad_weight(self, weight, match):
        with pytest.raises(ValueError, match=match):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), weight=weight)

    def test_bad_sample_weight(self):
        with pytest.raises(ValueError, match=r"sample_weight .*shape \(3,\), got \(4,\)"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), sample_weight=np.ones(4))
        with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]),
                                           sample_weight=np.array([1.0, -2.0, 1.0]))

    def test_unknown_reduction(self):
        with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), reduction="avg")

    @pytest.mark.parametrize("value,error,match", [
        (float("nan"), ValueError, "label_smoothing must be a number, got nan"),
        (1.5, ValueError, r"label_smoothing must lie in \[0, 1\], got 1.5"),
        ("0.1", TypeError, "label_smoothing must be a real number"),
    ])
    def test_bad_label_smoothing(self, value, error, match):
        with pytest.raises(error, match=match):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), label_smoothing=value)

    def test_huge_unsigned_labels_do_not_wrap_onto_ignore_index(self):
        labels = np.array([2**64 - 100, 1, 0], dtype=np.uint64)
        with pytest.raises(ValueError, match=r"found 18446744073709551516 at position \(0,\)"):
            crossent.softmax_cross_entropy(self.logits, labels, ignore_index=-100)
        small = np.array([0, 1, 2], dtype=np.uint8)
        assert crossent.softmax_cross_entropy(self.logits, small) == pytest.approx(np.log(4))

    def test_float16_targets_are_checked_at_float32_tolerance(self):
        target = np.array([[0.5, 0.54, 0.0, 0.0]] + [[0.25] * 4] * 2, dtype=np.float16)
        with pytest.raises(ValueError, match=r"row at position \(0,\) sums to 1.04"):
            crossent.softmax_cross_entropy(self.logits, target)

    def test_infinite_z_loss(self):
        with pytest.raises(ValueError, match="z_loss must be finite, got inf"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), z_loss=float("inf"))

    def test_negative_z_loss(self):
        with pytest.raises(ValueError, match=r"z_loss must lie in \[0, inf\], got -1.0"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), z_loss=-1)

    def test_empty_batch(self):
        with pytest.raises(ValueError, match=r"logits is empty \(shape \(0, 4\)\)"):
            crossent.softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, dtype=int))

    def test_ignore_index_with_probabilities_points_to_sample_weight(self):
        with pytest.raises(ValueError, match="sample_weight=0"):
            crossent.softmax_cross_entropy(self.logits, np.full((3, 4), 0.25), ignore_index=-100)

    def test_axis_out_of_range_and_non_numeric_logits(self):
        with pytest.raises(ValueError, match=r"axis=2 is out of range"):
            crossent.softmax_cross_entropy(self.logits, np.array([0, 1, 2]), axis=2)
        with pytest.raises(TypeError, match="logits must be an array of real numbers"):
            crossent.softmax_cross_entropy(np.array([["a"]]), np.array([0]))


class TestNLL:
    @pytest.mark.parametrize("weight_kind", [None, "class", "matrix"])
    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_matches_reference(self, weight_kind, reduction, rng):
        logits, target, weight, sample_weight = _problem(rng, "labels", weight_kind, True, True)
        log_probs = crossent.log_softmax(logits)
        value, grad = crossent.nll_loss_value_and_grad(
            log_probs, target, weight=weight, sample_weight=sample_weight, ignore_index=-100,
            reduction=reduction)
        expected_value, expected_grad = reference.nll_loss(
            log_probs.tolist(), target.tolist(), ignore_index=-100, reduction=reduction,
            weight=None if weight is None else weight.tolist(), sample_weight=sample_weight.tolist())
        np.testing.assert_allclose(value, expected_value, rtol=1e-13)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-13)
        # cross-entropy is NLL of the log-softmax
        np.testing.assert_allclose(
            value, crossent.softmax_cross_entropy(logits, target, weight=weight, ignore_index=-100,
                                                  sample_weight=sample_weight, reduction=reduction),
            rtol=1e-13)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    def test_matches_pytorch(self, reduction, rng):
        torch = _torch()
        log_probs = crossent.log_softmax(rng.normal(size=(4, C, 3)), axis=1)
        target = rng.integers(0, C, (4, 3))
        target[0, 0] = -100
        weight = rng.uniform(0.2, 2.0, C)
        log_probs_t = torch.tensor(log_probs, requires_grad=True)
        expected = torch.nn.functional.nll_loss(log_probs_t, torch.tensor(target),
                                                weight=torch.tensor(weight), reduction=reduction)
        expected.sum().backward()
        value, grad = crossent.nll_loss_value_and_grad(
            log_probs, target, weight=weight, ignore_index=-100, reduction=reduction, axis=1)
        np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(grad, log_probs_t.grad.numpy(), rtol=1e-10)

    def test_rejects_probability_targets(self):
        with pytest.raises(TypeError, match="target must hold integer class labels"):
            crossent.nll_loss(np.zeros((2, 3)), np.full((2, 3), 1 / 3))


class TestLossClass:
    def test_call_and_value_and_grad_match_functions(self, rng):
        logits = rng.normal(size=(N, C))
        target = rng.integers(0, C, N)
        sample_weight = rng.uniform(0.5, 1.5, N)
        loss = CrossEntropyLoss(label_smoothing=0.1, z_loss=1e-3, reduction="sum")
        expected = crossent.softmax_cross_entropy_value_and_grad(
            logits, target, label_smoothing=0.1, z_loss=1e-3, reduction="sum",
            sample_weight=sample_weight)
        value, grad = loss.value_and_grad(logits, target, sample_weight=sample_weight)
        assert value == expected[0]
        np.testing.assert_array_equal(grad, expected[1])
        assert loss(logits, target, sample_weight=sample_weight) == expected[0]
        np.testing.assert_array_equal(loss.grad(logits, target, sample_weight=sample_weight), grad)
        assert loss.reduction == "sum" and CrossEntropyLoss().reduction == "mean"
        assert repr(loss) == "CrossEntropyLoss(label_smoothing=0.1, z_loss=0.001, reduction='sum')"

    def test_unknown_option(self):
        with pytest.raises(TypeError, match=r"unexpected option 'smoothing'.*label_smoothing"):
            CrossEntropyLoss(smoothing=0.1)
        with pytest.raises(TypeError, match="unexpected option 'sample_weight'"):
            NLLLoss(sample_weight=np.ones(3))

    def test_registry(self):
        assert isinstance(crossent.get_loss("cross_entropy"), CrossEntropyLoss)
        with pytest.raises(ValueError, match="loss must be one of"):
            crossent.get_loss("crossentropy")
