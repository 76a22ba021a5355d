"""Large-margin softmax (L-Softmax) next to plain softmax cross-entropy: the same MLP on MNIST, one run.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/lsoftmax_mnist.py                  # full run, 784-256-10, 5 epochs per row
    .venv/bin/python benchmarks/lsoftmax_mnist.py --quick          # smoke run, about a minute
    .venv/bin/python benchmarks/lsoftmax_mnist.py --margins 2,4 --beta-min 0 --epochs 12 --json out.json

Every row trains :class:`crossent.nn.LargeMarginSoftmaxClassifier` (784-H-10,
ReLU, a bias-free output layer) from the same initial weights (``seed``), on
the same shuffled batches (:func:`crossent.fit`'s ``(seed, epoch)``
permutations), with the same optimiser and learning-rate schedule (one
cosine schedule over the whole run). Only the margin and the floor of beta
change; margin 1 *is* plain softmax cross-entropy of the same network (bit for
bit; ``tests/test_lsoftmax.py``), so it is the baseline.

The margin's annealing weight follows the reference recipe's form,
``beta_t = max(beta_min, 1000 (1 + gamma t)^-35)``, with ``gamma`` chosen so
that beta reaches 1 half-way through the run (as ``crossent train --margin``
does), then falls on to ``beta_min``: each margin is trained once per floor
in ``--beta-min`` (default 0, the reference's ``lambda_min``, and 1, the
command line's floor).

The rows train in lockstep -- epoch 1 of every row, then epoch 2, ..., the
order rotating from epoch to epoch -- so that the drift of a shared machine's
load spreads over all rows alike. Reported per row: test accuracy (plain
scores ``W h``, as L-Softmax predicts), the last epoch's training loss (the
margin loss: not comparable across rows), the final beta, and the median
seconds per epoch with its ratio to margin 1. The machine's limit, measured
before every epoch round (median reported): the epoch's matrix-product work
at NumPy's float32 sgemm rate (``--sgemm-size``), the same for every row.
The load average before and after is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"

#: the shared recipe: SGD with momentum, cosine decay of the learning rate per step, L2
RECIPE = {"batch_size": 128, "optimizer": "momentum", "momentum": 0.9, "lr": 0.05, "schedule": "cosine",
          "weight_decay": 5e-4}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _margins(text: str) -> list:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected margins like 1,2,3, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integer margins >= 1 like 1,2,3, got {text!r}")
    return values


def _floors(text: str) -> list:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected floors like 0,1, got {text!r}") from None
    if not values or min(values) < 0 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite floors >= 0 like 0,1, got {text!r}")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="first 6000 training images, 2 epochs, margins 2,4 (unless given)")
    parser.add_argument("--epochs", type=_positive, help="epochs per margin (default 5; quick 2)")
    parser.add_argument("--hidden", type=_positive, default=256, help="hidden width (default 256)")
    parser.add_argument("--margins", type=_margins, help="margins > 1 to train next to margin 1 (default 2,3,4; "
                                                         "quick 2,4)")
    parser.add_argument("--train-rows", type=_positive, dest="train_rows",
                        help="train on the first N images (default all 60000; quick 6000)")
    parser.add_argument("--beta-min", type=_floors, default=[0.0, 1.0], dest="beta_min",
                        help="floors of beta, one set of rows each (default 0,1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=_positive, default=1,
                        help="BLAS threads (threadpoolctl, when installed; default 1: steadier on a shared machine)")
    parser.add_argument("--sgemm-size", type=_positive, default=1024, dest="sgemm_size")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), dest="data_dir")
    parser.add_argument("--json", metavar="FILE", help="write every figure (each epoch too) to FILE")
    return parser


def sgemm_rate(size: int, repeats: int = 5) -> float:
    """Median GFLOP/s of a float32 size^3 NumPy matrix product."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    np.matmul(a, b)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(a, b)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def epoch_flop(n_rows: int, hidden: int, n_features: int = 784, n_classes: int = 10) -> float:
    """Matrix-product FLOP of one training epoch: the first layer's forward and weight gradient (its input
    gradient is skipped), the output layer's forward, weight gradient and input gradient."""
    return n_rows * (2 * n_features * hidden * 2 + 2 * hidden * n_classes * 3)


def beta_gamma_for(total_steps: int) -> float:
    """gamma with 1000 (1 + gamma t)^-35 = 1 at t = total_steps / 2."""
    return (1000.0 ** (1 / 35) - 1) / max(1.0, total_steps / 2)


def run_rows(rows, data, options):
    """Train every (margin, beta_min) row epoch by epoch in rotating order; returns (results, sgemm rates)."""
    import crossent
    from crossent.nn import LargeMarginSoftmaxClassifier
    from crossent.optim import make_schedule
    from crossent.train import History, make_optimizer

    X_train, y_train, X_test, y_test = data
    total_steps = options.epochs * math.ceil(len(X_train) / RECIPE["batch_size"])
    states = []
    for margin, beta_min in rows:
        model = LargeMarginSoftmaxClassifier(
            X_train.shape[1], 10, margin=margin, hidden_sizes=[options.hidden], beta_start=1000.0,
            beta_gamma=beta_gamma_for(total_steps), beta_power=35.0, beta_min=beta_min, seed=options.seed,
        )
        optimizer = make_optimizer(RECIPE["optimizer"], model.parameters(), lr=RECIPE["lr"],
                                   momentum=RECIPE["momentum"], weight_decay=RECIPE["weight_decay"])
        schedule = make_schedule(RECIPE["schedule"], RECIPE["lr"], total_steps)
        states.append({"model": model, "optimizer": optimizer, "schedule": schedule, "history": History()})
    # warm-up, untimed: compiled loss kernels, BLAS threads, first-touch of buffers, on both code paths
    for margin in sorted({margin for margin, _ in rows}):
        warm = LargeMarginSoftmaxClassifier(X_train.shape[1], 10, margin=margin, hidden_sizes=[options.hidden])
        crossent.fit(warm, X_train[:512], y_train[:512], epochs=1, batch_size=RECIPE["batch_size"], progress=False)
    rates = []
    for epoch in range(options.epochs):
        rates.append(sgemm_rate(options.sgemm_size))
        for offset in range(len(rows)):
            state = states[(epoch + offset) % len(rows)]
            crossent.fit(state["model"], X_train, y_train, optimizer=state["optimizer"],
                         schedule=state["schedule"], epochs=epoch + 1, batch_size=RECIPE["batch_size"],
                         seed=options.seed, progress=False, history=state["history"])
    results = []
    for (margin, beta_min), state in zip(rows, states):
        model, history = state["model"], state["history"]
        results.append({
            "margin": margin, "beta_min": beta_min,
            "test_accuracy": float(np.mean(model.predict(X_test) == y_test)),
            "train_loss": history["train_loss"][-1], "beta": model.beta,
            "steps": model.output_layer.annealing_step, "epoch_s": statistics.median(history["time_s"]),
            "history": history.records,
        })
    return results, rates


def main(argv=None) -> int:
    try:
        options = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"lsoftmax_mnist.py: {error}", file=sys.stderr)
        return 2
    options.epochs = options.epochs or (2 if options.quick else 5)
    options.margins = options.margins or ([2, 4] if options.quick else [2, 3, 4])
    options.train_rows = options.train_rows or (6000 if options.quick else None)
    rows = [(1, 0.0)] + [(margin, floor) for floor in options.beta_min for margin in options.margins if margin > 1]

    from crossent.datasets import load_mnist

    load_before = os.getloadavg()
    X_train, y_train, X_test, y_test = load_mnist(options.data_dir, download=False)
    if options.train_rows is not None:
        X_train, y_train = X_train[: options.train_rows], y_train[: options.train_rows]

    blas = {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"L-Softmax vs softmax CE: MLP 784-{options.hidden}-10 (ReLU, bias-free output) on MNIST, "
          f"{len(X_train):,} train / {len(X_test):,} test images, {options.epochs} epochs, batch "
          f"{RECIPE['batch_size']}, SGD momentum {RECIPE['momentum']}, lr {RECIPE['lr']} cosine, "
          f"weight decay {RECIPE['weight_decay']}, seed {options.seed}, {options.threads} BLAS thread(s)")
    print(f"beta_t = max(beta_min, 1000 (1 + gamma t)^-35), beta = 1 at half the run; "
          f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{', '.join(f'{k}={v}' for k, v in blas.items() if v is not None) or 'no OPENBLAS_* set'}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in load_before)}")
    print()

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=options.threads, user_api="blas")
    with limits:
        results, rates = run_rows(rows, (X_train, y_train, X_test, y_test), options)
    load_after = os.getloadavg()
    rate = statistics.median(rates)
    floor = epoch_flop(len(X_train), options.hidden) / (rate * 1e9)
    baseline = results[0]

    header = (f"{'loss':<22}  {'beta_min':>8}  {'test acc':>8}  {'train loss':>10}  {'final beta':>10}  "
              f"{'s/epoch':>8}  {'/ softmax':>9}  {'sgemm floor':>11}")
    print(header)
    print("-" * len(header))
    for result in results:
        name = "softmax CE (m = 1)" if result["margin"] == 1 else f"L-Softmax m = {result['margin']}"
        floor_text = "-" if result["margin"] == 1 else f"{result['beta_min']:g}"
        beta_text = "-" if result["margin"] == 1 else f"{result['beta']:.3g}"
        print(f"{name:<22}  {floor_text:>8}  {100 * result['test_accuracy']:>7.2f}%  "
              f"{result['train_loss']:>10.4f}  {beta_text:>10}  {result['epoch_s']:>8.2f}  "
              f"{result['epoch_s'] / baseline['epoch_s']:>9.2f}  {floor:>10.2f}s")
    print()
    print(f"sgemm {options.sgemm_size}^3 float32: median {rate:.1f} GFLOP/s over {len(rates)} rounds "
          f"(min {min(rates):.1f}, max {max(rates):.1f}); load average after: "
          f"{' '.join(f'{v:.2f}' for v in load_after)}")

    if options.json:
        from crossent._io import atomic_output

        report = {
            "recipe": RECIPE, "epochs": options.epochs, "hidden": options.hidden, "seed": options.seed,
            "train_rows": len(X_train), "threads": options.threads, "beta_min": options.beta_min, "sgemm_gflops": rate,
            "sgemm_gflops_per_round": rates, "sgemm_floor_s": floor, "load_before": load_before,
            "load_after": load_after, "results": results,
        }
        with atomic_output(options.json) as file:
            file.write(json.dumps(report, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
