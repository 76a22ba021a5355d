"""Properties every loss of the library must have, driven by the registry in cases.py."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crossent
from cases import all_cases

CASES = all_cases()
IDS = [case.name for case in CASES]


def _call(case, function, x, target, kwargs):
    return function(x, target, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_matches_finite_differences(case):
    rng = np.random.default_rng(7)
    x, target, kwargs = case.make(rng, np.float64, 1.0)
    for reduction in ("mean", "sum", "none"):
        options = {**kwargs, "reduction": reduction}

        def total(z):
            return np.sum(case.value(z, target, **options))

        result = crossent.gradcheck(total, x, lambda z: case.grad(z, target, **options))
        assert result.max_relative_error < 1e-6, f"{case.name} {reduction}: {result}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_entry_points_agree_and_float32_is_preserved(case):
    rng = np.random.default_rng(11)
    x, target, kwargs = case.make(rng, np.float64, 1.0)
    value = case.value(x, target, **kwargs)
    grad = case.grad(x, target, **kwargs)
    assert grad.shape == np.shape(x) and grad.dtype == np.float64
    if case.loss_class is not None:
        options = {k: v for k, v in kwargs.items() if k not in case.loss_class.call_arguments}
        batch = {k: v for k, v in kwargs.items() if k in case.loss_class.call_arguments}
        loss = case.loss_class(**options)
        class_value, class_grad = loss.value_and_grad(x, target, **batch)
        np.testing.assert_allclose(class_value, value, rtol=1e-15)
        np.testing.assert_allclose(class_grad, grad, rtol=1e-15)
        np.testing.assert_allclose(loss(x, target, **batch), value, rtol=1e-15)
    x32 = np.asarray(x).astype(np.float32)
    target32 = target.astype(np.float32) if np.asarray(target).dtype.kind == "f" else target
    value32 = case.value(x32, target32, **kwargs)
    grad32 = case.grad(x32, target32, **kwargs)
    assert np.asarray(value32).dtype == np.float32 and grad32.dtype == np.float32
    np.testing.assert_allclose(value32, value, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(grad32, grad, rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
       shift=st.sampled_from([0.0, 1e4, -1e4]), dtype=st.sampled_from([np.float32, np.float64]),
       mask_fraction=st.sampled_from([0.0, 0.3]))
def test_stability_no_nan_no_warning(case, seed, scale, shift, dtype, mask_fraction):
    """Huge, shifted and -inf-masked inputs give no NaN, no warning; +inf only where the target needs it."""
    rng = np.random.default_rng(seed)
    if not case.scalable:
        scale, shift = 1.0, 0.0
    x, target, kwargs = case.make(rng, dtype, scale)
    x = np.asarray(x, dtype=dtype)
    if case.scalable:
        x = x + dtype(shift)
    if mask_fraction and case.supports_neg_inf and case.scalable:
        mask = rng.random(x.shape) < mask_fraction
        x = np.where(mask, -np.inf, x).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction in ("none", "mean"):
            value = case.value(x, target, **{**kwargs, "reduction": reduction})
            grad = case.grad(x, target, **{**kwargs, "reduction": reduction})
            assert not np.isnan(value).any(), f"NaN loss: {case.name} {reduction}"
            assert np.isfinite(grad).all(), f"non-finite gradient: {case.name} {reduction}"
            if not (mask_fraction and case.supports_neg_inf):
                assert np.isfinite(value).all(), f"infinite loss without masking: {case.name}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nan_input_propagates_to_its_row(case):
    """A NaN input must not hide as a finite (or -inf) loss: NaN out (as PyTorch), or a clear error."""
    rng = np.random.default_rng(3)
    x, target, kwargs = case.make(rng, np.float64, 1.0)
    x = np.array(x, dtype=np.float64)
    x[0] = np.nan  # the whole first row (or first element of a 1-d input)
    try:
        value = case.value(x, target, **{**kwargs, "reduction": "sum"})
    except ValueError as error:  # inputs that are probabilities are validated
        assert "nan" in str(error)
        return
    assert np.isnan(value), f"{case.name}: NaN input gave {value}"


GRADIENT_FUNCTIONS = sorted(name for name in dir(crossent.losses)
                            if name.endswith(("_grad", "_value_and_grad")) and callable(getattr(crossent.losses, name)))


@pytest.mark.parametrize("name", GRADIENT_FUNCTIONS)
def test_gradient_functions_reject_calls_that_do_not_fit_their_signature(name):
    # the generated functions call their implementation directly; a call that does not fit is still worded
    # in terms of the public signature, never of the implementation's own parameters (compute_grad)
    import inspect

    function = getattr(crossent.losses, name)
    parameters = inspect.signature(function).parameters.values()
    logits, target = np.zeros((2, 3)), np.array([0, 1])
    required = {p.name: np.eye(3) for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
    with pytest.raises(TypeError, match=r"^got an unexpected keyword argument 'no_such_option'$"):
        function(logits, target, **required, no_such_option=1)
    with pytest.raises(TypeError, match=r"^got an unexpected keyword argument 'compute_grad'$"):
        function(logits, target, **required, compute_grad=False)
    positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    with pytest.raises(TypeError, match=r"^too many positional arguments$"):
        function(*([logits] * (len(positional) + 1)), **required)
