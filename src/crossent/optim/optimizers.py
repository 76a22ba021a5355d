r"""Optimisers that hold their own state and update NumPy parameters in place.

An optimiser is built over a list of parameter arrays and is handed the
matching list of gradients at every step::

    optimizer = SGD(params, lr=0.1, momentum=0.9)
    for batch in batches:
        grads = model_gradients(batch)      # one array per parameter, same shapes
        optimizer.step(grads)               # params[i] -= ... in place

The parameters are the caller's own arrays: ``step`` writes into them and never
rebinds them, so a model holding those arrays sees every update. Gradients are
read, never written.

When :mod:`crossent.kernels` says so (large parameters, by default) each
parameter is updated by one compiled pass over its elements that performs the
operations below in the same order and dtype, so the result is the same bit
for bit; the NumPy operations remain the ``numpy`` backend and the fallback
for non-contiguous arrays or gradients of another dtype.

Every NumPy update is done with ufuncs writing into ``out=`` buffers: the optimiser
state (momentum buffers, Adam moments) and one scratch array per parameter are
allocated once, with the parameter's shape and dtype (float32 parameters keep
float32 state), and a step allocates nothing proportional to the parameters.
A second scratch array is allocated on first use by the two updates that need
one (Nesterov with weight decay, Adam with L2 weight decay).

``state_dict()`` returns the step count, the learning rate, the
hyper-parameters and copies of the state arrays, as plain Python and NumPy
values (a JSON-friendly nesting of dicts and lists around arrays);
``load_state_dict`` restores all of them, so an optimiser rebuilt from a saved
state continues the run bit for bit. The parameters themselves are not part of
the state (save the model for those), as in PyTorch.

Learning-rate schedules (:mod:`crossent.optim.schedules`) are pure functions of
the step; set ``optimizer.lr = schedule.lr_at(optimizer.step_count)`` before
each step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import kernels
from .._validation import _describe, check_finite_scalar

__all__ = ["Optimizer", "SGD", "GD", "Adam", "AdamW", "clip_grad_norm"]


def _fused(param: np.ndarray, grad: np.ndarray) -> bool:
    """Whether the compiled one-pass update applies (else the NumPy operations below, its twin, do)."""
    return (
        kernels.use_compiled(param.size)
        and grad.dtype == param.dtype
        and param.flags.c_contiguous
        and grad.flags.c_contiguous
        and not np.may_share_memory(param, grad)
    )


def _numba_kernels() -> ModuleType:
    from ..kernels import _numba

    return _numba


def _check_params(params: Iterable[NDArray[np.floating[Any]]]) -> list[NDArray[Any]]:
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of parameter arrays, got a single array; wrap it in a list: [array]"
        )
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be a list of NumPy arrays, got {_describe(params)}") from None
    if not params:
        raise ValueError("params is empty; an optimiser needs at least one parameter array")
    seen = set()
    for index, param in enumerate(params):
        if not isinstance(param, np.ndarray):
            raise TypeError(
                f"params[{index}] must be a NumPy array (updated in place), got {type(param).__name__}"
            )
        if param.dtype not in (np.float32, np.float64):
            raise TypeError(f"params[{index}] must have dtype float32 or float64, got {param.dtype}")
        if not param.flags.writeable:
            raise ValueError(f"params[{index}] is read-only; the optimiser updates parameters in place")
        if id(param) in seen:
            raise ValueError(f"params[{index}] appears more than once in params")
        seen.add(id(param))
    return params


def _check_flag(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def _check_step_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"step must be an integer, got {_describe(value)}")
    if value < 0:
        raise ValueError(f"step must be >= 0, got {value}")
    return int(value)


class Optimizer:
    """Base class: parameters, learning rate, step count, state arrays and their (de)serialisation.

    Subclasses set ``algorithm`` (the name stored in the state), implement
    ``_check_hyperparameters(**options) -> dict`` (validated values),
    ``_buffer_names(hyperparameters) -> tuple`` (the per-parameter state arrays
    those hyper-parameters need) and ``_update(grads)`` (one step; the step
    count is incremented after it returns).
    """

    #: name of the update rule, stored in the state so that a state cannot be loaded into another rule
    algorithm = ""

    def __init__(self, params: Iterable[NDArray[np.floating[Any]]], lr: float, **hyperparameters: Any) -> None:
        self.params = _check_params(params)
        self.lr = lr
        self._step_count = 0
        self._hyperparameters = self._check_hyperparameters(**hyperparameters)
        self._buffers = self._allocate_buffers(self._hyperparameters)
        # scratch arrays, one list per parameter; the first is allocated here, others on first use
        self._scratch = [[np.empty_like(param)] for param in self.params]

    # -- learning rate and step count ---------------------------------------------------------

    @property
    def lr(self) -> float:
        """The learning rate used by the next :meth:`step` (finite, >= 0; a schedule sets it)."""
        return self._lr

    @lr.setter
    def lr(self, value: object) -> None:
        self._lr = check_finite_scalar(value, "lr", low=0.0)

    @property
    def step_count(self) -> int:
        """Number of steps taken so far (restored by :meth:`load_state_dict`)."""
        return self._step_count

    def _scratch_array(self, index: int, slot: int) -> np.ndarray:
        buffers = self._scratch[index]
        while len(buffers) <= slot:
            buffers.append(np.empty_like(self.params[index]))
        return buffers[slot]

    # -- stepping --------------------------------------------------------------------------------

    def _check_grads(self, grads: Iterable[ArrayLike]) -> list[NDArray[Any]]:
        """Gradients as arrays aligned with ``params`` (O(number of parameters), no pass over the data)."""
        if isinstance(grads, np.ndarray):
            raise TypeError(
                "grads must be a list of arrays aligned with params, got a single array; "
                "wrap it in a list: [grad]"
            )
        try:
            arrays: list[Any] = list(grads)  # converted to arrays below
        except TypeError:
            raise TypeError(f"grads must be a list of arrays, got {_describe(grads)}") from None
        if len(arrays) != len(self.params):
            raise ValueError(
                f"grads has {len(arrays)} array(s) but the optimiser holds {len(self.params)} parameter(s); "
                f"pass one gradient per parameter, in the same order"
            )
        for index, (grad, param) in enumerate(zip(arrays, self.params)):
            if not isinstance(grad, np.ndarray):
                grad = arrays[index] = np.asarray(grad)
            if grad.dtype.kind not in "fiu":
                raise TypeError(f"grads[{index}] must hold real numbers, got dtype {grad.dtype}")
            if grad.shape != param.shape:
                raise ValueError(
                    f"grads[{index}] has shape {grad.shape} but params[{index}] has shape {param.shape}"
                )
        return arrays

    def step(self, grads: Iterable[ArrayLike]) -> None:
        """Update every parameter in place from its gradient.

        Parameters
        ----------
        grads : list of array_like
            One gradient per parameter, in the order of ``params``, each with its
            parameter's shape. They are read, never modified. Non-finite values
            are not checked for (that would cost a pass over every gradient);
            :func:`clip_grad_norm` detects them. Overflow in the update is not
            warned about (as in PyTorch): it yields inf/NaN parameters, and the
            next loss shows it.
        """
        grads = self._check_grads(grads)
        # silent like PyTorch: a diverging run yields inf/NaN parameters, which the caller detects
        # (from the loss, or clip_grad_norm) with a message that can say what to do about it
        with np.errstate(all="ignore"):
            self._update(grads)
        self._step_count += 1

    def _update(self, grads: list) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- state -----------------------------------------------------------------------------------

    def _check_hyperparameters(self, *args: Any, **options: Any) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _buffer_names(self, hyperparameters: dict) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def _allocate_buffers(self, hyperparameters: dict) -> dict:
        return {
            name: [np.zeros_like(param) for param in self.params]
            for name in self._buffer_names(hyperparameters)
        }

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's whole state as plain values; arrays are copies.

        Returns
        -------
        dict
            ``{"algorithm": str, "step": int, "lr": float, "hyperparameters": dict,
            "buffers": {name: [array per parameter]}}``. Feed it to
            :meth:`load_state_dict` of an optimiser over parameters of the same
            shapes to continue the run exactly.
        """
        return {
            "algorithm": self.algorithm,
            "step": self._step_count,
            "lr": self._lr,
            "hyperparameters": dict(self._hyperparameters),
            "buffers": {
                name: [buffer.copy() for buffer in buffers] for name, buffers in self._buffers.items()
            },
        }

    def load_state_dict(self, state: object) -> None:
        """Restore a state from :meth:`state_dict`: step count, lr, hyper-parameters and state arrays.

        Everything is validated before anything changes, so a rejected state
        leaves the optimiser as it was. Arrays are copied in (later changes to
        ``state`` do not reach the optimiser). Lists in place of tuples (as a
        JSON round trip produces) are accepted.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state must be a dict from state_dict(), got {_describe(state)}")
        missing = [key for key in ("algorithm", "step", "lr", "hyperparameters", "buffers") if key not in state]
        if missing:
            raise ValueError(f"state is missing the key(s) {', '.join(missing)}; expected a dict from state_dict()")
        if state["algorithm"] != self.algorithm:
            raise ValueError(
                f"state was saved by a {state['algorithm']!r} optimiser and cannot be loaded into "
                f"{type(self).__name__} ({self.algorithm!r})"
            )
        step_count = _check_step_count(state["step"])
        lr = check_finite_scalar(state["lr"], "lr", low=0.0)
        if not isinstance(state["hyperparameters"], Mapping):
            raise TypeError("state['hyperparameters'] must be a dict")
        hyperparameters = self._check_hyperparameters(**state["hyperparameters"])
        saved = state["buffers"]
        expected = self._buffer_names(hyperparameters)
        if not isinstance(saved, Mapping) or set(saved) != set(expected):
            found = sorted(saved) if isinstance(saved, Mapping) else _describe(saved)
            raise ValueError(f"state['buffers'] must hold exactly {sorted(expected)}, got {found}")
        for name in expected:
            arrays = saved[name]
            if not isinstance(arrays, (list, tuple)) or len(arrays) != len(self.params):
                raise ValueError(
                    f"state['buffers'][{name!r}] must be a list of {len(self.params)} arrays (one per parameter)"
                )
            for index, (array, param) in enumerate(zip(arrays, self.params)):
                shape = np.shape(array)
                if shape != param.shape:
                    raise ValueError(
                        f"state['buffers'][{name!r}][{index}] has shape {shape} but params[{index}] "
                        f"has shape {param.shape}"
                    )
                if np.asarray(array).dtype.kind not in "fiu":
                    raise TypeError(f"state['buffers'][{name!r}][{index}] must hold real numbers")

        buffers = self._allocate_buffers(hyperparameters)
        for name in expected:
            for buffer, array in zip(buffers[name], saved[name]):
                np.copyto(buffer, array, casting="same_kind")
        self._hyperparameters = hyperparameters
        self._buffers = buffers
        self._lr = lr
        self._step_count = step_count

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self._hyperparameters.items())
        return f"{type(self).__name__}(<{len(self.params)} parameter(s)>, lr={self._lr!r}, {options})"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    With gradient :math:`g_t` of step :math:`t = 1, 2, \ldots`, learning rate
    :math:`\eta`, momentum :math:`\mu`, dampening :math:`\tau` and weight decay
    :math:`\lambda`, each parameter :math:`p` is updated as (PyTorch's
    convention, identical to ``torch.optim.SGD``):

    .. math::

        g_t &\leftarrow g_t + \lambda p_{t-1}
            \qquad\text{(weight decay; skipped when } \lambda = 0) \\
        v_1 &= g_1, \qquad v_t = \mu v_{t-1} + (1 - \tau)\, g_t
            \qquad\text{(momentum buffer; only when } \mu > 0) \\
        d_t &= g_t \ (\mu = 0), \qquad d_t = v_t \ (\text{momentum}), \qquad
            d_t = g_t + \mu v_t \ (\text{Nesterov}) \\
        p_t &= p_{t-1} - \eta\, d_t

    The first momentum step copies the gradient undamped (as PyTorch does).
    Weight decay adds :math:`\lambda p` to the gradient: that is the gradient of
    the L2 penalty :math:`\tfrac{\lambda}{2}\lVert p \rVert^2` added to the loss.

    **Momentum conventions differ between libraries.** scikit-learn's
    ``MLPClassifier`` (``solver="sgd"``) keeps a velocity that already contains
    the learning rate, :math:`u_t = \mu u_{t-1} - \eta g_t`,
    :math:`p_t = p_{t-1} + u_t` (Nesterov: :math:`p_t = p_{t-1} + \mu u_t - \eta g_t`).
    With a constant learning rate and no dampening the two are the same
    algorithm, :math:`u_t = -\eta v_t`, and produce the same parameters. When the
    learning rate changes (a schedule) they differ: here a new :math:`\eta`
    rescales the whole accumulated buffer at once, while in scikit-learn's form
    each past gradient keeps the learning rate it arrived with.

    Parameters
    ----------
    params : list of ndarray
        float32 or float64 arrays, updated in place; the optimiser state has
        each parameter's shape and dtype.
    lr : float, default 0.01
        Learning rate :math:`\eta \ge 0`; settable between steps (``optimizer.lr = ...``).
    momentum : float, default 0.0
        :math:`\mu \in [0, 1)`; 0 disables the buffer.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``
        (``ValueError`` otherwise, as in PyTorch).
    weight_decay : float, default 0.0
        :math:`\lambda \ge 0`, the L2 coefficient above.
    dampening : float, default 0.0
        :math:`\tau \in [0, 1]`.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.optim import SGD
    >>> w = np.array([1.0, -2.0])
    >>> optimizer = SGD([w], lr=0.5, momentum=0.5)
    >>> optimizer.step([np.array([1.0, 1.0])])        # v = g = 1
    >>> w
    array([ 0.5, -2.5])
    >>> optimizer.step([np.array([1.0, 1.0])])        # v = 0.5 * 1 + 1 = 1.5
    >>> w
    array([-0.25, -3.25])
    """

    algorithm = "sgd"

    def __init__(
        self, params: Iterable[NDArray[np.floating[Any]]], lr: float = 0.01, momentum: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0, dampening: float = 0.0,
    ) -> None:
        super().__init__(
            params, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, dampening=dampening
        )

    def _check_hyperparameters(self, *, momentum: float, nesterov: bool, weight_decay: float, dampening: float) -> dict:
        momentum = check_finite_scalar(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        nesterov = _check_flag(nesterov, "nesterov")
        weight_decay = check_finite_scalar(weight_decay, "weight_decay", low=0.0)
        dampening = check_finite_scalar(dampening, "dampening", low=0.0, high=1.0)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0 (as torch.optim.SGD), "
                f"got momentum={momentum!r} and dampening={dampening!r}"
            )
        return {"momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay, "dampening": dampening}

    def _buffer_names(self, hyperparameters: dict[str, Any]) -> tuple:
        return ("momentum_buffer",) if hyperparameters["momentum"] != 0 else ()

    momentum = property(lambda self: self._hyperparameters["momentum"], doc="Momentum :math:`\\mu`.")
    nesterov = property(lambda self: self._hyperparameters["nesterov"], doc="Whether momentum is Nesterov's.")
    weight_decay = property(lambda self: self._hyperparameters["weight_decay"], doc="L2 coefficient.")
    dampening = property(lambda self: self._hyperparameters["dampening"], doc="Dampening :math:`\\tau`.")

    def _update(self, grads: list) -> None:
        lr = self._lr
        momentum = self._hyperparameters["momentum"]
        nesterov = self._hyperparameters["nesterov"]
        weight_decay = self._hyperparameters["weight_decay"]
        dampening = self._hyperparameters["dampening"]
        first_step = self._step_count == 0
        velocities = self._buffers.get("momentum_buffer", [])  # there whenever momentum != 0
        for index, (param, grad) in enumerate(zip(self.params, grads)):
            if _fused(param, grad):
                cast = param.dtype.type
                _numba_kernels().sgd_update(
                    param.reshape(-1), grad.reshape(-1),
                    (velocities[index] if momentum != 0 else param).reshape(-1),
                    cast(lr), cast(momentum), cast(1 - dampening), cast(weight_decay), nesterov, first_step,
                )
                continue
            work = self._scratch[index][0]
            if weight_decay != 0:
                np.multiply(param, weight_decay, out=work)
                np.add(grad, work, out=work)
                grad = work
            if momentum == 0:
                direction = grad
            else:
                velocity = velocities[index]
                if first_step:
                    np.copyto(velocity, grad, casting="same_kind")
                else:
                    np.multiply(velocity, momentum, out=velocity)
                    if dampening != 0:
                        # grad may be `work` itself; it is not needed again (Nesterov forbids dampening)
                        np.multiply(grad, 1 - dampening, out=work)
                        np.add(velocity, work, out=velocity)
                    else:
                        np.add(velocity, grad, out=velocity)
                if nesterov:
                    # d = g + mu * v; when g already lives in `work`, mu * v needs a second array
                    spare = self._scratch_array(index, 1) if grad is work else work
                    np.multiply(velocity, momentum, out=spare)
                    np.add(grad, spare, out=work)
                    direction = work
                else:
                    direction = velocity
            np.multiply(direction, lr, out=work)
            np.subtract(param, work, out=param)


class GD(SGD):
    """Full-batch gradient descent: :class:`SGD` fed the gradient of the loss over the whole training set.

    The update rule, options and state are exactly :class:`SGD`'s (the
    "stochastic" in SGD refers only to where the gradients come from, which the
    optimiser never sees). This name exists so that full-batch training reads
    as what it is; a state saved by one loads into the other.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.optim import GD
    >>> w = np.array([3.0])
    >>> optimizer = GD([w], lr=0.25)
    >>> for _ in range(2):
    ...     optimizer.step([2 * w])              # gradient of w**2
    >>> w
    array([0.75])
    """


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with optional L2 weight decay and AMSGrad, as ``torch.optim.Adam``.

    With gradient :math:`g_t` at step :math:`t = 1, 2, \ldots`, learning rate
    :math:`\eta`, ``betas`` :math:`(\beta_1, \beta_2)`, ``eps``
    :math:`\epsilon` and ``weight_decay`` :math:`\lambda`:

    .. math::

        g_t &\leftarrow g_t + \lambda p_{t-1}
            \qquad\text{(L2 penalty } \tfrac{\lambda}{2}\lVert p\rVert^2\text{; skipped when } \lambda = 0) \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad m_0 = 0 \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \qquad v_0 = 0 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \ \text{(AMSGrad)}, \qquad \hat v_t = v_t \ \text{(otherwise)} \\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    (element-wise). Note that :math:`\epsilon` is added after the bias
    correction of :math:`\sqrt{\hat v_t}`, as in PyTorch. Because the L2 term
    passes through the adaptive scaling, weight decay here is not the same as
    decoupled decay; see :class:`AdamW`.

    Parameters
    ----------
    params : list of ndarray
        float32 or float64 arrays, updated in place; the moments have each
        parameter's shape and dtype.
    lr : float, default 1e-3
        Learning rate :math:`\eta \ge 0`; settable between steps.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment estimates, each in [0, 1).
    eps : float, default 1e-8
        :math:`\epsilon \ge 0`.
    weight_decay : float, default 0.0
        :math:`\lambda \ge 0`.
    amsgrad : bool, default False
        Use the running maximum of :math:`v_t` (Reddi et al., 2018).

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.optim import Adam
    >>> w = np.array([1.0, 1.0])
    >>> optimizer = Adam([w], lr=0.1)
    >>> optimizer.step([np.array([4.0, -0.01])])   # the first step moves every entry by ~lr
    >>> np.round(w, 6)
    array([0.9, 1.1])
    """

    algorithm = "adam"
    _decoupled_weight_decay = False

    def __init__(
        self, params: Iterable[NDArray[np.floating[Any]]], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)

    def _check_hyperparameters(
        self, *, betas: tuple[float, float], eps: float, weight_decay: float, amsgrad: bool
    ) -> dict:
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {_describe(betas)}")
        beta1 = check_finite_scalar(betas[0], "betas[0]", low=0.0, high=1.0, high_inclusive=False)
        beta2 = check_finite_scalar(betas[1], "betas[1]", low=0.0, high=1.0, high_inclusive=False)
        return {
            "betas": (beta1, beta2),
            "eps": check_finite_scalar(eps, "eps", low=0.0),
            "weight_decay": check_finite_scalar(weight_decay, "weight_decay", low=0.0),
            "amsgrad": _check_flag(amsgrad, "amsgrad"),
        }

    def _buffer_names(self, hyperparameters: dict[str, Any]) -> tuple:
        names = ("exp_avg", "exp_avg_sq")
        return names + ("max_exp_avg_sq",) if hyperparameters["amsgrad"] else names

    betas = property(lambda self: self._hyperparameters["betas"], doc="(beta1, beta2).")
    eps = property(lambda self: self._hyperparameters["eps"], doc="Denominator offset.")
    weight_decay = property(lambda self: self._hyperparameters["weight_decay"], doc="Weight-decay coefficient.")
    amsgrad = property(lambda self: self._hyperparameters["amsgrad"], doc="Whether AMSGrad is used.")

    def _update(self, grads: list) -> None:
        lr = self._lr
        beta1, beta2 = self._hyperparameters["betas"]
        eps = self._hyperparameters["eps"]
        weight_decay = self._hyperparameters["weight_decay"]
        amsgrad = self._hyperparameters["amsgrad"]
        t = self._step_count + 1
        # scalar factors once per step, computed as PyTorch does (lr / bc1, sqrt(bc2))
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = math.sqrt(1 - beta2**t)
        exp_avgs, exp_avg_sqs = self._buffers["exp_avg"], self._buffers["exp_avg_sq"]
        max_exp_avg_sqs = self._buffers.get("max_exp_avg_sq", [])  # there whenever amsgrad
        for index, (param, grad) in enumerate(zip(self.params, grads)):
            if _fused(param, grad):
                cast = param.dtype.type
                _numba_kernels().adam_update(
                    param.reshape(-1), grad.reshape(-1), exp_avgs[index].reshape(-1),
                    exp_avg_sqs[index].reshape(-1), (max_exp_avg_sqs[index] if amsgrad else param).reshape(-1),
                    cast(1 - lr * weight_decay), cast(weight_decay), self._decoupled_weight_decay,
                    cast(beta1), cast(1 - beta1), cast(beta2), cast(1 - beta2), cast(bias_correction2_sqrt),
                    cast(eps), cast(step_size), amsgrad,
                )
                continue
            work = self._scratch[index][0]
            if weight_decay != 0:
                if self._decoupled_weight_decay:
                    np.multiply(param, 1 - lr * weight_decay, out=param)
                else:
                    np.multiply(param, weight_decay, out=work)
                    np.add(grad, work, out=work)
                    grad = work
            # the moment updates need a temporary besides the gradient
            temporary = self._scratch_array(index, 1) if grad is work else work
            exp_avg, exp_avg_sq = exp_avgs[index], exp_avg_sqs[index]
            np.multiply(grad, 1 - beta1, out=temporary)
            np.multiply(exp_avg, beta1, out=exp_avg)
            np.add(exp_avg, temporary, out=exp_avg)
            np.multiply(grad, grad, out=temporary)
            np.multiply(temporary, 1 - beta2, out=temporary)
            np.multiply(exp_avg_sq, beta2, out=exp_avg_sq)
            np.add(exp_avg_sq, temporary, out=exp_avg_sq)
            second_moment = exp_avg_sq
            if amsgrad:
                second_moment = max_exp_avg_sqs[index]
                np.maximum(second_moment, exp_avg_sq, out=second_moment)
            # the gradient is no longer needed: `work` becomes the denominator, then the step
            np.sqrt(second_moment, out=work)
            np.divide(work, bias_correction2_sqrt, out=work)
            np.add(work, eps, out=work)
            np.divide(exp_avg, work, out=work)
            np.multiply(work, step_size, out=work)
            np.subtract(param, work, out=param)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``.

    The parameter is first shrunk, then the Adam step of :class:`Adam` is taken
    with the raw gradient (no L2 term added to it):

    .. math::

        p_{t-1} &\leftarrow (1 - \eta\lambda)\, p_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        p_t &= p_{t-1} - \frac{\eta}{1 - \beta_1^t}\,
               \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`\hat v_t` as in :class:`Adam` (``amsgrad``). The decay is
    proportional to the learning rate (PyTorch's convention; the paper's
    schedule multiplier :math:`\eta_t` is the ratio of the current lr to the
    initial one) and is not rescaled by the adaptive denominator, which is the
    point of decoupling.

    Parameters
    ----------
    params, lr, betas, eps, amsgrad
        As :class:`Adam`.
    weight_decay : float, default 1e-2
        :math:`\lambda \ge 0`.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.optim import AdamW
    >>> w = np.array([2.0])
    >>> optimizer = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> optimizer.step([np.array([0.0])])           # zero gradient: only the decay, 2 * (1 - 0.05)
    >>> w
    array([1.9])
    """

    algorithm = "adamw"
    _decoupled_weight_decay = True

    def __init__(
        self, params: Iterable[NDArray[np.floating[Any]]], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


def _sum_of_squares(grad: np.ndarray) -> float:
    flat = grad.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, with the culprit named
        total = float(np.dot(flat, flat))
    if not math.isfinite(total) and np.isfinite(grad).all():
        # a float32 sum of squares overflows above ~3.4e38 although the norm is representable in float64
        flat = flat.astype(np.float64)
        total = float(np.dot(flat, flat))
    return total


def clip_grad_norm(grads: Iterable[NDArray[np.floating[Any]]], max_norm: float) -> float:
    r"""Scale gradients in place so that their global L2 norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated:
    :math:`\lVert g \rVert = \sqrt{\sum_i \lVert g_i \rVert^2}`. Every
    gradient is multiplied by

    .. math::

        c = \min\Big(1, \frac{\text{max\_norm}}{\lVert g \rVert + 10^{-6}}\Big),

    exactly as ``torch.nn.utils.clip_grad_norm_`` does (the :math:`10^{-6}`
    keeps the division finite for a zero gradient; when :math:`c = 1` nothing
    is written). The direction of the update is kept; only its length shrinks.

    Parameters
    ----------
    grads : list of ndarray
        The gradients, modified in place (float32 stays float32).
    max_norm : float
        Finite, > 0.

    Returns
    -------
    float
        The global norm before clipping (accumulated in the gradients' dtype,
        by BLAS ``dot``).

    Raises
    ------
    FloatingPointError
        If the total norm is NaN or infinite (a gradient holds NaN or inf);
        the gradients are left untouched.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.optim import clip_grad_norm
    >>> grads = [np.array([3.0]), np.array([[4.0]])]
    >>> clip_grad_norm(grads, max_norm=1.0)
    5.0
    >>> np.round(grads[0], 6), np.round(grads[1], 6)
    (array([0.6]), array([[0.8]]))
    """
    max_norm = check_finite_scalar(max_norm, "max_norm", low=0.0, low_inclusive=False)
    if isinstance(grads, np.ndarray):
        raise TypeError("grads must be a list of arrays, got a single array; wrap it in a list: [grad]")
    grads = list(grads)
    for index, grad in enumerate(grads):
        if not isinstance(grad, np.ndarray) or grad.dtype.kind != "f":
            raise TypeError(
                f"grads[{index}] must be a floating-point NumPy array (it is scaled in place), "
                f"got {_describe(grad)}"
            )
    squares = [_sum_of_squares(grad) for grad in grads]
    total_norm = math.sqrt(sum(squares))
    if not math.isfinite(total_norm):
        bad = next((index for index, square in enumerate(squares) if not math.isfinite(square)), None)
        if bad is not None and not np.isfinite(grads[bad]).all():
            cause = f"grads[{bad}] holds non-finite values"
        else:
            cause = "the sum of squares overflows float64"
        raise FloatingPointError(f"the total gradient norm is {total_norm} ({cause}); nothing was clipped")
    coefficient = max_norm / (total_norm + 1e-6)
    if coefficient < 1.0:
        for grad in grads:
            np.multiply(grad, coefficient, out=grad)
    return total_norm
