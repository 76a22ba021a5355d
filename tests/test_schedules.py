import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossent.optim import (
    SCHEDULE_NAMES,
    SGD,
    Schedule,
    constant,
    cosine,
    linear,
    make_schedule,
    schedules,
    step,
    warmup,
)

# -- closed forms at chosen steps --------------------------------------------------------------


def test_constant():
    schedule = constant(0.3)
    assert [schedule.lr_at(s) for s in (0, 1, 10**9)] == [0.3, 0.3, 0.3]
    assert schedule(7) == 0.3 and isinstance(schedule, Schedule)


def test_step_closed_form():
    schedule = step(0.8, step_size=3, gamma=0.5)
    expected = {0: 0.8, 2: 0.8, 3: 0.4, 5: 0.4, 6: 0.2, 9: 0.1, 30: 0.8 * 0.5**10}
    for s, value in expected.items():
        assert schedule.lr_at(s) == pytest.approx(value, rel=1e-15)
    assert step(0.8, 1, gamma=1.0).lr_at(100) == 0.8


def test_cosine_closed_form():
    lr, m, total = 0.5, 0.02, 8
    schedule = cosine(lr, total, min_lr=m)
    assert schedule.lr_at(0) == lr
    # cos(pi/4) = sqrt(2)/2, cos(pi/2) = 0, cos(3pi/4) = -sqrt(2)/2
    assert schedule.lr_at(2) == pytest.approx(m + (lr - m) * (1 + math.sqrt(0.5)) / 2, rel=1e-15)
    assert schedule.lr_at(4) == pytest.approx((lr + m) / 2, rel=1e-15)
    assert schedule.lr_at(6) == pytest.approx(m + (lr - m) * (1 - math.sqrt(0.5)) / 2, rel=1e-14)
    assert schedule.lr_at(8) == pytest.approx(m, rel=1e-15)
    assert schedule.lr_at(9) == m and schedule.lr_at(1000) == m  # held, not periodic


def test_linear_closed_form():
    schedule = linear(1.0, total_steps=5, end_lr=0.5)
    assert [schedule.lr_at(s) for s in range(7)] == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.5], rel=1e-15)
    rising = linear(0.1, total_steps=2, end_lr=0.3)
    assert [rising.lr_at(s) for s in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.3], rel=1e-15)


def test_warmup_ramps_then_shifts():
    then = cosine(0.6, total_steps=10, min_lr=0.1)
    schedule = warmup(5, then)
    assert schedule.lr == 0.6
    ramp = [schedule.lr_at(s) for s in range(5)]
    assert ramp == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5], rel=1e-15)  # 0.6 * (s + 1) / 6
    for s in range(5, 20):
        assert schedule.lr_at(s) == then.lr_at(s - 5)
    assert schedule.lr_at(5) == 0.6 and schedule.lr_at(15) == pytest.approx(0.1)
    nested = warmup(2, warmup(2, constant(0.9)))
    assert [nested.lr_at(s) for s in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.6, 0.9])


def test_schedules_are_pure_functions_of_step():
    schedule = warmup(3, step(1.0, 2, 0.5))
    forward = [schedule.lr_at(s) for s in range(12)]
    backward = [schedule.lr_at(s) for s in reversed(range(12))][::-1]
    assert forward == backward
    assert schedule.lr_at(np.int64(4)) == schedule.lr_at(4)


# -- PyTorch's schedulers where they coincide -------------------------------------------------


def _torch_lrs(torch, make_scheduler, lr, n_steps):
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    values = []
    for _ in range(n_steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize("step_size, gamma", [(1, 0.9), (4, 0.1), (7, 0.5), (3, 1.0)])
def test_step_matches_torch_steplr(step_size, gamma):
    torch = pytest.importorskip("torch")
    expected = _torch_lrs(torch, lambda s, o: s.StepLR(o, step_size, gamma), 0.2, 30)
    ours = [step(0.2, step_size, gamma).lr_at(s) for s in range(30)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


@pytest.mark.parametrize("total, min_lr", [(10, 0.0), (25, 0.01), (1, 0.0)])
def test_cosine_matches_torch_cosine_annealing(total, min_lr):
    torch = pytest.importorskip("torch")
    lr = 0.1
    expected = _torch_lrs(torch, lambda s, o: s.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), lr, total + 1)
    ours = [cosine(lr, total, min_lr).lr_at(s) for s in range(total + 1)]
    # torch updates recursively; the values agree to rounding, absolutely near the end where lr -> min_lr
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("end_lr", [0.0, 0.02, 0.07])  # LinearLR needs end_factor <= 1
def test_linear_matches_torch_linearlr(end_lr):
    torch = pytest.importorskip("torch")
    lr, total = 0.1, 12
    expected = _torch_lrs(
        torch, lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=end_lr / lr, total_iters=total), lr, 20
    )
    ours = [linear(lr, total, end_lr).lr_at(s) for s in range(20)]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-14)


# -- properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-6, 10.0),
    fraction=st.floats(0.0, 1.0),
    total=st.integers(1, 10_000),
    s=st.integers(0, 20_000),
)
def test_decays_stay_between_their_ends_and_never_increase(lr, fraction, total, s):
    end = lr * fraction
    for schedule in (cosine(lr, total, min_lr=end), linear(lr, total, end_lr=end)):
        value, following = schedule.lr_at(s), schedule.lr_at(s + 1)
        assert end * (1 - 1e-12) <= value <= lr * (1 + 1e-12)
        assert following <= value * (1 + 1e-12)


# -- make_schedule -----------------------------------------------------------------------------


def test_make_schedule_builds_every_name():
    assert SCHEDULE_NAMES == ("constant", "step", "cosine", "linear", "warmup-cosine", "warmup-linear")
    total = 100
    built = {name: make_schedule(name, 0.1, total) for name in SCHEDULE_NAMES}
    assert built["constant"].lr_at(99) == 0.1
    assert built["step"].lr_at(32) == 0.1 and built["step"].lr_at(33) == pytest.approx(0.01)
    assert built["cosine"].lr_at(50) == pytest.approx(0.05) and built["cosine"].lr_at(100) == 0.0
    assert built["linear"].lr_at(25) == pytest.approx(0.075)
    # default warm-up: 5 steps (5 %), then the decay over the remaining 95, ending at step 100
    for name in ("warmup-cosine", "warmup-linear"):
        schedule = built[name]
        assert schedule.lr_at(0) == pytest.approx(0.1 / 6)
        assert schedule.lr_at(5) == 0.1
        assert schedule.lr_at(100) == pytest.approx(0.0, abs=1e-15)
        assert schedule.lr_at(99) > 0


def test_make_schedule_options():
    schedule = make_schedule("step", 1.0, 100, step_size=10, gamma=0.5)
    assert schedule.lr_at(25) == 0.25
    schedule = make_schedule("warmup-cosine", 1.0, 20, warmup_steps=4, min_lr=0.1)
    assert schedule.lr_at(3) == pytest.approx(0.8)
    assert schedule.lr_at(12) == pytest.approx(0.55)  # the middle of the 16-step cosine
    assert schedule.lr_at(20) == pytest.approx(0.1)
    schedule = make_schedule("warmup-linear", 1.0, 12, warmup_steps=2, end_lr=0.5)
    assert schedule.lr_at(7) == pytest.approx(0.75)


def test_make_schedule_errors():
    with pytest.raises(ValueError, match="'warmup-cosine'"):
        make_schedule("cosine-warmup", 0.1, 10)
    with pytest.raises(ValueError, match="schedule name"):
        make_schedule(None, 0.1, 10)
    with pytest.raises(TypeError, match="unexpected option 'gamma'.*min_lr"):
        make_schedule("cosine", 0.1, 10, gamma=0.5)
    with pytest.raises(TypeError, match="takes no options"):
        make_schedule("constant", 0.1, 10, min_lr=0.0)
    with pytest.raises(ValueError, match="warmup_steps=10 must be smaller than total_steps=10"):
        make_schedule("warmup-linear", 0.1, 10, warmup_steps=10)
    with pytest.raises(ValueError, match="total_steps"):
        make_schedule("warmup-cosine", 0.1, 1)
    with pytest.raises(ValueError, match="total_steps"):
        make_schedule("cosine", 0.1, 0)
    with pytest.raises(ValueError, match="lr"):
        make_schedule("linear", -0.1, 10)


# -- argument validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: constant(0.0), "lr"),
        (lambda: constant(-1.0), "lr"),
        (lambda: constant(math.nan), "lr"),
        (lambda: constant(math.inf), "lr"),
        (lambda: step(0.1, 0), "step_size"),
        (lambda: step(0.1, -3), "step_size"),
        (lambda: step(0.1, 2, gamma=0.0), "gamma"),
        (lambda: step(0.1, 2, gamma=1.5), "gamma"),
        (lambda: step(0.1, 2, gamma=-0.5), "gamma"),
        (lambda: cosine(0.1, 0), "total_steps"),
        (lambda: cosine(0.1, 10, min_lr=0.2), "min_lr"),
        (lambda: cosine(0.1, 10, min_lr=-0.01), "min_lr"),
        (lambda: linear(0.1, -1), "total_steps"),
        (lambda: linear(0.1, 5, end_lr=-1.0), "end_lr"),
        (lambda: linear(0.1, 5, end_lr=math.inf), "end_lr"),
        (lambda: warmup(0, constant(0.1)), "warmup_steps"),
    ],
)
def test_bad_arguments_raise_value_error(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_argument_types():
    with pytest.raises(TypeError, match="step_size"):
        step(0.1, 2.5)
    with pytest.raises(TypeError, match="total_steps"):
        cosine(0.1, True)
    with pytest.raises(TypeError, match="then"):
        warmup(3, 0.1)
    with pytest.raises(TypeError, match="lr"):
        constant("0.1")
    schedule = constant(0.1)
    with pytest.raises(ValueError, match="step"):
        schedule.lr_at(-1)
    with pytest.raises(TypeError, match="step"):
        schedule.lr_at(1.0)


# -- driving an optimiser ---------------------------------------------------------------------


def test_schedule_drives_an_optimiser_and_resumes_exactly(rng):
    schedule = make_schedule("warmup-cosine", 0.2, 30, warmup_steps=5)
    gradients = [rng.normal(size=4) for _ in range(30)]

    def run(optimizer, steps):
        for g in steps:
            optimizer.lr = schedule.lr_at(optimizer.step_count)
            optimizer.step([g])

    weights = np.zeros(4)
    uninterrupted = SGD([weights], momentum=0.9)
    run(uninterrupted, gradients)

    first = np.zeros(4)
    optimizer = SGD([first], momentum=0.9)
    run(optimizer, gradients[:13])
    resumed = SGD([first.copy()], momentum=0.9)
    resumed.load_state_dict(optimizer.state_dict())
    run(resumed, gradients[13:])
    np.testing.assert_array_equal(resumed.params[0], weights)
    assert resumed.lr == schedule.lr_at(29)


def test_module_exports():
    assert set(schedules.__all__) >= {"constant", "step", "cosine", "linear", "warmup", "make_schedule"}
    assert "lr" in repr(cosine(0.1, 5))
