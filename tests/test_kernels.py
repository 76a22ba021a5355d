"""The compiled kernels agree with their NumPy twins, whatever the options, shapes, threads or layout."""

import numba
import numpy as np
import pytest
from numba import njit

import crossent
from crossent import kernels
from crossent.kernels import _numba, _numpy

DTYPES = [np.float32, np.float64]
# float32: the kernel sums in float64 and the twin in float32 (pairwise), so they differ by a few ulps
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-7), np.float64: dict(rtol=1e-12, atol=1e-15)}


@njit
def _exp_array(values, out):
    for i in range(values.shape[0]):
        out[i] = _numba.exp_nonpositive(values[i])


@pytest.mark.parametrize("dtype, low", [(np.float32, -110.0), (np.float64, -750.0)])
def test_exp_nonpositive_is_within_one_and_a_half_ulp_of_the_exact_exponential(dtype, low):
    values = np.concatenate([np.linspace(low, 0, 200_001), -np.geomspace(1e-30, 1, 1000), [0.0, -0.0]])
    values = values.astype(dtype)
    result = np.empty_like(values)
    _exp_array(values, result)
    exact = np.exp(values.astype(np.longdouble))
    normal = exact >= np.finfo(dtype).tiny
    ulps = np.abs(result[normal] - exact[normal]) / np.spacing(exact[normal].astype(dtype))
    assert ulps.max() <= 1.5
    # subnormal results round to within one subnormal step, and exp(0) is exactly 1
    assert np.abs(result[~normal] - exact[~normal]).max() <= np.finfo(dtype).smallest_subnormal
    assert result[-1] == 1 and result[-2] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_nonpositive_of_minus_infinity_and_far_below_underflow_is_exactly_zero(dtype):
    values = np.array([-np.inf, -1e30, -2000.0, -746.0 if dtype == np.float64 else -104.0], dtype)
    result = np.full_like(values, 7)
    _exp_array(values, result)
    assert np.all(result == 0)


def _problem(rng, dtype, n_rows, n_classes, *, class_weight=None, sample_weight=False, scale=1.0):
    logits = (rng.standard_normal((n_rows, n_classes)) * 4).astype(dtype)
    labels = rng.integers(0, n_classes, n_rows).astype(np.intp)
    if class_weight == "shared":
        weights = rng.uniform(0.1, 3, (1, n_classes)).astype(dtype)
    elif class_weight == "per_row":
        weights = rng.uniform(0, 3, (n_rows, n_classes)).astype(dtype)
    else:
        weights = np.empty((1, 0), dtype)
    samples = rng.uniform(0, 2, n_rows).astype(dtype) if sample_weight else np.empty(0, dtype)
    if sample_weight and n_rows > 2:
        samples[::3] = 0  # what ignore_index turns into
    return logits, labels, samples, weights


def _probabilities(rng, labels, n_classes, dtype):
    """A probability target per row: a random distribution, with a few exact zeros."""
    target = rng.dirichlet(np.full(n_classes, 0.5), size=labels.shape[0])
    target[:, ::4] = 0
    target[np.arange(labels.shape[0]), labels] += 1e-3  # no row left without mass
    return (target / target.sum(axis=1, keepdims=True)).astype(dtype)


def _both(logits, labels, samples, weights, smoothing, z_loss, scale, target_kind="labels"):
    name = "softmax_cross_entropy_label_rows"
    target = labels
    if target_kind == "probabilities":
        name = "softmax_cross_entropy_probability_rows"
        target = _probabilities(np.random.default_rng(labels.shape[0]), labels, logits.shape[1], logits.dtype)
    expected = getattr(_numpy, name)(logits, target, samples, weights, smoothing, z_loss, scale, None)
    with kernels.use_backend("numba"):
        actual = getattr(kernels, name)(logits, target, samples, weights, smoothing, z_loss, scale)
    return expected, actual


def _assert_close(actual, expected, dtype):
    losses, grad = actual
    expected_losses, expected_grad = expected
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(losses, expected_losses, rtol=tolerance["rtol"] * 10, atol=0)
    assert grad.dtype == dtype
    scale = max(1.0, float(np.abs(expected_grad).max()))
    np.testing.assert_allclose(grad, expected_grad, rtol=tolerance["rtol"], atol=tolerance["atol"] * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("class_weight", [None, "shared", "per_row"])
@pytest.mark.parametrize("sample_weight", [False, True])
@pytest.mark.parametrize("smoothing, z_loss", [(0.0, 0.0), (0.1, 0.0), (0.0, 1e-3), (0.3, 0.05), (1.0, 0.0)])
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
@pytest.mark.parametrize("n_classes", [13, 77])  # the few-classes and the long-row label kernels
def test_kernel_equals_its_numpy_twin_for_every_option(
    dtype, class_weight, sample_weight, smoothing, z_loss, target_kind, n_classes
):
    rng = np.random.default_rng(7)
    problem = _problem(rng, dtype, 137, n_classes, class_weight=class_weight, sample_weight=sample_weight)
    expected, actual = _both(*problem, smoothing, z_loss, 1 / 137, target_kind)
    _assert_close(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_rows, n_classes", [(1, 1), (1, 2), (5, 1), (4, 2), (1, 1000), (3, 4099), (700, 3)])
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
def test_kernel_on_odd_shapes(dtype, n_rows, n_classes, target_kind):
    rng = np.random.default_rng(n_rows * 31 + n_classes)
    problem = _problem(rng, dtype, n_rows, n_classes, class_weight="shared", sample_weight=True)
    expected, actual = _both(*problem, 0.2, 1e-2, 0.5, target_kind)
    _assert_close(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
def test_long_rows_find_their_maximum_in_any_block(dtype, target_kind):
    # rows of 3 blocks of _numba._ROW_BLOCK and a few more: the maximum in each block, tied across
    # blocks, and dominant (its own term excluded from the sum exactly, the loss then ~1e-30)
    from crossent.kernels import _numba

    block = _numba._ROW_BLOCK
    n_classes = 3 * block + 5
    rng = np.random.default_rng(11)
    logits, labels, samples, weights = _problem(rng, dtype, 9, n_classes)
    positions = [0, block - 1, block, 2 * block + 7, n_classes - 1]
    for row, position in enumerate(positions):
        logits[row, position] = 30.0
    logits[5, [3, block + 3, 2 * block + 3]] = 30.0  # ties: the first one is the top
    logits[6, 2 * block + 1] = 100.0  # dominant, and the label
    labels[6] = 2 * block + 1
    logits[7, 3 * block] = 100.0  # dominant, in the short last block
    labels[7] = 3 * block
    logits[8, [block + 1, 2 * block + 2]] = 30.0, np.nan  # NaN after the maximum's block: the twin's row
    with np.errstate(invalid="ignore"):
        expected, actual = _both(logits, labels, samples, weights, 0.0, 0.0, 1.0, target_kind)
    assert np.isnan(actual[0][8]) and np.isnan(expected[0][8])
    _assert_close((actual[0][:8], actual[1][:8]), (expected[0][:8], expected[1][:8]), dtype)
    if target_kind == "labels":
        assert 0 < actual[0][6] < 1e-25  # -log p of a dominant label: log1p of the rest, not 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
def test_kernel_hands_rows_without_a_finite_maximum_to_the_twin(dtype, target_kind):
    rng = np.random.default_rng(3)
    logits, labels, samples, weights = _problem(rng, dtype, 8, 5)
    logits[1, 2] = np.nan
    logits[3, 0] = np.inf
    logits[5] = -np.inf
    logits[6, [0, 2]] = -np.inf  # a masked class: an ordinary row for the kernel
    labels[6] = 1
    with np.errstate(invalid="ignore"):  # inf - inf in the +inf row, as NumPy itself warns
        expected, actual = _both(logits, labels, samples, weights, 0.0, 0.0, 1.0, target_kind)
    np.testing.assert_array_equal(np.isnan(actual[1]), np.isnan(expected[1]))
    np.testing.assert_array_equal(np.isnan(actual[0]), np.isnan(expected[0]))
    finite = np.isfinite(expected[0])
    np.testing.assert_allclose(actual[0][finite], expected[0][finite], rtol=1e-5)
    # p = 0 exactly on the masked classes: the gradient there is -q exactly (0 for a label elsewhere)
    np.testing.assert_allclose(actual[1][6, [0, 2]], expected[1][6, [0, 2]], rtol=1e-6, atol=0)
    if target_kind == "labels":
        assert actual[1][6, 0] == 0 and actual[1][6, 2] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_label_kernel_target_on_a_masked_class_gives_infinite_loss_and_finite_gradient(dtype):
    logits = np.array([[0.0, -np.inf, 1.0]], dtype)
    expected, actual = _both(logits, np.array([1]), np.empty(0, dtype), np.empty((1, 0), dtype), 0.0, 0.0, 1.0)
    assert actual[0][0] == np.inf == expected[0][0]
    _assert_close((np.zeros(1), actual[1]), (np.zeros(1), expected[1]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [dict(), dict(class_weight="per_row", sample_weight=True)])
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
@pytest.mark.parametrize("n_classes", [17, 50])
def test_in_place_gradient_overwrites_every_logit_and_equals_the_out_of_place_result(
    dtype, options, target_kind, n_classes
):
    rng = np.random.default_rng(11)
    logits, labels, samples, weights = _problem(rng, dtype, 129, n_classes, **options)
    logits[4] = np.nan  # a row the twin finishes: it must be overwritten too
    kernel, target = kernels.softmax_cross_entropy_label_rows, labels
    if target_kind == "probabilities":
        kernel, target = kernels.softmax_cross_entropy_probability_rows, _probabilities(rng, labels, n_classes, dtype)
    with kernels.use_backend("numba"):
        expected_losses, expected_grad = kernel(logits, target, samples, weights, 0.1, 1e-3, 0.25)
        buffer = logits.copy()
        losses, grad = kernel(buffer, target, samples, weights, 0.1, 1e-3, 0.25, out=buffer)
    assert grad is buffer
    np.testing.assert_array_equal(losses, expected_losses)
    np.testing.assert_array_equal(grad, expected_grad)


def test_thread_count_changes_no_bit_of_the_result():
    rng = np.random.default_rng(5)
    problem = _problem(rng, np.float32, 257, 1031, class_weight="shared", sample_weight=True)
    threads = numba.get_num_threads()
    try:
        with kernels.use_backend("numba"):
            numba.set_num_threads(1)
            one = kernels.softmax_cross_entropy_label_rows(*problem, 0.1, 1e-3, 1 / 257)
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
            many = kernels.softmax_cross_entropy_label_rows(*problem, 0.1, 1e-3, 1 / 257)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "layout", ["contiguous", "fortran", "strided", "class_axis_1"]
)
@pytest.mark.parametrize("target_kind", ["labels", "probabilities"])
def test_public_function_agrees_across_backends_for_every_layout(dtype, layout, target_kind):
    rng = np.random.default_rng(13)
    if layout == "class_axis_1":
        logits = rng.standard_normal((3, 7, 4, 5)).astype(dtype)
        target = rng.integers(0, 7, (3, 4, 5))
        target[0, 0, 0] = -100
        axis = 1
    else:
        logits = rng.standard_normal((40, 9)).astype(dtype)
        if layout == "fortran":
            logits = np.asfortranarray(logits)
        elif layout == "strided":
            logits = rng.standard_normal((80, 18)).astype(dtype)[::2, ::2]
        target = rng.integers(0, 9, 40)
        target[3] = -100
        axis = -1
    options = dict(weight=rng.uniform(0.5, 2, logits.shape[axis]), label_smoothing=0.1, z_loss=1e-3, axis=axis)
    if target_kind == "labels":
        options["ignore_index"] = -100
    else:
        target = np.moveaxis(
            np.moveaxis(
                rng.dirichlet(np.ones(logits.shape[axis]), size=target.shape).astype(dtype), -1, axis
            ),
            0, 0,
        )
    with kernels.use_backend("numpy"):
        expected = crossent.softmax_cross_entropy_value_and_grad(logits, target, **options)
    with kernels.use_backend("numba"):
        actual = crossent.softmax_cross_entropy_value_and_grad(logits, target, **options)
    tolerance = TOLERANCE[dtype]
    np.testing.assert_allclose(actual[0], expected[0], rtol=tolerance["rtol"] * 10)
    np.testing.assert_allclose(actual[1], expected[1], rtol=tolerance["rtol"], atol=tolerance["atol"])


def test_backend_setting_is_validated():
    with pytest.raises(ValueError, match="backend must be one of auto, numba, numpy, got 'cuda'"):
        with kernels.use_backend("cuda"):
            pass
    assert kernels.backend() in kernels.BACKENDS


def test_auto_backend_compiles_only_for_large_arrays():
    with kernels.use_backend("auto"):
        assert not kernels.use_compiled(kernels.COMPILED_MIN_ELEMENTS - 1)
        assert kernels.use_compiled(kernels.COMPILED_MIN_ELEMENTS)
    with kernels.use_backend("numba"):
        assert kernels.use_compiled(1)
    with kernels.use_backend("numpy"):
        assert not kernels.use_compiled(10**9)


@pytest.mark.parametrize("backend", kernels.BACKENDS)
@pytest.mark.parametrize("axis, shape", [(-1, (12, 6)), (1, (3, 6, 4))])
@pytest.mark.parametrize("options", [dict(), dict(weight=np.arange(1.0, 7.0), label_smoothing=0.2, z_loss=1e-2)])
def test_out_receives_the_gradient_also_in_place_over_the_logits(backend, axis, shape, options):
    rng = np.random.default_rng(17)
    logits = rng.standard_normal(shape)
    target = rng.integers(0, 6, tuple(size for i, size in enumerate(shape) if i != axis % len(shape)))
    with kernels.use_backend(backend):
        value, grad = crossent.softmax_cross_entropy_value_and_grad(logits, target, axis=axis, **options)
        out = np.full_like(logits, np.nan)
        value_out, grad_out = crossent.softmax_cross_entropy_value_and_grad(
            logits, target, axis=axis, out=out, **options
        )
        in_place = logits.copy()
        value_in_place, grad_in_place = crossent.softmax_cross_entropy_value_and_grad(
            in_place, target, axis=axis, out=in_place, **options
        )
        loss_grad = crossent.losses.CrossEntropyLoss(axis=axis, **options).grad(logits, target, out=np.empty_like(logits))
    assert grad_out is out and grad_in_place is in_place
    np.testing.assert_array_equal(grad_out, grad)
    np.testing.assert_array_equal(grad_in_place, grad)
    np.testing.assert_array_equal(loss_grad, grad)
    assert value_out == value == value_in_place


def test_out_is_validated():
    logits, target = np.zeros((4, 3)), np.zeros(4, dtype=int)
    with pytest.raises(ValueError, match=r"out must have the input's shape \(4, 3\), got \(3, 4\)"):
        crossent.softmax_cross_entropy_grad(logits, target, out=np.zeros((3, 4)))
    with pytest.raises(TypeError, match="out must have the input's dtype float64, got float32"):
        crossent.softmax_cross_entropy_grad(logits, target, out=np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        crossent.softmax_cross_entropy_grad(logits, target, out=[[0.0] * 3] * 4)
    read_only = np.zeros((4, 3))
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        crossent.softmax_cross_entropy_grad(logits, target, out=read_only)
    with pytest.raises(TypeError, match="CrossEntropyLoss does not take 'out'"):
        crossent.losses.CrossEntropyLoss()(logits, target, out=np.zeros((4, 3)))


OPTIMIZER_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=5e-4)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=1e-3, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=1e-2)),
    ("AdamW", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, options", OPTIMIZER_CASES)
def test_fused_optimizer_update_equals_the_numpy_update_bit_for_bit(dtype, name, options):
    rng = np.random.default_rng(23)
    shapes = [(300, 7), (7,), (1,), (2, 3, 4)]
    start = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    gradients = [[rng.standard_normal(shape).astype(dtype) for shape in shapes] for _ in range(4)]
    results = {}
    for backend in ("numba", "numpy"):
        params = [array.copy() for array in start]
        with kernels.use_backend(backend):
            optimizer = getattr(crossent.optim, name)(params, **options)
            for step, grads in enumerate(gradients):
                optimizer.lr = options["lr"] * (1 - 0.1 * step)  # a schedule changes the rate between steps
                optimizer.step(grads)
        results[backend] = (params, optimizer.state_dict()["buffers"])
    for fused, reference in zip(results["numba"][0], results["numpy"][0]):
        np.testing.assert_array_equal(fused, reference)
    for name_, buffers in results["numpy"][1].items():
        for fused, reference in zip(results["numba"][1][name_], buffers):
            np.testing.assert_array_equal(fused, reference)


@njit
def _log1p_array(values, out):
    for i in range(values.shape[0]):
        out[i] = _numba.log1p_unit(values[i])


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_unit_is_within_three_ulps_of_the_exact_value(dtype):
    values = np.concatenate([np.linspace(0, 1, 100_001), np.geomspace(1e-300, 1, 2000)]).astype(dtype)
    result = np.empty_like(values)
    _log1p_array(values, result)
    exact = np.log1p(values.astype(np.longdouble))
    nonzero = exact > 0
    ulps = np.abs(result[nonzero] - exact[nonzero]) / np.spacing(exact[nonzero].astype(dtype))
    assert ulps.max() <= 3.0
    assert result[values == 0].tolist() == [0.0] * int(np.sum(values == 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options", [dict(), dict(pos_weight="per_class", weight="per_class"), dict(weight="per_element", label_smoothing=0.2)]
)
def test_binary_kernel_agrees_with_its_numpy_twin(dtype, reduction, options):
    rng = np.random.default_rng(29)
    logits = (rng.standard_normal((61, 7)) * 6).astype(dtype)
    logits[0, :4] = [-np.inf, np.inf, 40, -40]
    logits[1, 0] = np.nan
    target = (rng.random((61, 7)) < 0.4).astype(dtype)
    target[0, :4] = [0, 1, 0, 1]
    target[2] = rng.random(7)  # soft labels
    options = dict(options)
    for name in ("pos_weight", "weight"):
        if options.get(name) == "per_class":
            options[name] = rng.uniform(0, 3, 7)
        elif options.get(name) == "per_element":
            options[name] = rng.uniform(0, 3, (61, 7))
    results = {}
    for backend in ("numpy", "numba"):
        with kernels.use_backend(backend):
            results[backend] = crossent.sigmoid_binary_cross_entropy_value_and_grad(
                logits, target, reduction=reduction, **options
            )
            in_place = logits.copy()
            value, grad = crossent.sigmoid_binary_cross_entropy_value_and_grad(
                in_place, target, reduction=reduction, out=in_place, **options
            )
            assert grad is in_place
            np.testing.assert_array_equal(grad, results[backend][1])
    (value, grad), (expected_value, expected_grad) = results["numba"], results["numpy"]
    assert grad.dtype == dtype
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(expected_grad))
    rtol = 4e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(value, expected_value, rtol=rtol)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=rtol * np.nanmax(np.abs(expected_grad)))


def test_log1p_of_nonnegative_float64_is_within_three_ulps_and_keeps_infinity():
    values = np.concatenate([np.linspace(0, 40, 40_001), np.geomspace(1e-300, 1e300, 3000), [np.inf]])
    result = np.empty_like(values)
    _numba._log1p_nonnegative_array(values, result)
    exact = np.log1p(values.astype(np.longdouble))
    finite = np.isfinite(exact) & (exact > 0)
    ulps = np.abs(result[finite] - exact[finite]) / np.spacing(exact[finite].astype(np.float64))
    assert ulps.max() <= 3.0
    assert result[-1] == np.inf and result[0] == 0


def test_a_bad_backend_variable_is_one_line_from_the_cli_and_a_value_error_from_the_library():
    import os
    import subprocess
    import sys

    environment = dict(os.environ, CROSSENT_BACKEND="gpu")
    cli = subprocess.run([sys.executable, "-m", "crossent", "train", "--quiet"], env=environment,
                         capture_output=True, text=True)
    assert cli.returncode == 2 and cli.stdout == ""
    assert cli.stderr.strip().splitlines() == [
        "crossent train: error: CROSSENT_BACKEND must be one of auto, numba, numpy, got 'gpu'"
    ]
    library = subprocess.run(
        [sys.executable, "-c", "import numpy as np, crossent\n"
         "try:\n    crossent.softmax_cross_entropy(np.zeros((2, 3)), np.zeros(2, int))\n"
         "except ValueError as error:\n    print(error)"],
        env=environment, capture_output=True, text=True,
    )
    assert library.stdout.strip() == "CROSSENT_BACKEND must be one of auto, numba, numpy, got 'gpu'"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("in_place", [False, True])
def test_long_rows_with_a_late_maximum_ties_and_a_leading_block_of_minus_infinity(dtype, in_place):
    chunk = 1024
    rng = np.random.default_rng(31)
    n_classes = 3 * chunk + 17
    logits = (rng.standard_normal((6, n_classes)) * 3).astype(dtype)
    logits[0, :chunk] = -np.inf  # a first chunk without mass
    logits[1, -1] = 50  # the maximum in the last, short chunk
    logits[2, chunk + 5] = logits[2, 2 * chunk + 9] = 40  # a tie across chunks: the first position is the top
    logits[3, ::-1].sort()  # increasing: a new maximum in every chunk
    logits[4, 7] = 60  # the top in the first chunk, far above the rest
    labels = np.array([chunk + 1, n_classes - 1, 2 * chunk + 9, 0, 7, 3])
    weights = rng.uniform(0.5, 2, (1, n_classes)).astype(dtype)
    samples = np.ones(6, dtype)
    expected = _numpy.softmax_cross_entropy_label_rows(logits, labels, samples, weights, 0.2, 1e-3, 0.5, None)
    with kernels.use_backend("numba"):
        buffer = logits.copy()
        actual = kernels.softmax_cross_entropy_label_rows(
            buffer, labels, samples, weights, 0.2, 1e-3, 0.5, out=buffer if in_place else None
        )
    _assert_close(actual, expected, dtype)
