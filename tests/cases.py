"""Registry of loss test cases shared by the cross-loss tests (stability, dtype, agreement).

Every loss contributes :class:`LossCase` entries. ``make(rng, dtype, scale)``
returns ``(input, target, kwargs)`` for a small random batch whose input values
have magnitude about ``scale`` (the stability tests use scale up to 1e4).
``cases_<family>.py`` modules each define a ``CASES`` list; this module collects
them.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass
class LossCase:
    name: str
    value: Callable  # crossent.L
    grad: Callable  # crossent.L_grad
    make: Callable  # (rng, dtype, scale) -> (input, target, kwargs)
    loss_class: type | None = None  # crossent.losses.<Class>
    # the input may hold -inf entries (masked classes) where the target has no mass
    supports_neg_inf: bool = True
    # input is a probability / log-probability rather than a free score: no scaling to 1e4
    scalable: bool = True
    tags: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def all_cases() -> list[LossCase]:
    cases: list[LossCase] = []
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(info.name).CASES)
    return cases
