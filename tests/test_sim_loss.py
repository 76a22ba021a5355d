import itertools

import numpy as np
import pytest

import crossent
import reference_similarity as reference
from cases_similarity import similarity_matrix
from crossent.losses.similarity import SimLoss, sim_loss, sim_loss_grad, sim_loss_value_and_grad

N, C = 6, 5


def _similarity(rng, kind):
    if kind == "identity":
        return np.eye(C)
    if kind == "banded":  # exact zeros off the band: log 0 = -inf inside the loss
        return similarity_matrix(rng, C)
    matrix = rng.uniform(0.0, 1.0, (C, C))  # dense and asymmetric
    np.fill_diagonal(matrix, 1.0)
    return matrix


def _problem(rng, with_sample_weight, with_ignore):
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    if with_ignore:
        labels[[1, 4]] = -7
    sample_weight = rng.uniform(0.2, 2.0, N) if with_sample_weight else None
    return logits, labels, sample_weight


GRID = list(itertools.product(["identity", "banded", "dense"], [False, True], [False, True],
                              ["mean", "sum", "none"]))


def _ids(params):
    return "-".join(str(p) for p in params)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_matches_naive_reference(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, labels, sample_weight = _problem(rng, with_sw, with_ignore)
    similarity = _similarity(rng, kind)
    options = dict(similarity=similarity, sample_weight=sample_weight,
                   ignore_index=-7 if with_ignore else None, reduction=reduction)
    value, grad = sim_loss_value_and_grad(logits, labels, **options)
    expected_value, expected_grad = reference.sim_loss(
        logits.tolist(), labels.tolist(), similarity.tolist(),
        None if sample_weight is None else sample_weight.tolist(),
        -7 if with_ignore else None, reduction)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(sim_loss(logits, labels, **options), value)
    np.testing.assert_array_equal(sim_loss_grad(logits, labels, **options), grad)


@pytest.mark.parametrize("params", GRID, ids=_ids)
def test_gradient_matches_finite_differences(params, rng):
    kind, with_sw, with_ignore, reduction = params
    logits, labels, sample_weight = _problem(rng, with_sw, with_ignore)
    options = dict(similarity=_similarity(rng, kind), sample_weight=sample_weight,
                   ignore_index=-7 if with_ignore else None, reduction=reduction)
    result = crossent.gradcheck(lambda x: np.sum(sim_loss(x, labels, **options)), logits,
                                lambda x: sim_loss_grad(x, labels, **options))
    assert result.max_relative_error < 1e-6, str(result)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"sample_weight": "rows"}, {"ignore_index": 2}],
                         ids=["plain", "sample_weight", "ignore_index"])
def test_identity_similarity_is_exactly_softmax_cross_entropy(dtype, reduction, options, rng):
    logits = (rng.normal(size=(3, C, 4)) * 3).astype(dtype)
    logits[0, 1, 0] = -np.inf  # a masked non-target class
    labels = rng.integers(0, C, (3, 4))
    labels[0, 0] = 0
    options = dict(options)
    if options.get("sample_weight") == "rows":
        options["sample_weight"] = rng.uniform(0.2, 2.0, (3, 4))
    ours = sim_loss_value_and_grad(logits, labels, similarity=np.eye(C), reduction=reduction,
                                   axis=1, **options)
    theirs = crossent.softmax_cross_entropy_value_and_grad(logits, labels, reduction=reduction,
                                                           axis=1, **options)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[1].dtype == dtype and np.asarray(ours[0]).dtype == dtype


def test_credit_for_similar_classes_lowers_the_loss(rng):
    logits = rng.normal(size=(N, C)) * 2
    labels = rng.integers(0, C, N)
    similarity = similarity_matrix(rng, C)
    cross_entropy = crossent.softmax_cross_entropy(logits, labels, reduction="none")
    ours = sim_loss(logits, labels, similarity=similarity, reduction="none")
    assert np.all(ours <= cross_entropy) and np.all(ours >= 0)
    # all-ones similarity: every prediction is right, the loss is 0 (log 1) with gradient 0
    everything = np.ones((C, C))
    np.testing.assert_allclose(sim_loss(logits, labels, similarity=everything, reduction="none"),
                               0, atol=1e-15)
    np.testing.assert_allclose(sim_loss_grad(logits, labels, similarity=everything), 0, atol=1e-16)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["2d", "spatial"])
@pytest.mark.parametrize("with_sample_weight", [False, True])
@pytest.mark.parametrize("with_ignore", [False, True])
def test_matches_pytorch_formula(reduction, layout, with_sample_weight, with_ignore, rng):
    """The paper's formula written directly in torch (float64, autograd) as the oracle."""
    torch = pytest.importorskip("torch")
    shape = (N, C) if layout == "2d" else (3, C, 2, 2)
    axis = -1 if layout == "2d" else 1
    logits = rng.normal(size=shape) * 3
    batch_shape = shape[:1] + shape[2:] if layout == "spatial" else shape[:1]
    labels = rng.integers(0, C, batch_shape)
    if with_ignore:
        labels.reshape(-1)[[0, 3]] = -100
    sample_weight = rng.uniform(0.2, 2.0, batch_shape) if with_sample_weight else None
    similarity = similarity_matrix(rng, C)
    value, grad = sim_loss_value_and_grad(
        logits, labels, similarity=similarity, sample_weight=sample_weight,
        ignore_index=-100 if with_ignore else None, reduction=reduction, axis=axis)

    z = torch.tensor(np.moveaxis(logits, axis, -1), dtype=torch.float64, requires_grad=True)
    flat_labels = torch.tensor(labels)
    valid = flat_labels != -100
    safe = torch.where(valid, flat_labels, torch.zeros_like(flat_labels))
    rows = torch.tensor(similarity)[safe]  # S[y, :]
    per_row = -torch.log((rows * torch.softmax(z, dim=-1)).sum(dim=-1))
    weight = valid.double() * (1.0 if sample_weight is None else torch.tensor(sample_weight))
    per_row = torch.where(valid, per_row * weight, torch.zeros_like(per_row))
    expected = {"none": per_row, "sum": per_row.sum(),
                "mean": per_row.sum() / weight.sum()}[reduction]
    expected.sum().backward()
    np.testing.assert_allclose(value, expected.detach().numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, np.moveaxis(z.grad.numpy(), -1, axis), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stability_large_shifted_and_masked_logits(dtype, rng):
    similarity = similarity_matrix(rng, C)  # zeros where |i - j| > 2
    base = rng.normal(size=(N, C))
    labels = rng.integers(0, C, N)
    reference_value, reference_grad = sim_loss_value_and_grad(base, labels, similarity=similarity)
    # shift invariance at 1e4 offsets
    for shift in (1e4, -1e4):
        value, grad = sim_loss_value_and_grad((base + shift).astype(dtype), labels,
                                              similarity=similarity)
        assert np.isfinite(value) and np.isfinite(grad).all()
        assert value.dtype == dtype and grad.dtype == dtype
        tolerance = 1e-9 if dtype == np.float64 else 5e-3
        np.testing.assert_allclose(value, reference_value, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(grad, reference_grad, atol=tolerance)
    # scaled to 1e4: finite, no NaN; the loss grows like the logit gap
    big = (base * 1e4).astype(dtype)
    value, grad = sim_loss_value_and_grad(big, labels, similarity=similarity, reduction="none")
    assert np.isfinite(value).all() and np.isfinite(grad).all() and (value >= 0).all()


def test_infinite_exactly_where_no_credited_class_is_possible():
    similarity = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    logits = np.array([
        [-np.inf, 0.0, 1.0],      # true 0 is impossible, but 1 earns credit: finite
        [-np.inf, -np.inf, 1.0],  # true 0, all credited classes impossible: +inf
        [0.0, 1.0, -np.inf],      # a masked class without credit: finite
        [-np.inf, -np.inf, -np.inf],  # nothing possible at all: +inf
    ])
    labels = np.array([0, 0, 1, 2])
    value, grad = sim_loss_value_and_grad(logits, labels, similarity=similarity, reduction="none")
    assert np.isfinite(value[[0, 2]]).all()
    assert value[1] == np.inf and value[3] == np.inf
    assert np.isfinite(grad).all()
    # finite rows equal the formula with the masked classes dropped
    p = np.exp(1.0) / (1 + np.exp(1.0))
    assert value[0] == pytest.approx(-np.log(0.5 * (1 - p)), rel=1e-14)
    # +inf rows: gradient softmax(z) - onehot(y), as cross-entropy's
    np.testing.assert_allclose(grad[1], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(grad[3], [0.0, 0.0, -1.0])
    np.testing.assert_array_equal(grad[:, :][logits == -np.inf] <= 0, True)


def test_float32_agrees_with_float64(rng):
    logits = rng.normal(size=(50, C)) * 3
    labels = rng.integers(0, C, 50)
    similarity = similarity_matrix(rng, C)
    value64, grad64 = sim_loss_value_and_grad(logits, labels, similarity=similarity)
    value32, grad32 = sim_loss_value_and_grad(logits.astype(np.float32), labels,
                                              similarity=similarity.astype(np.float32))
    assert value32.dtype == np.float32 and grad32.dtype == np.float32
    np.testing.assert_allclose(value32, value64, rtol=1e-5)
    np.testing.assert_allclose(grad32, grad64, rtol=1e-4, atol=1e-7)


def test_every_row_ignored_gives_zero_mean_and_zero_gradient(rng):
    logits = rng.normal(size=(3, C))
    value, grad = sim_loss_value_and_grad(logits, np.full(3, -1), similarity=np.eye(C), ignore_index=-1)
    assert value == 0.0 and not grad.any()


@pytest.mark.parametrize("similarity, error, match", [
    (None, TypeError, "similarity"),
    (np.eye(4), ValueError, r"similarity must have shape \(5, 5\).*\(4, 4\)"),
    (np.ones(5), ValueError, r"similarity must have shape"),
    (np.eye(5) - 0.1 * (1 - np.eye(5)), ValueError, r"similarity entries must lie in \[0, 1\]"),
    (np.full((5, 5), 1.5), ValueError, r"similarity entries must lie in \[0, 1\].*1.5"),
    (np.where(np.eye(5) == 1, 1.0, np.nan), ValueError, r"similarity entries.*nan"),
    (np.full((5, 5), 0.5), ValueError, r"similarity must have 1 on its diagonal.*0.5"),
    ("eye", TypeError, "similarity"),
], ids=["none", "wrong shape", "1-d", "negative", "above one", "nan", "diagonal", "string"])
def test_bad_similarity(similarity, error, match, rng):
    with pytest.raises(error, match=match):
        sim_loss(rng.normal(size=(3, C)), np.array([0, 1, 2]), similarity=similarity)


def test_bad_inputs(rng):
    logits = rng.normal(size=(3, C))
    labels = np.array([0, 1, 2])
    with pytest.raises(TypeError, match="target must hold integer class labels"):
        sim_loss(logits, np.eye(3, C), similarity=np.eye(C))
    with pytest.raises(ValueError, match=r"target holds class labels in \[0, 4\]; found 5"):
        sim_loss(logits, np.array([0, 1, 5]), similarity=np.eye(C))
    with pytest.raises(ValueError, match=r"target with class labels must have shape \(3,\)"):
        sim_loss(logits, np.array([0, 1]), similarity=np.eye(C))
    with pytest.raises(ValueError, match="sample_weight must have one weight per row"):
        sim_loss(logits, labels, similarity=np.eye(C), sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        sim_loss(logits, labels, similarity=np.eye(C), sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        sim_loss(logits, labels, similarity=np.eye(C), reduction="avg")
    with pytest.raises(ValueError, match="logits is empty"):
        sim_loss(np.zeros((0, C)), np.zeros(0, dtype=int), similarity=np.eye(C))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        sim_loss(logits, labels, similarity=np.eye(C), axis=2)
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        sim_loss(logits, labels, similarity=np.eye(C), ignore_index=1.5)
    with pytest.raises(TypeError, match="similarity"):
        sim_loss(logits, labels)  # similarity is required


def test_loss_class(rng):
    logits = rng.normal(size=(4, C))
    labels = rng.integers(0, C, 4)
    similarity = similarity_matrix(rng, C)
    weights = rng.uniform(0.5, 2.0, 4)
    loss = SimLoss(similarity=similarity, reduction="sum")
    assert loss.reduction == "sum"
    expected = sim_loss(logits, labels, similarity=similarity, reduction="sum", sample_weight=weights)
    assert loss(logits, labels, sample_weight=weights) == expected
    value, grad = loss.value_and_grad(logits, labels, sample_weight=weights)
    assert value == expected
    np.testing.assert_array_equal(
        grad, sim_loss_grad(logits, labels, similarity=similarity, reduction="sum",
                            sample_weight=weights))
    np.testing.assert_array_equal(loss.grad(logits, labels, sample_weight=weights), grad)
    with pytest.raises(TypeError, match="unexpected option 'weight'"):
        SimLoss(similarity=similarity, weight=np.ones(C))
    with pytest.raises(TypeError, match="does not take 'mask'"):
        loss(logits, labels, mask=np.ones((4, C), dtype=bool))
