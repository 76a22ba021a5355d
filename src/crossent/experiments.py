r"""Reproducible experiments that check published claims about cross-entropy with crossent itself.

Each experiment trains or computes with crossent, collects its measurements
in ``numbers`` and decides its claim from those numbers -- never from copies
of the expected results -- so a regression in the library turns a claim that
held into one that does not (``holds == False``).

======================  =====================================================================================
name                    claim
======================  =====================================================================================
``worked-example``      softmax, loss and gradient of logits (1, 2, 0.5) with label 1 equal the published
                        values to 4 decimals
``slowdown``            Nielsen ch. 3: a saturated sigmoid neuron trained with cross-entropy gets its output
                        below 0.1 in fewer than a quarter of the epochs the quadratic cost needs
``mnist-linear``        softmax regression reaches >= 92.5% MNIST test accuracy (LeCun et al. 1998's linear
                        classifier: 12.0% error)
``mnist-800``           a 784-800-10 ReLU MLP with cross-entropy reaches >= 98.4% (Simard et al. 2003: 1.6%
                        error)
``noisy-labels``        with 40% of the training labels flipped, GCE and SCE each beat plain cross-entropy
                        on the clean test set (Zhang & Sabuncu 2018; Wang et al. 2019)
``mse-vs-ce``           the same MLP learns faster and ends more accurate with cross-entropy than with the
                        quadratic cost
======================  =====================================================================================

Every experiment has two budgets: ``"full"`` (the claim as published, minutes
of CPU for the MNIST ones) and ``"ci"`` (a much smaller run with its own,
weaker threshold, seconds). The settings of each budget are in
``EXPERIMENTS[name].budgets[budget]``; the claim a budget checks is part of
its settings.

The MNIST experiments read the data with
:func:`crossent.datasets.load_mnist` ``(data_dir, download=False)``
(``data_dir``, else ``$CROSSENT_DATA``, else the cache), so they never
download; a missing data set raises the loader's
:class:`~crossent.datasets.DatasetNotFoundError`, which says where to put
the files. The arrays last loaded are kept (read-only) for the next
experiment of the same process, so a sequence of runs reads the files once.

Examples
--------
>>> from crossent.experiments import run_experiment
>>> result = run_experiment("worked-example")
>>> result.holds, result.numbers["loss"]
(True, 0.4644)
"""

from __future__ import annotations

import functools
import math
import numbers as numbers_module
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ._typing import PathLike
from ._validation import _describe

__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "run_experiment", "flip_labels", "BUDGETS", "PUBLISHED"]

#: the budgets every experiment defines
BUDGETS = ("full", "ci")

#: published figures the experiments compare against (the claims are checked on crossent's own numbers)
PUBLISHED: dict[str, Any] = {
    # the softmax / cross-entropy worked example: logits (1, 2, 0.5), true class 1
    "worked-example": {
        "softmax": (0.2312, 0.6285, 0.1402),
        "loss": 0.4644,
        "gradient": (0.2312, -0.3715, 0.1402),
    },
    # LeCun, Bottou, Bengio & Haffner (1998), Table of results: "linear classifier (1-layer NN)"
    "lecun-1998-linear-error": 0.12,
    # Simard, Steinkraus & Platt (2003), 2-layer MLP, 800 hidden units, cross-entropy, no distortions
    "simard-2003-mlp-800-error": 0.016,
}


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` measured and whether the claim held.

    Attributes
    ----------
    name : str
        The experiment's name in :data:`EXPERIMENTS`.
    claim : str
        The claim, as one sentence, with the thresholds of the budget that ran.
    holds : bool
        Whether the measured ``numbers`` support the claim.
    numbers : dict
        Every measurement the verdict was computed from (plain floats, ints,
        lists and dicts: JSON-serialisable).
    table : str
        The measurements as a printable plain-text table.
    figures : list of pathlib.Path
        PNG files written to ``out_dir`` (empty without one).
    explanation : str
        Why the result comes out the way it does (may be empty).
    budget : str
        ``"full"`` or ``"ci"``.
    """

    name: str
    claim: str
    holds: bool
    numbers: dict[str, Any]
    table: str
    figures: list[Path] = field(default_factory=list)
    explanation: str = ""
    budget: str = "full"

    def __str__(self) -> str:
        verdict = "HOLDS" if self.holds else "DOES NOT HOLD"
        lines = [f"{self.name} ({self.budget} budget): {verdict}", f"claim: {self.claim}", "", self.table]
        if self.explanation:
            lines += ["", self.explanation]
        if self.figures:
            lines += ["", "figures:"] + [f"  {path}" for path in self.figures]
        return "\n".join(lines)


@dataclass(frozen=True)
class Experiment:
    """One entry of :data:`EXPERIMENTS`: a name, a one-line summary, its budgets and the code that runs it.

    ``budgets`` maps ``"full"`` and ``"ci"`` to the settings handed to
    ``run`` (network size, epochs, learning rate, the claim's threshold...).
    """

    name: str
    summary: str
    needs_mnist: bool
    budgets: dict[str, dict[str, Any]]
    run: Callable[[_Context], ExperimentResult] = field(repr=False)


# --------------------------------------------------------------------------- shared helpers


class _Context:
    """What an experiment's code gets: its settings and where to read data and write figures."""

    def __init__(self, name: str, budget: str, settings: dict, seed: int, data_dir, out_dir: Path | None):
        self.name, self.budget, self.settings, self.seed = name, budget, settings, seed
        self.data_dir, self.out_dir = data_dir, out_dir

    def mnist(self):
        """(X_train, y_train, X_test, y_test), read-only, float32 in [0, 1]."""
        return _load_mnist(None if self.data_dir is None else str(self.data_dir),
                           os.environ.get("CROSSENT_DATA", ""))

    def figure_path(self, stem: str) -> Path | None:
        return None if self.out_dir is None else self.out_dir / f"{self.name}-{stem}.png"

    def result(self, *, claim: str, holds: bool, numbers: dict, table: str, figures=(),
               explanation: str = "") -> ExperimentResult:
        return ExperimentResult(name=self.name, claim=claim, holds=bool(holds), numbers=numbers, table=table,
                                figures=[Path(path) for path in figures], explanation=explanation,
                                budget=self.budget)


@functools.lru_cache(maxsize=1)
def _load_mnist(data_dir: str | None, environment_value: str):
    # environment_value is part of the cache key only: load_mnist reads $CROSSENT_DATA itself
    from .datasets import load_mnist

    arrays = load_mnist(data_dir, download=False)
    for array in arrays:  # shared between runs through the cache, so nobody may change them
        array.flags.writeable = False
    return arrays


def _rows(X, y, count):
    return (X, y) if count is None else (X[:count], y[:count])


def _format_table(header, rows) -> str:
    """A plain-text table with right-aligned columns (the first left-aligned)."""
    cells = [[str(cell) for cell in header]] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]

    def line(row):
        return "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _train(model, X, y, settings: dict, seed: int, *, loss=None, validation_data=None):
    """fit() with the budget's optimiser settings; returns (history, seconds)."""
    from .train import fit

    started = time.perf_counter()
    history = fit(
        model, X, y, loss=loss, optimizer=settings["optimizer"], lr=settings["lr"],
        momentum=settings.get("momentum"), weight_decay=settings.get("weight_decay", 0.0),
        schedule=settings.get("schedule"), epochs=settings["epochs"], batch_size=settings["batch_size"],
        validation_data=validation_data, seed=seed, progress=False,
    )
    return history, time.perf_counter() - started


def _recipe(settings: dict) -> str:
    parts = [f"{settings['optimizer']}", f"lr {settings['lr']:g}"]
    if settings.get("dropout"):
        parts.insert(0, f"dropout {settings['dropout']:g}")
    if settings.get("momentum") is not None:
        parts.append(f"momentum {settings['momentum']:g}")
    if settings.get("schedule"):
        parts.append(f"{settings['schedule']} schedule")
    if settings.get("weight_decay"):
        parts.append(f"weight decay {settings['weight_decay']:g}")
    parts.append(f"batch {settings['batch_size']}")
    parts.append(f"{settings['epochs']} epochs")
    return ", ".join(parts)


def _new_figure(pixels):
    from .plots import _new_figure as new_figure

    return new_figure(pixels)


def _save(figure, path: Path) -> Path:
    from .plots import _finish

    _finish(figure, path)
    return path


# --------------------------------------------------------------------------- worked-example


def _worked_example(context: _Context) -> ExperimentResult:
    from .functional import softmax
    from .losses import softmax_cross_entropy_value_and_grad

    settings = context.settings
    logits = np.array([settings["logits"]], dtype=np.float64)
    label = np.array([settings["label"]])
    probabilities = softmax(logits)[0]
    loss, gradient = softmax_cross_entropy_value_and_grad(logits, label)
    published = PUBLISHED["worked-example"]
    digits = settings["digits"]

    def rounded(values):
        return [round(float(value), digits) for value in np.ravel(values)]

    numbers = {
        "logits": [float(value) for value in logits[0]],
        "label": int(label[0]),
        "softmax": rounded(probabilities),
        "loss": round(float(loss), digits),
        "loss_bits": round(float(loss) / math.log(2), digits),
        "gradient": rounded(gradient[0]),
        "published": {key: (list(value) if isinstance(value, tuple) else value) for key, value in published.items()},
    }
    agrees = {
        "softmax": numbers["softmax"] == list(published["softmax"]),
        "loss": numbers["loss"] == published["loss"],
        "gradient": numbers["gradient"] == list(published["gradient"]),
    }
    numbers["agrees"] = agrees
    rows = []
    for index in range(len(numbers["logits"])):
        rows.append([
            f"class {index}" + (" (true)" if index == numbers["label"] else ""),
            f"{numbers['logits'][index]:g}",
            f"{numbers['softmax'][index]:.{digits}f}", f"{published['softmax'][index]:.{digits}f}",
            f"{numbers['gradient'][index]:+.{digits}f}", f"{published['gradient'][index]:+.{digits}f}",
        ])
    rows.append(["loss (nats)", "", f"{numbers['loss']:.{digits}f}", f"{published['loss']:.{digits}f}", "", ""])
    table = _format_table(["", "logit", "softmax", "published", "gradient", "published"], rows)
    figures: list[Path] = []
    path = context.figure_path("softmax-bars")
    if path is not None:
        from .plots import plot_softmax_bars

        plot_softmax_bars(tuple(numbers["logits"]), labels=tuple(settings["class_names"]),
                          target=numbers["label"], path=path)
        figures.append(path)
    return context.result(
        claim=(f"softmax, cross-entropy and its gradient of logits {tuple(numbers['logits'])} with true class "
               f"{numbers['label']}, computed by crossent and rounded to {digits} decimals, equal the published "
               f"values"),
        holds=all(agrees.values()),
        numbers=numbers,
        table=table,
        figures=figures,
        explanation=(
            "p = softmax(z); the loss is -log p[label]; its gradient with respect to the logits is "
            "p - onehot(label): every class is pushed down by its probability, the true class up by 1 - p."
        ),
    )


# --------------------------------------------------------------------------- slowdown


def _train_one_neuron(cost: str, settings: dict) -> dict:
    """``max_epochs`` steps of gradient descent on one sigmoid neuron, recording every epoch.

    Per epoch (before its step): the output, the cost and dC/dz; ``epochs`` is
    the first epoch whose output is below the threshold (None if none is).
    """
    from .losses import mean_squared_error_value_and_grad, sigmoid_binary_cross_entropy_value_and_grad

    weight, bias = float(settings["weight"]), float(settings["bias"])
    x, target = float(settings["input"]), np.array([float(settings["target"])])
    outputs, costs, logit_gradients = [], [], []
    for _ in range(settings["max_epochs"] + 1):
        z = np.array([weight * x + bias])
        if cost == "quadratic":  # Nielsen's (a - y)^2 / 2
            value, gradient = mean_squared_error_value_and_grad(z, target, activation="sigmoid")
        else:
            value, gradient = sigmoid_binary_cross_entropy_value_and_grad(z, target)
        outputs.append(1.0 / (1.0 + math.exp(-float(z[0]))))
        costs.append(float(value))
        logit_gradients.append(float(gradient[0]))
        # dC/dw = dC/dz * x and dC/db = dC/dz
        weight -= settings["lr"] * float(gradient[0]) * x
        bias -= settings["lr"] * float(gradient[0])
    below = np.flatnonzero(np.asarray(outputs) < settings["threshold"])
    return {"epochs": int(below[0]) if below.size else None, "outputs": outputs, "costs": costs,
            "logit_gradients": logit_gradients}


def _slowdown(context: _Context) -> ExperimentResult:
    settings = context.settings
    quadratic = _train_one_neuron("quadratic", settings)
    cross_entropy = _train_one_neuron("cross_entropy", settings)
    ratio = settings["ratio"]
    numbers = {
        "initial_output": quadratic["outputs"][0],
        "threshold": settings["threshold"],
        "lr": settings["lr"],
        "max_epochs": settings["max_epochs"],
        "epochs_quadratic": quadratic["epochs"],
        "epochs_cross_entropy": cross_entropy["epochs"],
        "initial_logit_gradient_quadratic": quadratic["logit_gradients"][0],
        "initial_logit_gradient_cross_entropy": cross_entropy["logit_gradients"][0],
        "initial_cost_quadratic": quadratic["costs"][0],
        "initial_cost_cross_entropy": cross_entropy["costs"][0],
    }
    epochs_q, epochs_ce = numbers["epochs_quadratic"], numbers["epochs_cross_entropy"]
    # a quadratic run that never got there within max_epochs needs more than max_epochs
    quadratic_needs = settings["max_epochs"] + 1 if epochs_q is None else epochs_q
    holds = epochs_ce is not None and ratio * epochs_ce < quadratic_needs

    def shown(epochs):
        return f"> {settings['max_epochs']}" if epochs is None else str(epochs)

    table = _format_table(
        ["cost", "epochs to output < " + f"{settings['threshold']:g}", "dC/dz at start", "cost at start"],
        [
            ["quadratic (a - y)^2 / 2", shown(epochs_q), f"{numbers['initial_logit_gradient_quadratic']:.4f}",
             f"{numbers['initial_cost_quadratic']:.4f}"],
            ["cross-entropy", shown(epochs_ce), f"{numbers['initial_logit_gradient_cross_entropy']:.4f}",
             f"{numbers['initial_cost_cross_entropy']:.4f}"],
        ],
    )
    a = numbers["initial_output"]
    explanation = (
        f"With a = sigma(z), z = w x + b, the quadratic cost C = (a - y)^2 / 2 has dC/dz = (a - y) sigma'(z) "
        f"= (a - y) a (1 - a). Starting at a = {a:.4f}, badly wrong for y = {settings['target']:g}, the neuron "
        f"is saturated: sigma'(z) = {a * (1 - a):.4f}, so dC/dz = "
        f"{numbers['initial_logit_gradient_quadratic']:.4f} and learning crawls. The cross-entropy "
        f"C = -[y ln a + (1 - y) ln(1 - a)] has dC/dz = a - y = "
        f"{numbers['initial_logit_gradient_cross_entropy']:.4f}: sigma'(z) cancels, so the neuron learns "
        f"fastest when it is most wrong."
    )
    figures: list[Path] = []
    path = context.figure_path("output-and-cost")
    if path is not None:
        figures.append(_save(_slowdown_figure(quadratic, cross_entropy, settings), path))
    return context.result(
        claim=(f"Nielsen ch. 3: a sigmoid neuron (x = {settings['input']:g}, target {settings['target']:g}, "
               f"w = b = {settings['weight']:g}, learning rate {settings['lr']:g}) trained with cross-entropy "
               f"gets its output below {settings['threshold']:g} in fewer than 1/{ratio:g} of the epochs the "
               f"quadratic cost needs"),
        holds=holds, numbers=numbers, table=table, figures=figures, explanation=explanation,
    )


def _slowdown_figure(quadratic: dict, cross_entropy: dict, settings: dict):
    figure = _new_figure((1100, 400))
    output_axes, cost_axes = figure.subplots(1, 2)
    reached = [run["epochs"] for run in (quadratic, cross_entropy) if run["epochs"] is not None]
    shown = min(settings["max_epochs"], int(1.25 * max(reached))) + 1 if reached else settings["max_epochs"] + 1
    for run, label, colour in ((quadratic, "quadratic cost", "tab:red"), (cross_entropy, "cross-entropy", "tab:blue")):
        epochs = np.arange(shown)
        reached_text = "" if run["epochs"] is None else f" (< {settings['threshold']:g} at epoch {run['epochs']})"
        output_axes.plot(epochs, run["outputs"][:shown], color=colour, label=label + reached_text)
        cost_axes.plot(epochs, run["costs"][:shown], color=colour, label=label)
        if run["epochs"] is not None:
            output_axes.axvline(run["epochs"], color=colour, linestyle=":", linewidth=1)
    output_axes.axhline(settings["threshold"], color="gray", linestyle="--", linewidth=0.8)
    output_axes.set(xlabel="epoch", ylabel="output a = sigma(wx + b)", ylim=(0, 1.02),
                    title=f"output (target {settings['target']:g}), learning rate {settings['lr']:g}")
    cost_axes.set(xlabel="epoch", ylabel="cost", yscale="log", title="cost")
    output_axes.legend(fontsize="small")
    cost_axes.legend(fontsize="small")
    for axes in (output_axes, cost_axes):
        axes.grid(True, alpha=0.3)
    return figure


# --------------------------------------------------------------------------- mnist-linear and mnist-800


def _history_figure(context: _Context, history, stem: str, figures: list):
    path = context.figure_path(stem)
    if path is not None:
        from .plots import plot_history

        plot_history(history, path=path)
        figures.append(path)


def _mnist_linear(context: _Context) -> ExperimentResult:
    from .nn import SoftmaxRegression
    from .train import evaluate

    settings = context.settings
    X_train, y_train, X_test, y_test = context.mnist()
    X, y = _rows(X_train, y_train, settings["train_rows"])
    model = SoftmaxRegression(X.shape[1], 10, seed=context.seed)
    history, seconds = _train(model, X, y, settings, context.seed)
    result = evaluate(model, X_test, y_test)
    lecun_error = PUBLISHED["lecun-1998-linear-error"]
    numbers = {
        "train_rows": int(X.shape[0]),
        "test_accuracy": float(result["accuracy"]),
        "test_error": 1.0 - float(result["accuracy"]),
        "test_loss": float(result["loss"]),
        "train_accuracy": float(history["train_accuracy"][-1]),
        "train_seconds": seconds,
        "lecun_1998_error": lecun_error,
        "threshold": settings["min_accuracy"],
        "recipe": _recipe(settings),
    }
    table = _format_table(
        ["model", "test accuracy", "test error", "train seconds"],
        [
            [f"crossent SoftmaxRegression ({numbers['train_rows']} rows; {numbers['recipe']})",
             _pct(numbers["test_accuracy"]), _pct(numbers["test_error"]), f"{seconds:.1f}"],
            ["LeCun et al. 1998, linear classifier (1-layer NN)", _pct(1 - lecun_error), _pct(lecun_error), ""],
        ],
    )
    figures: list[Path] = []
    _history_figure(context, history, "history", figures)
    path = context.figure_path("weights")
    if path is not None:
        from .plots import plot_weight_templates

        plot_weight_templates(model, image_shape=(28, 28), path=path)
        figures.append(path)
    return context.result(
        claim=(f"softmax regression trained with cross-entropy ({numbers['train_rows']} MNIST training images) "
               f"reaches at least {_pct(settings['min_accuracy'])} test accuracy (LeCun et al. 1998 report "
               f"{_pct(lecun_error)} error for a linear classifier, a 1-layer network)"),
        holds=numbers["test_accuracy"] >= settings["min_accuracy"],
        numbers=numbers, table=table, figures=figures,
        explanation=(
            "A linear model has one template per class; the softmax turns template scores into "
            "probabilities and the cross-entropy of the true class is a convex objective in the weights, "
            "so plain minibatch SGD finds a good optimum in a few epochs."
        ),
    )


def _mnist_800(context: _Context) -> ExperimentResult:
    from .nn import MLP
    from .train import evaluate

    settings = context.settings
    X_train, y_train, X_test, y_test = context.mnist()
    X, y = _rows(X_train, y_train, settings["train_rows"])
    model = MLP(X.shape[1], [settings["hidden"]], 10, activation="relu", dropout=settings.get("dropout", 0.0),
                seed=context.seed)
    history, seconds = _train(model, X, y, settings, context.seed)
    result = evaluate(model, X_test, y_test)
    simard_error = PUBLISHED["simard-2003-mlp-800-error"]
    numbers = {
        "train_rows": int(X.shape[0]),
        "hidden": settings["hidden"],
        "test_accuracy": float(result["accuracy"]),
        "test_error": 1.0 - float(result["accuracy"]),
        "test_loss": float(result["loss"]),
        "train_loss": float(history["train_loss"][-1]),
        "train_seconds": seconds,
        "simard_2003_error": simard_error,
        "threshold": settings["min_accuracy"],
        "recipe": _recipe(settings),
    }
    table = _format_table(
        ["model", "test accuracy", "test error", "train seconds"],
        [
            [f"crossent MLP 784-{settings['hidden']}-10 ReLU ({numbers['train_rows']} rows; {numbers['recipe']})",
             _pct(numbers["test_accuracy"]), _pct(numbers["test_error"]), f"{seconds:.1f}"],
            ["Simard et al. 2003, MLP 784-800-10, cross-entropy", _pct(1 - simard_error), _pct(simard_error), ""],
        ],
    )
    figures: list[Path] = []
    _history_figure(context, history, "history", figures)
    dropout_text = f", dropout {settings['dropout']:g}" if settings.get("dropout") else ""
    return context.result(
        claim=(f"an MLP 784-{settings['hidden']}-10 (ReLU{dropout_text}) trained with cross-entropy on "
               f"{numbers['train_rows']} MNIST images reaches at least {_pct(settings['min_accuracy'])} test "
               f"accuracy (Simard et al. 2003: {_pct(simard_error)} error with 800 hidden units, no distortions)"),
        holds=numbers["test_accuracy"] >= settings["min_accuracy"],
        numbers=numbers, table=table, figures=figures,
    )


# --------------------------------------------------------------------------- noisy-labels


def flip_labels(
    y: ArrayLike, fraction: float, n_classes: int, seed: int | Sequence[int] | np.random.Generator | None
) -> np.ndarray:
    """A copy of ``y`` with ``round(fraction * len(y))`` labels changed to a different class, uniformly.

    The rows to corrupt are drawn without replacement and each gets one of the
    other ``n_classes - 1`` classes with equal probability (symmetric noise),
    from ``numpy.random.default_rng(seed)``.
    """
    labels = np.array(y, dtype=np.int64, copy=True)
    rng = np.random.default_rng(seed)
    count = int(round(fraction * labels.size))
    rows = rng.choice(labels.size, size=count, replace=False)
    labels[rows] = (labels[rows] + rng.integers(1, n_classes, size=count)) % n_classes
    return labels


def _noisy_labels(context: _Context) -> ExperimentResult:
    from .losses import get_loss
    from .nn import MLP
    from .train import evaluate

    settings = context.settings
    X_train, y_train, X_test, y_test = context.mnist()
    X, y_clean = _rows(X_train, y_train, settings["train_rows"])
    y_noisy = flip_labels(y_clean, settings["noise"], 10, [context.seed, 40])
    X_eval, y_eval = _rows(X_test, y_test, settings.get("test_rows"))
    runs = {}
    for name, (loss_name, options) in settings["losses"].items():
        model = MLP(X.shape[1], [settings["hidden"]], 10, seed=context.seed)
        history, seconds = _train(model, X, y_noisy, settings, context.seed, loss=get_loss(loss_name, **options),
                                  validation_data=(X_eval, y_eval) if settings.get("curves") else None)
        clean = evaluate(model, X_eval, y_eval)
        runs[name] = {
            "loss": loss_name, "options": dict(options),
            "clean_test_accuracy": float(clean["accuracy"]),
            "noisy_train_accuracy": float(history["train_accuracy"][-1]),
            "fit_to_clean_train_labels": float(np.mean(model.predict(X) == y_clean)),
            "train_seconds": seconds,
            "val_accuracy_per_epoch": [float(value) for value in history["val_accuracy"]]
            if settings.get("curves") else None,
        }
    numbers = {
        "train_rows": int(X.shape[0]),
        "test_rows": int(X_eval.shape[0]),
        "noise": settings["noise"],
        "flipped_fraction": float(np.mean(y_noisy != y_clean)),
        "hidden": settings["hidden"],
        "recipe": _recipe(settings),
        "runs": runs,
    }
    baseline = runs["CE"]["clean_test_accuracy"]
    robust = settings["robust"]
    margins = {name: runs[name]["clean_test_accuracy"] - baseline for name in robust}
    numbers["margin_over_ce"] = margins
    rows = [
        [name, f"{run['loss']} {run['options'] or ''}".strip(), _pct(run["clean_test_accuracy"]),
         _pct(run["noisy_train_accuracy"]), f"{run['train_seconds']:.1f}"]
        for name, run in runs.items()
    ]
    table = _format_table(["loss", "options", "clean test accuracy", "noisy train accuracy", "train seconds"], rows)
    figures: list[Path] = []
    path = context.figure_path("accuracy")
    if path is not None:
        figures.append(_save(_noisy_figure(runs, numbers, settings), path))
    return context.result(
        claim=(f"with {_pct(settings['noise'])} of {numbers['train_rows']} MNIST training labels flipped to another "
               f"class, an MLP 784-{settings['hidden']}-10 trained with {' and with '.join(robust)} is more "
               f"accurate on the clean test set than the same network trained with plain cross-entropy "
               f"(Zhang & Sabuncu 2018; Wang et al. 2019)"),
        holds=all(margin > 0 for margin in margins.values()),
        numbers=numbers, table=table, figures=figures,
        explanation=(
            "Cross-entropy's gradient on a sample is (p - onehot) weighted by 1: a wrongly labelled sample the "
            "network confidently disagrees with (p_label near 0) pulls hardest, so with enough epochs the "
            "network memorises the noise. GCE ((1 - p^q) / q) scales that gradient by p_label^q and SCE's "
            "reverse term is bounded, so confidently contradicted labels pull less."
        ),
    )


def _noisy_figure(runs: dict, numbers: dict, settings: dict):
    figure = _new_figure((1100, 400) if settings.get("curves") else (560, 400))
    if settings.get("curves"):
        bar_axes, curve_axes = figure.subplots(1, 2)
    else:
        bar_axes, curve_axes = figure.subplots(1, 1), None
    names = list(runs)
    accuracies = [100 * runs[name]["clean_test_accuracy"] for name in names]
    # the claim's losses in blue, plain cross-entropy and the others in grey
    colours = ["tab:blue" if name in settings["robust"] else "tab:gray" for name in names]
    bars = bar_axes.bar(names, accuracies, color=colours)
    for bar, accuracy in zip(bars, accuracies):
        bar_axes.text(bar.get_x() + bar.get_width() / 2, accuracy, f"{accuracy:.2f}", ha="center", va="bottom",
                      fontsize="small")
    low = min(accuracies)
    bar_axes.set(ylim=(max(0.0, low - 10), 100), ylabel="clean test accuracy (%)",
                 title=f"{100 * numbers['noise']:.0f}% symmetric label noise")
    if curve_axes is not None:
        for name in names:
            curve = runs[name]["val_accuracy_per_epoch"]
            curve_axes.plot(np.arange(1, len(curve) + 1), 100 * np.asarray(curve), label=name)
        curve_axes.set(xlabel="epoch", ylabel="clean test accuracy (%)", title="clean test accuracy per epoch")
        curve_axes.xaxis.get_major_locator().set_params(integer=True)
        curve_axes.legend(fontsize="small")
        curve_axes.grid(True, alpha=0.3)
    return figure


# --------------------------------------------------------------------------- mse-vs-ce


def _mse_vs_ce(context: _Context) -> ExperimentResult:
    from .losses import get_loss
    from .nn import MLP
    from .train import evaluate

    settings = context.settings
    X_train, y_train, X_test, y_test = context.mnist()
    X, y = _rows(X_train, y_train, settings["train_rows"])
    X_eval, y_eval = _rows(X_test, y_test, settings.get("test_rows"))
    runs = {}
    for name, (loss_name, options) in (("cross-entropy", ("cross_entropy", {})),
                                       ("quadratic", ("mse", {"activation": "softmax"}))):
        model = MLP(X.shape[1], [settings["hidden"]], 10, seed=context.seed)
        history, seconds = _train(model, X, y, settings, context.seed, loss=get_loss(loss_name, **options),
                                  validation_data=(X_eval, y_eval))
        runs[name] = {
            "test_accuracy_per_epoch": [float(value) for value in history["val_accuracy"]],
            "train_loss_per_epoch": [float(value) for value in history["train_loss"]],
            "train_accuracy_per_epoch": [float(value) for value in history["train_accuracy"]],
            "test_accuracy": float(evaluate(model, X_eval, y_eval)["accuracy"]),
            "train_seconds": seconds,
            "history": history,
        }
    ce, quadratic = runs["cross-entropy"], runs["quadratic"]
    numbers = {
        "train_rows": int(X.shape[0]),
        "test_rows": int(X_eval.shape[0]),
        "hidden": settings["hidden"],
        "recipe": _recipe(settings),
        "cross_entropy": {key: value for key, value in ce.items() if key != "history"},
        "quadratic": {key: value for key, value in quadratic.items() if key != "history"},
        "first_epoch_gap": ce["test_accuracy_per_epoch"][0] - quadratic["test_accuracy_per_epoch"][0],
        "final_gap": ce["test_accuracy"] - quadratic["test_accuracy"],
    }
    rows = [
        [f"epoch {epoch + 1}", _pct(ce["test_accuracy_per_epoch"][epoch]),
         _pct(quadratic["test_accuracy_per_epoch"][epoch])]
        for epoch in range(len(ce["test_accuracy_per_epoch"]))
    ]
    rows.append(["train seconds", f"{ce['train_seconds']:.1f}", f"{quadratic['train_seconds']:.1f}"])
    table = _format_table(["test accuracy", "cross-entropy", "quadratic (softmax MSE)"], rows)
    figures: list[Path] = []
    path = context.figure_path("curves")
    if path is not None:
        figures.append(_save(_mse_vs_ce_figure(ce, quadratic), path))
    return context.result(
        claim=(f"with the same MLP 784-{settings['hidden']}-10, initialisation and training budget "
               f"({numbers['recipe']}), cross-entropy gives a higher test accuracy than the quadratic cost "
               f"on softmax outputs both after the first epoch (faster early progress) and at the end"),
        holds=numbers["first_epoch_gap"] > 0 and numbers["final_gap"] > 0,
        numbers=numbers, table=table, figures=figures,
        explanation=(
            "The quadratic cost's gradient with respect to the logits is a_j[(a_j - y_j) - sum_c (a_c - y_c) a_c]: "
            "it carries the softmax Jacobian, which vanishes when the output is confidently wrong, and it is "
            "bounded by the probabilities. Cross-entropy's is a - y, as large as the error."
        ),
    )


def _mse_vs_ce_figure(ce: dict, quadratic: dict):
    figure = _new_figure((1100, 400))
    # accuracies, not losses: the two costs are on different scales and cannot share an axis
    test_axes, train_axes = figure.subplots(1, 2, sharey=True)
    for name, run, colour in (("cross-entropy", ce, "tab:blue"), ("quadratic cost", quadratic, "tab:red")):
        epochs = np.arange(1, len(run["test_accuracy_per_epoch"]) + 1)
        test_axes.plot(epochs, 100 * np.asarray(run["test_accuracy_per_epoch"]), "o-", color=colour, label=name)
        train_axes.plot(epochs, 100 * np.asarray(run["train_accuracy_per_epoch"]), "o-", color=colour, label=name)
    test_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="test accuracy after each epoch")
    train_axes.set(xlabel="epoch", title="training accuracy during each epoch")
    for axes in (test_axes, train_axes):
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.legend(fontsize="small")
        axes.grid(True, alpha=0.3)
    return figure


# --------------------------------------------------------------------------- the registry


EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment(
            "worked-example", "softmax, cross-entropy and gradient of logits (1, 2, 0.5), label 1",
            needs_mnist=False,
            budgets={budget: {"logits": (1.0, 2.0, 0.5), "label": 1, "digits": 4,
                              "class_names": ("cat", "dog", "bird")} for budget in BUDGETS},
            run=_worked_example,
        ),
        Experiment(
            "slowdown", "the learning slowdown of a saturated sigmoid neuron: quadratic cost vs cross-entropy",
            needs_mnist=False,
            budgets={budget: {"input": 1.0, "target": 0.0, "weight": 2.0, "bias": 2.0, "lr": 0.15,
                              "threshold": 0.1, "max_epochs": 2000, "ratio": 4}
                     for budget in BUDGETS},
            run=_slowdown,
        ),
        Experiment(
            "mnist-linear", "softmax regression on MNIST against LeCun et al. 1998's linear classifier",
            needs_mnist=True,
            budgets={
                "full": {"train_rows": None, "optimizer": "momentum", "lr": 0.1, "momentum": 0.9,
                         "schedule": "cosine", "batch_size": 128, "epochs": 10, "min_accuracy": 0.925},
                "ci": {"train_rows": 20000, "optimizer": "momentum", "lr": 0.1, "momentum": 0.9,
                       "batch_size": 128, "epochs": 2, "min_accuracy": 0.90},
            },
            run=_mnist_linear,
        ),
        Experiment(
            "mnist-800", "MLP 784-800-10 on MNIST against Simard et al. 2003",
            needs_mnist=True,
            budgets={
                "full": {"train_rows": None, "hidden": 800, "dropout": 0.5, "optimizer": "nesterov", "lr": 0.1,
                         "momentum": 0.9, "schedule": "cosine", "weight_decay": 1e-4, "batch_size": 128,
                         "epochs": 20, "min_accuracy": 0.984},
                "ci": {"train_rows": 10000, "hidden": 128, "optimizer": "nesterov", "lr": 0.2, "momentum": 0.9,
                       "schedule": "cosine", "batch_size": 128, "epochs": 3, "min_accuracy": 0.93},
            },
            run=_mnist_800,
        ),
        Experiment(
            "noisy-labels", "robust losses (GCE, SCE, focal) against cross-entropy under 40% label noise",
            needs_mnist=True,
            budgets={
                "full": {"train_rows": None, "test_rows": None, "noise": 0.4, "hidden": 256,
                         "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 30, "curves": True,
                         "losses": {"CE": ("cross_entropy", {}), "GCE": ("gce", {"q": 0.7}),
                                    "SCE": ("sce", {"alpha": 0.1, "beta": 1.0}),
                                    "focal": ("focal", {"gamma": 2.0})},
                         "robust": ("GCE", "SCE")},
                "ci": {"train_rows": 2000, "test_rows": None, "noise": 0.4, "hidden": 128,
                       "optimizer": "adam", "lr": 3e-3, "batch_size": 200, "epochs": 20, "curves": False,
                       "losses": {"CE": ("cross_entropy", {}), "GCE": ("gce", {"q": 0.7}),
                                  "SCE": ("sce", {"alpha": 0.1, "beta": 1.0}),
                                  "focal": ("focal", {"gamma": 2.0})},
                       "robust": ("GCE", "SCE")},
            },
            run=_noisy_labels,
        ),
        Experiment(
            "mse-vs-ce", "the quadratic cost against cross-entropy for the same MLP and budget",
            needs_mnist=True,
            budgets={
                "full": {"train_rows": None, "test_rows": None, "hidden": 256, "optimizer": "momentum",
                         "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 10},
                "ci": {"train_rows": 10000, "test_rows": None, "hidden": 128, "optimizer": "momentum",
                       "lr": 0.05, "momentum": 0.9, "batch_size": 128, "epochs": 3},
            },
            run=_mse_vs_ce,
        ),
    )
}


def run_experiment(
    name: str,
    *,
    data_dir: PathLike | None = None,
    out_dir: PathLike | None = None,
    budget: Literal["full", "ci"] = "full",
    seed: int = 0,
) -> ExperimentResult:
    """Run one experiment of :data:`EXPERIMENTS` and check its claim on the numbers it measured.

    Parameters
    ----------
    name : str
        A key of :data:`EXPERIMENTS`.
    data_dir : str or os.PathLike, optional
        Where MNIST's four IDX files are (or a folder with an ``mnist/``
        subfolder holding them); default ``$CROSSENT_DATA``, then the cache.
        Never downloads.
    out_dir : str or os.PathLike, optional
        Folder for the experiment's figures (PNG, named
        ``<name>-<what>.png``); created if missing. None writes no files and
        does not import matplotlib.
    budget : {"full", "ci"}, default "full"
        ``"full"`` checks the published claim (minutes of CPU for the MNIST
        experiments); ``"ci"`` runs a much smaller version with its own
        threshold (seconds).
    seed : int >= 0, default 0
        Seeds initialisation, shuffling and label noise: same seed, same numbers.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    crossent.datasets.DatasetNotFoundError
        An MNIST experiment cannot find the data set.
    """
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {', '.join(repr(key) for key in EXPERIMENTS)}, got {_describe(name)}")
    if not isinstance(budget, str) or budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(repr(key) for key in BUDGETS)}, got {_describe(budget)}")
    if isinstance(seed, bool) or not isinstance(seed, numbers_module.Integral):
        raise TypeError(f"seed must be a non-negative integer, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {int(seed)}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a folder name (str or os.PathLike) or None, got {_describe(data_dir)}")
    if out_dir is not None:
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir must be a folder name (str or os.PathLike) or None, got {_describe(out_dir)}")
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise NotADirectoryError(f"out_dir must be a folder; {str(out_dir)!r} is a file")
        out_dir.mkdir(parents=True, exist_ok=True)
    experiment = EXPERIMENTS[name]
    settings = dict(experiment.budgets[budget])
    context = _Context(name, budget, settings, int(seed), data_dir, out_dir)
    return experiment.run(context)
