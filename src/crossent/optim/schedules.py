r"""Learning-rate schedules: the learning rate as a pure function of the optimiser step.

A schedule object answers ``schedule.lr_at(step)`` (also ``schedule(step)``):
the learning rate to use for the optimiser step with 0-based index ``step``.
It holds no state, so resuming a run needs nothing but the step count (which
the optimiser's state holds)::

    for batch in batches:
        optimizer.lr = schedule.lr_at(optimizer.step_count)
        optimizer.step(gradients(batch))

====================  ===================================================================
factory               learning rate at step :math:`s`
====================  ===================================================================
``constant(lr)``      :math:`\eta`
``step(lr, k, g)``    :math:`\eta\,g^{\lfloor s / k \rfloor}` (``torch.optim.lr_scheduler.StepLR``)
``cosine(lr, T, m)``  :math:`m + (\eta - m)\,\tfrac12\big(1 + \cos(\pi \min(s, T) / T)\big)`
                      (``CosineAnnealingLR`` up to :math:`T`; held at :math:`m` after)
``linear(lr, T, e)``  :math:`\eta + (e - \eta) \min(s, T) / T` (``LinearLR``)
``warmup(W, then)``   :math:`\text{then}(0)\,(s + 1) / (W + 1)` for :math:`s < W`, then
                      :math:`\text{then}(s - W)`
====================  ===================================================================

:func:`make_schedule` builds them by name for the command line.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .._validation import _describe, check_finite_scalar

__all__ = [
    "Schedule",
    "constant",
    "step",
    "cosine",
    "linear",
    "warmup",
    "make_schedule",
    "SCHEDULE_NAMES",
]


def _check_count(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_base_lr(lr: object, name: str = "lr") -> float:
    return check_finite_scalar(lr, name, low=0.0, low_inclusive=False)


class Schedule:
    """A learning rate as a pure function of the 0-based optimiser step.

    Subclasses implement :meth:`_lr_at` for a validated step. ``lr`` is the
    base (peak) learning rate the schedule was built with.
    """

    lr: float

    def lr_at(self, step: int) -> float:
        """The learning rate for optimiser step ``step`` (0-based, an integer >= 0)."""
        return self._lr_at(_check_count(step, "step", minimum=0))

    def __call__(self, step: int) -> float:
        """Same as :meth:`lr_at`."""
        return self.lr_at(step)

    def _lr_at(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({options})"


class ConstantSchedule(Schedule):
    def __init__(self, lr: float) -> None:
        self.lr = _check_base_lr(lr)

    def _lr_at(self, step: int) -> float:
        return self.lr


class StepSchedule(Schedule):
    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _check_base_lr(lr)
        self.step_size = _check_count(step_size, "step_size", minimum=1)
        self.gamma = check_finite_scalar(gamma, "gamma", low=0.0, high=1.0, low_inclusive=False)

    def _lr_at(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


class CosineSchedule(Schedule):
    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0) -> None:
        self.lr = _check_base_lr(lr)
        self.total_steps = _check_count(total_steps, "total_steps", minimum=1)
        self.min_lr = check_finite_scalar(min_lr, "min_lr", low=0.0, high=self.lr)

    def _lr_at(self, step: int) -> float:
        if step >= self.total_steps:
            return self.min_lr
        cosine_factor = (1 + math.cos(math.pi * step / self.total_steps)) / 2
        return self.min_lr + (self.lr - self.min_lr) * cosine_factor


class LinearSchedule(Schedule):
    def __init__(self, lr: float, total_steps: int, end_lr: float = 0.0) -> None:
        self.lr = _check_base_lr(lr)
        self.total_steps = _check_count(total_steps, "total_steps", minimum=1)
        self.end_lr = check_finite_scalar(end_lr, "end_lr", low=0.0)

    def _lr_at(self, step: int) -> float:
        if step >= self.total_steps:
            return self.end_lr  # exactly, not lr + (end_lr - lr) rounded
        return self.lr + (self.end_lr - self.lr) * (step / self.total_steps)


class WarmupSchedule(Schedule):
    def __init__(self, warmup_steps: int, then: Schedule) -> None:
        self.warmup_steps = _check_count(warmup_steps, "warmup_steps", minimum=1)
        if not isinstance(then, Schedule):
            raise TypeError(
                f"then must be a schedule (e.g. cosine(lr, total_steps)), got {_describe(then)}"
            )
        self.then = then
        self.lr = then.lr

    def _lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.then.lr_at(0) * (step + 1) / (self.warmup_steps + 1)
        return self.then.lr_at(step - self.warmup_steps)


def constant(lr: float) -> Schedule:
    """The same learning rate ``lr`` (finite, > 0) at every step.

    Examples
    --------
    >>> from crossent.optim import constant
    >>> constant(0.1).lr_at(1000)
    0.1
    """
    return ConstantSchedule(lr)


def step(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    r"""Step decay: :math:`\eta\,\gamma^{\lfloor s / k \rfloor}` -- multiply by ``gamma`` every ``step_size`` steps.

    The same values as ``torch.optim.lr_scheduler.StepLR(optimizer, step_size,
    gamma)`` stepped once per optimiser step.

    Parameters
    ----------
    lr : float
        :math:`\eta`, finite, > 0.
    step_size : int
        :math:`k \ge 1`.
    gamma : float, default 0.1
        :math:`\gamma \in (0, 1]`.

    Examples
    --------
    >>> from crossent.optim import step
    >>> schedule = step(1.0, step_size=2, gamma=0.5)
    >>> [schedule.lr_at(s) for s in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    return StepSchedule(lr, step_size, gamma)


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    r"""Cosine annealing from ``lr`` at step 0 to ``min_lr`` at step ``total_steps``.

    .. math::

        \eta_s = m + (\eta - m)\,\frac{1 + \cos(\pi s / T)}{2}, \qquad 0 \le s \le T,

    and :math:`\eta_s = m` for :math:`s > T` (``CosineAnnealingLR`` with
    ``T_max=T`` gives the same values up to :math:`T` but rises again after).

    Parameters
    ----------
    lr : float
        :math:`\eta`, finite, > 0.
    total_steps : int
        :math:`T \ge 1`.
    min_lr : float, default 0.0
        :math:`m \in [0, \eta]`.

    Examples
    --------
    >>> from crossent.optim import cosine
    >>> schedule = cosine(1.0, total_steps=4)
    >>> [round(schedule.lr_at(s), 4) for s in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    """
    return CosineSchedule(lr, total_steps, min_lr)


def linear(lr: float, total_steps: int, end_lr: float = 0.0) -> Schedule:
    r"""Linear interpolation from ``lr`` at step 0 to ``end_lr`` at step ``total_steps``, held after.

    .. math::

        \eta_s = \eta + (e - \eta)\,\frac{\min(s, T)}{T}

    ``torch.optim.lr_scheduler.LinearLR(start_factor=1, end_factor=e/lr,
    total_iters=T)`` gives the same values. ``end_lr`` may exceed ``lr`` (a
    linear increase).

    Parameters
    ----------
    lr : float
        :math:`\eta`, finite, > 0.
    total_steps : int
        :math:`T \ge 1`.
    end_lr : float, default 0.0
        :math:`e \ge 0`, finite.

    Examples
    --------
    >>> from crossent.optim import linear
    >>> [linear(1.0, total_steps=4).lr_at(s) for s in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    return LinearSchedule(lr, total_steps, end_lr)


def warmup(warmup_steps: int, then: Schedule) -> Schedule:
    r"""Linear warm-up over ``warmup_steps`` steps, then the schedule ``then`` started afresh.

    .. math::

        \eta_s = \text{then}(0)\,\frac{s + 1}{W + 1} \quad (s < W), \qquad
        \eta_s = \text{then}(s - W) \quad (s \ge W).

    The ramp starts at :math:`\text{then}(0) / (W + 1)` rather than 0 (a step
    with learning rate 0 would be wasted) and rises by equal increments to
    :math:`\text{then}(0)` at step :math:`W`; no value repeats. To end a
    warm-up + decay run of :math:`N` steps at the decay's final value, give
    ``then`` :math:`N - W` steps (as :func:`make_schedule` does).

    Parameters
    ----------
    warmup_steps : int
        :math:`W \ge 1`.
    then : Schedule
        The schedule to follow, e.g. ``cosine(lr, total_steps - warmup_steps)``.

    Examples
    --------
    >>> from crossent.optim import constant, warmup
    >>> schedule = warmup(3, constant(0.4))
    >>> [round(schedule.lr_at(s), 4) for s in range(5)]
    [0.1, 0.2, 0.3, 0.4, 0.4]
    """
    return WarmupSchedule(warmup_steps, then)


#: names understood by :func:`make_schedule`
SCHEDULE_NAMES = ("constant", "step", "cosine", "linear", "warmup-cosine", "warmup-linear")

_OPTIONS = {
    "constant": (),
    "step": ("step_size", "gamma"),
    "cosine": ("min_lr",),
    "linear": ("end_lr",),
    "warmup-cosine": ("warmup_steps", "min_lr"),
    "warmup-linear": ("warmup_steps", "end_lr"),
}


def _default_warmup_steps(total_steps: int) -> int:
    return max(1, round(0.05 * total_steps))


def make_schedule(name: str, lr: float, total_steps: int, **options: Any) -> Schedule:
    r"""Build a schedule by name for a run of ``total_steps`` optimiser steps (the command line's entry).

    =================  ==================================================================================
    name               schedule and options (defaults)
    =================  ==================================================================================
    ``constant``       :func:`constant` ``(lr)``; no options
    ``step``           :func:`step` ``(lr, step_size, gamma)``; ``step_size`` = ``max(1, total_steps // 3)``,
                       ``gamma`` = 0.1
    ``cosine``         :func:`cosine` ``(lr, total_steps, min_lr)``; ``min_lr`` = 0
    ``linear``         :func:`linear` ``(lr, total_steps, end_lr)``; ``end_lr`` = 0
    ``warmup-cosine``  :func:`warmup` ``(W, cosine(lr, total_steps - W, min_lr))``; ``warmup_steps`` W =
                       5 % of ``total_steps`` (at least 1), ``min_lr`` = 0
    ``warmup-linear``  :func:`warmup` ``(W, linear(lr, total_steps - W, end_lr))``; as above, ``end_lr`` = 0
    =================  ==================================================================================

    The decaying schedules reach their final value at step ``total_steps``, one
    past the last step of the run (PyTorch's convention for ``T_max``).

    Parameters
    ----------
    name : str
        One of :data:`SCHEDULE_NAMES`.
    lr : float
        Base (peak) learning rate, finite, > 0.
    total_steps : int
        Number of optimiser steps in the run, >= 1 (>= 2 for the warm-up schedules,
        which need at least one step after the warm-up).
    **options
        The options listed above; any other is a ``TypeError``.

    Examples
    --------
    >>> from crossent.optim import make_schedule
    >>> schedule = make_schedule("warmup-cosine", 0.1, total_steps=100, warmup_steps=10)
    >>> round(schedule.lr_at(0), 6), schedule.lr_at(10), schedule.lr_at(100)
    (0.009091, 0.1, 0.0)
    """
    if not isinstance(name, str) or name not in _OPTIONS:
        expected = ", ".join(repr(known) for known in SCHEDULE_NAMES)
        raise ValueError(f"schedule name must be one of {expected}, got {_describe(name)}")
    allowed = _OPTIONS[name]
    for option in options:
        if option not in allowed:
            accepted = f"its options are {', '.join(allowed)}" if allowed else "it takes no options"
            raise TypeError(f"schedule {name!r} got an unexpected option {option!r}; {accepted}")
    total_steps = _check_count(total_steps, "total_steps", minimum=1)
    if name == "constant":
        return constant(lr)
    if name == "step":
        return step(lr, options.get("step_size", max(1, total_steps // 3)), options.get("gamma", 0.1))
    if name == "cosine":
        return cosine(lr, total_steps, options.get("min_lr", 0.0))
    if name == "linear":
        return linear(lr, total_steps, options.get("end_lr", 0.0))

    warmup_steps = _check_count(
        options.get("warmup_steps", _default_warmup_steps(total_steps)), "warmup_steps", minimum=1
    )
    if warmup_steps >= total_steps:
        raise ValueError(
            f"warmup_steps={warmup_steps} must be smaller than total_steps={total_steps} "
            f"so that the {name[len('warmup-'):]} decay has at least one step"
        )
    decay_steps = total_steps - warmup_steps
    if name == "warmup-cosine":
        then = cosine(lr, decay_steps, options.get("min_lr", 0.0))
    else:
        then = linear(lr, decay_steps, options.get("end_lr", 0.0))
    return warmup(warmup_steps, then)
