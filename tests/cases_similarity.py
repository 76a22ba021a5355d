"""Loss cases for SimLoss, the Cauchy-Schwarz loss, softmax ranking and the quadratic cost.

Imported by tests/cases.py (CASES) and reused by the family's own test files.
``tags["zero_mass"]`` maps a floating target to the boolean mask of entries
where it puts no mass (where a ``-inf`` input keeps the loss finite).
"""

import numpy as np

from cases import LossCase
from crossent.losses.cauchy_schwarz import (
    CauchySchwarzLoss,
    cauchy_schwarz_loss,
    cauchy_schwarz_loss_grad,
)
from crossent.losses.quadratic import (
    MeanSquaredErrorLoss,
    mean_squared_error,
    mean_squared_error_grad,
)
from crossent.losses.ranking import (
    SoftmaxRankingLoss,
    softmax_ranking_loss,
    softmax_ranking_loss_grad,
)
from crossent.losses.similarity import SimLoss, sim_loss, sim_loss_grad


def _zero(target):
    return np.asarray(target) == 0


def similarity_matrix(rng, c):
    """A symmetric similarity: exp(-|i - j| / 2) between neighbours, some exact zeros, diagonal 1."""
    distance = np.abs(np.subtract.outer(np.arange(c), np.arange(c)))
    matrix = np.exp(-distance / 2.0) * rng.uniform(0.5, 1.0, (c, c))
    matrix = (matrix + matrix.T) / 2
    matrix[distance > 2] = 0.0
    np.fill_diagonal(matrix, 1.0)
    return matrix


def _logits(rng, dtype, scale, n, c):
    return (rng.normal(size=(n, c)) * scale).astype(dtype)


def _sim_labels(rng, dtype, scale, n=6, c=5):
    return _logits(rng, dtype, scale, n, c), rng.integers(0, c, n), {
        "similarity": similarity_matrix(rng, c)}


def _sim_all_options(rng, dtype, scale, n=6, c=5):
    labels = rng.integers(0, c, n)
    labels[2] = -1
    return _logits(rng, dtype, scale, n, c), labels, dict(
        similarity=similarity_matrix(rng, c), sample_weight=rng.uniform(0.5, 2.0, n), ignore_index=-1)


def _cs_labels(rng, dtype, scale, n=6, c=5):
    return _logits(rng, dtype, scale, n, c), rng.integers(0, c, n), {}


def _cs_probabilities(rng, dtype, scale, n=6, c=5):
    target = rng.dirichlet(np.ones(c), size=n)
    target[np.arange(n), rng.integers(0, c, n)] = 0.0  # one class without mass per row
    target /= target.sum(axis=1, keepdims=True)
    return _logits(rng, dtype, scale, n, c), target.astype(dtype), {
        "sample_weight": rng.uniform(0.5, 2.0, n)}


def _cs_all_options(rng, dtype, scale, n=6, c=5):
    logits = _logits(rng, dtype, scale, n, 2 * c).reshape(n, c, 2)  # class axis 1, spatial dim 2
    labels = rng.integers(0, c, (n, 2))
    labels[1, 0] = 99
    return logits, labels, dict(sample_weight=rng.uniform(0.5, 2.0, (n, 2)), ignore_index=99, axis=1)


def ranking_labels(rng, n, size):
    """Graded relevances 0..3 with at least one 0 and one positive label in every list."""
    labels = rng.integers(0, 4, (n, size)).astype(float)
    labels[:, 0] = 0.0
    labels[:, 1] = rng.integers(1, 4, n)
    for row in labels:
        rng.shuffle(row)
    return labels


def _ranking_graded(rng, dtype, scale, n=5, size=6):
    labels = ranking_labels(rng, n, size)
    labels[3] = 0.0  # a list without relevant items: 0 loss, left out of the mean
    return _logits(rng, dtype, scale, n, size), labels.astype(dtype), {}


def _ranking_mask(rng, dtype, scale, n=5, size=6):
    labels = ranking_labels(rng, n, size)
    lengths = rng.integers(2, size + 1, n)
    mask = np.arange(size) < lengths[:, None]
    labels[:, :2] = [[0.0, 1.0]] * n  # the first two items are real: every list keeps label mass
    labels = np.where(mask, labels, -1.0)  # padded labels carry -1, as in TF-Ranking data
    return _logits(rng, dtype, scale, n, size), labels.astype(dtype), {"mask": mask}


def _mse_labels(rng, dtype, scale, n=6, c=5):
    return _logits(rng, dtype, scale, n, c), rng.integers(0, c, n), {}


def _mse_probabilities(rng, dtype, scale, n=6, c=5):
    return _logits(rng, dtype, scale, n, c), rng.dirichlet(np.ones(c), size=n).astype(dtype), {}


def _mse_all_options(rng, dtype, scale, n=6, c=5):
    labels = rng.integers(0, c, n)
    labels[0] = -100
    return _logits(rng, dtype, scale, n, c), labels, dict(
        sample_weight=rng.uniform(0.5, 2.0, n), ignore_index=-100)


def _mse_sigmoid(rng, dtype, scale, n=6, c=4):
    target = rng.uniform(0, 1, (n, c))
    target[:, 0] = 0.0
    target[:, 1] = 1.0
    return _logits(rng, dtype, scale, n, c), target.astype(dtype), dict(
        activation="sigmoid", sample_weight=rng.uniform(0.5, 2.0, n))


CASES = [
    LossCase("sim_loss[labels]", sim_loss, sim_loss_grad, _sim_labels, SimLoss),
    LossCase("sim_loss[all options]", sim_loss, sim_loss_grad, _sim_all_options, SimLoss),
    LossCase("cauchy_schwarz_loss[labels]", cauchy_schwarz_loss, cauchy_schwarz_loss_grad,
             _cs_labels, CauchySchwarzLoss),
    LossCase("cauchy_schwarz_loss[probabilities]", cauchy_schwarz_loss, cauchy_schwarz_loss_grad,
             _cs_probabilities, CauchySchwarzLoss, tags={"zero_mass": _zero}),
    LossCase("cauchy_schwarz_loss[all options]", cauchy_schwarz_loss, cauchy_schwarz_loss_grad,
             _cs_all_options, CauchySchwarzLoss),
    LossCase("softmax_ranking_loss[graded]", softmax_ranking_loss, softmax_ranking_loss_grad,
             _ranking_graded, SoftmaxRankingLoss, tags={"zero_mass": _zero}),
    LossCase("softmax_ranking_loss[mask]", softmax_ranking_loss, softmax_ranking_loss_grad,
             _ranking_mask, SoftmaxRankingLoss),
    LossCase("mean_squared_error[labels]", mean_squared_error, mean_squared_error_grad,
             _mse_labels, MeanSquaredErrorLoss),
    LossCase("mean_squared_error[probabilities]", mean_squared_error, mean_squared_error_grad,
             _mse_probabilities, MeanSquaredErrorLoss),
    LossCase("mean_squared_error[all options]", mean_squared_error, mean_squared_error_grad,
             _mse_all_options, MeanSquaredErrorLoss),
    LossCase("mean_squared_error[sigmoid]", mean_squared_error, mean_squared_error_grad,
             # bounded activations: a -inf logit leaves the loss finite everywhere
             _mse_sigmoid, MeanSquaredErrorLoss, tags={"zero_mass": lambda target: np.ones(
                 np.shape(target), dtype=bool)}),
]
