"""Optimisers holding their own state, learning-rate schedules and gradient clipping.

:mod:`crossent.optim.optimizers` updates NumPy parameter arrays in place
(:class:`SGD` / :class:`GD`, :class:`Adam`, :class:`AdamW`, each documenting its
exact update rule) and provides :func:`clip_grad_norm`;
:mod:`crossent.optim.schedules` gives the learning rate as a pure function of
the step.
"""

from . import schedules
from .optimizers import GD, SGD, Adam, AdamW, Optimizer, clip_grad_norm
from .schedules import (
    SCHEDULE_NAMES,
    Schedule,
    constant,
    cosine,
    linear,
    make_schedule,
    step,
    warmup,
)

__all__ = [
    "Optimizer",
    "SGD",
    "GD",
    "Adam",
    "AdamW",
    "clip_grad_norm",
    "schedules",
    "Schedule",
    "SCHEDULE_NAMES",
    "constant",
    "step",
    "cosine",
    "linear",
    "warmup",
    "make_schedule",
]
