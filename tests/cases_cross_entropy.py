import numpy as np

import crossent
from crossent import losses
from cases import LossCase


def _labels(rng, dtype, scale, n=6, c=5):
    return (rng.normal(size=(n, c)) * scale).astype(dtype), rng.integers(0, c, n), {}


def _probabilities(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    target = rng.dirichlet(np.ones(c), size=n).astype(dtype)
    return logits, target, {}


def _all_options(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    labels = rng.integers(0, c, n)
    labels[1] = -1
    return logits, labels, dict(
        weight=rng.uniform(0.5, 2.0, c), sample_weight=rng.uniform(0.5, 2.0, n),
        ignore_index=-1, label_smoothing=0.1, z_loss=1e-4,
    )


def _log_probs(rng, dtype, scale, n=6, c=5):
    logits = (rng.normal(size=(n, c)) * scale).astype(dtype)
    return crossent.log_softmax(logits), rng.integers(0, c, n), {"weight": rng.uniform(0.5, 2.0, c)}


CASES = [
    LossCase("softmax_cross_entropy[labels]", crossent.softmax_cross_entropy,
             crossent.softmax_cross_entropy_grad, _labels, losses.CrossEntropyLoss),
    LossCase("softmax_cross_entropy[probabilities]", crossent.softmax_cross_entropy,
             crossent.softmax_cross_entropy_grad, _probabilities, losses.CrossEntropyLoss,
             supports_neg_inf=False),
    LossCase("softmax_cross_entropy[all options]", crossent.softmax_cross_entropy,
             crossent.softmax_cross_entropy_grad, _all_options, losses.CrossEntropyLoss,
             supports_neg_inf=False),
    LossCase("nll_loss", crossent.nll_loss, crossent.nll_loss_grad, _log_probs, losses.NLLLoss),
]
