"""How every loss is exposed: ``L``, ``L_grad``, ``L_value_and_grad`` and a Loss class.

A loss module writes one implementation ``_impl(input, target, *, options...,
compute_grad)`` that returns ``(value, gradient or None)``, and one public value
function ``L`` with the full signature and the docstring (the math lives
there). :func:`grad_function` and :func:`value_and_grad_function` derive the other
two public functions from ``L``'s signature, so the three can never disagree on
an option.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._typing import LossValue

if TYPE_CHECKING:
    from .combined import LossSum


def _bind(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{error}") from None
    return bound.args, bound.kwargs


def _direct_call(signature: inspect.Signature, implementation: Callable[..., Any]) -> bool:
    """Whether ``implementation(*args, **kwargs, compute_grad=...)`` takes exactly the calls ``signature`` takes.

    True when the implementation's parameters are the signature's (names,
    kinds, defaults) plus a keyword-only ``compute_grad``: Python's own call
    then checks the arguments, and binding them to ``signature`` first (a
    tenth of a small batch's time) is only needed to word an error.
    """
    implementation_parameters = inspect.signature(implementation).parameters
    parameters = [p for p in implementation_parameters.values() if p.name != "compute_grad"]
    extra = implementation_parameters.get("compute_grad")
    if extra is None or extra.kind is not inspect.Parameter.KEYWORD_ONLY:
        return False
    expected = list(signature.parameters.values())
    return len(parameters) == len(expected) and all(
        p.name == q.name and p.kind == q.kind and p.default is q.default for p, q in zip(parameters, expected)
    )


def _call(
    direct: bool, signature: inspect.Signature, implementation: Callable[..., tuple[Any, Any]],
    args: tuple[Any, ...], kwargs: dict[str, Any],
) -> tuple[Any, Any]:
    """``implementation(*args, **kwargs, compute_grad=True)``, arguments checked against ``signature``."""
    if not direct:
        args, kwargs = _bind(signature, args, kwargs)
        return implementation(*args, **kwargs, compute_grad=True)
    try:
        return implementation(*args, **kwargs, compute_grad=True)
    except TypeError:
        _bind(signature, args, kwargs)  # a call that does not fit the signature: say so in its terms
        raise


def _with_out(signature: inspect.Signature, implementation: Callable[..., Any]) -> inspect.Signature:
    """``signature`` plus a keyword ``out=None`` when ``implementation`` can write its gradient there."""
    if "out" not in inspect.signature(implementation).parameters:
        return signature
    out = inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None)
    return signature.replace(parameters=[*signature.parameters.values(), out])


_OUT_DOC = (
    "``out`` (optional): an array of the input's shape and dtype that receives the\n"
    "gradient (and is returned); it may be the input itself, which the gradient\n"
    "then overwrites without any other allocation of its size.\n"
)


def grad_function(
    value_function: Callable[..., Any], implementation: Callable[..., tuple[Any, Any]]
) -> Callable[..., NDArray[Any]]:
    """Return ``L_grad``: dL/d(first argument), same options as ``value_function``."""
    signature = _with_out(inspect.signature(value_function), implementation)
    name = value_function.__name__
    direct = _direct_call(signature, implementation)

    def grad(*args: Any, **kwargs: Any) -> NDArray[Any]:
        gradient: NDArray[Any] = _call(direct, signature, implementation, args, kwargs)[1]
        return gradient

    grad.__signature__ = signature  # type: ignore[attr-defined]  # read by inspect.signature
    grad.__name__ = grad.__qualname__ = f"{name}_grad"
    grad.__module__ = value_function.__module__
    first = next(iter(signature.parameters))
    grad.__doc__ = (
        f"Gradient of :func:`{name}` with respect to ``{first}``.\n\n"
        f"Takes exactly the arguments of :func:`{name}` and returns an array with\n"
        f"``{first}``'s shape and dtype. The reduction's ``1 / denominator`` is applied\n"
        f"once; for ``reduction=\"none\"`` this is the gradient of the sum of the\n"
        f"per-element losses. See :func:`{name}` for the formula.\n"
    )
    if "out" in signature.parameters:
        grad.__doc__ += "\n" + _OUT_DOC
    return grad


def value_and_grad_function(
    value_function: Callable[..., Any], implementation: Callable[..., tuple[Any, Any]]
) -> Callable[..., tuple[Any, NDArray[Any]]]:
    """Return ``L_value_and_grad``: ``(value, gradient)`` computed in one pass."""
    signature = _with_out(inspect.signature(value_function), implementation)
    name = value_function.__name__
    direct = _direct_call(signature, implementation)

    def value_and_grad(*args: Any, **kwargs: Any) -> tuple[Any, NDArray[Any]]:
        value, gradient = _call(direct, signature, implementation, args, kwargs)
        return value, gradient

    value_and_grad.__signature__ = signature  # type: ignore[attr-defined]  # read by inspect.signature
    value_and_grad.__name__ = value_and_grad.__qualname__ = f"{name}_value_and_grad"
    value_and_grad.__module__ = value_function.__module__
    value_and_grad.__doc__ = (
        f"``({name}(...), {name}_grad(...))`` computed together in one pass.\n\n"
        f"Takes exactly the arguments of :func:`{name}`.\n"
    )
    if "out" in signature.parameters:
        value_and_grad.__doc__ += "\n" + _OUT_DOC
    return value_and_grad


class Loss:
    """A loss with its options fixed: ``loss(input, target)`` and ``loss.value_and_grad(input, target)``.

    Subclasses set ``function`` (the public value function, e.g.
    :func:`crossent.softmax_cross_entropy`) and ``implementation``. Options are
    the keyword-only arguments of ``function``; per-batch data (``sample_weight``,
    ``mask``) is passed at call time instead.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.losses import CrossEntropyLoss
    >>> loss = CrossEntropyLoss(label_smoothing=0.1)
    >>> value, grad = loss.value_and_grad(np.array([[1.0, 2.0, 0.5]]), np.array([1]))
    >>> grad.shape
    (1, 3)
    """

    #: the public value function (set by every subclass, as a staticmethod)
    function: ClassVar[Callable[..., Any]]
    #: ``implementation(input, target, **options, compute_grad=...) -> (value, gradient or None)``
    implementation: ClassVar[Callable[..., tuple[Any, Any]]]
    #: keyword arguments that vary with each batch rather than configure the loss
    call_arguments: ClassVar[tuple[str, ...]] = ("sample_weight", "mask")

    def __init__(self, **options: Any) -> None:
        parameters = inspect.signature(type(self).function).parameters
        allowed = [
            name
            for name, parameter in parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in self.call_arguments
        ]
        for name in options:
            if name not in allowed:
                raise TypeError(
                    f"{type(self).__name__} got an unexpected option {name!r}; "
                    f"options are {', '.join(allowed)}"
                )
        self.options = dict(options)

    def _call(
        self, input: ArrayLike, target: ArrayLike, batch_arguments: dict[str, Any], compute_grad: bool
    ) -> tuple[Any, Any]:
        if batch_arguments:  # inspecting the signature costs more than a small batch's loss: only when needed
            parameters = inspect.signature(type(self).function).parameters
            for name in batch_arguments:
                if name not in parameters and not (
                    name == "out" and compute_grad and "out" in inspect.signature(type(self).implementation).parameters
                ):
                    raise TypeError(f"{type(self).__name__} does not take {name!r}")
        return type(self).implementation(
            input, target, **self.options, **batch_arguments, compute_grad=compute_grad
        )

    def __call__(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> LossValue:
        """The loss value (a NumPy scalar, or an array for ``reduction="none"``)."""
        value: LossValue = self._call(input, target, batch_arguments, compute_grad=False)[0]
        return value

    def grad(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> NDArray[Any]:
        """dL/d(input), same shape and dtype as ``input``."""
        gradient: NDArray[Any] = self._call(input, target, batch_arguments, compute_grad=True)[1]
        return gradient

    def value_and_grad(
        self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any
    ) -> tuple[LossValue, NDArray[Any]]:
        """``(value, dL/d(input))`` computed in one pass.

        Losses whose gradient function takes ``out=`` accept it here too (e.g.
        ``out=logits`` to overwrite the logits with their gradient).
        """
        value, gradient = self._call(input, target, batch_arguments, compute_grad=True)
        return value, gradient

    def denominator(self, input: ArrayLike, target: ArrayLike, **batch_arguments: Any) -> float:
        r"""The denominator :math:`D = \sum_i d_i` that ``reduction="mean"`` divides this batch's sum by.

        The same number whatever this loss's own ``reduction``, so that
        ``loss_mean == loss_sum / D`` (the mean is 0 when :math:`D = 0`); only
        :class:`~crossent.losses.KLDivLoss`, whose reduction picks one of two
        means, answers for ``"mean"`` (one per element) or else for its
        ``"batchmean"`` (one per row). Data split into
        parts has the exact mean of the whole when each part reports its sum
        and its :math:`D` and the totals are divided once (what
        :mod:`crossent.distributed` does). Each loss's docstring states its
        :math:`d_i`; see :mod:`crossent.losses._denominator` for the table.

        Examples
        --------
        >>> import numpy as np
        >>> from crossent.losses import CrossEntropyLoss
        >>> loss = CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]))
        >>> loss.denominator(np.zeros((3, 3)), np.array([0, 1, 1]), sample_weight=np.array([1.0, 1.0, 0.5]))
        4.0
        """
        from ._denominator import denominator

        return denominator(self, input, target, batch_arguments)

    @property
    def reduction(self) -> str:
        reduction: str = self.options.get(
            "reduction", inspect.signature(type(self).function).parameters["reduction"].default
        )
        return reduction

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description: ``{"class": ..., "options": ...}`` (arrays become lists)."""
        return {"class": type(self).__name__, "options": {k: _jsonable(v) for k, v in self.options.items()}}

    def __add__(self, other: Loss | LossSum | str) -> LossSum:
        from .combined import LossSum

        return LossSum([(1.0, self), (1.0, other)])

    __radd__ = __add__

    def __mul__(self, coefficient: float) -> LossSum:
        from .combined import LossSum

        return LossSum([(coefficient, self)])

    __rmul__ = __mul__

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"{type(self).__name__}({options})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
