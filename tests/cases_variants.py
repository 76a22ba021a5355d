"""Loss cases for the softmax variants of cross-entropy (focal, GCE, SCE, Poly-1).

Besides ``CASES`` (collected by :func:`cases.all_cases`) this module holds the
small problem generators the variant test files share.
"""

import numpy as np

from cases import LossCase
from crossent.losses.focal import FocalLoss, focal_loss, focal_loss_grad
from crossent.losses.generalized import (
    GeneralizedCrossEntropyLoss,
    generalized_cross_entropy,
    generalized_cross_entropy_grad,
)
from crossent.losses.poly1 import Poly1CrossEntropyLoss, poly1_cross_entropy, poly1_cross_entropy_grad
from crossent.losses.symmetric import (
    SymmetricCrossEntropyLoss,
    symmetric_cross_entropy,
    symmetric_cross_entropy_grad,
)

IGNORE = -100


def label_problem(rng, n=6, c=5, *, scale=2.0, with_sample_weight=False, with_ignore=False):
    """``(logits, labels, sample_weight)``: moderate float64 logits, rows 1 and 3 ignored if asked."""
    logits = rng.normal(size=(n, c)) * scale
    labels = rng.integers(0, c, n)
    if with_ignore:
        labels[[1, 3]] = IGNORE
    sample_weight = rng.uniform(0.2, 2.0, n) if with_sample_weight else None
    return logits, labels, sample_weight


def none_or_list(array):
    return None if array is None else np.asarray(array).tolist()


def _labels(options):
    def make(rng, dtype, scale, n=6, c=5):
        return (rng.normal(size=(n, c)) * scale).astype(dtype), rng.integers(0, c, n), dict(options)

    return make


def _with_row_options(options):
    def make(rng, dtype, scale, n=6, c=5):
        logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
        labels = rng.integers(0, c, n)
        labels[1] = -1
        return logits, labels, dict(options, sample_weight=rng.uniform(0.5, 2.0, n), ignore_index=-1)

    return make


def _focal_alpha(rng, dtype, scale, n=6, c=5):
    logits, labels, kwargs = _with_row_options({"gamma": 0.5})(rng, dtype, scale, n, c)
    return logits, labels, dict(kwargs, alpha=rng.uniform(0.1, 1.0, c))


def _poly1_all_options(rng, dtype, scale, n=6, c=5):
    logits, labels, kwargs = _with_row_options({"epsilon": -0.5, "label_smoothing": 0.1})(
        rng, dtype, scale, n, c)
    return logits, labels, dict(kwargs, weight=rng.uniform(0.5, 2.0, c))


def _poly1_probabilities(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    target = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    return logits, target, {"epsilon": 2.0}


CASES = [
    LossCase("focal_loss[gamma=2]", focal_loss, focal_loss_grad, _labels({}), FocalLoss),
    LossCase("focal_loss[gamma=0.5, alpha, rows]", focal_loss, focal_loss_grad, _focal_alpha,
             FocalLoss),
    LossCase("generalized_cross_entropy[q=0.7]", generalized_cross_entropy,
             generalized_cross_entropy_grad, _labels({}), GeneralizedCrossEntropyLoss),
    LossCase("generalized_cross_entropy[truncation, rows]", generalized_cross_entropy,
             generalized_cross_entropy_grad, _with_row_options({"q": 0.3, "truncation": 0.2}),
             GeneralizedCrossEntropyLoss),
    LossCase("symmetric_cross_entropy[paper]", symmetric_cross_entropy, symmetric_cross_entropy_grad,
             _labels({}), SymmetricCrossEntropyLoss),
    LossCase("symmetric_cross_entropy[alpha=0, rows]", symmetric_cross_entropy,
             symmetric_cross_entropy_grad, _with_row_options({"alpha": 0.0, "beta": 2.0}),
             SymmetricCrossEntropyLoss),
    LossCase("poly1_cross_entropy[labels]", poly1_cross_entropy, poly1_cross_entropy_grad,
             _labels({}), Poly1CrossEntropyLoss),
    # label smoothing puts target mass on every class, so any -inf logit makes CE infinite
    LossCase("poly1_cross_entropy[all options]", poly1_cross_entropy, poly1_cross_entropy_grad,
             _poly1_all_options, Poly1CrossEntropyLoss, supports_neg_inf=False),
    LossCase("poly1_cross_entropy[probabilities]", poly1_cross_entropy, poly1_cross_entropy_grad,
             _poly1_probabilities, Poly1CrossEntropyLoss, supports_neg_inf=False),
]
