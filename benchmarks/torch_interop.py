"""crossent's losses inside PyTorch (``crossent.torch``) next to PyTorch's own, and the machine's limits, in one run.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/torch_interop.py                  # full run, 4-8 minutes
    .venv/bin/python benchmarks/torch_interop.py --quick          # smoke run, under a minute
    .venv/bin/python benchmarks/torch_interop.py --threads 1 --json torch_interop.json

Two workloads, each printed as one table with the columns crossent.torch,
torch, crossent / torch and the machine's limit:

* **mlp** -- a torch MLP 784-800-10 (ReLU) trained on MNIST twice, once with
  :func:`crossent.torch.cross_entropy` and once with
  ``torch.nn.functional.cross_entropy``: the same initial weights, the same
  shuffled batches (crossent.fit's ``(seed, epoch)`` permutations), batch 128,
  ``torch.optim.SGD`` with momentum 0.9 and lr 0.1. Seconds per epoch (median
  over the epochs; the two runs' epochs interleaved, in alternating order), the
  loss step alone (forward and backward of the loss only, on random (128, 10)
  and (4096, 1000) logits) and the test accuracy after the last epoch. Limits:
  the epoch's matrix-product FLOP at the sgemm rate measured below, and one read
  and one write of the logits at memcopy speed (:func:`crossent.bench.memcopy_rate`).
* **linear** -- a torch output layer whose ``weight`` is an ``nn.Parameter``
  (V, H), with :class:`crossent.torch.LinearCrossEntropyLoss` (the N x V logits
  never exist) against ``F.cross_entropy(h @ W.T, y)``, forward and backward
  with gradients for ``h`` and ``W``, at N=8192, H=512, V=50257 float32
  (``--quick``: V=2048). Each runs in a child process of its own, which reports
  the median time of 3 calls and its peak resident memory above the inputs.
  Limit: the three float32 matrix products that both perform (``h @ W.T``,
  ``G @ W``, ``G.T @ h``) into preallocated outputs, timed with ``torch.matmul``
  (the products of the torch row) and with ``np.matmul`` (NumPy's BLAS, which
  crossent.torch's linear layer uses), and the two gradients' bytes for the memory.

The load average is printed before and after the run: on this shared machine
timings drift by tens of percent, so only the ratios of one run mean much.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from crossent import bench

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"

N_FEATURES, HIDDEN, N_CLASSES = 784, 800, 10
#: the MLP recipe: the same for both loss functions
MLP_RECIPE = {"batch_size": 128, "lr": 0.1, "momentum": 0.9, "seed": 0}
DEFAULT_EPOCHS, QUICK_EPOCHS = 5, 2
#: (rows, classes) of the loss-step timings
LOSS_STEP_SHAPES = ((128, 10), (4096, 1000))
#: (N, H, V) of the linear workload
LINEAR_SHAPE = (8192, 512, 50257)
QUICK_LINEAR_SHAPE = (8192, 512, 2048)
LINEAR_REPEAT = 3

CROSSENT_COLUMN, TORCH_COLUMN = "crossent.torch", "torch"
COLUMNS = ("figure", CROSSENT_COLUMN, TORCH_COLUMN, "crossent / torch", "machine limit")


def set_threads(threads: int) -> None:
    """``threads`` for torch, Numba and NumPy's BLAS (which crossent.torch's linear layer uses), after import torch.

    NumPy's BLAS is capped through threadpoolctl when it is installed (the cap
    lasts until the process ends); without it, it keeps the threads it started
    with, which the header reports.
    """
    bench._set_threads(threads)  # only an imported torch gets its threads set
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads, user_api="blas")


# =====================================================================================================
# workload 1: an MLP trained on MNIST with either loss function
# =====================================================================================================


def make_mlp():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, HIDDEN), torch.nn.ReLU(),
                               torch.nn.Linear(HIDDEN, N_CLASSES))


def mlp_flops_per_row() -> int:
    # forward of both layers, weight gradients of both, input gradient of the second layer only
    return 2 * (N_FEATURES * HIDDEN + HIDDEN * N_CLASSES) * 2 + 2 * HIDDEN * N_CLASSES


def epoch_order(seed: int, epoch: int, n_samples: int) -> np.ndarray:
    """The permutation crossent.fit draws for ``epoch``."""
    return np.random.default_rng([seed, epoch]).permutation(n_samples)


def train_epoch(model, optimizer, loss_function, X, y, order, batch_size: int) -> float:
    """One epoch of minibatch SGD; the mean training loss over it."""
    import torch

    permutation = torch.from_numpy(order)
    X_epoch, y_epoch = X[permutation], y[permutation]  # one gather per epoch, then contiguous slices
    loss_sum = torch.zeros((), dtype=torch.float64)
    for start in range(0, X_epoch.shape[0], batch_size):
        X_batch, y_batch = X_epoch[start:start + batch_size], y_epoch[start:start + batch_size]
        loss = loss_function(model(X_batch), y_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * X_batch.shape[0]
    return float(loss_sum) / X_epoch.shape[0]


def accuracy(model, X, y) -> float:
    import torch

    with torch.no_grad():
        return float((model(X).argmax(dim=1) == y).double().mean())


def first_batch_difference(initial, loss_functions: dict, X_batch, y_batch) -> dict:
    """How far apart the loss functions' first steps are: loss and parameter gradients from the initial weights."""
    import torch

    losses, gradients = [], []
    for loss_function in loss_functions.values():
        model = copy.deepcopy(initial)
        loss = loss_function(model(X_batch), y_batch)
        loss.backward()
        losses.append(loss.item())
        gradients.append([parameter.grad for parameter in model.parameters()])
    first, second = gradients
    return {"loss_difference": abs(losses[0] - losses[1]),
            "max_abs_gradient_difference": max(float(torch.max(torch.abs(a - b))) for a, b in zip(first, second))}


def run_mlp(loss_functions: dict, data: tuple, epochs: int) -> dict:
    """Train one MLP per loss function from the same initial weights on the same batches, epochs interleaved."""
    import torch

    X_train, y_train, X_test, y_test = (torch.from_numpy(array) for array in data)
    recipe = MLP_RECIPE
    torch.manual_seed(recipe["seed"])
    initial = make_mlp()
    first_rows = torch.from_numpy(epoch_order(recipe["seed"], 0, X_train.shape[0])[:recipe["batch_size"]])
    first_batch = first_batch_difference(initial, loss_functions, X_train[first_rows], y_train[first_rows])
    runs = {}
    for name in loss_functions:
        model = copy.deepcopy(initial)
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"])
        runs[name] = {"model": model, "optimizer": optimizer, "epoch_seconds": [], "train_loss": []}
    names = list(loss_functions)
    for epoch in range(epochs):
        order = epoch_order(recipe["seed"], epoch, X_train.shape[0])
        # alternating order: neither loss function always runs right after the other's epoch
        for name in names if epoch % 2 == 0 else names[::-1]:
            run = runs[name]
            started = time.perf_counter()
            loss = train_epoch(run["model"], run["optimizer"], loss_functions[name], X_train, y_train, order,
                               recipe["batch_size"])
            run["epoch_seconds"].append(time.perf_counter() - started)
            run["train_loss"].append(loss)
    results = {}
    for name, run in runs.items():
        results[name] = {"epoch_seconds": run["epoch_seconds"],
                         "seconds_per_epoch": statistics.median(run["epoch_seconds"]),
                         "train_loss": run["train_loss"],
                         "test_accuracy": accuracy(run["model"], X_test, y_test)}
    first, second = (runs[name]["model"] for name in names)
    results["first_batch"] = first_batch
    results["max_abs_weight_difference"] = max(
        float((a.detach() - b.detach()).abs().max()) for a, b in zip(first.parameters(), second.parameters()))
    return results


def time_loss_steps(loss_functions: dict, shape: tuple, rounds: int, calls_per_block: int, seed: int) -> dict:
    """Seconds per forward + backward of the loss alone: median over rounds of a block of calls, interleaved."""
    import torch

    n_rows, n_classes = shape
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator).requires_grad_()
    labels = torch.randint(0, n_classes, (n_rows,), generator=generator)

    def block(loss_function, calls):
        started = time.perf_counter()
        for _ in range(calls):
            logits.grad = None  # a fresh gradient each call, as in a training step
            loss_function(logits, labels).backward()
        return (time.perf_counter() - started) / calls

    names = list(loss_functions)
    for name in names:  # warm-up: first calls, thread pools, compiled kernels
        block(loss_functions[name], 2)
    times = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            times[name].append(block(loss_functions[name], calls_per_block))
    return {name: {"seconds_each_round": values, "seconds": statistics.median(values)}
            for name, values in times.items()}


# =====================================================================================================
# workload 2: linear layer + cross-entropy, one child process per implementation
# =====================================================================================================


def linear_child(spec: dict) -> dict:
    """Run one implementation of the linear workload in this (child) process; time and peak RSS above the inputs."""
    import torch
    import torch.nn.functional as F

    fused = spec["implementation"] == "crossent"
    if fused:
        import crossent.torch
    set_threads(spec["threads"])
    n_rows, hidden_size, vocabulary = spec["shape"]

    class OutputLayer(torch.nn.Module):
        """The last layer of a model and its loss: ``weight`` (V, H) is a parameter."""

        def __init__(self, weight):
            super().__init__()
            self.weight = torch.nn.Parameter(weight)
            self.criterion = crossent.torch.LinearCrossEntropyLoss() if fused else None

        def forward(self, hidden, target):
            if fused:
                return self.criterion(hidden, self.weight, target)
            return F.cross_entropy(hidden @ self.weight.T, target)

    def inputs(shape, seed):
        rows, size, classes = shape
        rng = np.random.default_rng(seed)
        hidden = torch.from_numpy(rng.standard_normal((rows, size), dtype=np.float32)).requires_grad_()
        weight = rng.standard_normal((classes, size), dtype=np.float32)
        weight *= np.float32(1 / math.sqrt(size))  # logits of unit variance, as after a trained layer
        return hidden, OutputLayer(torch.from_numpy(weight)), torch.from_numpy(rng.integers(0, classes, rows))

    def step(hidden, layer, target):
        hidden.grad = layer.weight.grad = None
        loss = layer(hidden, target)
        loss.backward()
        return loss.item()

    # first calls (compiled kernels loaded, thread pools started) before the memory baseline, on fewer rows
    # but the same H and V: the same blocks and kernels as the timed calls
    step(*inputs((min(n_rows, 256), hidden_size, vocabulary), spec["seed"]))
    hidden, layer, target = inputs((n_rows, hidden_size, vocabulary), spec["seed"])
    baseline = bench._status_bytes("VmRSS")
    peak_reset = bench._reset_peak_rss()
    times, losses = [], []
    for _ in range(spec["repeat"]):
        started = time.perf_counter()
        losses.append(step(hidden, layer, target))
        times.append(time.perf_counter() - started)
    peak = bench._status_bytes("VmHWM")
    if hidden.grad is None or layer.weight.grad is None or hidden.grad.shape != hidden.shape:
        raise RuntimeError("the backward left a gradient missing")
    above_inputs = None if baseline is None or peak is None or not peak_reset else peak - baseline
    return {"seconds_each": times, "seconds": statistics.median(times), "loss": losses[-1],
            "rss_baseline_bytes": baseline, "rss_peak_bytes": peak, "rss_above_inputs_bytes": above_inputs}


def run_linear_child(spec: dict) -> dict:
    import crossent

    environment = dict(os.environ)
    # the child imports the same crossent as this process
    package_root = str(Path(crossent.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--linear-child"],
                               input=json.dumps(spec), capture_output=True, text=True, env=environment, check=False)
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        return {"reason": f"child process exited with status {completed.returncode}"
                          + (f": {lines[-1]}" if lines else "")}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def time_three_sgemm(shape: tuple, repeat: int, seed: int) -> dict:
    """The three float32 products of a linear layer's forward and backward into preallocated outputs.

    Timed with ``torch.matmul`` (the products of the torch row) and with
    ``np.matmul`` (NumPy's BLAS, which crossent.torch's linear layer uses), on
    the same arrays, in interleaved rounds after one warm-up call of each.
    """
    import torch

    n_rows, hidden_size, vocabulary = shape
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((n_rows, hidden_size), dtype=np.float32)
    weight = rng.standard_normal((vocabulary, hidden_size), dtype=np.float32)
    grad_logits = rng.standard_normal((n_rows, vocabulary), dtype=np.float32)
    logits = np.empty((n_rows, vocabulary), dtype=np.float32)
    grad_hidden, grad_weight = np.empty_like(hidden), np.empty_like(weight)
    arrays = (hidden, weight, grad_logits, logits, grad_hidden, grad_weight)
    tensors = tuple(torch.from_numpy(array) for array in arrays)  # the same memory

    def products(matmul, hidden, weight, grad_logits, logits, grad_hidden, grad_weight):
        matmul(hidden, weight.T, out=logits)
        matmul(grad_logits, weight, out=grad_hidden)
        matmul(grad_logits.T, hidden, out=grad_weight)

    libraries = {"torch": (torch.matmul, tensors), "numpy": (np.matmul, arrays)}
    for matmul, operands in libraries.values():
        products(matmul, *operands)  # warm-up: page faults of the outputs, thread start
    times = {name: [] for name in libraries}
    for _ in range(repeat):
        for name, (matmul, operands) in libraries.items():
            started = time.perf_counter()
            products(matmul, *operands)
            times[name].append(time.perf_counter() - started)
    flops = 2 * n_rows * hidden_size * vocabulary * 3
    results = {}
    for name, values in times.items():
        seconds = statistics.median(values)
        results[name] = {"seconds_each": values, "seconds": seconds, "flops": flops,
                         "gflop_per_s": flops / seconds / 1e9}
    return results


def run_linear(shape: tuple, threads: int, seed: int, say) -> dict:
    results = {"shape": list(shape)}
    for implementation in ("crossent", "torch"):
        say(f"linear: {implementation} in a child process")
        results[implementation] = run_linear_child({"implementation": implementation, "shape": list(shape),
                                                    "repeat": LINEAR_REPEAT, "threads": threads, "seed": seed})
    say("linear: 3 sgemm calls, torch and NumPy")
    sgemm = time_three_sgemm(shape, LINEAR_REPEAT, seed)
    results["sgemm"], results["sgemm_numpy"] = sgemm["torch"], sgemm["numpy"]
    n_rows, hidden_size, vocabulary = shape
    results["gradient_bytes"] = (n_rows + vocabulary) * hidden_size * 4
    return results


# =====================================================================================================
# report
# =====================================================================================================


def _ratio(mine, theirs) -> str:
    return "-" if mine is None or not theirs else f"{mine / theirs:.2f}"


def _seconds(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f}" if seconds >= 10 else f"{seconds:.3g}"


def _milliseconds(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e3:.3g}"


def _microseconds(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds * 1e6:.3g}"


def mlp_table(results: dict) -> list:
    mlp, steps, machine = results["mlp"], results["loss_steps"], results["machine"]
    mine, theirs = mlp[CROSSENT_COLUMN], mlp[TORCH_COLUMN]
    sgemm_rate = results["linear"]["sgemm"]["gflop_per_s"]
    compute_floor = results["settings"]["train_rows"] * mlp_flops_per_row() / (sgemm_rate * 1e9)
    rows = [["s/epoch (median)", f"{mine['seconds_per_epoch']:.3f}", f"{theirs['seconds_per_epoch']:.3f}",
             _ratio(mine["seconds_per_epoch"], theirs["seconds_per_epoch"]),
             f"{compute_floor:.3f} (matmul FLOP at sgemm rate)"]]
    for entry in steps:
        n_rows, n_classes = entry["shape"]
        small = n_rows * n_classes < 1e5
        unit, show = ("us", _microseconds) if small else ("ms", _milliseconds)
        floor = 2 * n_rows * n_classes * 4 / (machine["memcopy_gb_per_s"] * 1e9)
        a, b = entry[CROSSENT_COLUMN]["seconds"], entry[TORCH_COLUMN]["seconds"]
        rows.append([f"loss fwd+bwd {n_rows}x{n_classes} ({unit})", show(a), show(b), _ratio(a, b),
                     f"{show(floor)} (memcopy of the logits)"])
    rows.append(["final train loss (last epoch)", f"{mine['train_loss'][-1]:.4f}", f"{theirs['train_loss'][-1]:.4f}",
                 "-", "-"])
    rows.append(["test accuracy", f"{100 * mine['test_accuracy']:.2f} %", f"{100 * theirs['test_accuracy']:.2f} %",
                 "-", "-"])
    settings = results["settings"]
    return [
        f"MNIST MLP 784-800-10 ReLU, torch model and optimizer, loss function crossent.torch.cross_entropy vs "
        f"F.cross_entropy: {settings['epochs']} epochs on {settings['train_rows']} images, batch "
        f"{MLP_RECIPE['batch_size']}, SGD momentum {MLP_RECIPE['momentum']:g}, lr {MLP_RECIPE['lr']:g}, "
        f"seed {MLP_RECIPE['seed']}",
        *bench._render(list(COLUMNS), rows),
        "s/epoch: median over the epochs, the two runs' epochs interleaved; loss fwd+bwd: the loss alone on random "
        f"logits, median of {settings['loss_step_rounds']} interleaved blocks; ratio < 1: crossent.torch is faster",
        f"limits: {mlp_flops_per_row() * settings['train_rows'] / 1e9:.1f} GFLOP of matrix products per epoch at "
        f"{sgemm_rate:.0f} GFLOP/s (torch sgemm, linear workload); logits read + written at "
        f"{machine['memcopy_gb_per_s']:.1f} GB/s",
        f"same computation: on the first batch, from the initial weights, the losses differ by "
        f"{mlp['first_batch']['loss_difference']:.1e} and the parameter gradients by at most "
        f"{mlp['first_batch']['max_abs_gradient_difference']:.1e}; after training (rounding differences grow over "
        f"{settings['epochs'] * math.ceil(settings['train_rows'] / MLP_RECIPE['batch_size'])} steps) the weights "
        f"by at most {mlp['max_abs_weight_difference']:.1e}",
    ]


def linear_table(results: dict) -> list:
    linear = results["linear"]
    n_rows, hidden_size, vocabulary = linear["shape"]
    mine, theirs, sgemm, sgemm_numpy = linear["crossent"], linear["torch"], linear["sgemm"], linear["sgemm_numpy"]
    flops = sgemm["flops"]

    def figure(entry, key):
        return None if "reason" in entry else entry.get(key)

    def text(value, form):
        return "n/a" if value is None else form(value)

    my_time, their_time = figure(mine, "seconds"), figure(theirs, "seconds")
    my_rss, their_rss = figure(mine, "rss_above_inputs_bytes"), figure(theirs, "rss_above_inputs_bytes")
    my_loss, their_loss = figure(mine, "loss"), figure(theirs, "loss")

    def rate(seconds):
        return None if seconds is None else flops / seconds / 1e9

    rows = [
        [f"fwd+bwd time (s), median of {LINEAR_REPEAT}", _seconds(my_time), _seconds(their_time),
         _ratio(my_time, their_time),
         f"torch {_seconds(sgemm['seconds'])}, NumPy {_seconds(sgemm_numpy['seconds'])} (3 sgemm)"],
        ["GFLOP/s", text(rate(my_time), lambda v: f"{v:.1f}"), text(rate(their_time), lambda v: f"{v:.1f}"),
         _ratio(rate(my_time), rate(their_time)),
         f"torch {sgemm['gflop_per_s']:.1f}, NumPy {sgemm_numpy['gflop_per_s']:.1f} (3 sgemm)"],
        ["peak RSS above inputs (MB)", text(my_rss, lambda v: f"{v / 1e6:.0f}"),
         text(their_rss, lambda v: f"{v / 1e6:.0f}"), _ratio(my_rss, their_rss),
         f"{linear['gradient_bytes'] / 1e6:.0f} (the two gradients)"],
        ["loss", text(my_loss, lambda v: f"{v:.6f}"), text(their_loss, lambda v: f"{v:.6f}"), "-", "-"],
    ]
    lines = [
        f"linear + cross-entropy fwd+bwd (gradients for h and W), N={n_rows} H={hidden_size} V={vocabulary} "
        f"float32: crossent.torch.LinearCrossEntropyLoss vs F.cross_entropy(h @ W.T)",
        *bench._render(list(COLUMNS), rows),
        f"each implementation in a child process of its own, after a first call on {min(n_rows, 256)} rows; GFLOP/s = "
        f"2*N*H*V*3 = {flops / 1e9:.1f} GFLOP / time; 3 sgemm = h @ W.T, G @ W, G.T @ h into preallocated outputs, "
        f"torch.matmul (the torch row's products) and np.matmul (NumPy's BLAS, which crossent.torch uses), "
        f"interleaved; RSS above inputs = peak RSS - RSS once the inputs exist",
    ]
    for name, entry in (("crossent.torch", mine), ("torch", theirs)):
        if "reason" in entry:
            lines.append(f"{name}: n/a -- {entry['reason']}")
    return lines


# =====================================================================================================
# running
# =====================================================================================================


def describe_machine(threads: int, load_before: float) -> dict:
    import torch

    import crossent

    versions = {"python": platform.python_version(), "crossent": crossent.__version__, "numpy": np.__version__,
                "torch": torch.__version__}
    try:
        import numba

        versions["numba"] = numba.__version__
    except ImportError:
        pass
    return {"cpu_model": bench.cpu_model(), "usable_cpus": len(os.sched_getaffinity(0)), "threads": threads,
            "versions": versions, "numpy_blas_threads": bench._blas_threads(),
            "blas_environment": {key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_")},
            "load_average_before": load_before}


def header_lines(results: dict) -> list:
    machine = results["machine"]
    blas = machine["blas_environment"]
    return [
        f"CPU: {machine['cpu_model']} ({machine['usable_cpus']} usable CPUs); {machine['threads']} threads for "
        f"torch and crossent's kernels (Numba); NumPy's BLAS (crossent.torch's linear layer): "
        f"{machine['numpy_blas_threads']}",
        "versions: " + ", ".join(f"{name} {version}" for name, version in machine["versions"].items()),
        "BLAS environment: " + (", ".join(f"{key}={value}" for key, value in sorted(blas.items()))
                                if blas else "no OPENBLAS_* variable set"),
        f"load average before the run: {machine['load_average_before']:.2f}",
    ]


def parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers N,H,V, got {text!r}")
    return shape


def check_arguments(args) -> None:
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    limit = bench._numba_thread_limit()
    if limit is not None and args.threads > limit:
        raise ValueError(f"--threads {args.threads} exceeds the {limit} threads Numba was started with "
                         f"(set NUMBA_NUM_THREADS before starting to allow more)")
    if args.train_rows is not None and not 1 <= args.train_rows <= 60000:
        raise ValueError(f"--train-rows must be between 1 and 60000, got {args.train_rows}")
    if not args.data_dir.is_dir():
        raise ValueError(f"--data-dir {args.data_dir} does not exist (MNIST IDX files expected there)")
    bench._check_json_path(args.json)


def run(args, output, progress) -> dict:
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    loads_seen = [load_before]

    def say(text):
        loads_seen.append(os.getloadavg()[0])
        print(f"[{time.perf_counter() - started:6.1f} s] {text} ...", file=progress, flush=True)

    say("importing torch and crossent.torch")
    import torch.nn.functional as F

    import crossent.torch
    from crossent.datasets import load_mnist

    set_threads(args.threads)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    linear_shape = args.linear_shape or (QUICK_LINEAR_SHAPE if args.quick else LINEAR_SHAPE)
    say("loading MNIST")
    X_train, y_train, X_test, y_test = load_mnist(args.data_dir, download=False)
    train_rows = args.train_rows or X_train.shape[0]
    rounds, small_calls, large_calls = (3, 50, 3) if args.quick else (7, 200, 10)
    results = {"settings": {"quick": args.quick, "epochs": epochs, "train_rows": train_rows,
                            "threads": args.threads, "linear_shape": list(linear_shape),
                            "linear_repeat": LINEAR_REPEAT, "loss_step_rounds": rounds, "mlp_recipe": MLP_RECIPE},
               "machine": describe_machine(args.threads, load_before)}
    print("\n".join(header_lines(results)), file=output, flush=True)

    loss_functions = {CROSSENT_COLUMN: crossent.torch.cross_entropy, TORCH_COLUMN: F.cross_entropy}
    say(f"mlp: {epochs} epochs with each loss function")
    results["mlp"] = run_mlp(loss_functions, (X_train[:train_rows], y_train[:train_rows], X_test, y_test), epochs)
    say("mlp: loss steps alone")
    results["loss_steps"] = []
    for shape in LOSS_STEP_SHAPES:
        calls = small_calls if shape[0] * shape[1] < 1e5 else large_calls
        entry = time_loss_steps(loss_functions, shape, rounds, calls, MLP_RECIPE["seed"])
        results["loss_steps"].append({"shape": list(shape), "calls_per_block": calls, **entry})
    say("memcopy")
    results["machine"]["memcopy_gb_per_s"] = bench.memcopy_rate(megabytes=128 if args.quick else 512)
    del X_train, y_train, X_test, y_test
    results["linear"] = run_linear(linear_shape, args.threads, MLP_RECIPE["seed"], say)
    results["machine"]["load_average_after"] = os.getloadavg()[0]
    # other processes come and go during a long run: before and after alone can both look quiet
    results["machine"]["load_average_highest_seen"] = max(loads_seen + [results["machine"]["load_average_after"]])
    return results


def main(argv=None) -> int:
    parser = bench._OneLineParser(prog="benchmarks/torch_interop.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_EPOCHS} epochs, shorter loss-step timings, V={QUICK_LINEAR_SHAPE[2]}: a smoke "
                             f"run")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"MLP epochs per loss function (default {DEFAULT_EPOCHS}, quick {QUICK_EPOCHS})")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="train the MLP on the first N training images (default: all 60000)")
    parser.add_argument("--linear-shape", type=parse_shape, default=None, metavar="N,H,V",
                        help="shape of the linear workload (default 8192,512,50257; quick 8192,512,2048)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads for torch and crossent's kernels (default: the usable CPUs)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with the MNIST IDX files")
    parser.add_argument("--json", metavar="FILE", help="also write every figure (each repetition too) as JSON")
    parser.add_argument("--linear-child", action="store_true", help=argparse.SUPPRESS)
    output, progress = sys.stdout, sys.stderr
    try:
        args = parser.parse_args(argv)
        if args.linear_child:
            print(json.dumps(linear_child(json.loads(sys.stdin.read()))))
            return 0
        check_arguments(args)
        results = run(args, output, progress)
    except (ValueError, TypeError, OSError) as error:
        print(f"{parser.prog}: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: error: interrupted", file=sys.stderr)
        return 2
    print("\n" + "\n".join(mlp_table(results)), file=output)
    print("\n" + "\n".join(linear_table(results)), file=output)
    print(f"\nload average after the run: {results['machine']['load_average_after']:.2f} (highest 1-minute "
          f"average seen between the phases: {results['machine']['load_average_highest_seen']:.2f})", file=output)
    if args.json:
        from crossent._io import atomic_output

        with atomic_output(args.json) as stream:
            stream.write((json.dumps(results, indent=2) + "\n").encode())
        print(f"wrote {args.json}", file=output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
