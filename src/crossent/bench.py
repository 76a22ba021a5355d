r"""How fast is crossent's cross-entropy? Side-by-side tables against naive NumPy, PyTorch CPU and the machine.

``crossent bench`` and ``benchmarks/cross_entropy.py`` run this module. Each
workload prints one table (``ce-float64`` prints two): crossent's time, each
peer's time, the ratio between them and the machine's limit measured in the
same process and the same run, so the ratios are comparable even on a shared
machine whose absolute speed drifts.

Workloads (N is multiplied by ``--scale``):

``ce``
    Softmax cross-entropy forward and backward, 8192 x 32768 float32 logits,
    integer labels, mean reduction: the loss and ``dL/dz = (softmax(z) - onehot(y)) / N``.
``ce-options``
    The same with class weights drawn from U(0.5, 2), ``label_smoothing=0.1``
    and ``ignore_index=-100`` on 10 % of the rows (PyTorch gets the same options).
``ce-mnist``
    8192 x 32768 replaced by 65536 x 10 (MNIST-shaped: many short rows).
``ce-float64``
    ``ce`` and ``ce-mnist`` in float64 (reported, no target).
``linear-ce``
    A linear layer followed by cross-entropy, N=8192, H=512, V=50257 float32:
    the loss and the gradients with respect to the hidden states and the weight.
    Every variant runs in a child process of its own, which also reports its
    peak resident memory above the inputs.

Rows of the softmax cross-entropy tables:

* ``crossent`` -- :func:`crossent.softmax_cross_entropy_value_and_grad`;
* ``crossent in place`` -- the same with ``out=logits``, on a fresh copy of the
  logits at every repetition (the copy is not timed); ``n/a`` while the function
  does not accept ``out``;
* ``naive NumPy`` -- :func:`naive_numpy_cross_entropy`, written plainly;
* ``PyTorch CPU`` -- ``torch.nn.functional.cross_entropy`` and ``backward()`` on
  a leaf tensor that shares the logits' memory, when torch is importable;
* ``exp alone`` -- the compute floor: the kernels' exponential of every logit,
  read once and written once (``crossent.kernels._numba.shifted_exponentials``);
  on a CPU without fast vector exponentials this, not memory, bounds a one-pass
  kernel;
* ``copy to a new array`` -- ``logits.copy()``: the same copy into memory
  fresh from the operating system, whose pages are zeroed on first touch. A
  function that returns a new gradient array (``crossent`` without ``out=``,
  PyTorch) pays this at least; its target line compares the ``crossent`` row
  with it too (``x new copy``);
* ``memcopy`` -- the machine's limit: ``np.copyto`` of the logits into a
  preallocated array of the same shape (every byte read once and written once,
  which is what a fused in-place forward and backward has to do at least).

Timing: one warm-up call of every row (which also pays for compilation), then
``repeat`` rounds in which every row runs once, in turn; the figure is the
median over the rounds. Interleaving the rows makes a slow minute of the shared
machine hit every row alike. The warm-up results are checked against crossent's:
the ``loss`` and ``max grad diff`` columns show that every row computes the same thing.

Threads: ``threads`` is given to Numba (crossent's kernels) and to torch. NumPy's
ufuncs (the naive NumPy row) use one thread. NumPy's BLAS (the products of
``linear-ce``) keeps the number of threads it had when NumPy was imported
(``OPENBLAS_NUM_THREADS``, else every CPU): this module does not change it, and
the header line reports it.

Examples
--------
>>> from crossent import bench
>>> results = bench.run_benchmark(["ce-mnist"], repeat=1, scale=0.001)
>>> [row["name"] for row in results["tables"][0]["rows"]][:3]
['crossent', 'crossent in place', 'naive NumPy']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = [
    "WORKLOADS",
    "TARGETS",
    "add_arguments",
    "check_options",
    "format_header",
    "format_table",
    "main",
    "naive_numpy_cross_entropy",
    "run_benchmark",
    "run_command",
]

WORKLOADS = ("ce", "ce-options", "ce-mnist", "ce-float64", "linear-ce")

#: (rows N, classes C) of the softmax cross-entropy workloads at scale 1
LARGE_SHAPE = (8192, 32768)
MNIST_SHAPE = (65536, 10)
#: (rows N, hidden size H, vocabulary V) of linear-ce at scale 1
LINEAR_SHAPE = (8192, 512, 50257)
#: the N of each table of each workload, which --scale multiplies
WORKLOAD_ROWS = {"ce": (LARGE_SHAPE[0],), "ce-options": (LARGE_SHAPE[0],), "ce-mnist": (MNIST_SHAPE[0],),
                 "ce-float64": (LARGE_SHAPE[0], MNIST_SHAPE[0]), "linear-ce": (LINEAR_SHAPE[0],)}

#: the options of ce-options
IGNORE_INDEX = -100
LABEL_SMOOTHING = 0.1
IGNORED_FRACTION = 0.1
CLASS_WEIGHT_RANGE = (0.5, 2.0)

TARGETS = {
    "ce": "crossent <= 1.5x memcopy and >= 10x faster than PyTorch",
    "ce-options": "crossent <= 2x memcopy",
    "ce-mnist": "crossent >= 3x faster than PyTorch",
    "ce-float64": None,
    "linear-ce": "crossent <= 1.3x the three sgemm calls, and its RSS above inputs+outputs <= 5% of PyTorch's",
}

CROSSENT, IN_PLACE, NAIVE, TORCH = "crossent", "crossent in place", "naive NumPy", "PyTorch CPU"
MEMCOPY = "memcopy (machine limit)"
NEW_COPY = "copy to a new array"
EXPONENTIAL_FLOOR = "exp alone (compute floor)"
LINEAR_CROSSENT, LINEAR_NUMPY, LINEAR_TORCH = "crossent fused", "NumPy unfused", "PyTorch CPU unfused"
SGEMM = "3 sgemm calls (machine limit)"
NOT_AVAILABLE = "n/a"

CE_COLUMNS = ("implementation", "time (s)", "x memcopy", "crossent faster by", "GB/s", "loss", "max grad diff")
LINEAR_COLUMNS = ("implementation", "time (s)", "x 3 sgemm", "crossent faster by", "GFLOP/s", "loss",
                  "RSS above inputs (MB)", "RSS above inputs+outputs (MB)")


# =====================================================================================================
# the peers
# =====================================================================================================


def naive_numpy_cross_entropy(
    logits: NDArray[np.floating[Any]],
    labels: NDArray[np.integer[Any]],
    *,
    class_weight: NDArray[np.floating[Any]] | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
) -> tuple[float, NDArray[np.floating[Any]]]:
    r"""Mean softmax cross-entropy and its gradient, in plain whole-array NumPy (the benchmark's NumPy peer).

    With :math:`\log p_{nc} = (z_{nc} - m_n) - \log \sum_k e^{z_{nk} - m_n}`,
    :math:`m_n = \max_k z_{nk}`, class weights :math:`w`, smoothing
    :math:`\varepsilon`, :math:`d_n = w_{y_n}` (0 on ignored rows) and
    :math:`D = \sum_n d_n` (PyTorch's weighted mean):

    .. math::

        L = \frac{1}{D} \sum_n \Big[(1 - \varepsilon)\, d_n (-\log p_{n y_n})
            + \tfrac{\varepsilon}{C} \textstyle\sum_c w_c (-\log p_{nc})\Big], \qquad
        \frac{\partial L}{\partial z_n} = \frac{1}{D}\Big[\big((1-\varepsilon) d_n
            + \tfrac{\varepsilon}{C} \textstyle\sum_c w_c\big) p_n - q_n\Big]

    with :math:`q_n = (1-\varepsilon) d_n\, \mathrm{onehot}(y_n) + \tfrac{\varepsilon}{C} w`;
    ignored rows contribute nothing and have a zero gradient. Without options
    this is :math:`L = \frac{1}{N}\sum_n -\log p_{n y_n}` and
    :math:`\partial L / \partial z_n = (p_n - \mathrm{onehot}(y_n)) / N`.

    No validation: the benchmark passes well-formed arrays.

    Parameters
    ----------
    logits : ndarray (N, C), floating
    labels : integer ndarray (N,)
    class_weight : ndarray (C,), optional
    label_smoothing : float, default 0
    ignore_index : int, optional

    Returns
    -------
    loss : float
    grad : ndarray (N, C), the logits' dtype

    Shapes
    ------
    logits (N, C), labels (N,), class_weight (C,); grad (N, C).

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = naive_numpy_cross_entropy(np.array([[1.0, 2.0, 0.5]]), np.array([1]))
    >>> round(loss, 4), np.round(grad, 4).tolist()
    (0.4644, [[0.2312, -0.3715, 0.1402]])
    """
    n_rows, n_classes = logits.shape
    rows = np.arange(n_rows)
    if class_weight is None and not label_smoothing and ignore_index is None:
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        log_softmax_of_labels = shifted[rows, labels] - np.log(sum_exp[:, 0])
        loss = -log_softmax_of_labels.mean()
        grad = exp / sum_exp
        grad[rows, labels] -= 1
        grad /= n_rows
        return float(loss), grad

    kept = np.ones(n_rows, dtype=bool) if ignore_index is None else labels != ignore_index
    safe_labels = np.where(kept, labels, 0)
    weight = np.ones(n_classes, dtype=logits.dtype) if class_weight is None else class_weight
    smoothing = label_smoothing

    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    log_sum_exp = np.log(sum_exp)[:, 0]
    # -log p[n, c] = log_sum_exp[n] - shifted[n, c]: log_softmax is never materialised
    label_weight = weight[safe_labels] * kept
    row_losses = (1 - smoothing) * label_weight * (log_sum_exp - shifted[rows, safe_labels])
    if smoothing:
        row_losses += smoothing / n_classes * kept * (log_sum_exp * weight.sum() - shifted @ weight)
    denominator = label_weight.sum()
    loss = float(row_losses.sum() / denominator)

    grad = exp / sum_exp
    grad *= ((1 - smoothing) * label_weight + smoothing / n_classes * weight.sum() * kept)[:, None] / denominator
    grad[rows, safe_labels] -= (1 - smoothing) * label_weight / denominator
    if smoothing:
        grad -= (kept * (smoothing / n_classes / denominator)).astype(logits.dtype)[:, None] * weight
    return loss, grad


def _naive_numpy_linear_cross_entropy(hidden, weight, labels):
    """Unfused linear + cross-entropy: logits, their gradient, then the two products of the backward."""
    logits = hidden @ weight.T
    loss, grad_logits = naive_numpy_cross_entropy(logits, labels)
    del logits
    return loss, grad_logits @ weight, grad_logits.T @ hidden


def _crossent_value_and_grad(options: dict):
    import crossent

    def call(logits, labels, **extra):
        return crossent.softmax_cross_entropy_value_and_grad(logits, labels, **options, **extra)

    return call


def _in_place_support(call, logits, labels) -> str | None:
    """None when the value-and-grad function accepts ``out=logits``, else why not (tried on two rows)."""
    probe = logits[:2].copy()
    try:
        call(probe, labels[:2], out=probe)
    except TypeError as error:
        return f"out= not accepted ({error})"
    return None


def _import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# =====================================================================================================
# timing
# =====================================================================================================


class _Row:
    """One implementation in a table: ``setup()`` (untimed) gives the argument of ``run()`` (timed)."""

    def __init__(self, name, run=None, setup=None, reason=None, limit=False):
        self.name, self.run, self.setup, self.reason, self.limit = name, run, setup, reason, limit
        self.times = []
        self.warmup_s = self.loss = self.max_grad_difference = None

    @property
    def available(self) -> bool:
        return self.reason is None

    def call(self):
        """(seconds, result) of one untimed setup and one timed run."""
        argument = self.setup() if self.setup else None
        started = time.perf_counter()
        result = self.run(argument)
        return time.perf_counter() - started, result


def _max_abs_difference(a: np.ndarray, b: np.ndarray, block_rows: int = 256) -> float:
    # in row blocks: a full-size |a - b| would need two more arrays as large as the logits
    largest = 0.0
    for start in range(0, a.shape[0], block_rows):
        block = np.abs(a[start:start + block_rows].astype(np.float64) - b[start:start + block_rows])
        largest = max(largest, float(block.max(initial=0.0)))
    return largest


def _measure(rows: list, repeat: int) -> None:
    """Warm every row up (checking it against crossent's result), then time ``repeat`` interleaved rounds."""
    available = [row for row in rows if row.available]
    reference_grad = None
    for row in available:
        row.warmup_s, result = row.call()
        if result is None:
            continue
        loss, grad = result
        row.loss = float(loss)
        if row.name == CROSSENT:
            reference_grad = grad
        elif reference_grad is not None:
            row.max_grad_difference = _max_abs_difference(np.asarray(grad), reference_grad)
        del result, grad
    del reference_grad
    for _ in range(repeat):
        for row in available:
            seconds, result = row.call()
            row.times.append(seconds)
            del result


def _median(row) -> float | None:
    if row is None or not row.times:
        return None
    return statistics.median(row.times)


# =====================================================================================================
# the softmax cross-entropy workloads
# =====================================================================================================


def _softmax_table(workload: str, title: str, shape: tuple, dtype, repeat: int, seed: int,
                   with_options: bool) -> dict:
    n_rows, n_classes = shape
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape, dtype=dtype)
    labels = rng.integers(0, n_classes, n_rows)
    options = {}
    if with_options:
        class_weight = rng.uniform(*CLASS_WEIGHT_RANGE, n_classes).astype(dtype)
        ignored = rng.choice(n_rows, round(IGNORED_FRACTION * n_rows), replace=False)
        labels[ignored] = IGNORE_INDEX
        options = {"weight": class_weight, "label_smoothing": LABEL_SMOOTHING, "ignore_index": IGNORE_INDEX}

    crossent_call = _crossent_value_and_grad(options)
    rows = [_Row(CROSSENT, run=lambda _: crossent_call(logits, labels))]
    reason = _in_place_support(crossent_call, logits, labels)
    rows.append(_Row(IN_PLACE, run=lambda buffer: crossent_call(buffer, labels, out=buffer),
                     setup=logits.copy, reason=reason))
    naive_options = {} if not with_options else {
        "class_weight": options["weight"], "label_smoothing": LABEL_SMOOTHING, "ignore_index": IGNORE_INDEX}
    rows.append(_Row(NAIVE, run=lambda _: naive_numpy_cross_entropy(logits, labels, **naive_options)))
    rows.append(_torch_softmax_row(logits, labels, options))
    copy_target = np.empty_like(logits)
    rows.append(_exponential_floor_row(logits, copy_target))
    rows.append(_Row(NEW_COPY, run=lambda _: _copy_and_drop(logits)))
    rows.append(_Row(MEMCOPY, run=lambda _: np.copyto(copy_target, logits), limit=True))

    _measure(rows, repeat)
    moved_bytes = 2 * logits.nbytes
    crossent_time = _median(rows[0])
    limit_time = _median(rows[-1])
    assert crossent_time is not None and limit_time is not None  # crossent's row and the memcopy row always run
    table_rows = []
    for row in rows:
        median = _median(row)
        entry = {"name": row.name, "available": row.available, "reason": row.reason, "limit": row.limit,
                 "times_s": row.times, "warmup_s": row.warmup_s, "median_s": median, "loss": row.loss,
                 "max_abs_grad_difference": row.max_grad_difference}
        if median is not None:
            entry["ratio_to_limit"] = median / limit_time
            floors = (CROSSENT, EXPONENTIAL_FLOOR, NEW_COPY)
            entry["crossent_speedup"] = None if row.limit or row.name in floors else median / crossent_time
            entry["gb_per_s"] = moved_bytes / median / 1e9
        table_rows.append(entry)
    table = {"workload": workload, "title": title, "shape": list(shape), "dtype": np.dtype(dtype).name,
             "options": {key: value for key, value in options.items() if key != "weight"} | (
                 {"class_weight": f"uniform{CLASS_WEIGHT_RANGE}"} if with_options else {}),
             "columns": list(CE_COLUMNS), "limit": MEMCOPY, "moved_bytes": moved_bytes, "rows": table_rows}
    table["target"] = _target(workload, table)
    return table


def _copy_and_drop(array) -> None:
    """Copy into a new array and let it go (a timed row's result is (loss, grad) or None)."""
    array.copy()


def _exponential_floor_row(logits, out) -> _Row:
    """The kernels' exponential alone over the logits (read, exponentiate, write): a one-pass kernel's floor."""
    from .kernels import _numba

    shift = logits.dtype.type(logits.max())
    return _Row(EXPONENTIAL_FLOOR, run=lambda _: _numba.shifted_exponentials(logits, shift, out))


def _torch_softmax_row(logits, labels, options: dict) -> _Row:
    torch = _import_torch()
    if torch is None:
        return _Row(TORCH, reason="torch is not installed")
    import torch.nn.functional as F

    # a leaf tensor sharing the logits' memory: no copy, as for the other rows
    leaf = torch.from_numpy(logits).requires_grad_()
    target = torch.from_numpy(labels.astype(np.int64))
    keywords = {}
    if options:
        keywords = {"weight": torch.from_numpy(options["weight"]), "label_smoothing": options["label_smoothing"],
                    "ignore_index": options["ignore_index"]}

    def setup():
        leaf.grad = None  # a fresh gradient every time, as the other rows allocate theirs
        return leaf

    def run(tensor):
        loss = F.cross_entropy(tensor, target, **keywords)
        loss.backward()
        return loss.item(), tensor.grad.numpy()

    return _Row(TORCH, run=run, setup=setup)


# =====================================================================================================
# linear + cross-entropy: one child process per variant
# =====================================================================================================


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes, None where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    # writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so that the peak
    # measured afterwards excludes the imports and the creation of the inputs
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _linear_variant(spec: dict) -> dict:
    """Run one linear-ce variant in this (child) process and return its figures."""
    variant, threads, repeat = spec["variant"], spec["threads"], spec["repeat"]
    n_rows, hidden_size, vocabulary = spec["shape"]
    torch = _import_torch() if variant == LINEAR_TORCH else None
    if variant == LINEAR_TORCH and torch is None:
        return {"reason": "torch is not installed"}
    _set_threads(threads)  # after importing torch: only an imported torch gets its threads set
    import crossent

    if variant == LINEAR_CROSSENT and not hasattr(crossent, "linear_cross_entropy"):
        return {"reason": "crossent.linear_cross_entropy is not available"}

    rng = np.random.default_rng(spec["seed"])
    hidden = rng.standard_normal((n_rows, hidden_size), dtype=np.float32)
    weight = rng.standard_normal((vocabulary, hidden_size), dtype=np.float32)
    weight *= np.float32(1 / math.sqrt(hidden_size))  # logits of unit variance, as after a trained layer
    labels = rng.integers(0, vocabulary, n_rows)
    output_bytes = hidden.nbytes + weight.nbytes  # the two gradients

    if variant == LINEAR_CROSSENT:
        def setup():
            return None

        def run(_):
            loss, grad_hidden, grad_weight, _grad_bias = crossent.linear_cross_entropy(
                hidden, weight, labels, return_grad=True)
            return float(loss)
    elif variant == LINEAR_NUMPY:
        def setup():
            return None

        def run(_):
            return _naive_numpy_linear_cross_entropy(hidden, weight, labels)[0]
    elif variant == LINEAR_TORCH:
        import torch.nn.functional as F

        assert torch is not None  # checked above: this variant returned early without torch
        hidden_leaf = torch.from_numpy(hidden).requires_grad_()
        weight_leaf = torch.from_numpy(weight).requires_grad_()
        target = torch.from_numpy(labels.astype(np.int64))

        def setup():
            hidden_leaf.grad = weight_leaf.grad = None
            return None

        def run(_):
            loss = F.cross_entropy(F.linear(hidden_leaf, weight_leaf), target)
            loss.backward()
            return loss.item()
    else:  # the three products of the forward and backward, into preallocated outputs
        grad_logits = rng.standard_normal((n_rows, vocabulary), dtype=np.float32)
        logits = np.empty_like(grad_logits)
        grad_hidden, grad_weight = np.empty_like(hidden), np.empty_like(weight)

        def setup():
            return None

        def run(_):
            np.matmul(hidden, weight.T, out=logits)
            np.matmul(grad_logits, weight, out=grad_hidden)
            np.matmul(grad_logits.T, hidden, out=grad_weight)
            return None

    baseline = _status_bytes("VmRSS")
    peak_reset = _reset_peak_rss()
    times, loss = [], None
    for repetition in range(repeat + 1):
        argument = setup()
        started = time.perf_counter()
        result = run(argument)
        seconds = time.perf_counter() - started
        if repetition == 0:
            warmup_s, loss = seconds, result
        else:
            times.append(seconds)
        del result
    peak = _status_bytes("VmHWM")
    above_inputs = None if baseline is None or peak is None or not peak_reset else peak - baseline
    return {"times_s": times, "warmup_s": warmup_s, "loss": loss, "rss_baseline_bytes": baseline,
            "rss_peak_bytes": peak, "rss_above_inputs_bytes": above_inputs, "output_bytes": output_bytes}


def _linear_child_main() -> None:  # pragma: no cover - runs in the child process
    spec = json.loads(sys.stdin.read())
    print(json.dumps(_linear_variant(spec)))


def _run_linear_child(spec: dict) -> dict:
    import crossent

    environment = dict(os.environ)
    # the child imports the same crossent as this process, wherever it came from
    package_root = str(Path(crossent.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", "from crossent.bench import _linear_child_main; _linear_child_main()"],
        input=json.dumps(spec), capture_output=True, text=True, env=environment, check=False)
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        return {"reason": f"child process exited with status {completed.returncode}"
                          + (f": {lines[-1]}" if lines else "")}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _linear_table(shape: tuple, repeat: int, threads: int, seed: int, progress) -> dict:
    n_rows, hidden_size, vocabulary = shape
    flops = 2 * n_rows * hidden_size * vocabulary * 3
    measured = {}
    for variant in (LINEAR_CROSSENT, LINEAR_NUMPY, LINEAR_TORCH, SGEMM):
        if progress is not None:
            print(f"linear-ce: {variant} in a child process ...", file=progress, flush=True)
        measured[variant] = _run_linear_child({"variant": variant, "shape": list(shape), "repeat": repeat,
                                               "threads": threads, "seed": seed})
    medians = {name: statistics.median(entry["times_s"]) if entry.get("times_s") else None
               for name, entry in measured.items()}
    crossent_time, limit_time = medians[LINEAR_CROSSENT], medians[SGEMM]
    table_rows = []
    for name, entry in measured.items():
        median = medians[name]
        limit = name == SGEMM
        row = {"name": name, "available": "reason" not in entry, "reason": entry.get("reason"), "limit": limit,
               "times_s": entry.get("times_s", []), "warmup_s": entry.get("warmup_s"), "median_s": median,
               "loss": entry.get("loss")}
        if median is not None:
            row["ratio_to_limit"] = median / limit_time if limit_time else None
            row["crossent_speedup"] = (median / crossent_time
                                       if crossent_time and name not in (LINEAR_CROSSENT, SGEMM) else None)
            row["gflop_per_s"] = flops / median / 1e9
            if not limit:
                above_inputs = entry.get("rss_above_inputs_bytes")
                row["rss_above_inputs_bytes"] = above_inputs
                row["rss_above_inputs_outputs_bytes"] = (None if above_inputs is None
                                                         else above_inputs - entry["output_bytes"])
                row["rss_peak_bytes"] = entry.get("rss_peak_bytes")
        table_rows.append(row)
    table = {"workload": "linear-ce",
             "title": f"linear + cross-entropy fwd+bwd, N={n_rows} H={hidden_size} V={vocabulary} float32",
             "shape": list(shape), "dtype": "float32", "flops": flops, "columns": list(LINEAR_COLUMNS),
             "limit": SGEMM, "rows": table_rows}
    table["target"] = _target("linear-ce", table)
    return table


# =====================================================================================================
# targets
# =====================================================================================================


def _check(checks: list, row: str, criterion: str, value, met) -> None:
    checks.append({"row": row, "criterion": criterion, "value": value, "met": met})


def _target(workload: str, table: dict) -> dict | None:
    """Each crossent row's figure for the workload's target, and whether it meets it."""
    text = TARGETS[workload]
    if text is None:
        return None
    rows = {row["name"]: row for row in table["rows"]}
    checks: list[dict[str, Any]] = []
    if workload == "linear-ce":
        mine, torch_row = rows[LINEAR_CROSSENT], rows[LINEAR_TORCH]
        ratio = mine.get("ratio_to_limit")
        _check(checks, LINEAR_CROSSENT, "x 3 sgemm <= 1.3", ratio, None if ratio is None else ratio <= 1.3)
        ours, theirs = mine.get("rss_above_inputs_outputs_bytes"), torch_row.get("rss_above_inputs_outputs_bytes")
        share = None if ours is None or not theirs else ours / theirs
        _check(checks, LINEAR_CROSSENT, "RSS above inputs+outputs / PyTorch's <= 0.05", share,
               None if share is None else share <= 0.05)
    else:
        torch_time = rows[TORCH]["median_s"]
        for name in (CROSSENT, IN_PLACE):
            row = rows[name]
            median = row["median_s"]
            if workload in ("ce", "ce-options"):
                bound = 1.5 if workload == "ce" else 2.0
                ratio = row.get("ratio_to_limit")
                _check(checks, name, f"x memcopy <= {bound:g}", ratio, None if ratio is None else ratio <= bound)
                new_copy = rows[NEW_COPY]["median_s"]
                if name == CROSSENT and median is not None and new_copy:
                    # a new gradient array's fresh pages cost what they cost: the same bound over a copy that pays them
                    _check(checks, name, f"x new copy <= {bound:g}", median / new_copy, median / new_copy <= bound)
            if workload in ("ce", "ce-mnist"):
                bound = 10 if workload == "ce" else 3
                speedup = None if median is None or torch_time is None else torch_time / median
                _check(checks, name, f"faster than PyTorch by >= {bound}x", speedup,
                       None if speedup is None else speedup >= bound)
    return {"text": text, "checks": checks}


# =====================================================================================================
# machine, threads, running
# =====================================================================================================


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memcopy_rate(megabytes: int = 512, repeats: int = 5, dtype: DTypeLike = np.float32) -> float:
    """Median GB/s of ``np.copyto`` between two preallocated arrays, bytes read plus bytes written."""
    source = np.ones(megabytes * 2**20 // np.dtype(dtype).itemsize, dtype=dtype)
    target = np.empty_like(source)
    np.copyto(target, source)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - started)
    return 2 * source.nbytes / statistics.median(times) / 1e9


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _numba_thread_limit() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import from the environment


def _get_threads() -> dict:
    threads = {}
    with contextlib.suppress(ImportError):
        import numba

        threads["numba"] = numba.get_num_threads()
    torch = _import_torch()
    if torch is not None:
        threads["torch"] = torch.get_num_threads()
    return threads


def _set_threads(threads: int | dict) -> None:
    wanted = threads if isinstance(threads, dict) else {"numba": threads, "torch": threads}
    if "numba" in wanted:
        with contextlib.suppress(ImportError):
            import numba

            numba.set_num_threads(wanted["numba"])
    if "torch" in wanted and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(wanted["torch"])


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    if not pools:
        return "unknown"
    pool = pools[0]
    return f"{pool.get('num_threads')} ({pool.get('internal_api')} {pool.get('version')})"


def _describe_machine(threads: int) -> dict:
    import crossent
    from crossent import kernels

    versions: dict[str, str | None] = {
        "python": platform.python_version(), "crossent": crossent.__version__, "numpy": np.__version__,
    }
    with contextlib.suppress(ImportError):
        import numba

        versions["numba"] = numba.__version__
    torch = _import_torch()
    versions["torch"] = torch.__version__ if torch is not None else None
    return {
        "cpu_model": cpu_model(), "usable_cpus": _usable_cpus(), "threads": threads,
        "blas_threads": _blas_threads(), "crossent_backend": kernels.backend(), "versions": versions,
        "blas_environment": {name: value for name, value in os.environ.items() if name.startswith("OPENBLAS_")},
        "load_average_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _scaled_rows(rows: int, scale: float, workload: str) -> int:
    scaled = round(rows * scale)
    if scaled < 1:
        raise ValueError(f"--scale {scale:g} leaves no rows in workload {workload}: {rows} x {scale:g} rounds to 0 "
                         f"(use --scale >= {1 / rows:.2g})")
    return scaled


def check_options(
    workloads: str | Sequence[str], repeat: int, threads: int | None, scale: float
) -> tuple[list[str], int, int, float]:
    """The validated (workloads, repeat, threads, scale); ValueError naming the option otherwise."""
    if isinstance(workloads, str):
        workloads = [name.strip() for name in workloads.split(",") if name.strip()]
    workloads = list(workloads)
    if not workloads:
        raise ValueError(f"--workloads names no workload; choose from {', '.join(WORKLOADS)}")
    for name in workloads:
        if name not in WORKLOADS:
            raise ValueError(f"--workloads: unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)) or repeat < 1:
        raise ValueError(f"--repeat must be an integer >= 1, got {repeat!r}")
    limit = _numba_thread_limit()
    if threads is None:
        threads = _usable_cpus() if limit is None else min(_usable_cpus(), limit)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"--threads must be an integer >= 1, got {threads!r}")
    if limit is not None and threads > limit:
        raise ValueError(f"--threads {threads} exceeds the {limit} threads Numba was started with "
                         f"(set NUMBA_NUM_THREADS before starting to allow more)")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"--scale must be a finite number > 0, got {scale!r}")
    for name in workloads:
        for rows in WORKLOAD_ROWS[name]:
            _scaled_rows(rows, scale, name)
    return workloads, int(repeat), int(threads), float(scale)


def run_benchmark(
    workloads: str | Sequence[str] = WORKLOADS,
    *,
    repeat: int = 5,
    threads: int | None = None,
    scale: float = 1.0,
    seed: int = 0,
    output: TextIO | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Run the chosen workloads and return every figure (the JSON written by ``--json``).

    Parameters
    ----------
    workloads : sequence of str or comma-separated str, default all of ``WORKLOADS``
    repeat : int >= 1, default 5
        Timed rounds after the warm-up; every figure is the median over them.
    threads : int >= 1, optional
        Threads for Numba and torch during the run (restored afterwards).
        Default: the usable CPUs (at most Numba's ``NUMBA_NUM_THREADS``).
    scale : float > 0, default 1
        Multiplies the number of rows N of every workload (rounded).
    seed : int, default 0
        Seed of the random inputs.
    output : text stream, optional
        Where to print the header and each table as soon as it is measured.
    progress : text stream, optional
        Where to say which linear-ce child process is running.

    Returns
    -------
    dict with ``settings``, ``machine`` and ``tables`` (one dict per table,
    with its ``rows`` and its ``target`` checks).
    """
    workloads, repeat, threads, scale = check_options(workloads, repeat, threads, scale)
    previous_threads = _get_threads()
    results: dict[str, Any] = {"settings": {"workloads": workloads, "repeat": repeat, "threads": threads,
                                            "scale": scale, "seed": seed}}
    try:
        _set_threads(threads)
        results["machine"] = _describe_machine(threads)
        if output is not None:
            print(format_header(results), file=output, flush=True)
        results["tables"] = []
        large = (_scaled_rows(LARGE_SHAPE[0], scale, "ce"), LARGE_SHAPE[1])
        mnist = (_scaled_rows(MNIST_SHAPE[0], scale, "ce-mnist"), MNIST_SHAPE[1])
        plans: dict[str, list[tuple[str, tuple[int, int], type[np.floating[Any]], bool]]] = {
            "ce": [("softmax cross-entropy fwd+bwd", large, np.float32, False)],
            "ce-options": [("softmax cross-entropy fwd+bwd, class weights + label smoothing 0.1 + "
                            "ignore_index on 10% of the rows", large, np.float32, True)],
            "ce-mnist": [("softmax cross-entropy fwd+bwd, MNIST-shaped", mnist, np.float32, False)],
            "ce-float64": [("softmax cross-entropy fwd+bwd", large, np.float64, False),
                           ("softmax cross-entropy fwd+bwd, MNIST-shaped", mnist, np.float64, False)],
        }
        for workload in workloads:
            if workload == "linear-ce":
                shape = (_scaled_rows(LINEAR_SHAPE[0], scale, workload), *LINEAR_SHAPE[1:])
                tables = [_linear_table(shape, repeat, threads, seed, progress)]
            else:
                tables = []
                for title, table_shape, dtype, with_options in plans[workload]:
                    full_title = f"{title}, {table_shape[0]}x{table_shape[1]} {np.dtype(dtype).name}, integer labels"
                    tables.append(_softmax_table(workload, full_title, table_shape, dtype, repeat, seed, with_options))
            for table in tables:
                results["tables"].append(table)
                if output is not None:
                    print("\n" + format_table(table), file=output, flush=True)
    finally:
        _set_threads(previous_threads)
    results["machine"]["load_average_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if output is not None and results["machine"]["load_average_after"] is not None:
        print(f"\nload average after the run: {results['machine']['load_average_after']:.2f}", file=output)
    return results


# =====================================================================================================
# reporting
# =====================================================================================================


def format_header(results: dict[str, Any]) -> str:
    """The lines describing the machine, the threads and the settings of a run."""
    machine, settings = results["machine"], results["settings"]
    versions = machine["versions"]
    peers = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    blas_environment = machine["blas_environment"]
    lines = [
        f"CPU: {machine['cpu_model']} ({machine['usable_cpus']} usable CPUs)",
        f"threads: {machine['threads']} for crossent (Numba) and PyTorch; naive NumPy's ufuncs use 1; NumPy's BLAS "
        f"(linear-ce) {machine['blas_threads']}, fixed when NumPy was imported",
        f"versions: {peers}; crossent kernels: {machine['crossent_backend']}",
        "BLAS environment: " + (", ".join(f"{key}={value}" for key, value in sorted(blas_environment.items()))
                                if blas_environment else "no OPENBLAS_* variable set"),
        f"timing: median of {settings['repeat']} interleaved rounds after one warm-up; scale {settings['scale']:g}"
        f" (N multiplied), seed {settings['seed']}",
    ]
    if machine.get("load_average_before") is not None:
        lines.append(f"load average before the run: {machine['load_average_before']:.2f}")
    return "\n".join(lines)


def _seconds(value) -> str:
    return f"{value:.4f}" if value >= 0.01 else f"{value:.3g}"


def _rate(value) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _times(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _megabytes(value) -> str:
    return NOT_AVAILABLE if value is None else f"{value / 1e6:.0f}"


def _cells(table: dict, row: dict) -> list:
    if not row["available"]:
        return [row["name"]] + [NOT_AVAILABLE] * (len(table["columns"]) - 1)
    loss = "-" if row["loss"] is None else f"{row['loss']:.6g}"
    cells = [row["name"], _seconds(row["median_s"]), _times(row.get("ratio_to_limit")),
             _times(row.get("crossent_speedup"))]
    if table["workload"] == "linear-ce":
        cells += [_rate(row["gflop_per_s"]), loss]
        if row["limit"]:
            cells += ["-", "-"]
        else:
            cells += [_megabytes(row.get("rss_above_inputs_bytes")),
                      _megabytes(row.get("rss_above_inputs_outputs_bytes"))]
    else:
        difference = row.get("max_abs_grad_difference")
        cells += [_rate(row["gb_per_s"]), loss, "-" if difference is None else f"{difference:.1e}"]
    return cells


def _render(header: list, rows: list) -> list:
    widths = [max(len(str(line[i])) for line in [header, *rows]) for i in range(len(header))]

    def render(cells):
        return "| " + " | ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                                 for i, (cell, width) in enumerate(zip(cells, widths))) + " |"

    return [render(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(render, rows)]


def format_table(table: dict[str, Any]) -> str:
    """One workload's table, its notes and its target line, as text."""
    lines = [f"[{table['workload']}] {table['title']}"]
    lines += _render(table["columns"], [_cells(table, row) for row in table["rows"]])
    for row in table["rows"]:
        if not row["available"]:
            lines.append(f"{row['name']}: n/a -- {row['reason']}")
    if table["workload"] == "linear-ce":
        lines.append(f"GFLOP/s: 2*N*H*V*3 = {table['flops'] / 1e9:.1f} GFLOP / time; each row in a child process of "
                     f"its own; RSS above inputs = peak RSS - RSS once the inputs exist; outputs = the two gradients")
    else:
        lines.append(f"GB/s: 2 x {table['moved_bytes'] / 2 / 1e6:.3g} MB of logits / time; crossent faster by = "
                     f"row's time / crossent's; max grad diff = largest |difference| from crossent's gradient")
    target = table.get("target")
    if target is None:
        lines.append("target: none (reported only)")
    else:
        lines.append(f"target: {target['text']}")
        for check in target["checks"]:
            value = check["value"]
            if check["met"] is None:
                verdict = "not measured"
            else:
                verdict = f"{value:.3g} -- {'met' if check['met'] else 'NOT met'}"
            lines.append(f"  {check['row']}: {check['criterion']}: {verdict}")
    return "\n".join(lines)


# =====================================================================================================
# command line
# =====================================================================================================


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``crossent bench`` and ``benchmarks/cross_entropy.py``."""
    parser.add_argument("--workloads", default=",".join(WORKLOADS), metavar="NAMES",
                        help=f"comma-separated subset of {', '.join(WORKLOADS)} (default: all; linear-ce at full "
                             f"size takes a few minutes)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds after the warm-up; figures are "
                                                              "their median (default: 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for crossent (Numba) and PyTorch (default: the usable CPUs); NumPy's BLAS "
                             "keeps the threads it started with (OPENBLAS_NUM_THREADS)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the rows N of every workload, e.g. 0.01 for a quick run (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure (each repetition too) as JSON")


def _check_json_path(path) -> None:
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--json {path}: directory {parent} does not exist")


def run_command(args: argparse.Namespace, output: TextIO | None = None, progress: TextIO | None = None) -> int:
    """Run the benchmark for parsed ``add_arguments`` options: print the tables, write ``--json``."""
    from ._io import atomic_output

    output = sys.stdout if output is None else output
    progress = sys.stderr if progress is None else progress
    _check_json_path(args.json)
    results = run_benchmark(args.workloads, repeat=args.repeat, threads=args.threads, scale=args.scale,
                            seed=args.seed, output=output, progress=progress)
    if args.json:
        with atomic_output(args.json) as file:
            file.write((json.dumps(results, indent=2) + "\n").encode())
        print(f"wrote {args.json}", file=output)
    return 0


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise ValueError(f"{message} (see '{self.prog} --help')")


def main(argv: Sequence[str] | None = None, prog: str = "cross_entropy.py") -> int:
    """Entry point of ``benchmarks/cross_entropy.py``: errors are one line on stderr and exit status 2."""
    # no module docstring under python -OO
    parser = _OneLineParser(prog=prog, description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    try:
        return run_command(parser.parse_args(argv))
    except (ValueError, TypeError, OSError) as error:
        print(f"{prog}: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: error: interrupted", file=sys.stderr)
        return 2
