r"""Weighted sums of losses: ``CrossEntropyLoss() + 0.5 * FocalLoss()``.

.. math:: L = \sum_k c_k L_k, \qquad \frac{\partial L}{\partial z} = \sum_k c_k \frac{\partial L_k}{\partial z}

Each term keeps its own options and reduction; the sum records the value of
every term of the last call in :attr:`LossSum.last_terms`, so a training loop
can report them separately.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import LossValue
from ._api import Loss

__all__ = ["LossSum"]


def _term_name(loss: Loss) -> str:
    return getattr(loss, "name", None) or type(loss).__name__


class LossSum:
    """A weighted sum of Loss objects with the Loss interface.

    Parameters
    ----------
    terms : sequence of (coefficient, Loss) pairs
        Coefficients are finite real numbers; each Loss is a configured
        :class:`crossent.losses.Loss` (or a name understood by
        :func:`crossent.losses.get_loss`).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses import CrossEntropyLoss, FocalLoss
    >>> loss = CrossEntropyLoss() + 0.5 * FocalLoss(gamma=2.0)
    >>> loss
    LossSum(1.0 * CrossEntropyLoss(), 0.5 * FocalLoss(gamma=2.0))
    >>> value, grad = loss.value_and_grad(np.array([[1.0, 2.0, 0.5]]), np.array([1]))
    >>> sorted(loss.last_terms)
    ['CrossEntropyLoss', 'FocalLoss']
    """

    def __init__(self, terms: Iterable[tuple[float, Loss | LossSum | str]]) -> None:
        from . import get_loss

        parsed: list[tuple[float, Loss]] = []
        for item in terms:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"terms must be (coefficient, loss) pairs, got {item!r}")
            coefficient, loss = item
            if isinstance(coefficient, bool) or not isinstance(coefficient, numbers.Real) or not np.isfinite(
                coefficient
            ):
                raise ValueError(f"a loss coefficient must be a finite number, got {coefficient!r}")
            if isinstance(loss, LossSum):
                parsed.extend((float(coefficient) * c, inner) for c, inner in loss.terms)
                continue
            parsed.append((float(coefficient), get_loss(loss)))
        if not parsed:
            raise ValueError("terms must hold at least one (coefficient, loss) pair")
        self.terms = parsed
        self.last_terms: dict[str, LossValue] = {}

    def term_names(self) -> list[str]:
        """One unique name per term (the class name, numbered when repeated)."""
        names: list[str] = []
        seen: dict[str, int] = {}
        for _, loss in self.terms:
            base = _term_name(loss)
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
        return names

    def _evaluate(
        self, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any], compute_grad: bool
    ) -> tuple[Any, Any]:
        total_value: Any = 0.0
        total_grad: Any = None
        terms: dict[str, LossValue] = {}
        for name, (coefficient, loss) in zip(self.term_names(), self.terms):
            if compute_grad:
                value, grad = loss.value_and_grad(input, target, **batch_arguments)
                grad = grad * coefficient
                total_grad = grad if total_grad is None else total_grad + grad
            else:
                value = loss(input, target, **batch_arguments)
            terms[name] = value
            total_value = total_value + coefficient * value
        self.last_terms = terms
        return total_value, total_grad

    def __call__(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> LossValue:
        return self._evaluate(input, target, batch_arguments, compute_grad=False)[0]

    def grad(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> NDArray[Any]:
        return self._evaluate(input, target, batch_arguments, compute_grad=True)[1]

    def value_and_grad(
        self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any
    ) -> tuple[LossValue, NDArray[Any]]:
        return self._evaluate(input, target, batch_arguments, compute_grad=True)

    @property
    def reduction(self) -> str:
        reductions = {loss.reduction for _, loss in self.terms}
        return reductions.pop() if len(reductions) == 1 else "mixed"

    def config(self) -> dict[str, Any]:
        return {"terms": [[c, loss.config()] for c, loss in self.terms]}

    def __add__(self, other: Loss | LossSum | str) -> LossSum:
        return LossSum(self.terms + [(1.0, other)]) if not isinstance(other, LossSum) else LossSum(
            self.terms + other.terms
        )

    __radd__ = __add__

    def __mul__(self, coefficient: float) -> LossSum:
        return LossSum([(coefficient * c, loss) for c, loss in self.terms])

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return "LossSum(" + ", ".join(f"{c!r} * {loss!r}" for c, loss in self.terms) + ")"
