"""crossent: cross-entropy losses with analytic gradients, exactly right and numerically stable."""

from .functional import (
    cross_entropy,
    entropy,
    kl_divergence,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softplus,
)
from .gradcheck import GradcheckResult, gradcheck, numerical_gradient
from .losses import (
    get_loss,
    nll_loss,
    nll_loss_grad,
    nll_loss_value_and_grad,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
    softmax_cross_entropy_value_and_grad,
)

__version__ = "0.1.0"

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "gradcheck",
    "numerical_gradient",
    "GradcheckResult",
    "get_loss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_value_and_grad",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_value_and_grad",
]
