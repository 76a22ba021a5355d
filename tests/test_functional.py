import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossent
import reference

DTYPES = [np.float32, np.float64]


def _rows(rng, shape=(7, 5), scale=3.0):
    return rng.normal(size=shape) * scale


class TestLogSumExpSoftmax:
    def test_against_naive_loops(self, rng):
        x = _rows(rng)
        expected_lse = [reference.logsumexp_row(row) for row in x]
        expected_softmax = [reference.softmax_row(row) for row in x]
        np.testing.assert_allclose(crossent.logsumexp(x), expected_lse, rtol=1e-14)
        np.testing.assert_allclose(crossent.softmax(x), expected_softmax, rtol=1e-13)
        np.testing.assert_allclose(
            crossent.log_softmax(x), np.log(np.array(expected_softmax)), rtol=1e-13)

    @pytest.mark.parametrize("axis", [0, 1, 2, -2])
    def test_axis_and_keepdims(self, axis, rng):
        x = rng.normal(size=(2, 3, 4))
        lse = crossent.logsumexp(x, axis=axis, keepdims=True)
        assert lse.shape == tuple(1 if i == axis % 3 else s for i, s in enumerate(x.shape))
        np.testing.assert_allclose(lse, np.log(np.sum(np.exp(x), axis=axis, keepdims=True)), rtol=1e-14)
        np.testing.assert_allclose(crossent.softmax(x, axis=axis).sum(axis=axis), 1.0, rtol=1e-15)
        np.testing.assert_allclose(
            crossent.log_softmax(x, axis=axis), np.log(crossent.softmax(x, axis=axis)), rtol=1e-13)

    def test_matches_pytorch(self, rng):
        torch = pytest.importorskip("torch")
        x = _rows(rng, (6, 9), 10)
        t = torch.tensor(x)
        np.testing.assert_allclose(crossent.logsumexp(x), torch.logsumexp(t, -1).numpy(), rtol=1e-14)
        np.testing.assert_allclose(crossent.softmax(x), torch.softmax(t, -1).numpy(), rtol=1e-13)
        np.testing.assert_allclose(crossent.log_softmax(x), torch.log_softmax(t, -1).numpy(),
                                   rtol=1e-13, atol=1e-15)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_huge_and_shifted(self, dtype):
        x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
        lse = crossent.logsumexp(x)
        assert lse.dtype == dtype
        np.testing.assert_allclose(lse, [1e4, 1e4 + math.log(3), -1e4 + math.log(3)], rtol=1e-6)
        p = crossent.softmax(x)
        np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3] * 3, [1 / 3] * 3], rtol=1e-6)
        assert np.isfinite(crossent.log_softmax(x)).all()

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_minus_inf_entries_and_rows(self, dtype):
        x = np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]], dtype=dtype)
        np.testing.assert_array_equal(crossent.logsumexp(x), np.array([math.log(2), -np.inf], dtype=dtype))
        np.testing.assert_array_equal(crossent.softmax(x), np.array([[0.5, 0, 0.5], [0, 0, 0]], dtype=dtype))
        np.testing.assert_array_equal(
            crossent.log_softmax(x), np.array([[-math.log(2), -np.inf, -math.log(2)], [-np.inf] * 3], dtype=dtype))

    def test_dtypes(self):
        assert crossent.softmax(np.zeros(3, np.float32)).dtype == np.float32
        assert crossent.softmax(np.zeros(3, np.float16)).dtype == np.float32
        assert crossent.softmax(np.arange(3)).dtype == np.float64
        with pytest.raises(TypeError, match="x must be an array of real numbers"):
            crossent.softmax(np.array([1 + 1j]))
        with pytest.raises(ValueError, match="axis=1 is out of range"):
            crossent.softmax(np.zeros(3), axis=1)


class TestSigmoidFamily:
    def test_against_math(self):
        x = np.linspace(-30, 30, 61)
        np.testing.assert_allclose(crossent.sigmoid(x), [1 / (1 + math.exp(-v)) for v in x], rtol=1e-15)
        np.testing.assert_allclose(crossent.softplus(x), [math.log1p(math.exp(v)) for v in x], rtol=1e-14)
        np.testing.assert_allclose(
            crossent.log_sigmoid(x), [-math.log1p(math.exp(-v)) for v in x], rtol=1e-14)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_extremes(self, dtype):
        x = np.array([-np.inf, -1e4, 0.0, 1e4, np.inf], dtype=dtype)
        np.testing.assert_array_equal(crossent.sigmoid(x), np.array([0, 0, 0.5, 1, 1], dtype=dtype))
        np.testing.assert_array_equal(crossent.softplus(x), np.array([0, 0, np.log(2), 1e4, np.inf], dtype=dtype))
        np.testing.assert_array_equal(
            crossent.log_sigmoid(x), np.array([-np.inf, -1e4, -np.log(2), 0, 0], dtype=dtype))
        for f in (crossent.sigmoid, crossent.softplus, crossent.log_sigmoid):
            assert f(x).dtype == dtype

    def test_matches_pytorch(self, rng):
        torch = pytest.importorskip("torch")
        # torch's softplus returns x itself above its threshold of 20, dropping log1p(exp(-x))
        x = np.clip(rng.normal(size=100) * 20, -20, 20)
        t = torch.tensor(x)
        np.testing.assert_allclose(crossent.sigmoid(x), torch.sigmoid(t).numpy(), rtol=1e-14)
        np.testing.assert_allclose(crossent.softplus(x), torch.nn.functional.softplus(t).numpy(), rtol=1e-14)
        np.testing.assert_allclose(
            crossent.log_sigmoid(x), torch.nn.functional.logsigmoid(t).numpy(), rtol=1e-14)


class TestInformation:
    def test_worked_values(self):
        assert crossent.entropy([0.5, 0.5], base=2) == pytest.approx(1.0, rel=1e-15)
        assert crossent.entropy([1.0, 0.0, 0.0]) == 0.0
        assert crossent.cross_entropy([0.0, 1.0, 0.0], [0.2312, 0.6285, 0.1403]) == pytest.approx(
            -math.log(0.6285), rel=1e-15)
        assert crossent.kl_divergence([1.0, 0.0], [0.5, 0.5], base=2) == pytest.approx(1.0, rel=1e-15)

    def test_zero_log_zero_and_infinities(self):
        p = np.array([0.5, 0.5, 0.0])
        q = np.array([0.0, 0.5, 0.5])
        assert crossent.cross_entropy(p, q) == np.inf
        assert crossent.kl_divergence(p, q) == np.inf
        assert np.isfinite(crossent.cross_entropy(q, np.array([0.1, 0.45, 0.45])))

    def test_decomposition_h_pq_equals_h_p_plus_kl(self, rng):
        p = rng.dirichlet(np.ones(6) * 0.5, size=20)
        p[:, 0] = 0
        p /= p.sum(axis=1, keepdims=True)
        q = rng.dirichlet(np.ones(6), size=20)
        for base in (None, 2, 10):
            h_pq = crossent.cross_entropy(p, q, base=base)
            np.testing.assert_allclose(
                h_pq, crossent.entropy(p, base=base) + crossent.kl_divergence(p, q, base=base), rtol=1e-14)
            expected = [reference.cross_entropy(a, b, base) for a, b in zip(p, q)]
            np.testing.assert_allclose(h_pq, expected, rtol=1e-14)
            np.testing.assert_allclose(
                crossent.entropy(p, base=base), [reference.entropy(a, base) for a in p], rtol=1e-14)
        assert (crossent.kl_divergence(p, q) >= 0).all()

    def test_entries_just_below_zero_count_as_zero(self):
        p = np.array([1 + 1e-9, -1e-9])  # within the stated tolerance
        assert crossent.entropy(p) == pytest.approx(0.0, abs=1e-8)
        assert np.isfinite(crossent.kl_divergence(p, np.array([0.5, 0.5])))
        assert np.isfinite(crossent.cross_entropy(np.array([0.5, 0.5]), np.array([0.5, 0.5])))
        assert crossent.cross_entropy(np.array([0.5, 0.5]), p) == np.inf

    def test_nan_propagates(self):
        x = np.array([[np.nan, 1.0, 2.0], [0.0, 1.0, 2.0]])
        assert np.isnan(crossent.logsumexp(x)[0]) and np.isfinite(crossent.logsumexp(x)[1])
        assert np.isnan(crossent.softmax(x)[0]).all() and np.isnan(crossent.log_softmax(x)[0]).all()

    def test_axis(self, rng):
        p = rng.dirichlet(np.ones(4), size=3).T  # distributions along axis 0
        np.testing.assert_allclose(crossent.entropy(p, axis=0), crossent.entropy(p.T), rtol=1e-15)

    def test_bad_input(self):
        with pytest.raises(ValueError, match=r"p must be probability distributions.*sums to 0.9"):
            crossent.entropy([0.5, 0.4])
        with pytest.raises(ValueError, match=r"q must be probabilities \(>= 0\); found -0.5"):
            crossent.kl_divergence([0.5, 0.5], [1.5, -0.5])
        with pytest.raises(ValueError, match=r"p and q must have the same shape"):
            crossent.cross_entropy([0.5, 0.5], [1.0])
        with pytest.raises(ValueError, match="base must be a positive number other than 1"):
            crossent.entropy([0.5, 0.5], base=1)
        with pytest.raises(ValueError, match=r"base must lie in \(0"):
            crossent.entropy([0.5, 0.5], base=-2)


finite_or_masked = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False, width=32), st.just(-np.inf))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=finite_or_masked),
       st.sampled_from(DTYPES))
def test_property_no_nan_and_consistent(x, dtype):
    x = x.astype(dtype)
    lse = crossent.logsumexp(x)
    p = crossent.softmax(x)
    log_p = crossent.log_softmax(x)
    assert not np.isnan(lse).any() and not np.isnan(p).any() and not np.isnan(log_p).any()
    assert (p >= 0).all() and (p <= 1).all()
    has_mass = np.isfinite(lse)
    np.testing.assert_allclose(p.sum(axis=-1)[has_mass], 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(p.sum(axis=-1)[~has_mass], 0.0)
    np.testing.assert_allclose(np.exp(log_p), p, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-30)
    assert (lse >= x.max(axis=-1)).all()


def test_dominant_entry_keeps_relative_accuracy():
    # -log softmax of the top class is log1p(2 e^-40) = 8.5e-18, not the 0 that LSE - z rounds to
    x = np.array([[40.0, 0.0, 0.0]])
    expected = math.log1p(2 * math.exp(-40))
    assert -crossent.log_softmax(x)[0, 0] == pytest.approx(expected, rel=1e-15)
    assert crossent.softmax_cross_entropy(x, np.array([0])) == pytest.approx(expected, rel=1e-15)
    assert crossent.softmax_cross_entropy(
        x, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(expected, rel=1e-15)
    assert crossent.logsumexp(x)[0] == 40.0
