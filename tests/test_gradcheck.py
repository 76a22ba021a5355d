import numpy as np
import pytest

import crossent


def test_accepts_a_correct_gradient(rng):
    x = rng.normal(size=(3, 4))
    result = crossent.gradcheck(lambda z: np.sum(np.sin(z) * z), x, lambda z: np.cos(z) * z + np.sin(z))
    assert result.passed and bool(result)
    assert result.max_relative_error < 1e-8
    assert result.numerical.shape == x.shape


def test_rejects_a_wrong_gradient(rng):
    # forgetting to subtract the one-hot target is the classic softmax-CE bug
    x = rng.normal(size=(4, 3))
    y = np.array([0, 2, 1, 1])
    result = crossent.gradcheck(lambda z: crossent.softmax_cross_entropy(z, y), x,
                                lambda z: crossent.softmax(z) / len(z))
    assert not result.passed and not bool(result)
    assert result.max_relative_error > 0.1
    assert "FAILED" in str(result)
    assert result.worst_index in {(n, int(c)) for n, c in enumerate(y)}


def test_numerical_gradient_of_a_quadratic_is_accurate_to_rounding():
    x = np.array([1.0, -2.0, 30.0])
    np.testing.assert_allclose(crossent.numerical_gradient(lambda z: np.sum(z**2), x), 2 * x, rtol=1e-7)


def test_array_gradient_and_bad_arguments():
    x = np.ones(3)
    assert crossent.gradcheck(lambda z: z.sum(), x, np.ones(3)).passed
    with pytest.raises(ValueError, match=r"grad must have x's shape \(3,\), got \(2,\)"):
        crossent.gradcheck(lambda z: z.sum(), x, np.ones(2))
    with pytest.raises(ValueError, match=r"eps must lie in \(0"):
        crossent.gradcheck(lambda z: z.sum(), x, np.ones(3), eps=0)
