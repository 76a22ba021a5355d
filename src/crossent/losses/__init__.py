"""The cross-entropy family: one module per loss, each with value, gradient and a Loss class.

``LOSSES`` maps the names accepted by :func:`get_loss` (and later by
``crossent.fit(loss=...)``) to Loss classes.
"""

from ._api import Loss
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

#: name -> Loss class; several names may point at one class.
LOSSES = {
    "cross_entropy": CrossEntropyLoss,
    "softmax_cross_entropy": CrossEntropyLoss,
    "nll": NLLLoss,
    "nll_loss": NLLLoss,
}


def get_loss(name, **options) -> Loss:
    """Return the Loss registered as ``name`` configured with ``options``.

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


__all__ = [
    "Loss",
    "LOSSES",
    "get_loss",
    "CrossEntropyLoss",
    "NLLLoss",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_cross_entropy_value_and_grad",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_value_and_grad",
]
