"""crossent.experiments: each claim is decided on the numbers crossent measures, and can come out false.

``worked-example`` and ``slowdown`` run in full and are recomputed here
independently in plain Python (math.exp, hand-written gradients). The MNIST
experiments run in their "ci" budget on ``../shared/data/mnist`` beside the
repository: skipped when it is absent, except in CI (``CI=true``), where a
missing folder is an error. Their full-budget recipes take minutes and are
run by hand (``python -c "from crossent.experiments import run_experiment;
print(run_experiment('mnist-800'))"``).

A claim that the numbers do not support must give ``holds == False``: the
tests shrink a budget (or change a published figure) with ``monkeypatch`` and
check exactly that.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from crossent import experiments
from crossent.datasets import DatasetNotFoundError
from crossent.experiments import EXPERIMENTS, ExperimentResult, flip_labels, run_experiment

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def mnist_dir():
    present = all((MNIST_DIR / name).is_file() or (MNIST_DIR / f"{name}.gz").is_file() for name in MNIST_FILES)
    if not present:
        message = f"MNIST IDX files not found in {MNIST_DIR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI runs with shared/ beside the clone, so this is an error there")
        pytest.skip(message)
    return MNIST_DIR


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# --------------------------------------------------------------------------- worked-example


def test_worked_example_equals_the_published_values_and_an_independent_computation():
    result = run_experiment("worked-example")
    assert isinstance(result, ExperimentResult) and result.holds
    assert result.name == "worked-example" and result.budget == "full" and result.figures == []
    logits, label = [1.0, 2.0, 0.5], 1
    exponentials = [math.exp(value) for value in logits]
    probabilities = [value / sum(exponentials) for value in exponentials]
    gradient = [p - (index == label) for index, p in enumerate(probabilities)]
    numbers = result.numbers
    assert numbers["softmax"] == [round(p, 4) for p in probabilities] == [0.2312, 0.6285, 0.1402]
    assert numbers["loss"] == round(-math.log(probabilities[label]), 4) == 0.4644
    assert numbers["gradient"] == [round(g, 4) for g in gradient] == [0.2312, -0.3715, 0.1402]
    assert numbers["loss_bits"] == round(-math.log2(probabilities[label]), 4)
    assert "0.6285" in result.table and "-0.3715" in result.table
    json.dumps(numbers)  # plain data


def test_worked_example_fails_against_a_different_published_value(monkeypatch):
    published = {**experiments.PUBLISHED["worked-example"], "loss": 0.4654}
    monkeypatch.setitem(experiments.PUBLISHED, "worked-example", published)
    result = run_experiment("worked-example")
    assert not result.holds
    assert result.numbers["agrees"] == {"softmax": True, "loss": False, "gradient": True}
    assert "DOES NOT HOLD" in str(result)


# --------------------------------------------------------------------------- slowdown


def _epochs_below(cost: str, *, weight=2.0, bias=2.0, lr=0.15, threshold=0.1, cap=2000):
    """Nielsen's neuron in plain Python: the first epoch whose output is below ``threshold``."""
    for epoch in range(cap + 1):
        a = _sigmoid(weight + bias)  # x = 1, target 0
        if a < threshold:
            return epoch
        # quadratic (a - 0)^2 / 2: dC/dz = a * a (1 - a); cross-entropy: dC/dz = a - 0
        dz = a * a * (1 - a) if cost == "quadratic" else a
        weight, bias = weight - lr * dz, bias - lr * dz
    return None


def test_slowdown_cross_entropy_needs_under_a_quarter_of_the_quadratic_epochs():
    result = run_experiment("slowdown", budget="full")
    numbers = result.numbers
    assert result.holds
    epochs_quadratic, epochs_ce = numbers["epochs_quadratic"], numbers["epochs_cross_entropy"]
    assert epochs_quadratic == _epochs_below("quadratic")
    assert epochs_ce == _epochs_below("cross_entropy")
    assert epochs_ce * 4 < epochs_quadratic
    assert numbers["initial_output"] == pytest.approx(_sigmoid(4.0)) and numbers["initial_output"] > 0.98
    a = numbers["initial_output"]
    assert numbers["initial_logit_gradient_quadratic"] == pytest.approx(a * a * (1 - a), rel=1e-12)
    assert numbers["initial_logit_gradient_cross_entropy"] == pytest.approx(a, rel=1e-12)
    assert numbers["initial_cost_quadratic"] == pytest.approx(a * a / 2, rel=1e-12)
    assert "sigma'(z) cancels" in result.explanation
    assert str(epochs_quadratic) in result.table and str(epochs_ce) in result.table


def test_slowdown_claim_fails_when_the_numbers_do_not_support_it(monkeypatch):
    settings = EXPERIMENTS["slowdown"].budgets["full"]
    # too few epochs for either cost to get there
    monkeypatch.setitem(EXPERIMENTS["slowdown"].budgets, "full", {**settings, "max_epochs": 20})
    result = run_experiment("slowdown")
    assert result.numbers["epochs_cross_entropy"] is None and not result.holds
    assert "> 20" in result.table
    # a stronger claim than the measurements support: 20 times faster
    monkeypatch.setitem(EXPERIMENTS["slowdown"].budgets, "full", {**settings, "ratio": 20})
    result = run_experiment("slowdown")
    assert result.numbers["epochs_cross_entropy"] * 20 >= result.numbers["epochs_quadratic"]
    assert not result.holds


def test_slowdown_writes_its_figure(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_experiment("slowdown", out_dir=tmp_path / "figures")
    assert result.figures == [tmp_path / "figures" / "slowdown-output-and-cost.png"]
    assert result.figures[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(result.figures[0]) in str(result)


# --------------------------------------------------------------------------- arguments and data


def test_run_experiment_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="name must be one of 'worked-example'"):
        run_experiment("mnist-1000")
    with pytest.raises(ValueError, match="budget must be one of 'full', 'ci'"):
        run_experiment("slowdown", budget="quick")
    with pytest.raises(TypeError, match="seed"):
        run_experiment("slowdown", seed=1.5)
    with pytest.raises(ValueError, match="seed"):
        run_experiment("slowdown", seed=-1)
    with pytest.raises(TypeError, match="data_dir"):
        run_experiment("slowdown", data_dir=3)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="out_dir"):
        run_experiment("slowdown", out_dir=tmp_path / "file")


def test_every_experiment_has_both_budgets():
    assert list(EXPERIMENTS) == ["worked-example", "slowdown", "mnist-linear", "mnist-800", "noisy-labels",
                                 "mse-vs-ce"]
    for name, experiment in EXPERIMENTS.items():
        assert experiment.name == name and set(experiment.budgets) == {"full", "ci"}


def test_missing_mnist_raises_the_loaders_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte"):
        run_experiment("mnist-linear", data_dir=tmp_path / "nothing-here", budget="ci")


def test_flip_labels_changes_exactly_the_fraction_to_other_classes():
    y = np.arange(10_000) % 10
    noisy = flip_labels(y, 0.4, 10, seed=7)
    changed = noisy != y
    assert changed.sum() == 4000 and noisy.min() >= 0 and noisy.max() <= 9
    assert np.array_equal(noisy, flip_labels(y, 0.4, 10, seed=7))
    assert not np.array_equal(noisy, flip_labels(y, 0.4, 10, seed=8))
    # symmetric noise: each of the 9 other classes about equally often (400 of 4000 expected per offset)
    offsets = np.bincount((noisy[changed] - y[changed]) % 10, minlength=10)
    assert offsets[0] == 0 and offsets[1:].min() > 350 and offsets[1:].max() < 550
    assert np.array_equal(y, np.arange(10_000) % 10)  # the input is not modified


# --------------------------------------------------------------------------- MNIST, "ci" budget


def test_mnist_linear_ci(mnist_dir):
    result = run_experiment("mnist-linear", data_dir=mnist_dir, budget="ci")
    numbers = result.numbers
    assert numbers["train_rows"] == 20000 and numbers["threshold"] == 0.90
    assert numbers["test_accuracy"] >= 0.90 and result.holds
    assert numbers["test_error"] == pytest.approx(1 - numbers["test_accuracy"])
    assert numbers["test_error"] < numbers["lecun_1998_error"]
    assert "LeCun" in result.table


def test_a_claim_that_the_run_misses_does_not_hold(mnist_dir, monkeypatch):
    tiny = {**EXPERIMENTS["mnist-linear"].budgets["ci"], "train_rows": 30, "epochs": 1, "lr": 1e-3,
            "batch_size": 30}
    monkeypatch.setitem(EXPERIMENTS["mnist-linear"].budgets, "ci", tiny)
    result = run_experiment("mnist-linear", data_dir=mnist_dir, budget="ci")
    assert result.numbers["test_accuracy"] < 0.90
    assert not result.holds


def test_mnist_800_ci(mnist_dir):
    result = run_experiment("mnist-800", data_dir=mnist_dir, budget="ci")
    numbers = result.numbers
    assert numbers["train_rows"] == 10000 and numbers["hidden"] == 128 and numbers["threshold"] == 0.93
    assert numbers["test_accuracy"] >= 0.93 and result.holds


def test_noisy_labels_ci_robust_losses_beat_cross_entropy(mnist_dir):
    result = run_experiment("noisy-labels", data_dir=mnist_dir, budget="ci")
    numbers, runs = result.numbers, result.numbers["runs"]
    assert set(runs) == {"CE", "GCE", "SCE", "focal"}
    assert numbers["flipped_fraction"] == 0.4 and numbers["test_rows"] == 10000
    assert runs["GCE"]["clean_test_accuracy"] > runs["CE"]["clean_test_accuracy"]
    assert runs["SCE"]["clean_test_accuracy"] > runs["CE"]["clean_test_accuracy"]
    assert result.holds
    # cross-entropy fits the noise: it agrees with the noisy labels more than the robust losses do
    assert runs["CE"]["noisy_train_accuracy"] > runs["GCE"]["noisy_train_accuracy"]
    json.dumps(numbers)


def test_mse_vs_ce_ci(mnist_dir):
    result = run_experiment("mse-vs-ce", data_dir=mnist_dir, budget="ci")
    ce, quadratic = result.numbers["cross_entropy"], result.numbers["quadratic"]
    assert len(ce["test_accuracy_per_epoch"]) == len(quadratic["test_accuracy_per_epoch"]) == 3
    assert ce["test_accuracy_per_epoch"][0] > quadratic["test_accuracy_per_epoch"][0]
    assert ce["test_accuracy"] > quadratic["test_accuracy"]
    # the last epoch's recorded test accuracy is the final evaluation
    assert ce["test_accuracy"] == pytest.approx(ce["test_accuracy_per_epoch"][-1])
    assert result.holds
