import itertools

import numpy as np
import pytest

import crossent
import reference_similarity as reference
from cases_similarity import ranking_labels
from crossent.losses.ranking import (
    SoftmaxRankingLoss,
    softmax_ranking_loss,
    softmax_ranking_loss_grad,
    softmax_ranking_loss_value_and_grad,
)

N, L = 6, 5


def _problem(rng, label_kind, with_mask, with_empty_list):
    scores = rng.normal(size=(N, L)) * 2
    labels = ranking_labels(rng, N, L)
    if label_kind == "integer":
        labels = labels.astype(np.int64)
    elif label_kind == "fractional":
        labels = labels * rng.uniform(0.1, 1.0, (N, L))
    mask = None
    if with_mask:
        mask = rng.random((N, L)) < 0.75
        mask[:, 0] = True
        mask[0] = False  # a list without any real item
    if with_empty_list:
        labels[2] = 0  # a list without relevant items
    return scores, labels, mask


GRID = list(itertools.product(["integer", "fractional"], [False, True], [False, True],
                              ["mean", "sum", "none"]))


def _ids(params):
    return "-".join(str(p) for p in params)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    label_kind, with_mask, with_empty, reduction = params
    scores, labels, mask = _problem(rng, label_kind, with_mask, with_empty)
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, mask=mask, reduction=reduction)
    expected_value, expected_grad = reference.softmax_ranking(
        scores.tolist(), labels.tolist(), None if mask is None else mask.tolist(), reduction)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(softmax_ranking_loss(scores, labels, mask=mask, reduction=reduction),
                                  value)
    np.testing.assert_array_equal(
        softmax_ranking_loss_grad(scores, labels, mask=mask, reduction=reduction), grad)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    label_kind, with_mask, with_empty, reduction = params
    scores, labels, mask = _problem(rng, label_kind, with_mask, with_empty)
    options = dict(mask=mask, reduction=reduction)
    result = crossent.gradcheck(lambda s: np.sum(softmax_ranking_loss(s, labels, **options)), scores,
                                lambda s: softmax_ranking_loss_grad(s, labels, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("batch_shape", [(N,), (2, 3)], ids=["lists", "nested"])
def test_matches_pytorch_formula(with_mask, reduction, batch_shape, rng):
    """-sum_i (y_i / sum y) log softmax(s)_i over valid items, in torch (float64, autograd)."""
    torch = pytest.importorskip("torch")
    scores = rng.normal(size=batch_shape + (L,)) * 3
    labels = ranking_labels(rng, int(np.prod(batch_shape)), L).reshape(scores.shape)
    labels.reshape(-1, L)[1] = 0  # no label mass: excluded
    mask = rng.random(scores.shape) < 0.7 if with_mask else np.ones(scores.shape, dtype=bool)
    mask[..., 0] = True
    value, grad = softmax_ranking_loss_value_and_grad(
        scores, labels, mask=mask if with_mask else None, reduction=reduction)

    s = torch.tensor(scores, requires_grad=True)
    valid = torch.tensor(mask)
    y = torch.where(valid, torch.tensor(labels), torch.zeros(()))
    total = y.sum(-1, keepdim=True)
    has_mass = total.squeeze(-1) > 0
    q = y / torch.where(total > 0, total, torch.ones(()))
    log_p = torch.log_softmax(torch.where(valid, s, torch.tensor(-torch.inf, dtype=s.dtype)), dim=-1)
    per_list = -torch.where(q > 0, q * log_p, torch.zeros(())).sum(-1)
    expected = {"none": per_list, "sum": per_list.sum(),
                "mean": per_list.sum() / has_mass.sum()}[reduction]
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, s.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_rax_documented_example():
    scores = np.array([[2.0, 1.0, 3.0], [1.0, 0.5, 1.5]], dtype=np.float32)
    labels = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    mask = np.array([[True, True, False], [True, True, True]])
    assert softmax_ranking_loss(scores, labels, mask=mask) == pytest.approx(0.49676564, rel=1e-6)
    # rax's single-list example: sum reduction of one list
    assert softmax_ranking_loss(np.array([2.0, 1.0, 3.0]), np.array([1.0, 0.0, 0.0]),
                                reduction="sum") == pytest.approx(1.4076059, rel=1e-7)


def test_single_relevant_item_is_softmax_cross_entropy(rng):
    scores = rng.normal(size=(N, L)) * 2
    relevant = rng.integers(0, L, N)
    labels = np.eye(L)[relevant]
    for reduction in ("mean", "sum", "none"):
        np.testing.assert_allclose(
            softmax_ranking_loss(scores, labels, reduction=reduction),
            crossent.softmax_cross_entropy(scores, relevant, reduction=reduction), rtol=1e-15)
        np.testing.assert_allclose(
            softmax_ranking_loss_grad(scores, labels, reduction=reduction),
            crossent.softmax_cross_entropy_grad(scores, relevant, reduction=reduction), atol=1e-16)


def test_padding_is_removed_entirely(rng):
    """A padded list equals the truncated list, whatever the padded scores and labels hold."""
    scores = rng.normal(size=(2, 6))
    labels = np.array([[0.0, 2.0, 1.0, 0.0, 5.0, np.nan], [1.0, 0.0, 3.0, -1.0, -1.0, -1.0]])
    mask = np.array([[True] * 4 + [False] * 2, [True] * 3 + [False] * 3])
    scores[0, 4:] = [1e30, np.nan]
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, mask=mask, reduction="none")
    for n, length in enumerate((4, 3)):
        expected, expected_grad = softmax_ranking_loss_value_and_grad(
            scores[n, :length], labels[n, :length], reduction="sum")
        assert value[n] == pytest.approx(expected, rel=1e-15)
        np.testing.assert_allclose(grad[n, :length], expected_grad, atol=1e-16)
        assert not grad[n, length:].any()


def test_lists_without_label_mass_are_left_out(rng):
    scores = rng.normal(size=(3, L))
    labels = ranking_labels(rng, 3, L)
    labels[1] = 0.0
    mask = np.ones((3, L), dtype=bool)
    mask[2, :] = False  # no valid item at all
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, mask=mask, reduction="none")
    assert value[1] == 0.0 and value[2] == 0.0 and not grad[1:].any()
    mean = softmax_ranking_loss(scores, labels, mask=mask)
    assert mean == value[0]  # the denominator counts only the list with label mass
    nothing = np.zeros((3, L))
    value, grad = softmax_ranking_loss_value_and_grad(scores, nothing)
    assert value == 0.0 and not grad.any()


def test_invariances(rng):
    scores = rng.normal(size=(N, L))
    labels = ranking_labels(rng, N, L)
    base = softmax_ranking_loss(scores, labels, reduction="none")
    permutation = rng.permutation(L)
    np.testing.assert_allclose(
        softmax_ranking_loss(scores[:, permutation], labels[:, permutation], reduction="none"),
        base, rtol=1e-14)
    # labels are normalised per list and scores enter through a softmax
    np.testing.assert_allclose(softmax_ranking_loss(scores + 7.0, labels * 3.5, reduction="none"),
                               base, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stability(dtype, rng):
    base = rng.normal(size=(N, L))
    labels = ranking_labels(rng, N, L)
    reference_value, reference_grad = softmax_ranking_loss_value_and_grad(base, labels)
    for shift in (1e4, -1e4):
        value, grad = softmax_ranking_loss_value_and_grad((base + shift).astype(dtype),
                                                          labels.astype(dtype))
        assert value.dtype == dtype and grad.dtype == dtype
        tolerance = 1e-9 if dtype == np.float64 else 5e-3
        np.testing.assert_allclose(value, reference_value, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(grad, reference_grad, atol=tolerance)
    value, grad = softmax_ranking_loss_value_and_grad((base * 1e4).astype(dtype), labels,
                                                      reduction="none")
    assert np.isfinite(value).all() and np.isfinite(grad).all() and (value >= 0).all()
    # -inf on an irrelevant item: finite; on a relevant item: +inf with a finite gradient
    scores = base.astype(dtype)
    irrelevant = np.argmin(labels, axis=1)
    relevant = np.argmax(labels, axis=1)
    scores[np.arange(N), irrelevant] = -np.inf
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, reduction="none")
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    assert not grad[np.arange(N), irrelevant].any()
    scores[0, relevant[0]] = -np.inf
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, reduction="none")
    assert value[0] == np.inf and np.isfinite(value[1:]).all() and np.isfinite(grad).all()
    # every real item -inf: +inf, gradient -q
    scores[1, :] = -np.inf
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, reduction="none")
    assert value[1] == np.inf
    np.testing.assert_allclose(grad[1], -labels[1] / labels[1].sum(), rtol=1e-6)


def test_large_float32_labels_do_not_overflow():
    scores = np.array([[0.0, 1.0, 2.0]], dtype=np.float32)
    labels = np.array([[3e38, 3e38, 0.0]], dtype=np.float32)  # their sum overflows float32
    value = softmax_ranking_loss(scores, labels)
    expected = softmax_ranking_loss(scores.astype(np.float64), np.array([[1.0, 1.0, 0.0]]))
    assert value.dtype == np.float32 and value == pytest.approx(expected, rel=1e-6)


def test_float32_agrees_with_float64(rng):
    scores = rng.normal(size=(40, L)) * 3
    labels = ranking_labels(rng, 40, L)
    mask = rng.random((40, L)) < 0.8
    value64, grad64 = softmax_ranking_loss_value_and_grad(scores, labels, mask=mask)
    value32, grad32 = softmax_ranking_loss_value_and_grad(scores.astype(np.float32),
                                                          labels.astype(np.float32), mask=mask)
    assert value32.dtype == np.float32 and grad32.dtype == np.float32
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-7)


def test_leading_dimensions_and_single_list(rng):
    scores = rng.normal(size=(2, 3, L))
    labels = ranking_labels(rng, 6, L).reshape(2, 3, L)
    value, grad = softmax_ranking_loss_value_and_grad(scores, labels, reduction="none")
    flat_value, flat_grad = softmax_ranking_loss_value_and_grad(
        scores.reshape(6, L), labels.reshape(6, L), reduction="none")
    assert value.shape == (2, 3) and grad.shape == (2, 3, L)
    np.testing.assert_array_equal(value.reshape(6), flat_value)
    np.testing.assert_array_equal(grad.reshape(6, L), flat_grad)
    single = softmax_ranking_loss(scores[0, 0], labels[0, 0], reduction="none")
    assert single.shape == () and single == flat_value[0]


def test_bad_inputs(rng):
    scores = rng.normal(size=(3, L))
    labels = ranking_labels(rng, 3, L)
    with pytest.raises(ValueError, match=r"labels must be finite and >= 0; found -1.0 .*mask="):
        softmax_ranking_loss(scores, np.where(labels == 0, -1.0, labels))
    with pytest.raises(ValueError, match="labels must be finite and >= 0 where mask is True; found nan"):
        bad = labels.copy()
        bad[1, 1] = np.nan
        softmax_ranking_loss(scores, bad, mask=np.ones((3, L), dtype=bool))
    with pytest.raises(ValueError, match="labels must be finite and >= 0; found inf"):
        softmax_ranking_loss(scores, np.where(labels > 0, np.inf, 0))
    with pytest.raises(ValueError, match=r"labels must have the shape of scores \(3, 5\), got \(3,\)"):
        softmax_ranking_loss(scores, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="labels must hold graded relevances.*bool"):
        softmax_ranking_loss(scores, labels > 0)
    with pytest.raises(TypeError, match="labels must be an array"):
        softmax_ranking_loss(scores, None)
    with pytest.raises(TypeError, match="mask must be a boolean array.*int64"):
        softmax_ranking_loss(scores, labels, mask=np.ones((3, L), dtype=int))
    with pytest.raises(ValueError, match=r"mask must have the shape of scores \(3, 5\), got \(3, 4\)"):
        softmax_ranking_loss(scores, labels, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="scores must have at least one dimension"):
        softmax_ranking_loss(np.float64(1.0), np.float64(1.0))
    with pytest.raises(ValueError, match="scores is empty"):
        softmax_ranking_loss(np.zeros((0, L)), np.zeros((0, L)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        softmax_ranking_loss(scores, labels, reduction="batchmean")
    with pytest.raises(TypeError, match="scores must be an array of real numbers"):
        softmax_ranking_loss(scores.astype(complex), labels)


def test_loss_class_takes_mask_per_call(rng):
    scores = rng.normal(size=(4, L))
    labels = ranking_labels(rng, 4, L)
    mask = rng.random((4, L)) < 0.8
    mask[:, :2] = True
    loss = SoftmaxRankingLoss(reduction="sum")
    expected = softmax_ranking_loss(scores, labels, mask=mask, reduction="sum")
    assert loss(scores, labels, mask=mask) == expected
    value, grad = loss.value_and_grad(scores, labels, mask=mask)
    assert value == expected
    np.testing.assert_array_equal(grad, softmax_ranking_loss_grad(scores, labels, mask=mask,
                                                                  reduction="sum"))
    assert loss(scores, labels) == softmax_ranking_loss(scores, labels, reduction="sum")
    with pytest.raises(TypeError, match="unexpected option 'mask'"):
        SoftmaxRankingLoss(mask=mask)
    with pytest.raises(TypeError, match="does not take 'sample_weight'"):
        loss(scores, labels, sample_weight=np.ones(4))
