"""The cross-entropy family: one module per loss, each with value, gradient and a Loss class.

``LOSSES`` maps the names accepted by :func:`get_loss` (and by anything that takes
``loss="name"``) to Loss classes.
"""

from __future__ import annotations

from typing import Any

from ._api import Loss
from .combined import LossSum
from .cross_entropy import (
    CrossEntropyLoss,
    NLLLoss,
    nll_loss,
    nll_loss_grad,
    nll_loss_value_and_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_cross_entropy_value_and_grad,
)
from .binary import (
    BCELoss,
    BCEWithLogitsLoss,
    BinaryCrossEntropyLoss,
    SigmoidBinaryCrossEntropyLoss,
    SigmoidFocalLoss,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_value_and_grad,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_grad,
    sigmoid_binary_cross_entropy_value_and_grad,
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_value_and_grad,
)
from .kullback_leibler import (
    KLDivLoss,
    kl_div,
    kl_div_grad,
    kl_div_value_and_grad,
)
from .focal import (
    FocalLoss,
    focal_loss,
    focal_loss_grad,
    focal_loss_value_and_grad,
)
from .generalized import (
    GeneralizedCrossEntropyLoss,
    generalized_cross_entropy,
    generalized_cross_entropy_grad,
    generalized_cross_entropy_value_and_grad,
)
from .symmetric import (
    SymmetricCrossEntropyLoss,
    symmetric_cross_entropy,
    symmetric_cross_entropy_grad,
    symmetric_cross_entropy_value_and_grad,
)
from .poly1 import (
    Poly1CrossEntropyLoss,
    poly1_cross_entropy,
    poly1_cross_entropy_grad,
    poly1_cross_entropy_value_and_grad,
)
from .similarity import (
    SimLoss,
    sim_loss,
    sim_loss_grad,
    sim_loss_value_and_grad,
)
from .cauchy_schwarz import (
    CauchySchwarzLoss,
    cauchy_schwarz_loss,
    cauchy_schwarz_loss_grad,
    cauchy_schwarz_loss_value_and_grad,
)
from .ranking import (
    SoftmaxRankingLoss,
    softmax_ranking_loss,
    softmax_ranking_loss_grad,
    softmax_ranking_loss_value_and_grad,
)
from .linear_cross_entropy import linear_cross_entropy
from .quadratic import (
    MeanSquaredErrorLoss,
    mean_squared_error,
    mean_squared_error_grad,
    mean_squared_error_value_and_grad,
)

#: name -> Loss class; several names may point at one class.
LOSSES: dict[str, type[Loss]] = {
    "cross_entropy": CrossEntropyLoss,
    "softmax_cross_entropy": CrossEntropyLoss,
    "nll": NLLLoss,
    "nll_loss": NLLLoss,
    "sigmoid_binary_cross_entropy": SigmoidBinaryCrossEntropyLoss,
    "binary_cross_entropy_with_logits": SigmoidBinaryCrossEntropyLoss,
    "bce_with_logits": SigmoidBinaryCrossEntropyLoss,
    "binary_cross_entropy": BinaryCrossEntropyLoss,
    "bce": BinaryCrossEntropyLoss,
    "sigmoid_focal": SigmoidFocalLoss,
    "sigmoid_focal_loss": SigmoidFocalLoss,
    "kl_div": KLDivLoss,
    "focal": FocalLoss,
    "focal_loss": FocalLoss,
    "gce": GeneralizedCrossEntropyLoss,
    "generalized_cross_entropy": GeneralizedCrossEntropyLoss,
    "sce": SymmetricCrossEntropyLoss,
    "symmetric_cross_entropy": SymmetricCrossEntropyLoss,
    "poly1": Poly1CrossEntropyLoss,
    "poly1_cross_entropy": Poly1CrossEntropyLoss,
    "sim_loss": SimLoss,
    "cauchy_schwarz": CauchySchwarzLoss,
    "cauchy_schwarz_loss": CauchySchwarzLoss,
    "softmax_ranking": SoftmaxRankingLoss,
    "softmax_ranking_loss": SoftmaxRankingLoss,
    "mse": MeanSquaredErrorLoss,
    "mean_squared_error": MeanSquaredErrorLoss,
}


def get_loss(name: str | Loss, **options: Any) -> Loss:
    """Return the Loss registered as ``name`` configured with ``options`` (a Loss passes through).

    >>> get_loss("cross_entropy", label_smoothing=0.1)
    CrossEntropyLoss(label_smoothing=0.1)
    """
    if isinstance(name, Loss):
        if options:
            raise TypeError("options cannot be given together with a Loss object")
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(sorted(LOSSES))}, got {name!r}")
    return LOSSES[name](**options)


def loss_from_config(config: dict[str, Any]) -> Loss | LossSum:
    """Rebuild a Loss (or LossSum) from :meth:`Loss.config`."""
    if not isinstance(config, dict):
        raise TypeError(f"a loss config must be a dict, got {config!r}")
    if "terms" in config:
        return LossSum([(coefficient, loss_from_config(term)) for coefficient, term in config["terms"]])
    classes = {cls.__name__: cls for cls in LOSSES.values()}
    name = config.get("class")
    if name not in classes:
        raise ValueError(f"unknown loss class {name!r} in loss config; known: {', '.join(sorted(classes))}")
    return classes[name](**config.get("options", {}))


__all__ = [
    "Loss",
    "LossSum",
    "LOSSES",
    "get_loss",
    "loss_from_config",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_value_and_grad",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_value_and_grad",
    "CrossEntropyLoss",
    "NLLLoss",
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_grad",
    "sigmoid_binary_cross_entropy_value_and_grad",
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_value_and_grad",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "sigmoid_focal_loss_value_and_grad",
    "SigmoidBinaryCrossEntropyLoss",
    "BCEWithLogitsLoss",
    "BinaryCrossEntropyLoss",
    "BCELoss",
    "SigmoidFocalLoss",
    "kl_div",
    "kl_div_grad",
    "kl_div_value_and_grad",
    "KLDivLoss",
    "focal_loss",
    "focal_loss_grad",
    "focal_loss_value_and_grad",
    "FocalLoss",
    "generalized_cross_entropy",
    "generalized_cross_entropy_grad",
    "generalized_cross_entropy_value_and_grad",
    "GeneralizedCrossEntropyLoss",
    "symmetric_cross_entropy",
    "symmetric_cross_entropy_grad",
    "symmetric_cross_entropy_value_and_grad",
    "SymmetricCrossEntropyLoss",
    "poly1_cross_entropy",
    "poly1_cross_entropy_grad",
    "poly1_cross_entropy_value_and_grad",
    "Poly1CrossEntropyLoss",
    "sim_loss",
    "sim_loss_grad",
    "sim_loss_value_and_grad",
    "SimLoss",
    "cauchy_schwarz_loss",
    "cauchy_schwarz_loss_grad",
    "cauchy_schwarz_loss_value_and_grad",
    "CauchySchwarzLoss",
    "softmax_ranking_loss",
    "softmax_ranking_loss_grad",
    "softmax_ranking_loss_value_and_grad",
    "SoftmaxRankingLoss",
    "mean_squared_error",
    "mean_squared_error_grad",
    "mean_squared_error_value_and_grad",
    "MeanSquaredErrorLoss",
    "linear_cross_entropy",
]
