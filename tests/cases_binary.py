"""Loss cases for the element-wise binary losses and kl_div (see tests/cases.py).

Targets have the input's shape. A ``-inf`` logit costs 0 where the target is 0
and ``+inf`` (with a finite gradient) where it is positive, so the logit losses
support ``-inf`` entries unless label smoothing gives every element mass.
"""

import numpy as np

import crossent
from cases import LossCase
from crossent.losses import binary
# by name, not `from crossent.losses import kl_div`: the package re-exports the function kl_div,
# which shadows the submodule attribute
from crossent.losses.kullback_leibler import KLDivLoss, kl_div, kl_div_grad


def _hard_labels(rng, dtype, scale, n=6, c=4):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return logits, rng.integers(0, 2, (n, c)).astype(dtype), {}


def _integer_labels_pos_weight(rng, dtype, scale, n=6, c=4):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return logits, rng.integers(0, 2, (n, c)), {"pos_weight": rng.uniform(0.5, 3.0, c)}


def _soft_all_options(rng, dtype, scale, n=6, c=4):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return logits, rng.uniform(0.0, 1.0, (n, c)).astype(dtype), dict(
        weight=rng.uniform(0.5, 2.0, (n, 1)), pos_weight=rng.uniform(0.5, 3.0, c),
        label_smoothing=0.1,
    )


def _probabilities(rng, dtype, scale, n=6, c=4):
    # scale is ignored: the input is a probability. Interior values, so that finite differences
    # stay inside [0, 1]; tests/test_binary.py covers exact 0 and 1 (the log clamp).
    probs = rng.uniform(0.02, 0.98, (n, c))
    target = rng.uniform(0.0, 1.0, (n, c))
    return probs.astype(dtype), target.astype(dtype), {"weight": rng.uniform(0.5, 2.0, c)}


def _focal_soft(rng, dtype, scale, n=6, c=4):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return logits, rng.uniform(0.0, 1.0, (n, c)).astype(dtype), dict(
        alpha=None, gamma=0.5, weight=rng.uniform(0.5, 2.0, (n, c)),
    )


def _distributions(rng, dtype, n, c):
    target = rng.dirichlet(np.ones(c), size=n)
    target[np.arange(n), rng.integers(0, c, n)] = 0.0  # one impossible outcome per row
    return target / target.sum(axis=1, keepdims=True)


def _kl_probabilities(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return crossent.log_softmax(logits), _distributions(rng, dtype, n, c).astype(dtype), {}


def _kl_log_target(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    with np.errstate(divide="ignore"):
        log_target = np.log(_distributions(rng, dtype, n, c)).astype(dtype)
    return crossent.log_softmax(logits), log_target, {"log_target": True, "reduction": "mean"}


CASES = [
    LossCase("sigmoid_binary_cross_entropy[hard labels]", binary.sigmoid_binary_cross_entropy,
             binary.sigmoid_binary_cross_entropy_grad, _hard_labels,
             binary.SigmoidBinaryCrossEntropyLoss),
    LossCase("sigmoid_binary_cross_entropy[integer labels, pos_weight]",
             binary.sigmoid_binary_cross_entropy, binary.sigmoid_binary_cross_entropy_grad,
             _integer_labels_pos_weight, binary.SigmoidBinaryCrossEntropyLoss),
    # label smoothing puts mass eps/2 on every element: a -inf logit always costs +inf
    LossCase("sigmoid_binary_cross_entropy[soft, all options]", binary.sigmoid_binary_cross_entropy,
             binary.sigmoid_binary_cross_entropy_grad, _soft_all_options,
             binary.SigmoidBinaryCrossEntropyLoss, supports_neg_inf=False),
    # the input is a probability: -inf is not a valid input at all (ValueError)
    LossCase("binary_cross_entropy[probabilities, weight]", binary.binary_cross_entropy,
             binary.binary_cross_entropy_grad, _probabilities, binary.BinaryCrossEntropyLoss,
             supports_neg_inf=False, scalable=False),
    LossCase("sigmoid_focal_loss[hard labels]", binary.sigmoid_focal_loss,
             binary.sigmoid_focal_loss_grad, _hard_labels, binary.SigmoidFocalLoss),
    LossCase("sigmoid_focal_loss[soft, gamma=0.5, no alpha, weight]", binary.sigmoid_focal_loss,
             binary.sigmoid_focal_loss_grad, _focal_soft, binary.SigmoidFocalLoss),
    LossCase("kl_div[probabilities]", kl_div, kl_div_grad, _kl_probabilities,
             KLDivLoss, scalable=False),
    LossCase("kl_div[log_target, mean]", kl_div, kl_div_grad, _kl_log_target,
             KLDivLoss, scalable=False),
]
