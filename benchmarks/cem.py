"""The cross-entropy method (crossent.cem) on test functions, Max-Cut, a softmax classifier and model-predictive control.

Run from the repository root::

    .venv/bin/python benchmarks/cem.py                       # every section, a few minutes
    .venv/bin/python benchmarks/cem.py --quick               # smoke run, under a minute
    .venv/bin/python benchmarks/cem.py --sections mpc --plot mpc.png
    .venv/bin/python benchmarks/cem.py --sections functions --seeds 5 --json cem.json

Sections (``--sections``, comma-separated; default all):

``functions``
    Rosenbrock 2-D and 10-D, Rastrigin 10-D and Ackley 10-D, each with its
    known minimum f* = 0. Every method starts from the same point per seed
    (uniform in the domain) and gets the same budget of evaluations of f; a run
    succeeds when f(x) - f* <= ``TARGET`` at some evaluation (counted one
    candidate at a time by a wrapper around f, whatever the method's own
    stopping rule). Methods: Gaussian CEM with a diagonal and a full
    covariance, a full covariance with the tutorial's dynamic smoothing, CEM with
    gradient steps (Bharadhwaj et al. 2020) with both covariances, SciPy's
    Nelder-Mead (from the same start) and differential evolution (on the same
    box).
``maxcut``
    Bernoulli CEM on Max-Cut instances with a known optimum (below), against
    random search and a multi-start 1-flip local search with the same budget
    of cut evaluations.
``digits``
    A softmax classifier (64-10, 650 parameters) on the shipped 8x8 digits,
    trained by CEM on the training cross-entropy without gradients, and by SGD
    with momentum (``crossent.fit``, the recipe of ``crossent train``).
``mpc``
    A 2-D point mass (double integrator) steered to a goal around a circular
    obstacle by receding-horizon planning with CEM and with CEM + gradient
    steps; ``--plot FILE`` saves the trajectories (written atomically).

The Max-Cut instances follow the construction of de Boer et al. (2005): nodes
split into two halves V1, V2 of m each; weights inside a half drawn from
U(0, 1), every weight between the halves c = 1. The cut {V1, V2} is optimal
with value c m^2: a cut A with x nodes of V1, y of V2 (p = m - x, q = m - y
outside) has value c (x q + p y) + W_in with W_in <= x p + y q, and
c m^2 - c (x q + p y) - W_in >= (c - 1)(x y + p q) + (x - q)(y - p)
= (c - 1)(x y + p q) + (x + y - m)^2 >= 0.

Timings are for a shared 2-core machine: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import crossent
from crossent import cem

SECTIONS = ("functions", "maxcut", "digits", "mpc")
TARGET = 1e-6  # success: f(x) - f* <= TARGET

# =====================================================================================================
# test functions with gradients (batch: X (n, d) -> (n,), gradient (n, d))
# =====================================================================================================


def rosenbrock(X):
    return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1)


def rosenbrock_grad(X):
    valley = X[:, 1:] - X[:, :-1] ** 2
    gradient = np.zeros_like(X)
    gradient[:, :-1] = -400.0 * X[:, :-1] * valley - 2.0 * (1.0 - X[:, :-1])
    gradient[:, 1:] += 200.0 * valley
    return gradient


def rastrigin(X):
    return 10.0 * X.shape[1] + np.sum(X**2 - 10.0 * np.cos(2 * np.pi * X), axis=1)


def rastrigin_grad(X):
    return 2.0 * X + 20.0 * np.pi * np.sin(2 * np.pi * X)


def ackley(X):
    d = X.shape[1]
    radius = np.sqrt(np.sum(X**2, axis=1) / d)
    return -20.0 * np.exp(-0.2 * radius) - np.exp(np.sum(np.cos(2 * np.pi * X), axis=1) / d) + 20.0 + np.e


def ackley_grad(X):
    d = X.shape[1]
    radius = np.sqrt(np.sum(X**2, axis=1) / d)
    # the cone at the minimum has no gradient; take 0 there
    scale = np.divide(4.0 * np.exp(-0.2 * radius), d * radius, out=np.zeros_like(radius), where=radius > 0)
    cosine_term = 2 * np.pi / d * np.exp(np.sum(np.cos(2 * np.pi * X), axis=1) / d)
    return scale[:, None] * X + cosine_term[:, None] * np.sin(2 * np.pi * X)


#: name -> (f, gradient, dimension, half-width of the box [-w, w]^d, budget of f evaluations, quick budget)
PROBLEMS = {
    "Rosenbrock 2-D": (rosenbrock, rosenbrock_grad, 2, 2.048, 20_000, 10_000),
    "Rosenbrock 10-D": (rosenbrock, rosenbrock_grad, 10, 2.048, 100_000, 20_000),
    "Rastrigin 10-D": (rastrigin, rastrigin_grad, 10, 5.12, 100_000, 20_000),
    "Ackley 10-D": (ackley, ackley_grad, 10, 32.768, 100_000, 20_000),
}


class BudgetExhausted(Exception):
    pass


class CountedObjective:
    """Counts every candidate evaluated, remembers the first count at which f <= TARGET, stops at the budget."""

    def __init__(self, function, budget):
        self.function, self.budget = function, budget
        self.nfev = 0
        self.best = math.inf
        self.nfev_to_target = None

    def batch(self, X):
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.nfev + X.shape[0] > self.budget:
            raise BudgetExhausted
        values = self.function(X)
        if self.nfev_to_target is None:
            reached = np.flatnonzero(values <= TARGET)
            if reached.size:
                self.nfev_to_target = self.nfev + int(reached[0]) + 1
        self.nfev += X.shape[0]
        self.best = min(self.best, float(values.min()))
        return values

    def one(self, x):
        return float(self.batch(np.asarray(x)[None, :])[0])

    def columns(self, X):  # scipy's vectorized differential_evolution passes (d, S)
        return self.batch(np.asarray(X).T)


class CountedGradient:
    def __init__(self, gradient):
        self.gradient, self.njev = gradient, 0

    def __call__(self, X):
        self.njev += X.shape[0]
        return self.gradient(X)


def cem_method(covariance, *, gradient=False, dynamic=None):
    def run(objective, gradient_function, x0, box, population, seed):
        options = dict(bounds=box, population=population, covariance=covariance, seed=seed,
                       max_nfev=objective.budget, max_iter=10**9)
        if dynamic is not None:
            options["dynamic_smoothing"] = dynamic
        if gradient:
            options.update(grad=gradient_function, grad_steps=GRADIENT_STEPS, grad_lr=GRADIENT_LR)
        cem.minimize(objective.batch, x0, **options)
    return run


GRADIENT_STEPS, GRADIENT_LR = 3, 1e-3


def nelder_mead(objective, gradient_function, x0, box, population, seed):
    from scipy.optimize import minimize

    d = x0.size
    minimize(objective.one, x0, method="Nelder-Mead",
             options={"maxfev": objective.budget, "maxiter": objective.budget, "xatol": 1e-10, "fatol": 1e-12,
                      "adaptive": d > 2})


def differential_evolution(objective, gradient_function, x0, box, population, seed):
    from scipy.optimize import differential_evolution as scipy_de

    d = x0.size
    generations = objective.budget // (15 * d) - 1  # popsize 15 x d candidates per generation, plus the first
    scipy_de(objective.columns, box, seed=seed, maxiter=max(1, generations), popsize=15, polish=False,
             vectorized=True, updating="deferred", tol=0.0, atol=0.0)


METHODS = {
    "CEM diagonal": cem_method("diagonal"),
    "CEM full": cem_method("full"),
    "CEM full, dynamic smoothing (0.8, 5)": cem_method("full", dynamic=(0.8, 5)),
    f"CEM+gradient diagonal ({GRADIENT_STEPS} steps, lr {GRADIENT_LR:g})": cem_method("diagonal", gradient=True),
    f"CEM+gradient full ({GRADIENT_STEPS} steps, lr {GRADIENT_LR:g})": cem_method("full", gradient=True),
    "Nelder-Mead (SciPy)": nelder_mead,
    "differential evolution (SciPy)": differential_evolution,
}


def run_functions(args) -> list:
    tables = []
    for name, (function, gradient, dimension, half_width, budget, quick_budget) in PROBLEMS.items():
        budget = quick_budget if args.quick else budget
        population = max(100, 20 * dimension)
        box = [(-half_width, half_width)] * dimension
        rows = []
        for method_name, method in METHODS.items():
            runs = []
            for seed in range(args.seeds):
                x0 = np.random.default_rng(10_000 + seed).uniform(-half_width, half_width, dimension)
                objective, counted_gradient = CountedObjective(function, budget), CountedGradient(gradient)
                started = time.perf_counter()
                try:
                    method(objective, counted_gradient, x0, box, population, seed)
                except BudgetExhausted:
                    pass
                runs.append({"seconds": time.perf_counter() - started, "nfev": objective.nfev,
                             "njev": counted_gradient.njev, "best": objective.best,
                             "nfev_to_target": objective.nfev_to_target})
            rows.append(summarise(method_name, runs))
            print(f"  {name}: {method_name} done", file=sys.stderr, flush=True)
        tables.append({"problem": name, "dimension": dimension, "box": half_width, "budget": budget,
                       "population": population, "rows": rows})
    return tables


def summarise(method_name, runs) -> dict:
    reached = [run["nfev_to_target"] for run in runs if run["nfev_to_target"] is not None]
    return {
        "method": method_name,
        "successes": len(reached),
        "runs": len(runs),
        "median_nfev_to_target": statistics.median(reached) if reached else None,
        "median_nfev": statistics.median(run["nfev"] for run in runs),
        "median_njev": statistics.median(run["njev"] for run in runs),
        "median_best": statistics.median(run["best"] for run in runs),
        "median_seconds": statistics.median(run["seconds"] for run in runs),
        "per_run": runs,
    }


def print_functions(tables) -> None:
    header = ("method", "success", "f evals to target (median of successes)", "f evals / run", "grad evals / run",
              "median best f - f*", "s / run")
    for table in tables:
        rows = [[row["method"], f"{row['successes']}/{row['runs']}",
                 "-" if row["median_nfev_to_target"] is None else f"{row['median_nfev_to_target']:,.0f}",
                 f"{row['median_nfev']:,.0f}", f"{row['median_njev']:,.0f}" if row["median_njev"] else "0",
                 f"{row['median_best']:.2e}", f"{row['median_seconds']:.2f}"] for row in table["rows"]]
        print_table(f"{table['problem']} on [-{table['box']}, {table['box']}]^{table['dimension']}, f* = 0, "
                    f"target f - f* <= {TARGET:g}, budget {table['budget']:,} evaluations of f",
                    header, rows,
                    [f"CEM: population {table['population']}, elite_frac 0.1, smoothing 0.7, sigma0 = half the box "
                     f"width, reflection at the bounds, default stopping rules (tol 1e-8, ftol 1e-12, patience 50)",
                     "Nelder-Mead: xatol 1e-10, fatol 1e-12, adaptive in 10-D, no bounds; differential evolution: "
                     "popsize 15, no polishing (it would use finite-difference gradients), tol 0",
                     "medians over the seeds; evaluations counted one candidate at a time"])


# =====================================================================================================
# Max-Cut
# =====================================================================================================


def max_cut_instance(n_nodes, seed):
    """The tutorial's instance: weights U(0, 1) inside two halves, 1 between them; optimum m^2 (module docstring)."""
    rng = np.random.default_rng(seed)
    half = n_nodes // 2
    weights = np.ones((n_nodes, n_nodes))
    for block in (slice(0, half), slice(half, n_nodes)):
        size = block.stop - block.start
        inner = np.triu(rng.uniform(0.0, 1.0, (size, size)), 1)
        weights[block, block] = inner + inner.T
    np.fill_diagonal(weights, 0.0)
    order = rng.permutation(n_nodes)  # hide the halves behind a random numbering
    return weights[np.ix_(order, order)], float(half * (n_nodes - half))


def cut_values(X, weights):
    return np.einsum("ni,ni->n", X @ weights, 1.0 - X)


def bernoulli_cem(weights, budget, seed, population):
    n = weights.shape[0]
    p0 = np.full(n, 0.5)
    p0[0] = 1.0  # node 0 on side 1: a cut and its complement are the same cut
    result = cem.minimize_binary(lambda X: -cut_values(X, weights), n, p0=p0, population=population,
                                 max_nfev=budget, seed=seed)
    return result.history, result.nfev


def random_search(weights, budget, seed, population):
    rng = np.random.default_rng(seed)
    best, nfev, trace = -math.inf, 0, []
    while nfev + population <= budget:
        values = cut_values((rng.random((population, weights.shape[0])) < 0.5).astype(np.float64), weights)
        nfev += population
        best = max(best, float(values.max()))
        trace.append((nfev, best))
    return trace


def local_search(weights, budget, seed, population):
    """Multi-start steepest ascent over single flips; one scan of the n flips counts as n evaluations."""
    rng = np.random.default_rng(seed)
    n = weights.shape[0]
    best, nfev, trace = -math.inf, 0, []
    while nfev + n <= budget:
        side = (rng.random(n) < 0.5).astype(np.float64)
        value = float(cut_values(side[None], weights)[0])
        while nfev + n <= budget:
            # flipping node i changes the cut by sum_j w_ij (same side) - sum_j w_ij (other side)
            same = np.where(side[:, None] == side[None, :], weights, 0.0).sum(axis=1)
            gains = same - (weights.sum(axis=1) - same)
            nfev += n
            node = int(np.argmax(gains))
            if gains[node] <= 1e-12:
                break
            side[node] = 1.0 - side[node]
            value += float(gains[node])
        best = max(best, value)
        trace.append((nfev, best))
    return trace


def run_maxcut(args) -> list:
    tables = []
    sizes = (60,) if args.quick else (100, 400)
    for n_nodes in sizes:
        population = 1000 if n_nodes >= 200 else 500
        budget = 100 * population
        rows = {name: [] for name in ("Bernoulli CEM", "random search", "1-flip local search, multi-start")}
        optimum = None
        for seed in range(args.seeds):
            weights, optimum = max_cut_instance(n_nodes, seed)
            started = time.perf_counter()
            history, nfev = bernoulli_cem(weights, budget, seed, population)
            seconds = time.perf_counter() - started
            best = -history["best_so_far"]
            hit = np.flatnonzero(best >= optimum - 1e-9)
            rows["Bernoulli CEM"].append({"best": float(best[-1]), "nfev": int(nfev), "seconds": seconds,
                                          "nfev_to_optimum": int(history["nfev"][hit[0]]) if hit.size else None,
                                          "iterations": int(best.size)})
            for name, method in (("random search", random_search),
                                 ("1-flip local search, multi-start", local_search)):
                started = time.perf_counter()
                trace = method(weights, budget, seed, population)
                seconds = time.perf_counter() - started
                hit = [count for count, value in trace if value >= optimum - 1e-9]
                rows[name].append({"best": trace[-1][1], "nfev": trace[-1][0], "seconds": seconds,
                                   "nfev_to_optimum": hit[0] if hit else None})
        tables.append({"n_nodes": n_nodes, "optimum": optimum, "population": population, "budget": budget,
                       "rows": rows})
        print(f"  Max-Cut n={n_nodes} done", file=sys.stderr, flush=True)
    return tables


def print_maxcut(tables, seeds) -> None:
    header = ("method", "optimum found", "cut evaluations to optimum (median of successes)", "median best cut",
              "median cut evaluations", "s / run")
    for table in tables:
        rows = []
        for name, runs in table["rows"].items():
            hits = [run["nfev_to_optimum"] for run in runs if run["nfev_to_optimum"] is not None]
            rows.append([name, f"{len(hits)}/{len(runs)}", f"{statistics.median(hits):,.0f}" if hits else "-",
                         f"{statistics.median(run['best'] for run in runs):.3f}",
                         f"{statistics.median(run['nfev'] for run in runs):,.0f}",
                         f"{statistics.median(run['seconds'] for run in runs):.2f}"])
        cem_iterations = statistics.median(run["iterations"] for run in table["rows"]["Bernoulli CEM"])
        print_table(f"Max-Cut, {table['n_nodes']} nodes (the tutorial's two-halves instance, one per seed), optimal "
                    f"cut {table['optimum']:.0f}, budget {table['budget']:,} cut evaluations", header, rows,
                    [f"Bernoulli CEM: population {table['population']}, elite_frac 0.1, smoothing 0.7, p0 = 0.5 "
                     f"with node 0 fixed, stops when every probability is within 1e-3 of 0 or 1 "
                     f"(median {cem_iterations:.0f} iterations)",
                     "random search: uniform random cuts; local search: steepest single-node flips from random cuts, "
                     "restarted until the budget (a scan of the n flips counts as n evaluations)",
                     f"{seeds} seeds"])


# =====================================================================================================
# softmax classifier on the digits: CEM (no gradients) vs SGD
# =====================================================================================================


DIGITS_ITERATIONS, DIGITS_QUICK_ITERATIONS, DIGITS_SIGMA0 = 150, 30, 0.5


def run_digits(args) -> dict:
    from crossent.datasets import Normalizer, load_digits
    from crossent.nn import SoftmaxRegression

    X_train, y_train, X_test, y_test = load_digits(seed=0)
    # standardised with training statistics, as `crossent train` does by default
    normalizer = Normalizer("standardize").fit(X_train)
    X_train, X_test = normalizer.transform(X_train), normalizer.transform(X_test)
    n_train, n_features = X_train.shape
    n_classes = 10
    with_bias = np.hstack([X_train, np.ones((n_train, 1), dtype=X_train.dtype)])
    repeated_labels = {}

    def training_cross_entropy(parameters):
        """(P, 650) candidate parameter vectors -> (P,) mean training cross-entropy, all in one matrix product."""
        count = parameters.shape[0]
        # candidate k's weight row c is parameters[k, c*64:(c+1)*64], its bias parameters[k, 640 + c]
        weights = parameters[:, : n_classes * n_features].reshape(count, n_classes, n_features)
        biases = parameters[:, n_classes * n_features :].reshape(count, n_classes, 1)
        stacked = np.concatenate([weights, biases], axis=2).reshape(count * n_classes, n_features + 1)
        logits = (with_bias @ stacked.T.astype(np.float32)).reshape(n_train * count, n_classes)
        if count not in repeated_labels:
            repeated_labels[count] = np.repeat(y_train, count)
        per_row = crossent.softmax_cross_entropy(logits, repeated_labels[count], reduction="none")
        return per_row.reshape(n_train, count).mean(axis=0, dtype=np.float64)

    dimension = n_classes * n_features + n_classes
    population, iterations = 200, (DIGITS_QUICK_ITERATIONS if args.quick else DIGITS_ITERATIONS)
    training_cross_entropy(np.zeros((2, dimension)))  # compile the loss kernel before the clock starts
    started = time.perf_counter()
    result = cem.minimize(training_cross_entropy, np.zeros(dimension), population=population,
                          sigma0=DIGITS_SIGMA0, max_iter=iterations, seed=0)
    cem_seconds = time.perf_counter() - started
    model = SoftmaxRegression(n_features, n_classes)
    weight, bias = model.parameters()
    weight[...] = result.x[: n_classes * n_features].reshape(n_classes, n_features)
    bias[...] = result.x[n_classes * n_features :]
    cem_report = crossent.evaluate(model, X_test, y_test)
    cem_train = crossent.evaluate(model, X_train, y_train)

    sgd_model = SoftmaxRegression(n_features, n_classes)
    epochs = 20
    started = time.perf_counter()
    crossent.fit(sgd_model, X_train, y_train, optimizer="momentum", lr=0.05, epochs=epochs, batch_size=32, seed=0,
                 progress=False)
    sgd_seconds = time.perf_counter() - started
    sgd_report = crossent.evaluate(sgd_model, X_test, y_test)
    sgd_train = crossent.evaluate(sgd_model, X_train, y_train)
    print("  digits done", file=sys.stderr, flush=True)
    return {
        "n_train": n_train, "n_test": X_test.shape[0], "dimension": dimension,
        "cem": {"population": population, "iterations": result.nit, "nfev": result.nfev, "seconds": cem_seconds,
                "train_loss": cem_train["loss"], "train_accuracy": cem_train["accuracy"],
                "test_loss": cem_report["loss"], "test_accuracy": cem_report["accuracy"],
                "message": result.message},
        "sgd": {"epochs": epochs, "steps": epochs * math.ceil(n_train / 32), "seconds": sgd_seconds,
                "train_loss": sgd_train["loss"], "train_accuracy": sgd_train["accuracy"],
                "test_loss": sgd_report["loss"], "test_accuracy": sgd_report["accuracy"]},
    }


def print_digits(results) -> None:
    cem_row, sgd_row = results["cem"], results["sgd"]
    header = ("training", "test accuracy", "test loss", "train loss", "train accuracy", "time (s)", "work")
    rows = [
        ["CEM on the parameters (no gradients)", f"{100 * cem_row['test_accuracy']:.2f} %",
         f"{cem_row['test_loss']:.4f}", f"{cem_row['train_loss']:.4f}", f"{100 * cem_row['train_accuracy']:.2f} %",
         f"{cem_row['seconds']:.2f}",
         f"{cem_row['iterations']} iterations x {cem_row['population']} candidates = {cem_row['nfev']:,} "
         f"full-data losses"],
        ["SGD with momentum (crossent.fit)", f"{100 * sgd_row['test_accuracy']:.2f} %", f"{sgd_row['test_loss']:.4f}",
         f"{sgd_row['train_loss']:.4f}", f"{100 * sgd_row['train_accuracy']:.2f} %", f"{sgd_row['seconds']:.2f}",
         f"{sgd_row['epochs']} epochs = {sgd_row['steps']:,} minibatch gradients"],
    ]
    print_table(f"Softmax classifier on the 8x8 digits ({results['n_train']} train / {results['n_test']} test, "
                f"{results['dimension']} parameters)", header, rows,
                ["CEM: crossent.cem.minimize on the mean training cross-entropy of the flattened (W, b), x0 = 0, "
                 f"population {cem_row['population']}, elite_frac 0.1, smoothing 0.7, sigma0 {DIGITS_SIGMA0}, diagonal "
                 f"covariance, seed 0; stopped: {cem_row['message']}",
                 "SGD: crossent.fit(SoftmaxRegression(64, 10), optimizer='momentum', lr=0.05, batch_size=32, "
                 "epochs=20, seed=0), the recipe of `crossent train`",
                 "both on the pixels standardised with the training split's mean and standard deviation"])


# =====================================================================================================
# model-predictive control of a point mass around an obstacle
# =====================================================================================================

MPC = {
    "dt": 0.1, "horizon": 30, "max_control": 2.0, "start": (0.0, 0.0), "goal": (8.0, 0.0),
    "obstacle_center": (4.0, 0.2), "obstacle_radius": 1.5, "safety_margin": 0.3,
    "goal_weight": 1.0, "control_weight": 0.01, "obstacle_weight": 1000.0, "terminal_weight": 10.0,
    "terminal_velocity_weight": 10.0, "goal_radius": 0.2, "goal_speed": 0.3, "max_steps": 150,
    "population": 32, "iterations_per_step": 3, "sigma0": 1.0, "grad_steps": 2, "grad_lr": 0.005,
}


class PointMass:
    r"""Plan cost of a double integrator, batched over candidate control sequences, with its gradient.

    State: position p and velocity v in the plane; control u (an acceleration),
    each component in [-max_control, max_control]. Semi-implicit Euler steps:
    :math:`v_{t} = v_{t-1} + \Delta t\, u_t`, :math:`p_t = p_{t-1} + \Delta t\, v_t`, t = 1..H.
    Cost of a plan U (H, 2) from state (p_0, v_0):

    .. math::

        J = \sum_{t=1}^H \big[ w_g \lVert p_t - g \rVert^2 + w_u \lVert u_t \rVert^2
              + w_o \max(0, R - \lVert p_t - c \rVert)^2 \big]
            + w_T \lVert p_H - g \rVert^2 + w_v \lVert v_H \rVert^2

    with R the obstacle radius plus a safety margin. The gradient runs the
    dynamics backwards: :math:`\partial J / \partial v_t = [t = H]\, 2 w_v v_H
    + \Delta t \sum_{s \ge t} \partial J / \partial p_s` and
    :math:`\partial J / \partial u_t = 2 w_u u_t + \Delta t \sum_{s \ge t} \partial J / \partial v_s`.
    """

    def __init__(self, settings):
        self.settings = settings
        self.dt = settings["dt"]
        self.horizon = settings["horizon"]
        self.goal = np.array(settings["goal"])
        self.center = np.array(settings["obstacle_center"])
        self.safe_radius = settings["obstacle_radius"] + settings["safety_margin"]

    def rollout(self, position, velocity, controls):
        """controls (n, H, 2) -> positions, velocities (n, H, 2)."""
        velocities = velocity + self.dt * np.cumsum(controls, axis=1)
        positions = position + self.dt * np.cumsum(velocities, axis=1)
        return positions, velocities

    def _parts(self, position, velocity, flat_controls):
        controls = flat_controls.reshape(-1, self.horizon, 2)
        positions, velocities = self.rollout(position, velocity, controls)
        to_goal = positions - self.goal
        from_center = positions - self.center
        distance = np.sqrt(np.sum(from_center**2, axis=2))
        intrusion = np.maximum(0.0, self.safe_radius - distance)
        return controls, positions, velocities, to_goal, from_center, distance, intrusion

    def cost(self, position, velocity, flat_controls):
        s = self.settings
        controls, positions, velocities, to_goal, _, _, intrusion = self._parts(position, velocity, flat_controls)
        return (s["goal_weight"] * np.sum(to_goal**2, axis=(1, 2))
                + s["control_weight"] * np.sum(controls**2, axis=(1, 2))
                + s["obstacle_weight"] * np.sum(intrusion**2, axis=1)
                + s["terminal_weight"] * np.sum(to_goal[:, -1] ** 2, axis=1)
                + s["terminal_velocity_weight"] * np.sum(velocities[:, -1] ** 2, axis=1))

    def gradient(self, position, velocity, flat_controls):
        s = self.settings
        controls, positions, velocities, to_goal, from_center, distance, intrusion = self._parts(
            position, velocity, flat_controls)
        d_positions = 2 * s["goal_weight"] * to_goal
        d_positions[:, -1] += 2 * s["terminal_weight"] * to_goal[:, -1]
        inward = np.divide(intrusion, distance, out=np.zeros_like(distance), where=distance > 0)
        d_positions -= 2 * s["obstacle_weight"] * inward[:, :, None] * from_center
        d_velocities = self.dt * np.flip(np.cumsum(np.flip(d_positions, axis=1), axis=1), axis=1)
        d_velocities[:, -1] += 2 * s["terminal_velocity_weight"] * velocities[:, -1]
        d_controls = 2 * s["control_weight"] * controls + self.dt * np.flip(
            np.cumsum(np.flip(d_velocities, axis=1), axis=1), axis=1)
        return d_controls.reshape(flat_controls.shape)


def check_mpc_gradient(system) -> float:
    """Largest relative difference between the analytic gradient and central differences, at random plans."""
    rng = np.random.default_rng(0)
    position, velocity = np.array([2.5, -0.4]), np.array([1.0, 0.5])
    worst = 0.0
    for _ in range(3):
        plan = rng.uniform(-2, 2, system.horizon * 2)
        analytic = system.gradient(position, velocity, plan[None])[0]
        numeric = crossent.numerical_gradient(lambda u: float(system.cost(position, velocity, u[None])[0]), plan)
        worst = max(worst, float(np.max(np.abs(analytic - numeric)) / max(1.0, np.max(np.abs(numeric)))))
    return worst


def run_episode(system, use_gradient, seed, population):
    s = system.settings
    rng = np.random.default_rng(seed)
    position, velocity = np.array(s["start"], dtype=float), np.zeros(2)
    plan = np.zeros(system.horizon * 2)
    bounds = [(-s["max_control"], s["max_control"])] * plan.size
    path, executed_cost, collided, reached, nfev, njev = [position.copy()], 0.0, False, False, 0, 0
    planning_seconds = 0.0
    for step in range(1, s["max_steps"] + 1):
        options = dict(bounds=bounds, population=population, sigma0=s["sigma0"],
                       max_iter=s["iterations_per_step"], seed=rng)
        if use_gradient:
            options.update(grad=lambda U: system.gradient(position, velocity, U), grad_steps=s["grad_steps"],
                           grad_lr=s["grad_lr"])
        started = time.perf_counter()
        result = cem.minimize(lambda U: system.cost(position, velocity, U), plan, **options)
        planning_seconds += time.perf_counter() - started
        nfev, njev = nfev + result.nfev, njev + result.njev
        control = result.x[:2]
        # execute the first control of the best plan, then shift the plan by one step as the next warm start
        velocity = velocity + system.dt * control
        position = position + system.dt * velocity
        path.append(position.copy())
        executed_cost += (s["goal_weight"] * np.sum((position - system.goal) ** 2)
                          + s["control_weight"] * np.sum(control**2))
        collided |= bool(np.linalg.norm(position - system.center) < s["obstacle_radius"])
        plan = np.concatenate([result.x[2:], np.zeros(2)])
        if np.linalg.norm(position - system.goal) < s["goal_radius"] and np.linalg.norm(velocity) < s["goal_speed"]:
            reached = True
            break
    return {"success": reached and not collided, "reached": reached, "collided": collided, "steps": step,
            "cost": float(executed_cost), "nfev": nfev, "njev": njev, "planning_seconds": planning_seconds,
            "path": np.array(path)}


def run_mpc(args) -> dict:
    system = PointMass(MPC)
    gradient_error = check_mpc_gradient(system)
    population = MPC["population"]
    # the third planner evaluates f as often as CEM+gradient evaluates f and its gradient together
    same_work = population * (1 + MPC["grad_steps"])
    planners = {"CEM": (False, population), "CEM+gradient": (True, population),
                f"CEM, population {same_work}": (False, same_work)}
    episodes = {name: [] for name in planners}
    for seed in range(2 if args.quick else min(args.seeds, 10)):
        for name, (use_gradient, planner_population) in planners.items():
            episodes[name].append(run_episode(system, use_gradient, seed, planner_population))
    print("  MPC done", file=sys.stderr, flush=True)
    return {"gradient_error": gradient_error, "episodes": episodes, "settings": dict(MPC)}


def print_mpc(results) -> None:
    s = results["settings"]
    header = ("planner", "success", "collisions", "median steps to goal", "median executed cost",
              "f evals / step", "grad evals / step", "planning ms / step")
    rows = []
    for name, episodes in results["episodes"].items():
        steps = sum(episode["steps"] for episode in episodes)
        rows.append([name, f"{sum(e['success'] for e in episodes)}/{len(episodes)}",
                     f"{sum(e['collided'] for e in episodes)}",
                     f"{statistics.median(e['steps'] for e in episodes if e['reached']):.0f}"
                     if any(e["reached"] for e in episodes) else "-",
                     f"{statistics.median(e['cost'] for e in episodes):.1f}",
                     f"{sum(e['nfev'] for e in episodes) / steps:,.0f}",
                     f"{sum(e['njev'] for e in episodes) / steps:,.0f}",
                     f"{1000 * sum(e['planning_seconds'] for e in episodes) / steps:.1f}"])
    print_table(f"MPC: point mass from {s['start']} to {s['goal']} around a disc of radius {s['obstacle_radius']} "
                f"at {s['obstacle_center']}", header, rows,
                [f"double integrator, dt {s['dt']}, |u_i| <= {s['max_control']}; horizon {s['horizon']} steps "
                 f"({2 * s['horizon']} decision variables), replanned every step from the previous plan shifted by "
                 f"one step; {s['iterations_per_step']} CEM iterations of {s['population']} candidates per step "
                 f"(third row: {s['population'] * (1 + s['grad_steps'])}, as many f evaluations as CEM+gradient has "
                 f"f and gradient evaluations), "
                 f"sigma0 {s['sigma0']}, reflection at the control bounds",
                 f"CEM+gradient: {s['grad_steps']} gradient steps of lr {s['grad_lr']} on every candidate "
                 f"(analytic gradient; largest difference from central differences "
                 f"{results['gradient_error']:.1e} of the gradient's size)",
                 f"success: within {s['goal_radius']} of the goal at speed < {s['goal_speed']} in at most "
                 f"{s['max_steps']} steps without entering the disc; executed cost: sum over the steps taken of "
                 f"{s['goal_weight']} |p - goal|^2 + {s['control_weight']} |u|^2",
                 f"{len(next(iter(results['episodes'].values())))} episodes (seeds) per planner"])


def save_mpc_plot(results, path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from crossent._io import atomic_output

    s = results["settings"]
    figure = Figure(figsize=(9.5, 3.6), dpi=120)
    axes = figure.add_subplot()
    axes.add_patch(Circle(s["obstacle_center"], s["obstacle_radius"], color="0.75", label="obstacle"))
    axes.add_patch(Circle(s["obstacle_center"], s["obstacle_radius"] + s["safety_margin"], fill=False,
                          linestyle=":", color="0.5", label="safety margin"))
    for (name, episodes), color in zip(results["episodes"].items(), ("tab:blue", "tab:red", "tab:green")):
        for index, episode in enumerate(episodes):
            trajectory = episode["path"]
            axes.plot(trajectory[:, 0], trajectory[:, 1], color=color, alpha=1.0 if index == 0 else 0.35, linewidth=1.5,
                      label=f"{name} ({'success' if episode['success'] else 'failure'}, {episode['steps']} steps)"
                      if index == 0 else None)
    axes.plot(*s["start"], "ko", label="start")
    axes.plot(*s["goal"], "k*", markersize=12, label="goal")
    axes.set_aspect("equal")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title("receding-horizon CEM vs CEM + gradient steps (faint: other seeds)")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    figure.tight_layout()
    path = Path(path)
    with atomic_output(path) as stream:
        figure.savefig(stream, format=path.suffix.lower().lstrip("."))


# =====================================================================================================
# report
# =====================================================================================================


def print_table(title: str, header, rows: list, notes: list) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                                for i, (cell, width) in enumerate(zip(cells, widths))) + " |"

    print(f"\n{title}\n")
    print(line(header))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print(line(row))
    if notes:
        print()
    for note in notes:
        print(f"- {note}")


def machine_lines() -> list:
    from crossent.bench import cpu_model

    versions = f"Python {platform.python_version()}, crossent {crossent.__version__}, NumPy {np.__version__}"
    try:
        import scipy

        versions += f", SciPy {scipy.__version__}"
    except ImportError:
        versions += ", SciPy not installed (its rows are skipped)"
    return [f"{os.cpu_count()} CPUs ({cpu_model()}); load average before the run {os.getloadavg()[0]:.2f}", versions]


def jsonable(value):
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 seeds, smaller budgets, under a minute")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 20, quick 3)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {', '.join(SECTIONS)} (default all)")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="save the MPC trajectories to FILE (.png, .pdf, "
                                                                  ".svg; written atomically)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE (atomically)")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 3 if args.quick else 20
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    sections = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown or not sections:
        parser.error(f"--sections takes a comma-separated subset of {', '.join(SECTIONS)}, got {args.sections!r}")
    if args.plot is not None:
        if "mpc" not in sections:
            parser.error("--plot draws the MPC trajectories: add mpc to --sections")
        if args.plot.suffix.lower() not in (".png", ".pdf", ".svg"):
            parser.error(f"--plot must end in .png, .pdf or .svg, got {str(args.plot)!r}")
        if not (args.plot.parent if str(args.plot.parent) else Path(".")).is_dir():
            parser.error(f"--plot: directory {str(args.plot.parent)!r} does not exist")
        if importlib.util.find_spec("matplotlib") is None:
            parser.error("--plot needs matplotlib (pip install -e '.[plot]')")
    scipy_available = importlib.util.find_spec("scipy") is not None
    if not scipy_available:
        for name in ("Nelder-Mead (SciPy)", "differential evolution (SciPy)"):
            METHODS.pop(name)

    lines = machine_lines()
    results = {"argv": sys.argv[1:] if argv is None else list(argv), "quick": args.quick, "seeds": args.seeds,
               "scipy": scipy_available}
    started = time.perf_counter()
    if "functions" in sections:
        results["functions"] = run_functions(args)
    if "maxcut" in sections:
        results["maxcut"] = run_maxcut(args)
    if "digits" in sections:
        results["digits"] = run_digits(args)
    if "mpc" in sections:
        results["mpc"] = run_mpc(args)
    lines.append(f"load average after the run {os.getloadavg()[0]:.2f}; the run took "
                 f"{time.perf_counter() - started:.0f} s")
    results["machine"] = lines

    print("Machine")
    for line in lines:
        print(f"  {line}")
    if "functions" in results:
        print_functions(results["functions"])
    if "maxcut" in results:
        print_maxcut(results["maxcut"], args.seeds)
    if "digits" in results:
        print_digits(results["digits"])
    if "mpc" in results:
        print_mpc(results["mpc"])
        if args.plot is not None:
            save_mpc_plot(results["mpc"], args.plot)
            print(f"\nwrote {args.plot}")
    if args.json is not None:
        from crossent._io import atomic_output

        with atomic_output(args.json) as stream:
            stream.write(json.dumps(jsonable(results), indent=1).encode())
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
