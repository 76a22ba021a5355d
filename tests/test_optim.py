import copy
import json
import math
import pickle

import numpy as np
import pytest

from crossent.optim import GD, SGD, Adam, AdamW, clip_grad_norm

SHAPES = [(3, 4), (5,), ()]


def _params(rng, dtype=np.float64):
    return [rng.normal(size=shape).astype(dtype) for shape in SHAPES]


def _gradient_sequence(rng, n_steps, dtype=np.float64):
    return [[rng.normal(size=shape).astype(dtype) for shape in SHAPES] for _ in range(n_steps)]


# -- independent references: the update formulas written out with fresh arrays --------------


def reference_sgd(params, grad_sequence, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    params = [p.copy() for p in params]
    velocities = [None] * len(params)
    for grads in grad_sequence:
        for i, g in enumerate(grads):
            g = g + weight_decay * params[i]
            if momentum:
                if velocities[i] is None:
                    velocities[i] = g
                else:
                    velocities[i] = momentum * velocities[i] + (1 - dampening) * g
                g = g + momentum * velocities[i] if nesterov else velocities[i]
            params[i] = params[i] - lr * g
    return params


def reference_adam(params, grad_sequence, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    v_max = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grad_sequence, start=1):
        for i, g in enumerate(grads):
            if decoupled:
                params[i] = params[i] * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * params[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g**2
            v_max[i] = np.maximum(v_max[i], v[i])
            m_hat = m[i] / (1 - beta1**t)
            v_hat = (v_max[i] if amsgrad else v[i]) / (1 - beta2**t)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


SGD_CONFIGS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.8, dampening=0.3),
    dict(momentum=0.9, nesterov=True),
    dict(weight_decay=0.05),
    dict(momentum=0.9, weight_decay=0.05),
    dict(momentum=0.7, dampening=0.5, weight_decay=0.1),
    dict(momentum=0.9, nesterov=True, weight_decay=0.05),
]
ADAM_CONFIGS = [
    dict(),
    dict(amsgrad=True),
    dict(weight_decay=0.1),
    dict(weight_decay=0.1, amsgrad=True),
    dict(betas=(0.5, 0.8), eps=1e-3),
]
ADAMW_CONFIGS = [dict(), dict(weight_decay=0.3), dict(weight_decay=0.3, amsgrad=True)]

ALL_CONFIGS = (
    [(SGD, c) for c in SGD_CONFIGS] + [(Adam, c) for c in ADAM_CONFIGS] + [(AdamW, c) for c in ADAMW_CONFIGS]
)


def _config_id(item):
    cls, config = item
    return cls.__name__ + "-" + ("-".join(f"{k}={v}" for k, v in config.items()) or "default")


def _run(optimizer, grad_sequence):
    for grads in grad_sequence:
        optimizer.step(grads)


# -- hand-computed updates ---------------------------------------------------------------------


def test_sgd_momentum_by_hand():
    # lr 0.1, mu 0.9, constant gradient 1 from p = 1:
    # v1 = 1, p1 = 0.9; v2 = 1.9, p2 = 0.71; v3 = 2.71, p3 = 0.439
    p = np.array([1.0])
    optimizer = SGD([p], lr=0.1, momentum=0.9)
    expected = [0.9, 0.71, 0.439]
    for value in expected:
        optimizer.step([np.array([1.0])])
        assert p[0] == pytest.approx(value, rel=1e-14)


def test_sgd_nesterov_dampening_weight_decay_by_hand():
    # Nesterov, lr 0.1, mu 0.5, wd 0.2, gradient 1 from p = 1:
    # g1 = 1 + 0.2 = 1.2, v1 = 1.2, d1 = 1.2 + 0.6 = 1.8, p1 = 0.82
    # g2 = 1 + 0.164 = 1.164, v2 = 0.6 + 1.164 = 1.764, d2 = 1.164 + 0.882 = 2.046, p2 = 0.6154
    # g3 = 1 + 0.12308 = 1.12308, v3 = 0.882 + 1.12308 = 2.00508, d3 = 1.12308 + 1.00254 = 2.12562,
    # p3 = 0.6154 - 0.212562 = 0.402838
    p = np.array([1.0])
    optimizer = SGD([p], lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.2)
    for value in [0.82, 0.6154, 0.402838]:
        optimizer.step([np.array([1.0])])
        assert p[0] == pytest.approx(value, rel=1e-13)

    # dampening 0.5 (no Nesterov), lr 1, mu 0.5, gradients 2, 4, 8 from p = 0:
    # v1 = 2 (undamped first step), v2 = 1 + 2 = 3, v3 = 1.5 + 4 = 5.5 -> p = -2, -5, -10.5
    q = np.array([0.0])
    damped = SGD([q], lr=1.0, momentum=0.5, dampening=0.5)
    for grad, value in zip([2.0, 4.0, 8.0], [-2.0, -5.0, -10.5]):
        damped.step([np.array([grad])])
        assert q[0] == value


def test_adam_and_adamw_constant_gradient_by_hand():
    # with a constant gradient g the bias-corrected moments are exactly g and g^2, so every
    # Adam step is lr * g / (|g| + eps)
    lr, eps, g = 0.01, 1e-8, -3.0
    p = np.array([2.0])
    optimizer = Adam([p], lr=lr, eps=eps)
    for t in range(1, 4):
        optimizer.step([np.array([g])])
        assert p[0] == pytest.approx(2.0 - t * lr * g / (abs(g) + eps), rel=1e-13)

    wd = 0.5
    q = np.array([2.0])
    decoupled = AdamW([q], lr=lr, eps=eps, weight_decay=wd)
    expected = 2.0
    for _ in range(3):
        decoupled.step([np.array([g])])
        expected = expected * (1 - lr * wd) - lr * g / (abs(g) + eps)
        assert q[0] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("item", ALL_CONFIGS, ids=_config_id)
def test_three_steps_match_written_out_formulas(item, rng):
    cls, config = item
    params = _params(rng)
    start = [p.copy() for p in params]
    grads = _gradient_sequence(rng, 3)
    lr = 0.05
    optimizer = cls(params, lr=lr, **config)
    _run(optimizer, grads)
    if cls is SGD:
        expected = reference_sgd(start, grads, lr, **config)
    else:
        expected = reference_adam(start, grads, lr, decoupled=cls is AdamW,
                                  **{"weight_decay": 1e-2, **config} if cls is AdamW else config)
    for ours, theirs in zip(params, expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)
    assert optimizer.step_count == 3


def test_gd_is_sgd():
    assert issubclass(GD, SGD)
    rng = np.random.default_rng(0)
    params_a, grads = _params(rng), _gradient_sequence(rng, 5)
    params_b = [p.copy() for p in params_a]
    _run(GD(params_a, lr=0.3, momentum=0.5), grads)
    _run(SGD(params_b, lr=0.3, momentum=0.5), grads)
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)


# -- PyTorch as an oracle ----------------------------------------------------------------------


def _torch_optimizer(torch, cls, params, lr, config):
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    torch_cls = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW}[cls]
    return tensors, torch_cls(tensors, lr=lr, **config)


@pytest.mark.parametrize("item", ALL_CONFIGS, ids=_config_id)
def test_twenty_steps_match_torch(item, rng):
    torch = pytest.importorskip("torch")
    cls, config = item
    params = _params(rng)
    lr = 0.03
    tensors, reference = _torch_optimizer(torch, cls, params, lr, config)
    optimizer = cls(params, lr=lr, **config)
    for step, grads in enumerate(_gradient_sequence(rng, 20)):
        if step == 12:  # a schedule changes the learning rate between steps
            optimizer.lr = lr / 3
            reference.param_groups[0]["lr"] = lr / 3
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.tensor(grad)
        reference.step()
        optimizer.step(grads)
        for ours, tensor in zip(params, tensors):
            np.testing.assert_allclose(ours, tensor.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("item", [ALL_CONFIGS[7], ALL_CONFIGS[11], ALL_CONFIGS[-1]], ids=_config_id)
def test_float32_matches_torch_float32(item, rng):
    torch = pytest.importorskip("torch")
    cls, config = item
    params = _params(rng, np.float32)
    tensors, reference = _torch_optimizer(torch, cls, params, 0.03, config)
    optimizer = cls(params, lr=0.03, **config)
    for grads in _gradient_sequence(rng, 20, np.float32):
        for tensor, grad in zip(tensors, grads):
            tensor.grad = torch.tensor(grad)
        reference.step()
        optimizer.step(grads)
    for ours, tensor in zip(params, tensors):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, tensor.detach().numpy(), rtol=2e-5, atol=2e-6)


# -- dtype, in-place updates, allocation -------------------------------------------------------


@pytest.mark.parametrize("item", ALL_CONFIGS, ids=_config_id)
def test_float32_parameters_keep_float32_state(item, rng):
    cls, config = item
    params64 = _params(rng)
    params32 = [p.astype(np.float32) for p in params64]
    grads = _gradient_sequence(rng, 5)
    optimizer = cls(params32, lr=0.01, **config)
    _run(optimizer, [[g.astype(np.float32) for g in step] for step in grads])
    _run(cls(params64, lr=0.01, **config), grads)
    for p32, p64 in zip(params32, params64):
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-6)
    for buffers in optimizer.state_dict()["buffers"].values():
        assert all(buffer.dtype == np.float32 for buffer in buffers)


def test_updates_the_callers_arrays_in_place(rng):
    storage = np.zeros((4, 6))
    view = storage[:, ::2]  # a non-contiguous view: the update must reach the base array
    scalar = np.array(1.0)
    optimizer = Adam([view, scalar], lr=0.1, weight_decay=0.1)
    optimizer.step([np.ones((4, 3)), np.array(2.0)])
    assert optimizer.params[0] is view and optimizer.params[1] is scalar
    np.testing.assert_allclose(storage[:, ::2], -0.1)
    np.testing.assert_array_equal(storage[:, 1::2], 0.0)
    assert scalar == pytest.approx(0.9)


def test_gradients_are_not_modified(rng):
    params = _params(rng)
    grads = _gradient_sequence(rng, 3)
    saved = copy.deepcopy(grads)
    for cls, config in [(SGD, dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
                        (SGD, dict(momentum=0.9, dampening=0.5, weight_decay=0.1)),
                        (Adam, dict(weight_decay=0.1)), (AdamW, dict())]:
        _run(cls(params, lr=0.1, **config), grads)
    for step, saved_step in zip(grads, saved):
        for g, s in zip(step, saved_step):
            np.testing.assert_array_equal(g, s)


@pytest.mark.parametrize("item", [ALL_CONFIGS[7], ALL_CONFIGS[11]], ids=_config_id)
def test_a_step_allocates_nothing_parameter_sized(item):
    tracemalloc = pytest.importorskip("tracemalloc")
    cls, config = item
    params = [np.zeros(200_000)]
    grads = [np.ones(200_000)]
    optimizer = cls(params, lr=0.1, **config)
    optimizer.step(grads)  # first use allocates the second scratch array
    tracemalloc.start()
    try:
        optimizer.step(grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000  # one temporary would be 1.6 MB


# -- state_dict --------------------------------------------------------------------------------


@pytest.mark.parametrize("item", ALL_CONFIGS, ids=_config_id)
def test_resume_from_state_is_bit_identical(item, rng):
    cls, config = item
    params = _params(rng)
    first, second = _gradient_sequence(rng, 10), _gradient_sequence(rng, 10)
    optimizer = cls(params, lr=0.02, **config)
    _run(optimizer, first)
    optimizer.lr = 0.015  # the learning rate is part of the state
    state = optimizer.state_dict()
    saved_params = [p.copy() for p in params]
    _run(optimizer, second)

    resumed_params = [p.copy() for p in saved_params]
    resumed = cls(resumed_params, lr=0.5)  # default hyper-parameters: the state brings them back
    resumed.load_state_dict(state)
    assert resumed.step_count == 10 and resumed.lr == 0.015
    _run(resumed, second)
    for ours, uninterrupted in zip(resumed_params, params):
        np.testing.assert_array_equal(ours, uninterrupted)
    assert resumed.state_dict()["hyperparameters"] == optimizer.state_dict()["hyperparameters"]


def test_state_is_plain_values_and_survives_json_and_pickle(rng):
    params = _params(rng)
    optimizer = Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1)
    _run(optimizer, _gradient_sequence(rng, 3))
    state = optimizer.state_dict()
    assert set(state) == {"algorithm", "step", "lr", "hyperparameters", "buffers"}
    assert state["step"] == 3 and type(state["step"]) is int and type(state["lr"]) is float
    assert set(state["buffers"]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}

    # a JSON round trip of everything but the arrays turns tuples into lists
    arrays = state["buffers"]
    as_json = json.loads(json.dumps({k: v for k, v in state.items() if k != "buffers"}))
    as_json["buffers"] = {name: [a.tolist() for a in values] for name, values in arrays.items()}
    for restored_state in (as_json, pickle.loads(pickle.dumps(state))):
        restored = Adam([p.copy() for p in params])
        restored.load_state_dict(restored_state)
        assert restored.betas == (0.9, 0.999) and restored.amsgrad and restored.weight_decay == 0.1
        for name, values in restored.state_dict()["buffers"].items():
            for ours, saved in zip(values, arrays[name]):
                np.testing.assert_array_equal(ours, saved)


def test_state_arrays_are_copies(rng):
    params = _params(rng)
    optimizer = SGD(params, lr=0.1, momentum=0.9)
    _run(optimizer, _gradient_sequence(rng, 2))
    state = optimizer.state_dict()
    snapshot = copy.deepcopy(state)
    _run(optimizer, _gradient_sequence(rng, 2))
    for a, b in zip(state["buffers"]["momentum_buffer"], snapshot["buffers"]["momentum_buffer"]):
        np.testing.assert_array_equal(a, b)
    # and loading copies in: changing the dict afterwards does not reach the optimiser
    other = SGD([p.copy() for p in params], lr=0.1, momentum=0.9)
    other.load_state_dict(state)
    state["buffers"]["momentum_buffer"][0][...] = 123.0
    assert not np.any(other.state_dict()["buffers"]["momentum_buffer"][0] == 123.0)


def test_load_state_rejects_mismatches_and_changes_nothing(rng):
    params = _params(rng)
    sgd = SGD(params, lr=0.1, momentum=0.9)
    _run(sgd, _gradient_sequence(rng, 2))
    state = sgd.state_dict()

    adam = Adam([p.copy() for p in params])
    with pytest.raises(ValueError, match="'sgd'"):
        adam.load_state_dict(state)
    with pytest.raises(ValueError, match="'adam'"):
        AdamW([p.copy() for p in params]).load_state_dict(adam.state_dict())

    other_shapes = SGD([np.zeros((3, 4)), np.zeros(6), np.zeros(())], lr=0.2)
    with pytest.raises(ValueError, match=r"\[1\] has shape \(5,\) but params\[1\] has shape \(6,\)"):
        other_shapes.load_state_dict(state)
    assert other_shapes.lr == 0.2 and other_shapes.step_count == 0 and other_shapes.momentum == 0.0

    fewer = SGD(params[:2], lr=0.1)
    with pytest.raises(ValueError, match="list of 2 arrays"):
        fewer.load_state_dict(state)

    broken = copy.deepcopy(state)
    broken["hyperparameters"]["momentum"] = 1.5
    with pytest.raises(ValueError, match="momentum"):
        SGD([p.copy() for p in params]).load_state_dict(broken)
    del broken["step"]
    with pytest.raises(ValueError, match="step"):
        SGD([p.copy() for p in params]).load_state_dict(broken)
    with pytest.raises(TypeError):
        SGD([p.copy() for p in params]).load_state_dict([1, 2])


def test_gd_and_sgd_states_are_interchangeable(rng):
    params = _params(rng)
    gd = GD(params, lr=0.1, momentum=0.5)
    _run(gd, _gradient_sequence(rng, 2))
    sgd = SGD([p.copy() for p in params])
    sgd.load_state_dict(gd.state_dict())
    assert sgd.momentum == 0.5 and sgd.step_count == 2


# -- learning rate -----------------------------------------------------------------------------


def test_lr_setter_is_used_by_the_next_step():
    p = np.array([1.0])
    optimizer = SGD([p], lr=0.1)
    optimizer.step([np.array([1.0])])
    assert p[0] == pytest.approx(0.9)
    optimizer.lr = 0.25
    assert optimizer.lr == 0.25
    optimizer.step([np.array([1.0])])
    assert p[0] == pytest.approx(0.65)
    optimizer.lr = 0  # allowed: a schedule may end at 0
    optimizer.step([np.array([1.0])])
    assert p[0] == pytest.approx(0.65)
    optimizer.lr = np.float32(0.5)
    assert type(optimizer.lr) is float
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="lr"):
            optimizer.lr = bad
    with pytest.raises(TypeError, match="lr"):
        optimizer.lr = "0.1"
    assert optimizer.lr == 0.5


# -- argument validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, options, message",
    [
        (SGD, dict(lr=-0.01), "lr"),
        (SGD, dict(lr=math.inf), "lr"),
        (SGD, dict(momentum=1.0), "momentum"),
        (SGD, dict(momentum=-0.1), "momentum"),
        (SGD, dict(nesterov=True), "nesterov"),
        (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "dampening"),
        (SGD, dict(dampening=1.5), "dampening"),
        (SGD, dict(weight_decay=-1e-4), "weight_decay"),
        (Adam, dict(lr=-1e-3), "lr"),
        (Adam, dict(betas=(1.0, 0.999)), r"betas\[0\]"),
        (Adam, dict(betas=(0.9, -0.1)), r"betas\[1\]"),
        (Adam, dict(betas=(0.9, 1.0)), r"betas\[1\]"),
        (Adam, dict(eps=-1e-8), "eps"),
        (Adam, dict(weight_decay=-0.1), "weight_decay"),
        (AdamW, dict(weight_decay=math.nan), "weight_decay"),
        (AdamW, dict(betas=(-0.5, 0.9)), r"betas\[0\]"),
    ],
)
def test_bad_hyperparameters_raise_value_error(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls([np.zeros(3)], **options)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="betas"):
        Adam([np.zeros(3)], betas=0.9)
    with pytest.raises(TypeError, match="betas"):
        Adam([np.zeros(3)], betas=(0.9, 0.99, 0.999))
    with pytest.raises(TypeError, match="nesterov"):
        SGD([np.zeros(3)], momentum=0.9, nesterov="yes")
    with pytest.raises(TypeError, match="amsgrad"):
        Adam([np.zeros(3)], amsgrad=1)


def test_bad_params():
    with pytest.raises(ValueError, match="empty"):
        SGD([])
    with pytest.raises(TypeError, match="single array"):
        SGD(np.zeros(3))
    with pytest.raises(TypeError, match=r"params\[1\] must be a NumPy array"):
        SGD([np.zeros(3), [1.0, 2.0]])
    with pytest.raises(TypeError, match="float32 or float64"):
        SGD([np.zeros(3, dtype=np.int64)])
    weights = np.zeros(3)
    with pytest.raises(ValueError, match="more than once"):
        SGD([weights, weights])
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD([frozen])


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_bad_grads(cls):
    params = [np.zeros((2, 3)), np.zeros(4)]
    optimizer = cls(params, lr=0.1)
    with pytest.raises(ValueError, match="grads has 1 array"):
        optimizer.step([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"grads\[1\] has shape \(5,\) but params\[1\] has shape \(4,\)"):
        optimizer.step([np.zeros((2, 3)), np.zeros(5)])
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(3, 2\)"):
        optimizer.step([np.zeros((3, 2)), np.zeros(4)])
    with pytest.raises(TypeError, match="single array"):
        optimizer.step(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="real numbers"):
        optimizer.step([np.zeros((2, 3), dtype=complex), np.zeros(4)])
    # nothing moved and no step was counted
    assert optimizer.step_count == 0
    assert all(not p.any() for p in params)
    optimizer.step(([[1, 2, 3], [4, 5, 6]], np.ones(4)))  # array-likes and a tuple are fine
    assert optimizer.step_count == 1


# -- gradient clipping -------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(max_norm, dtype, rng):
    torch = pytest.importorskip("torch")
    grads = [np.asarray(rng.normal(size=shape) * 0.7, dtype=dtype) for shape in SHAPES]
    tensors = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True) for g in grads]
    for tensor, grad in zip(tensors, grads):
        tensor.grad = torch.tensor(grad)
    expected_norm = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    before = [g.copy() for g in grads]
    total = clip_grad_norm(grads, max_norm)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    assert total == pytest.approx(expected_norm, rel=tolerance)
    assert total == pytest.approx(math.sqrt(sum(float(np.sum(b.astype(float) ** 2)) for b in before)),
                                  rel=tolerance)
    for grad, tensor, original in zip(grads, tensors, before):
        assert grad.dtype == dtype
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=tolerance, atol=0)
        if max_norm > total:
            np.testing.assert_array_equal(grad, original)  # untouched, not multiplied by ~1
    clipped = math.sqrt(sum(float(np.sum(g.astype(float) ** 2)) for g in grads))
    assert clipped <= max_norm * (1 + tolerance)


def test_clip_grad_norm_by_hand_and_edge_cases():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    assert clip_grad_norm(grads, 2.5) == 5.0
    np.testing.assert_allclose(grads[0], [1.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(grads[1], [[2.0]], rtol=1e-6)
    zeros = [np.zeros(3)]
    assert clip_grad_norm(zeros, 1.0) == 0.0 and not zeros[0].any()
    assert clip_grad_norm([], 1.0) == 0.0
    # a float32 sum of squares overflows; the norm is still found (in float64) and clipping works
    huge = [np.full(4, 1e20, dtype=np.float32)]
    assert clip_grad_norm(huge, 1.0) == pytest.approx(2e20, rel=1e-6)
    assert huge[0].dtype == np.float32
    np.testing.assert_allclose(huge[0], 0.5, rtol=1e-5)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_clip_grad_norm_non_finite_raises_and_leaves_grads(bad_value):
    grads = [np.ones(3), np.array([1.0, bad_value])]
    with pytest.raises(FloatingPointError, match=r"total gradient norm is (nan|inf).*grads\[1\]"):
        clip_grad_norm(grads, 1.0)
    np.testing.assert_array_equal(grads[0], 1.0)


def test_clip_grad_norm_bad_arguments():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_norm"):
            clip_grad_norm([np.ones(3)], bad)
    with pytest.raises(TypeError, match="single array"):
        clip_grad_norm(np.ones(3), 1.0)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        clip_grad_norm([[1.0, 2.0]], 1.0)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        clip_grad_norm([np.ones(3, dtype=np.int64)], 1.0)


def test_repr_names_the_options():
    text = repr(SGD([np.zeros(2)], lr=0.1, momentum=0.9))
    assert text.startswith("SGD(") and "lr=0.1" in text and "momentum=0.9" in text


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_overflow_is_silent_and_shows_in_the_parameters(cls):
    # warnings are errors under this project's pytest settings, so a RuntimeWarning would fail here
    p = np.array([1e308, -1e308])
    optimizer = cls([p], lr=1e308)
    optimizer.step([np.array([-1e308, np.nan])])
    assert not np.isfinite(p).any()
