"""crossent.linear_cross_entropy against the unfused computation, finite differences and PyTorch.

The unfused reference builds the whole N x V logits, calls
crossent.softmax_cross_entropy(_value_and_grad) on them and chains the logits'
gradient through the softcap and the three matrix products by hand.

Tolerances are relative to the largest entry of the reference (a sum computed
in another order may differ in entries that nearly cancel):
float64 1e-10; float32 against the float32 unfused computation 2e-5.
"""

import importlib
import itertools
import math
import tracemalloc

import numpy as np
import pytest

import crossent

block_module = importlib.import_module("crossent.losses.linear_cross_entropy")

N, H, V = 7, 5, 11
IGNORE = -100
FLOAT64_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 2e-5


def unfused(hidden, weight, target, *, bias=None, ignore_index=None, label_smoothing=0.0,
            weight_classes=None, z_loss=0.0, softcap=None, reduction="mean"):
    """(loss, grad_hidden, grad_weight, grad_bias) from the full N x V logits."""
    raw = hidden @ weight.T
    if bias is not None:
        raw = raw + bias
    logits = raw if softcap is None else softcap * np.tanh(raw / softcap)
    loss, grad = crossent.softmax_cross_entropy_value_and_grad(
        logits, target, weight=weight_classes, ignore_index=ignore_index,
        label_smoothing=label_smoothing, z_loss=z_loss, reduction=reduction,
    )
    if softcap is not None:
        grad = grad * (1 - np.tanh(raw / softcap) ** 2)
    return loss, grad @ weight, grad.T @ hidden, None if bias is None else grad.sum(axis=0)


def assert_close(actual, expected, tolerance, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected), initial=0.0))
    error = float(np.max(np.abs(actual.astype(np.float64) - expected), initial=0.0))
    if scale == 0.0:
        assert error == 0.0, f"{what}: expected zeros, max |actual| = {error:.3e}"
    else:
        assert error <= tolerance * scale, f"{what}: relative error {error / scale:.3e} > {tolerance:.1e}"


def assert_results_close(actual, expected, tolerance):
    names = ("loss", "grad_hidden", "grad_weight", "grad_bias")
    assert len(actual) == len(expected) == 4
    for name, got, want in zip(names, actual, expected):
        if want is None:
            assert got is None, name
        else:
            assert_close(got, want, tolerance, name)


def make_problem(rng, *, n=N, h=H, v=V, dtype=np.float64, with_bias=True, ignored=(), scale=1.0):
    hidden = (rng.normal(size=(n, h)) * scale).astype(dtype)
    weight = rng.normal(size=(v, h)).astype(dtype)
    bias = rng.normal(size=v).astype(dtype) if with_bias else None
    target = rng.integers(0, v, n)
    target[list(ignored)] = IGNORE
    return hidden, weight, bias, target


OPTION_GRID = list(itertools.product(
    ["mean", "sum", "none"],  # reduction
    [False, True],  # bias
    [False, True],  # ignore_index with some ignored rows
    [0.0, 0.2],  # label_smoothing
    [False, True],  # weight_classes
    [0.0, 0.01],  # z_loss
    [None, 2.5],  # softcap
))

# one pass with one block, one pass with row blocks that do not divide N, two passes
CHUNKS = [None, 3, (4, 3)]


def _grid_id(params):
    reduction, bias, ignore, smoothing, weighted, z_loss, softcap = params
    return (f"{reduction}-bias{int(bias)}-ignore{int(ignore)}-ls{smoothing}-w{int(weighted)}"
            f"-z{z_loss}-cap{softcap}")


def _options(rng, params, bias):
    reduction, with_bias, ignore, smoothing, weighted, z_loss, softcap = params
    return dict(
        bias=bias if with_bias else None, ignore_index=IGNORE if ignore else None,
        label_smoothing=smoothing, weight_classes=rng.uniform(0.2, 2.0, V) if weighted else None,
        z_loss=z_loss, softcap=softcap, reduction=reduction,
    )


@pytest.mark.parametrize("params", OPTION_GRID, ids=_grid_id)
def test_matches_unfused_float64(params, rng):
    hidden, weight, bias, target = make_problem(rng, ignored=(1, 4) if params[2] else ())
    options = _options(rng, params, bias)
    expected = unfused(hidden, weight, target, **options)
    for chunk_size in CHUNKS:
        result = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size,
                                               return_grad=True)
        assert_results_close(result, expected, FLOAT64_TOLERANCE)
        value = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size)
        assert_close(value, expected[0], FLOAT64_TOLERANCE, "loss without gradients")


# float32: every option off, each option alone, every option on
_OFF = (False, False, 0.0, False, 0.0, None)  # bias, ignore, smoothing, weights, z_loss, softcap
_ON = (True, True, 0.2, True, 0.01, 2.5)
FLOAT32_GRID = [
    (reduction,) + options
    for reduction in ("mean", "sum", "none")
    for options in [_OFF, _ON] + [_OFF[:i] + _ON[i:i + 1] + _OFF[i + 1:] for i in range(len(_ON))]
]


@pytest.mark.parametrize("params", FLOAT32_GRID, ids=_grid_id)
def test_matches_unfused_float32(params, rng):
    hidden, weight, bias, target = make_problem(rng, dtype=np.float32, ignored=(1, 4) if params[2] else ())
    options = _options(rng, params, bias)
    expected = unfused(hidden, weight, target, **options)
    for chunk_size in CHUNKS:
        result = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size,
                                               return_grad=True)
        assert_results_close(result, expected, FLOAT32_TOLERANCE)
        for array in result:
            assert array is None or array.dtype == np.float32


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_return_types(reduction, dtype, rng):
    hidden, weight, bias, target = make_problem(rng, dtype=dtype)
    value = crossent.linear_cross_entropy(hidden, weight, target, reduction=reduction)
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.shape == (N,) and value.dtype == dtype
    else:
        assert isinstance(value, np.generic) and value.dtype == dtype
    loss, grad_hidden, grad_weight, grad_bias = crossent.linear_cross_entropy(
        hidden, weight, target, reduction=reduction, return_grad=True)
    assert grad_bias is None
    assert grad_hidden.shape == (N, H) and grad_weight.shape == (V, H)
    assert grad_hidden.dtype == grad_weight.dtype == dtype


@pytest.mark.parametrize("chunk_size", [None, 2, (3, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_row_ignored(reduction, chunk_size, rng):
    hidden, weight, bias, target = make_problem(rng, ignored=range(N))
    options = dict(bias=bias, ignore_index=IGNORE, label_smoothing=0.1, z_loss=0.01, softcap=3.0,
                   weight_classes=rng.uniform(0.5, 2.0, V), reduction=reduction)
    loss, grad_hidden, grad_weight, grad_bias = crossent.linear_cross_entropy(
        hidden, weight, target, **options, chunk_size=chunk_size, return_grad=True)
    assert np.all(loss == 0.0) and np.shape(loss) == ((N,) if reduction == "none" else ())
    for grad in (grad_hidden, grad_weight, grad_bias):
        assert not grad.any()
    assert_results_close((loss, grad_hidden, grad_weight, grad_bias),
                         unfused(hidden, weight, target, **options), FLOAT64_TOLERANCE)


@pytest.mark.parametrize("vocabulary_block", [1, 2, 3, V - 1])
@pytest.mark.parametrize("row_block", [1, 3, N])
def test_split_vocabulary_equals_one_pass(row_block, vocabulary_block, rng):
    """The online log-sum-exp path (two passes) against the whole-vocabulary path."""
    hidden, weight, bias, target = make_problem(rng, ignored=(2,))
    options = dict(bias=bias, ignore_index=IGNORE, label_smoothing=0.3, z_loss=0.02, softcap=4.0,
                   weight_classes=rng.uniform(0.2, 2.0, V))
    for reduction in ("mean", "sum", "none"):
        one_pass = crossent.linear_cross_entropy(hidden, weight, target, **options, reduction=reduction,
                                                 chunk_size=row_block, return_grad=True)
        two_pass = crossent.linear_cross_entropy(hidden, weight, target, **options, reduction=reduction,
                                                 chunk_size=(row_block, vocabulary_block), return_grad=True)
        assert_results_close(two_pass, one_pass, 1e-12)


def test_split_vocabulary_large_offsets(rng):
    """Logits around 1e4 with a spread of a few units: no overflow, same as the one-pass path."""
    hidden, weight, bias, target = make_problem(rng)
    bias = bias + 1e4
    options = dict(bias=bias, label_smoothing=0.1, z_loss=1e-6, return_grad=True)
    expected = unfused(hidden, weight, target, bias=bias, label_smoothing=0.1, z_loss=1e-6)
    for chunk_size in (None, (3, 2)):
        result = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size)
        assert all(np.all(np.isfinite(part)) for part in result)
        assert_results_close(result, expected, FLOAT64_TOLERANCE)


@pytest.mark.parametrize("chunk_size", [None, (1, 1), (1, 2)])
def test_dominant_class_keeps_relative_accuracy(chunk_size):
    """Logits (40, 0, 0, 0) with label 0: the loss is log1p(3 e^-40) ~ 1.3e-17, not 0."""
    hidden = np.array([[1.0]])
    weight = np.array([[40.0], [0.0], [0.0], [0.0]])
    loss = crossent.linear_cross_entropy(hidden, weight, np.array([0]), chunk_size=chunk_size)
    assert loss == pytest.approx(math.log1p(3 * math.exp(-40)), rel=1e-14, abs=0)


@pytest.mark.parametrize("n, v", [(1, 1), (1, 2), (1, 9), (5, 1), (5, 2), (9, 3)])
def test_tiny_shapes(n, v, rng):
    hidden, weight, bias, target = make_problem(rng, n=n, v=v)
    options = dict(bias=bias, label_smoothing=0.2, z_loss=0.01, softcap=2.0)
    for reduction in ("mean", "sum", "none"):
        expected = unfused(hidden, weight, target, **options, reduction=reduction)
        for chunk_size in (None, 1, (1, 1), (2, max(1, v - 1)), (n + 3, v + 3)):
            result = crossent.linear_cross_entropy(hidden, weight, target, **options, reduction=reduction,
                                                   chunk_size=chunk_size, return_grad=True)
            assert_results_close(result, expected, FLOAT64_TOLERANCE)


def test_row_blocks_that_do_not_divide_n(rng):
    hidden, weight, bias, target = make_problem(rng, n=23, ignored=(0, 22))
    options = dict(bias=bias, ignore_index=IGNORE, label_smoothing=0.1, softcap=5.0)
    expected = unfused(hidden, weight, target, **options)
    for chunk_size in (1, 2, 5, 22, 23, 24, (5, V - 1), (6, 4), (22, 1)):
        result = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size,
                                               return_grad=True)
        assert_results_close(result, expected, FLOAT64_TOLERANCE)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous_and_fortran_inputs(dtype, rng):
    hidden, weight, bias, target = make_problem(rng, dtype=dtype, ignored=(3,))
    options = dict(ignore_index=IGNORE, label_smoothing=0.1, softcap=3.0, return_grad=True)
    tolerance = 1e-12 if dtype == np.float64 else FLOAT32_TOLERANCE
    for chunk_size in (None, 3, (2, 4)):
        expected = crossent.linear_cross_entropy(hidden, weight, target, bias=bias, **options,
                                                 chunk_size=chunk_size)
        wide_hidden = np.zeros((N, 2 * H), dtype=dtype)
        wide_hidden[:, ::2] = hidden
        wide_weight = np.zeros((2 * V, H), dtype=dtype)
        wide_weight[::2] = weight
        wide_bias = np.zeros(3 * V, dtype=dtype)
        wide_bias[::3] = bias
        wide_target = np.zeros(2 * N, dtype=np.int64)
        wide_target[::2] = target
        layouts = [
            (np.asfortranarray(hidden), np.asfortranarray(weight), bias, target),
            (wide_hidden[:, ::2], wide_weight[::2], wide_bias[::3], wide_target[::2]),
            (hidden, np.ascontiguousarray(weight.T).T, bias, target),  # weight.T of an (H, V) array
            (np.asfortranarray(hidden)[::-1][::-1], weight[::-1][::-1], bias[::-1][::-1], target),
        ]
        for layout_hidden, layout_weight, layout_bias, layout_target in layouts:
            result = crossent.linear_cross_entropy(layout_hidden, layout_weight, layout_target,
                                                   bias=layout_bias, **options, chunk_size=chunk_size)
            assert_results_close(result, expected, tolerance)
            assert all(part.flags.c_contiguous for part in result[1:])


def test_inputs_are_not_modified(rng):
    hidden, weight, bias, target = make_problem(rng, ignored=(0,))
    copies = [array.copy() for array in (hidden, weight, bias, target)]
    for chunk_size in (None, (2, 3)):
        crossent.linear_cross_entropy(hidden, weight, target, bias=bias, ignore_index=IGNORE, softcap=2.0,
                                      label_smoothing=0.1, chunk_size=chunk_size, return_grad=True)
    for array, copy in zip((hidden, weight, bias, target), copies):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize("chunk_size", [None, (2, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_finite_differences(reduction, chunk_size):
    rng = np.random.default_rng(7)
    n, h, v = 4, 3, 5
    hidden, weight, bias, target = make_problem(rng, n=n, h=h, v=v, ignored=(1,))
    options = dict(ignore_index=IGNORE, label_smoothing=0.2, weight_classes=rng.uniform(0.5, 2.0, v),
                   z_loss=0.05, softcap=1.5, reduction=reduction, chunk_size=chunk_size)

    def total(hidden_, weight_, bias_):
        # the gradients of "none" are those of the sum of the rows' losses
        loss = crossent.linear_cross_entropy(hidden_, weight_, target, bias=bias_, **options)
        return float(np.sum(loss))

    _, grad_hidden, grad_weight, grad_bias = crossent.linear_cross_entropy(
        hidden, weight, target, bias=bias, **options, return_grad=True)
    checks = [
        crossent.gradcheck(lambda x: total(x, weight, bias), hidden, grad_hidden),
        crossent.gradcheck(lambda x: total(hidden, x, bias), weight, grad_weight),
        crossent.gradcheck(lambda x: total(hidden, weight, x), bias, grad_bias),
    ]
    for check in checks:
        assert check.passed, str(check)
    assert np.all(grad_hidden[1] == 0)  # the ignored row


def _torch():
    return pytest.importorskip("torch")


TORCH_GRID = list(itertools.product(
    ["mean", "sum", "none"], [False, True], [0.0, 0.15], [None, 3.0], [0.0, 1e-3]))


@pytest.mark.parametrize("reduction, weighted, smoothing, softcap, z_loss", TORCH_GRID)
@pytest.mark.parametrize("chunk_size", [None, (3, 4)])
def test_matches_pytorch(reduction, weighted, smoothing, softcap, z_loss, chunk_size, rng):
    torch = _torch()
    functional = torch.nn.functional
    hidden, weight, bias, target = make_problem(rng, ignored=(2, 5))
    class_weights = rng.uniform(0.2, 2.0, V) if weighted else None
    result = crossent.linear_cross_entropy(
        hidden, weight, target, bias=bias, ignore_index=IGNORE, label_smoothing=smoothing,
        weight_classes=class_weights, z_loss=z_loss, softcap=softcap, reduction=reduction,
        chunk_size=chunk_size, return_grad=True)

    hidden_t, weight_t, bias_t = (torch.tensor(a, requires_grad=True) for a in (hidden, weight, bias))
    target_t = torch.tensor(target)
    weight_classes_t = None if class_weights is None else torch.tensor(class_weights)
    logits = functional.linear(hidden_t, weight_t, bias_t)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    loss = functional.cross_entropy(logits, target_t, weight=weight_classes_t, ignore_index=IGNORE,
                                    label_smoothing=smoothing, reduction=reduction)
    if z_loss:
        kept = target_t != IGNORE
        row_weight = kept.double()
        if weight_classes_t is not None:
            row_weight = row_weight * weight_classes_t[torch.where(kept, target_t, 0)]
        z_term = z_loss * row_weight * torch.logsumexp(logits, dim=1) ** 2
        loss = loss + {"none": z_term, "sum": z_term.sum(), "mean": z_term.sum() / row_weight.sum()}[reduction]
    loss.sum().backward()
    expected = (loss.detach().numpy(), hidden_t.grad.numpy(), weight_t.grad.numpy(), bias_t.grad.numpy())
    assert_results_close(result, expected, FLOAT64_TOLERANCE)


def test_memory_stays_far_below_the_logits(monkeypatch):
    """tracemalloc sees NumPy's allocations: the peak stays a small fraction of the N x V logits."""
    n, h, v = 2048, 64, 8192
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(n, h)).astype(np.float32)
    weight = rng.normal(size=(v, h)).astype(np.float32)
    bias = rng.normal(size=v).astype(np.float32)
    target = rng.integers(0, v, n)
    logits_bytes = n * v * 4  # 64 MiB

    def peak(function):
        function()  # loading (or compiling) a kernel allocates Python objects once: not part of the bound
        tracemalloc.start()
        try:
            function()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # the measurement sees a matmul's result: the unfused logits alone reach the bound
    assert peak(lambda: hidden @ weight.T) >= logits_bytes

    # one pass, blocks of 64 whole rows (2 MiB of logits): measured ~8.5 MiB
    one_pass = peak(lambda: crossent.linear_cross_entropy(hidden, weight, target, chunk_size=64,
                                                          return_grad=True))
    assert one_pass < logits_bytes / 4
    # chunk_size=None with a 0.5 MiB budget, where fewer than 64 whole rows fit: the vocabulary
    # is split (256 rows x 512 classes), every option on: measured ~5 MiB, 2.5 of them the gradients
    monkeypatch.setattr(block_module, "DEFAULT_BLOCK_BYTES", 2**19)
    every_option = dict(bias=bias, label_smoothing=0.1, weight_classes=rng.uniform(0.5, 2.0, v),
                        z_loss=1e-4, softcap=30.0, return_grad=True)
    two_pass = peak(lambda: crossent.linear_cross_entropy(hidden, weight, target, **every_option))
    assert two_pass < logits_bytes / 8


@pytest.mark.parametrize("budget_bytes, expected_shape", [
    (64 * 2**20, (N, V)),  # everything in one block
    (8 * N * V, (N, V)),  # exactly every row fits
    (8 * 3 * V, (N, 3 * V // N)),  # 3 whole rows fit, fewer than min(N, 64): split the vocabulary
    (8 * 3, (N, 1)),  # not one whole row fits: N rows by as many classes as fit (at least one)
    (8 * N * 4, (N, 4)),
])
def test_default_blocks_follow_the_budget(budget_bytes, expected_shape, monkeypatch, rng):
    monkeypatch.setattr(block_module, "DEFAULT_BLOCK_BYTES", budget_bytes)
    assert block_module._block_shape(None, N, V, 8) == expected_shape
    hidden, weight, bias, target = make_problem(rng, ignored=(0,))
    options = dict(bias=bias, ignore_index=IGNORE, label_smoothing=0.1, softcap=3.0)
    result = crossent.linear_cross_entropy(hidden, weight, target, **options, return_grad=True)
    assert_results_close(result, unfused(hidden, weight, target, **options), FLOAT64_TOLERANCE)


def test_default_blocks_for_a_large_vocabulary():
    # float32, V = 50257: 333 whole rows fit in 64 MiB
    assert block_module._block_shape(None, 8192, 50257, 4) == (333, 50257)
    # V = 2**20 (4 MiB a row): fewer than 64 rows fit, so 256 rows by 65536 classes
    assert block_module._block_shape(None, 8192, 2**20, 4) == (256, 65536)
    assert block_module._block_shape((10**9, 10**9), 5, 7, 4) == (5, 7)
    assert block_module._block_shape(np.int64(2), 5, 7, 4) == (2, 7)


def _valid_arguments(rng):
    hidden, weight, bias, target = make_problem(rng)
    return dict(hidden=hidden, weight=weight, target=target, bias=bias)


BAD_INPUTS = [
    (dict(hidden=np.ones((N, H), dtype=np.int64)), TypeError, "hidden must have dtype float32 or float64"),
    (dict(hidden=np.ones((N, H), dtype=np.float16)), TypeError, "hidden must have dtype"),
    (dict(weight=np.ones((V, H), dtype=np.float32)), TypeError, "same dtype.*float64 and float32"),
    (dict(hidden="abc"), TypeError, "hidden must be an array"),
    (dict(weight=None), TypeError, "weight must be an array"),
    (dict(hidden=np.ones(H)), ValueError, r"hidden must be 2-D, got shape \(5,\)"),
    (dict(weight=np.ones((2, V, H))), ValueError, "weight must be 2-D"),
    (dict(hidden=np.ones((0, H))), ValueError, "hidden is empty"),
    (dict(weight=np.ones((V, H + 1))), ValueError, r"hidden of shape \(7, 5\) and weight of shape \(11, 6\)"),
    (dict(target=np.zeros(N)), TypeError, "target must hold integer class labels"),
    (dict(target=np.zeros(N + 1, dtype=int)), ValueError, r"target .*shape \(7,\)"),
    (dict(target=np.array([0, 1, 2, V, 0, 0, 0])), ValueError, r"found 11 at position \(3,\)"),
    (dict(target=np.array([0, -1, 2, 3, 0, 0, 0])), ValueError, r"found -1 at position \(1,\)"),
    (dict(target=np.array([0, 1, IGNORE, 3, 0, 0, 0])), ValueError, r"found -100 at position \(2,\)"),
    (dict(bias=np.ones(V + 1)), ValueError, r"bias must have shape \(11,\)"),
    (dict(bias=np.ones(V, dtype=np.float32)), TypeError, "bias must have hidden's dtype float64"),
    (dict(weight_classes=np.ones(V - 1)), ValueError, r"weight_classes must have shape \(11,\)"),
    (dict(weight_classes=np.r_[np.ones(V - 1), -1.0]), ValueError, r"weight_classes must be finite and >= 0"),
    (dict(weight_classes=np.r_[np.ones(V - 1), np.nan]), ValueError, "weight_classes must be finite"),
    (dict(softcap=0.0), ValueError, "softcap must lie in"),
    (dict(softcap=-1.0), ValueError, "softcap must lie in"),
    (dict(softcap=np.inf), ValueError, "softcap must be finite"),
    (dict(softcap="big"), TypeError, "softcap must be a real number"),
    (dict(z_loss=-0.1), ValueError, "z_loss must lie in"),
    (dict(z_loss=np.nan), ValueError, "z_loss must be a number"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing must lie in"),
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing must lie in"),
    (dict(reduction="avg"), ValueError, "reduction must be one of"),
    (dict(ignore_index=1.5), TypeError, "ignore_index must be an integer"),
    (dict(return_grad="yes"), TypeError, "return_grad must be True or False"),
    (dict(chunk_size=2.5), TypeError, "chunk_size .* must be a positive integer, got 2.5"),
    (dict(chunk_size=2.0), TypeError, "chunk_size .* must be a positive integer"),
    (dict(chunk_size=float("nan")), TypeError, "chunk_size .* must be a positive integer, got nan"),
    (dict(chunk_size=True), TypeError, "chunk_size .* must be a positive integer, got True"),
    (dict(chunk_size=np.True_), TypeError, "chunk_size .* must be a positive integer"),
    (dict(chunk_size="4"), TypeError, "chunk_size .* must be a positive integer"),
    (dict(chunk_size=0), ValueError, r"chunk_size .* must be a positive integer, got 0"),
    (dict(chunk_size=-3), ValueError, r"chunk_size .* must be a positive integer, got -3"),
    (dict(chunk_size=(4,)), ValueError, r"chunk_size as a pair must be \(rows, classes\)"),
    (dict(chunk_size=(4, 0)), ValueError, "chunk_size classes must be a positive integer, got 0"),
    (dict(chunk_size=(4, 2.5)), TypeError, "chunk_size classes must be a positive integer"),
    (dict(chunk_size=(False, 2)), TypeError, "chunk_size rows must be a positive integer"),
]


@pytest.mark.parametrize("change, error, message", BAD_INPUTS, ids=[str(i) for i in range(len(BAD_INPUTS))])
def test_bad_inputs(change, error, message, rng):
    arguments = _valid_arguments(rng)
    arguments.update(change)
    positional = [arguments.pop(name) for name in ("hidden", "weight", "target")]
    with pytest.raises(error, match=message):
        crossent.linear_cross_entropy(*positional, **arguments)


def test_ignore_index_inside_the_class_range(rng):
    """ignore_index may be a real class: its rows are skipped, as in softmax_cross_entropy."""
    hidden, weight, bias, target = make_problem(rng)
    target[:3] = 0
    options = dict(bias=bias, ignore_index=0, label_smoothing=0.1)
    for chunk_size in (None, (2, 3)):
        result = crossent.linear_cross_entropy(hidden, weight, target, **options, chunk_size=chunk_size,
                                               return_grad=True)
        assert_results_close(result, unfused(hidden, weight, target, **options), FLOAT64_TOLERANCE)
        assert not result[1][:3].any()
