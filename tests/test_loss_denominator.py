"""Loss.denominator: the D of the reduction contract, for every loss in the registry of test cases.

For each case, ``mean * D`` must equal ``sum`` (value and gradient): D is then
the very number the loss divides by, which is what an exact sum over parts of
the data needs (crossent.distributed).
"""

import inspect

import numpy as np
import pytest

from cases import all_cases

CASES = [case for case in all_cases() if case.loss_class is not None]
IDS = [case.name for case in CASES]


def _split(case, kwargs):
    """(options for the Loss class, per-call arguments)."""
    call_names = case.loss_class.call_arguments
    options = {key: value for key, value in kwargs.items() if key not in call_names}
    batch = {key: value for key, value in kwargs.items() if key in call_names}
    return options, batch


def _mean_reduction(case, options) -> str:
    default = inspect.signature(case.loss_class.function).parameters["reduction"].default
    return options.get("reduction", default)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mean_times_denominator_is_sum(case):
    rng = np.random.default_rng(7)
    x, target, kwargs = case.make(rng, np.float64, 1.0)
    options, batch = _split(case, kwargs)
    mean_options = dict(options, reduction=_mean_reduction(case, options))
    mean_loss = case.loss_class(**mean_options)
    sum_loss = case.loss_class(**dict(options, reduction="sum"))
    denominator = mean_loss.denominator(x, target, **batch)
    assert isinstance(denominator, float) and denominator > 0
    mean_value, mean_grad = mean_loss.value_and_grad(x, target, **batch)
    sum_value, sum_grad = sum_loss.value_and_grad(x, target, **batch)
    np.testing.assert_allclose(float(mean_value) * denominator, float(sum_value), rtol=1e-13)
    np.testing.assert_allclose(mean_grad * denominator, sum_grad, rtol=1e-12, atol=1e-15)
    # the reduction the loss is configured with does not change D (KL's reduction picks one of two means)
    if not (mean_options["reduction"] == "mean" and case.loss_class.__name__ == "KLDivLoss"):
        assert sum_loss.denominator(x, target, **batch) == denominator


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_denominator_by_hand(dtype):
    from crossent.losses import CrossEntropyLoss

    class_weight = np.array([0.5, 2.0, 1.0])
    sample_weight = np.array([1.0, 0.25, 3.0, 2.0])
    labels = np.array([1, 2, 0, 1])
    logits = np.zeros((4, 3), dtype)
    loss = CrossEntropyLoss(weight=class_weight, ignore_index=0)
    # row 2 is ignored (label 0): 1 * 2 + 0.25 * 1 + 2 * 2
    assert loss.denominator(logits, labels, sample_weight=sample_weight) == 6.25
    assert CrossEntropyLoss().denominator(logits, labels) == 4.0
    # every row ignored: D = 0, and the mean is 0 by the contract
    assert loss.denominator(logits, np.zeros(4, np.int64)) == 0.0


def test_elementwise_and_batchmean_rules():
    from crossent.losses import KLDivLoss, SigmoidBinaryCrossEntropyLoss

    x = np.zeros((5, 3))
    assert SigmoidBinaryCrossEntropyLoss(weight=np.full(3, 7.0)).denominator(x, np.ones((5, 3))) == 15.0
    assert KLDivLoss().denominator(np.log(np.full((5, 3), 1 / 3)), np.full((5, 3), 1 / 3)) == 5.0
    assert KLDivLoss(reduction="mean").denominator(np.log(np.full((5, 3), 1 / 3)), np.full((5, 3), 1 / 3)) == 15.0


def test_a_loss_without_a_rule_says_so():
    from crossent.losses import CrossEntropyLoss, Loss

    class Custom(Loss):
        function = CrossEntropyLoss.function
        implementation = CrossEntropyLoss.implementation

    # a subclass of a known loss inherits its rule; an unrelated one does not
    class Derived(CrossEntropyLoss):
        pass

    assert Derived().denominator(np.zeros((2, 3)), np.array([0, 1])) == 2.0
    with pytest.raises(NotImplementedError, match="Custom does not state the denominator"):
        Custom().denominator(np.zeros((2, 3)), np.array([0, 1]))
