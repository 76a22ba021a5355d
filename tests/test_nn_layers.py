"""Tests for crossent.nn.layers: every backward against finite differences and PyTorch, init, dropout, errors."""

import numpy as np
import pytest

import crossent
from crossent.nn import Dropout, Linear, Module, ReLU, Sequential, Sigmoid, Tanh

N, D_IN, D_OUT = 5, 4, 3


def away_from_zero(rng, shape, margin=0.1):
    """Inputs whose magnitude is at least ``margin``: finite differences never straddle ReLU's kink."""
    values = rng.normal(size=shape)
    return np.sign(values) * (margin + np.abs(values))


def weighted_output(module, x, upstream, training):
    """Scalar sum(upstream * module(x)): its gradient with respect to the output is ``upstream``."""
    return float(np.sum(upstream * module.forward(x, training=training)))


def check_layer_gradients(build, x, training=False, tolerance=1e-7):
    """gradcheck dL/dx and every dL/dparameter of the module ``build()`` returns.

    ``build`` must return an identically initialised module each time (same
    seeds), so a Dropout layer draws the same mask in every evaluation.
    """
    rng = np.random.default_rng(7)
    module = build()
    output = module.forward(x, training=training)
    upstream = rng.normal(size=output.shape)
    grad_x = np.array(module.backward(upstream))
    parameter_grads = [gradient.copy() for gradient in module.gradients()]

    result = crossent.gradcheck(lambda z: weighted_output(build(), z, upstream, training), x, grad_x)
    assert result.max_relative_error < tolerance, f"input gradient: {result}"

    for index, (name, parameter) in enumerate(zip(module.parameter_names(), module.parameters())):
        def objective(value, index=index):
            fresh = build()
            fresh.parameters()[index][...] = value
            return weighted_output(fresh, x, upstream, training)

        result = crossent.gradcheck(objective, parameter, parameter_grads[index])
        assert result.max_relative_error < tolerance, f"gradient of {name}: {result}"
    return module


# =========================================================================== finite differences


@pytest.mark.parametrize("init", ["he", "xavier"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients_match_finite_differences(rng, init, bias):
    x = rng.normal(size=(N, D_IN))
    module = check_layer_gradients(lambda: Linear(D_IN, D_OUT, bias=bias, init=init, seed=3, dtype=np.float64), x)
    assert module.parameter_names() == (["weight", "bias"] if bias else ["weight"])


@pytest.mark.parametrize("layer", [ReLU, Tanh, Sigmoid])
def test_activation_gradients_match_finite_differences(rng, layer):
    check_layer_gradients(layer, away_from_zero(rng, (N, D_IN)) * 2)


def test_dropout_gradient_with_a_fixed_mask_matches_finite_differences(rng):
    x = rng.normal(size=(N, D_IN))
    module = check_layer_gradients(lambda: Dropout(0.4, seed=11), x, training=True)
    assert module._mask is not None and np.any(module._mask == 0)  # the mask really dropped something


@pytest.mark.parametrize("activation", [ReLU, Tanh, Sigmoid])
def test_sequential_gradients_match_finite_differences(rng, activation):
    def build():
        return Sequential(
            Linear(D_IN, 6, seed=1, dtype=np.float64), activation(), Dropout(0.25, seed=5),
            Linear(6, 5, init="xavier", seed=2, dtype=np.float64), activation(),
            Linear(5, D_OUT, seed=3, dtype=np.float64),
        )

    x = rng.normal(size=(N, D_IN))
    check_layer_gradients(build, x, training=True)
    check_layer_gradients(build, x, training=False)


def test_a_wrong_backward_fails_the_check(rng):
    """The harness can fail: a ReLU whose backward forgets the mask is caught."""

    class LeakyBackward(ReLU):
        def backward(self, grad_output, **flags):
            return np.array(grad_output)

    x = away_from_zero(rng, (N, D_IN))
    with pytest.raises(AssertionError, match="input gradient"):
        check_layer_gradients(LeakyBackward, x)


# =========================================================================== PyTorch oracle


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_linear_matches_torch(rng, dtype, rtol):
    torch = pytest.importorskip("torch")
    layer = Linear(D_IN, D_OUT, seed=4, init="xavier", dtype=dtype)
    layer.bias[:] = rng.normal(size=D_OUT)
    reference = torch.nn.Linear(D_IN, D_OUT).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(layer.weight))
        reference.bias.copy_(torch.from_numpy(layer.bias))
    x = rng.normal(size=(N, D_IN)).astype(dtype)
    upstream = rng.normal(size=(N, D_OUT)).astype(dtype)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    output_torch = reference(x_torch)
    output_torch.backward(torch.from_numpy(upstream))

    output = layer.forward(x, training=True)
    grad_x = layer.backward(upstream)
    assert output.dtype == dtype and grad_x.dtype == dtype and layer.weight_grad.dtype == dtype
    np.testing.assert_allclose(output, output_torch.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad_x, x_torch.grad.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(layer.weight_grad, reference.weight.grad.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(layer.bias_grad, reference.bias.grad.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("layer, name", [(ReLU, "relu"), (Tanh, "tanh"), (Sigmoid, "sigmoid")])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-14), (np.float32, 1e-6)])
def test_activations_match_torch(rng, layer, name, dtype, rtol):
    torch = pytest.importorskip("torch")
    x = (rng.normal(size=(N, 7)) * 4).astype(dtype)
    x[0, :3] = [0.0, 30.0, -30.0]  # the kink and saturation
    upstream = rng.normal(size=x.shape).astype(dtype)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    output_torch = getattr(torch, name)(x_torch)
    output_torch.backward(torch.from_numpy(upstream))

    module = layer()
    output = module.forward(x)
    grad_x = module.backward(upstream)
    assert output.dtype == dtype and grad_x.dtype == dtype
    np.testing.assert_allclose(output, output_torch.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad_x, x_torch.grad.numpy(), rtol=rtol, atol=rtol)


def test_relu_output_has_no_negative_zeros():
    output = ReLU().forward(np.array([-3.0, -0.0, 0.0, 2.0]))
    assert not np.any(np.signbit(output))
    assert np.isnan(ReLU().forward(np.array([np.nan]))[0])


# =========================================================================== initialisation


def test_he_init_has_the_he_standard_deviation():
    fan_in, fan_out = 1000, 500
    weight = Linear(fan_in, fan_out, init="he", seed=0, dtype=np.float64).weight
    # 500k samples: the sample std is within ~0.1% of the true one, the mean within ~0.1% of the std
    assert abs(weight.std() / np.sqrt(2 / fan_in) - 1) < 0.01
    assert abs(weight.mean()) < 0.01 * np.sqrt(2 / fan_in)


def test_xavier_init_is_uniform_within_the_glorot_bound():
    fan_in, fan_out = 300, 700
    weight = Linear(fan_in, fan_out, init="xavier", seed=0, dtype=np.float64).weight
    bound = np.sqrt(6 / (fan_in + fan_out))
    assert np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.999 * bound
    assert abs(weight.var() / (bound**2 / 3) - 1) < 0.01  # variance of U(-a, a) is a^2 / 3


def test_zeros_init_and_zero_bias():
    layer = Linear(3, 2, init="zeros")
    assert not layer.weight.any() and not layer.bias.any()
    assert not Linear(3, 2, init="he").bias.any()


def test_parameters_and_gradients_are_contiguous_and_of_the_layer_dtype():
    for dtype in (np.float32, np.float64):
        layer = Linear(6, 4, dtype=dtype)
        for array in layer.parameters() + layer.gradients():
            assert array.dtype == dtype and array.flags.c_contiguous
        assert [p.shape for p in layer.parameters()] == [g.shape for g in layer.gradients()]
    assert Linear(6, 4).weight.dtype == np.float32  # the default


def test_same_seed_same_weights_different_seed_different_weights():
    first, second = Linear(20, 10, seed=42), Linear(20, 10, seed=42)
    np.testing.assert_array_equal(first.weight, second.weight)
    assert not np.array_equal(first.weight, Linear(20, 10, seed=43).weight)
    # a shared Generator is advanced: two layers drawn from it differ
    generator = np.random.default_rng(0)
    assert not np.array_equal(Linear(20, 10, seed=generator).weight, Linear(20, 10, seed=generator).weight)
    # float32 and float64 layers from one seed hold the same weights up to rounding
    np.testing.assert_allclose(Linear(20, 10, seed=5).weight, Linear(20, 10, seed=5, dtype=np.float64).weight,
                               rtol=1e-7)


# =========================================================================== dropout


def test_dropout_is_the_identity_in_evaluation():
    x = np.arange(12.0).reshape(3, 4)
    layer = Dropout(0.5, seed=0)
    np.testing.assert_array_equal(layer.forward(x), x)
    upstream = np.ones_like(x)
    np.testing.assert_array_equal(layer.backward(upstream), upstream)


def test_dropout_in_training_drops_a_fraction_p_and_preserves_the_expectation():
    p, size = 0.3, 200_000
    x = np.full((size // 100, 100), 2.0, dtype=np.float32)
    layer = Dropout(p, seed=1)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    dropped = float(np.mean(y == 0))
    sigma = np.sqrt(p * (1 - p) / size)
    assert abs(dropped - p) < 5 * sigma
    np.testing.assert_allclose(np.unique(y), [0.0, 2.0 / (1 - p)], rtol=1e-6)
    assert abs(float(y.mean()) - 2.0) < 5 * 2.0 * np.sqrt(p / (1 - p) / size)  # E[y] = x
    # the backward applies the very same mask
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)) * 2.0, y)


def test_dropout_masks_are_reproducible_and_change_between_steps():
    x = np.ones((50, 20))
    first, second = Dropout(0.5, seed=9), Dropout(0.5, seed=9)
    step_one = first.forward(x, training=True)
    np.testing.assert_array_equal(step_one, second.forward(x, training=True))
    assert not np.array_equal(step_one, first.forward(x, training=True))


def test_dropout_with_p_zero_is_the_identity_in_training():
    x = np.random.default_rng(0).normal(size=(4, 5))
    np.testing.assert_array_equal(Dropout(0.0).forward(x, training=True), x)


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1, float("nan")])
def test_dropout_rejects_p_outside_zero_one(p):
    with pytest.raises(ValueError, match="p must"):
        Dropout(p)


# =========================================================================== module contract


def test_backward_overwrites_parameter_gradients(rng):
    layer = Linear(D_IN, D_OUT, seed=0, dtype=np.float64)
    layer.forward(rng.normal(size=(N, D_IN)))
    upstream = rng.normal(size=(N, D_OUT))
    layer.backward(upstream)
    once = [g.copy() for g in layer.gradients()]
    buffers = layer.gradients()
    layer.backward(upstream)
    for before, after, buffer in zip(once, layer.gradients(), buffers):
        np.testing.assert_array_equal(before, after)  # not doubled
        assert after is buffer  # the same live buffer, written in place


def test_parameters_are_live_arrays(rng):
    layer = Linear(2, 2, init="zeros", dtype=np.float64)
    layer.parameters()[0][...] = np.eye(2)
    layer.parameters()[1] += 1.0
    np.testing.assert_array_equal(layer.forward(np.array([[3.0, 4.0]])), [[4.0, 5.0]])


def test_call_is_forward(rng):
    x = rng.normal(size=(N, D_IN))
    layer = Linear(D_IN, D_OUT, seed=0)
    np.testing.assert_array_equal(layer(x), layer.forward(x))
    dropout = Dropout(0.5, seed=0)
    assert np.any(dropout(np.ones((10, 10)), training=True) == 0)


def test_linear_converts_its_input_to_the_parameter_dtype(rng):
    layer = Linear(D_IN, D_OUT, seed=0)
    output = layer.forward(rng.normal(size=(N, D_IN)))  # float64 input, float32 layer
    assert output.dtype == np.float32
    assert layer.forward(np.ones((2, D_IN), dtype=np.uint8)).dtype == np.float32


def test_sequential_names_and_flags(rng):
    network = Sequential(Linear(D_IN, 6, seed=1, dtype=np.float64), ReLU(),
                         Sequential(Linear(6, D_OUT, bias=False, seed=2, dtype=np.float64)))
    assert network.parameter_names() == ["0.weight", "0.bias", "2.0.weight"]
    assert len(network) == 3 and isinstance(network[1], ReLU)
    assert network.n_parameters == 6 * D_IN + 6 + 6 * D_OUT
    x, upstream = rng.normal(size=(N, D_IN)), rng.normal(size=(N, D_OUT))
    network.forward(x, training=True)
    grad_x = network.backward(upstream)
    full = [g.copy() for g in network.gradients()]

    for gradient in network.gradients():
        gradient[...] = 0
    assert network.backward(upstream, need_input_grad=False) is None
    for expected, gradient in zip(full, network.gradients()):
        np.testing.assert_array_equal(gradient, expected)

    for gradient in network.gradients():
        gradient[...] = -1.0
    np.testing.assert_array_equal(network.backward(upstream, need_parameter_grads=False), grad_x)
    assert all(np.all(gradient == -1.0) for gradient in network.gradients())


def test_module_base_is_abstract():
    with pytest.raises(NotImplementedError):
        Module().forward(np.ones(2))
    assert Module().parameters() == [] and Module().n_parameters == 0


# =========================================================================== bad arguments


@pytest.mark.parametrize("arguments, error, pattern", [
    ((-1, 3), ValueError, "in_features must be an integer >= 1, got -1"),
    ((3, 0), ValueError, "out_features must be an integer >= 1, got 0"),
    ((2.5, 3), TypeError, "in_features must be an integer"),
    ((True, 3), TypeError, "in_features must be an integer"),
])
def test_linear_rejects_bad_sizes(arguments, error, pattern):
    with pytest.raises(error, match=pattern):
        Linear(*arguments)


@pytest.mark.parametrize("options, error, pattern", [
    ({"init": "orthogonal"}, ValueError, "init must be one of 'he', 'xavier', 'zeros', got 'orthogonal'"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
    ({"dtype": "float16"}, TypeError, "dtype must be float32 or float64"),
    ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
    ({"seed": "abc"}, TypeError, "seed must be an integer >= 0 or a numpy.random.Generator"),
    ({"seed": None}, TypeError, "seed must be"),
    ({"bias": "yes"}, TypeError, "bias must be True or False"),
])
def test_linear_rejects_bad_options(options, error, pattern):
    with pytest.raises(error, match=pattern):
        Linear(3, 2, **options)


def test_linear_rejects_a_wrong_input_width_naming_the_shapes():
    layer = Linear(4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\) for Linear\(in_features=4.*got shape \(3, 5\)"):
        layer.forward(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\).*got shape \(4,\)"):
        layer.forward(np.ones(4))
    with pytest.raises(TypeError, match="x must be an array of real numbers"):
        layer.forward(np.array([["a"] * 4]))


def test_backward_checks_the_upstream_shape_and_needs_a_forward():
    for layer, x in [(Linear(4, 2), np.ones((3, 4))), (ReLU(), np.ones((3, 2))), (Tanh(), np.ones((3, 2))),
                     (Sigmoid(), np.ones((3, 2))), (Dropout(0.5), np.ones((3, 2)))]:
        with pytest.raises(RuntimeError, match="backward was called before"):
            layer.backward(np.ones((3, 2)))
        layer.forward(x, training=True)
        with pytest.raises(ValueError, match=r"grad_output must have the shape of .* \(3, 2\), got \(2, 2\)"):
            layer.backward(np.ones((2, 2)))


def test_sequential_rejects_non_modules_and_repeated_layers():
    with pytest.raises(TypeError, match="layer 1 of Sequential must be a Module"):
        Sequential(ReLU(), lambda x: x)
    relu = ReLU()
    with pytest.raises(ValueError, match="layer 2 of Sequential .* appears twice"):
        Sequential(relu, Linear(2, 2), relu)


def test_training_backward_skips_everything_below_the_first_parameterised_layer(rng):
    """need_input_grad=False: the first Linear is told so, and layers below it are never run."""
    calls = []

    class RecordingLinear(Linear):
        def backward(self, grad_output, **flags):
            calls.append(("linear", self.in_features, flags["need_input_grad"]))
            return super().backward(grad_output, **flags)

    class RecordingReLU(ReLU):
        def backward(self, grad_output, **flags):
            calls.append(("relu",))
            return super().backward(grad_output, **flags)

    network = Sequential(RecordingReLU(), RecordingLinear(4, 6), RecordingReLU(), RecordingLinear(6, 2))
    network.forward(rng.normal(size=(3, 4)), training=True)
    network.backward(np.ones((3, 2)), need_input_grad=False)
    assert calls == [("linear", 6, True), ("relu",), ("linear", 4, False)]
