"""crossent.distributed on data larger than a worker's memory: 20M x 100 float32 rows (8 GB) in chunk files.

Run from the repository root::

    .venv/bin/python benchmarks/distributed_large.py                 # 20M rows, 8 GB on disk, 20-40 minutes
    .venv/bin/python benchmarks/distributed_large.py --quick         # 2M rows, 800 MB, a few minutes
    .venv/bin/python benchmarks/distributed_large.py --rows 5000000 --json large.json

The data: ``--rows`` rows of 100 standard-normal float32 features and a label
among 10 classes drawn from the softmax of a fixed random linear "teacher"
(``y = argmax(x W^T + Gumbel noise)``, so the best possible accuracy is below
100 %). It is generated one file at a time (``--rows-per-file`` rows,
seeded by ``[seed, file number]``) through a dask array and written by
:func:`crossent.distributed.write_chunks` into ``--data-dir-out`` (default
``/tmp/crossent-distributed-large-<rows>``): ``X_000.npy``, ``y_000.npy``, ...
and a ``crossent-synthetic.json`` written last. A directory whose metadata
file matches (rows, features, classes, seed, rows per file) is reused as it
is; one holding other chunk files is refused rather than overwritten.

Model: softmax regression 100-10, float32. Two ways through the data, each
run in this process without a cluster (the out-of-core loop, one 64 MB block
at a time) and on a ``LocalCluster(processes=True, threads_per_worker=1,
memory_limit="2GB")`` of 1 and then 2 workers, all in one run:

* full-batch L-BFGS (``fit_full_batch(solver="lbfgs", max_iter=--lbfgs-iter)``):
  every evaluation of the objective is one pass over all rows. On a cluster
  the data is persisted in the workers' memory first (and spilled to the
  workers' disk beyond their memory limit); the first iteration includes that
  load, the later ones give the time per evaluation.
* minibatch SGD with momentum, ``sampling="stream"``, one epoch of batches
  of ``--batch-size`` rows: each block is read once, the next one loaded
  while the current one trains.

Peak memory: every phase starts by resetting the kernel's peak-RSS mark
(``/proc/self/clear_refs``) in each worker (``client.run``) or in this
process, and ends by reading ``VmHWM``; the table gives the largest worker's
peak (the client's own process for the in-process row). During L-BFGS the
workers' spilled bytes (dask's ``SpillBuffer``) are sampled after every
iteration.

Floors measured in the same run: the time to read every X file once (file
reads, this machine's page cache or disk) and the pass's matrix products
(``X_block @ W.T`` and ``G.T @ X_block``, 4·N·100·10 FLOP) timed on one
thread at the block shape the passes use.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

N_FEATURES = 100
N_CLASSES = 10
QUICK_ROWS = 2_000_000
FULL_ROWS = 20_000_000
METADATA_FILE = "crossent-synthetic.json"
GENERATOR_VERSION = 1
#: spread of the teacher's weights: logits of standard deviation about 3 (Bayes accuracy near 80 %)
TEACHER_SCALE = 0.3
SGD_RECIPE = {"optimizer": "momentum", "lr": 0.1, "momentum": 0.9}


# =====================================================================================================
# the data


def _teacher(seed: int) -> np.ndarray:
    return (TEACHER_SCALE * np.random.default_rng([seed, 2**31]).standard_normal((N_CLASSES, N_FEATURES))).astype(
        np.float32)


@functools.lru_cache(maxsize=1)
def _generated_chunk(seed: int, index: int, rows: int) -> tuple:
    """(X, y) of file ``index``; cached so that writing y right after X does not draw X again."""
    rng = np.random.default_rng([seed, index])
    X = rng.standard_normal((rows, N_FEATURES), dtype=np.float32)
    logits = X @ _teacher(seed).T
    logits += rng.gumbel(size=logits.shape).astype(np.float32)  # argmax of logits + Gumbel: a softmax sample
    return X, np.argmax(logits, axis=1).astype(np.int32)


def _part(seed, index, rows, which):
    return _generated_chunk(seed, index, rows)[which]


def _synthetic_dask(rows: int, rows_per_file: int, seed: int):
    import dask
    import dask.array as da

    sizes = [min(rows_per_file, rows - start) for start in range(0, rows, rows_per_file)]
    pieces = {"X": [], "y": []}
    for index, size in enumerate(sizes):
        pieces["X"].append(da.from_delayed(dask.delayed(_part)(seed, index, size, 0), (size, N_FEATURES),
                                           dtype=np.float32))
        pieces["y"].append(da.from_delayed(dask.delayed(_part)(seed, index, size, 1), (size,), dtype=np.int32))
    return da.concatenate(pieces["X"]), da.concatenate(pieces["y"])


def prepare_data(directory: Path, rows: int, rows_per_file: int, seed: int) -> tuple:
    """Write the chunk files unless a matching set is there; returns (metadata, seconds spent writing)."""
    from crossent._io import atomic_output
    from crossent.distributed import write_chunks

    wanted = {"rows": rows, "features": N_FEATURES, "classes": N_CLASSES, "seed": seed,
              "rows_per_file": rows_per_file, "dtype": "float32", "generator": GENERATOR_VERSION}
    metadata_path = directory / METADATA_FILE
    if metadata_path.is_file():
        try:
            found = json.loads(metadata_path.read_text())
        except ValueError:
            found = None
        if found == wanted and _complete(directory, rows, rows_per_file):
            return wanted, 0.0
    chunk_files = [p for p in directory.glob("*.npy")] if directory.is_dir() else []
    if chunk_files and not metadata_path.is_file():
        raise SystemExit(f"distributed_large.py: error: {directory} holds .npy files that this benchmark did not "
                         f"write; choose another --data-dir-out")
    for path in chunk_files:  # an older data set of this benchmark: a smaller one would leave stale files
        path.unlink()
    if metadata_path.is_file():
        metadata_path.unlink()
    X, y = _synthetic_dask(rows, rows_per_file, seed)
    started = time.perf_counter()
    write_chunks(directory, X, y, rows_per_file=rows_per_file)
    seconds = time.perf_counter() - started
    with atomic_output(metadata_path) as stream:
        stream.write((json.dumps(wanted, indent=1) + "\n").encode())
    return wanted, seconds


def _complete(directory: Path, rows: int, rows_per_file: int) -> bool:
    n_files = -(-rows // rows_per_file)
    digits = max(3, len(str(n_files - 1)))
    for index in range(n_files):
        size = min(rows_per_file, rows - index * rows_per_file)
        for name, shape in (("X", (size, N_FEATURES)), ("y", (size,))):
            path = directory / f"{name}_{index:0{digits}d}.npy"
            try:
                if np.load(path, mmap_mode="r").shape != shape:
                    return False
            except (OSError, ValueError):
                return False
    return not (directory / f"X_{n_files:0{digits}d}.npy").exists()


# =====================================================================================================
# memory


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak(dask_worker=None) -> bool:
    """Reset this process's peak-RSS mark (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def memory_now(dask_worker=None) -> dict:
    """This process's RSS, peak RSS since the last reset, lifetime peak (ru_maxrss), and spilled bytes."""
    spilled = 0
    data = getattr(dask_worker, "data", None)
    total = getattr(data, "spilled_total", None)
    if total is not None:
        spilled = int(total.disk)
    return {"rss": _status_bytes("VmRSS"), "peak": _status_bytes("VmHWM"),
            "lifetime_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "spilled": spilled}


class MemoryProbe:
    """Peak memory of one phase: of every worker with a client, else of this process."""

    def __init__(self, client=None):
        self.client = client
        self.max_spilled = 0

    def start(self) -> None:
        if self.client is None:
            reset_peak()
        else:
            self.client.run(reset_peak)
        self.max_spilled = 0

    def sample_spill(self, *_) -> None:
        if self.client is not None:
            spilled = [m["spilled"] for m in self.client.run(memory_now).values()]
            self.max_spilled = max(self.max_spilled, max(spilled, default=0))

    def finish(self) -> dict:
        if self.client is None:
            readings = {"this process": memory_now()}
        else:
            readings = self.client.run(memory_now)
        peaks = [m["peak"] or 0 for m in readings.values()]
        return {"peak_per_worker": peaks, "max_peak": max(peaks), "max_spilled": self.max_spilled,
                "readings": readings}


# =====================================================================================================
# the runs


def _model(seed: int):
    from crossent.nn import SoftmaxRegression

    return SoftmaxRegression(N_FEATURES, N_CLASSES, init="zeros", seed=seed)


def warm_up(dask_worker=None) -> None:
    """Imports and the kernels' first-call compilation, so that the timed phases measure the data and the sums."""
    from crossent.distributed import gradient_sums
    from crossent.losses import CrossEntropyLoss

    model = _model(0)
    X, y = np.zeros((256, N_FEATURES), np.float32), np.zeros(256, np.int32)
    gradient_sums(model.parameters(), model.config(), CrossEntropyLoss(), X, y)
    gradient_sums(model.parameters(), model.config(), CrossEntropyLoss(), X, y, rows=np.arange(64))


def run_lbfgs(directory, args, client) -> dict:
    from crossent.distributed import fit_full_batch

    probe = MemoryProbe(client)
    probe.start()
    model = _model(args.seed)
    started = time.perf_counter()
    history = fit_full_batch(model, directory, solver="lbfgs", max_iter=args.lbfgs_iter, tol=0.0,
                             client=client, callbacks=[lambda record, model: probe.sample_spill()])
    total = time.perf_counter() - started
    memory = probe.finish()
    times, evaluations = history["time_s"], history["evaluations"]
    later_evaluations = evaluations[-1] - evaluations[0]
    per_evaluation = sum(times[1:]) / later_evaluations if later_evaluations else times[0] / evaluations[0]
    return {"total_s": total, "iterations": len(history), "evaluations": evaluations[-1],
            "first_iteration_s": times[0], "first_iteration_evaluations": evaluations[0],
            "s_per_evaluation": per_evaluation, "objective": history["objective"][-1],
            "train_accuracy": history["train_accuracy"][-1], "iteration_times_s": times,
            "evaluations_per_iteration": evaluations, "memory": memory}


def run_stream(directory, args, client) -> dict:
    from crossent.distributed import fit_minibatch

    probe = MemoryProbe(client)
    probe.start()
    model = _model(args.seed)
    started = time.perf_counter()
    history = fit_minibatch(model, directory, sampling="stream", batch_size=args.batch_size, epochs=1,
                            seed=args.seed, client=client, progress=False, **SGD_RECIPE)
    total = time.perf_counter() - started
    return {"s_per_epoch": total, "steps": -(-args.rows // args.batch_size), "train_loss": history["train_loss"][-1],
            "train_accuracy": history["train_accuracy"][-1], "memory": probe.finish()}


def floors(directory: Path, rows: int) -> dict:
    """Read every X file once; time one pass's matrix products on one thread at the passes' block shape."""
    from threadpoolctl import threadpool_limits

    from crossent.distributed import PASS_BYTES

    started = time.perf_counter()
    read = 0
    buffer = bytearray(64 * 2**20)
    for path in sorted(directory.glob("X_*.npy")):
        with open(path, "rb", buffering=0) as file:
            while True:
                got = file.readinto(buffer)
                if not got:
                    break
                read += got
    read_s = time.perf_counter() - started
    pass_rows = max(64, PASS_BYTES // (4 * (N_FEATURES + N_CLASSES)))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((pass_rows, N_FEATURES), dtype=np.float32)
    W = rng.standard_normal((N_CLASSES, N_FEATURES), dtype=np.float32)
    G = rng.standard_normal((pass_rows, N_CLASSES), dtype=np.float32)
    weight_grad = np.empty_like(W)
    with threadpool_limits(1):
        times = []
        for _ in range(7):
            t = time.perf_counter()
            X @ W.T
            np.matmul(G.T, X, out=weight_grad)
            times.append(time.perf_counter() - t)
    products_s = float(np.median(times)) * rows / pass_rows
    return {"read_all_X_s": read_s, "read_gbps": read / read_s / 1e9, "bytes": read,
            "products_per_pass_s": products_s,
            "products_gflops": 4 * pass_rows * N_FEATURES * N_CLASSES / float(np.median(times)) / 1e9}


def run_all(args, directory: Path) -> list:
    from threadpoolctl import threadpool_limits

    rows = []
    print("in this process, no cluster ...", flush=True)
    with threadpool_limits(args.threads):
        warm_up()
        lbfgs = run_lbfgs(directory, args, None)
        print(f"  L-BFGS: {lbfgs['s_per_evaluation']:.2f} s per evaluation", flush=True)
        stream = run_stream(directory, args, None)
        print(f"  SGD stream: {stream['s_per_epoch']:.2f} s per epoch", flush=True)
    rows.append({"run": "in process, out of core", "workers": 0, "lbfgs": lbfgs, "stream": stream})

    from distributed import Client, LocalCluster

    for n_workers in args.workers:
        print(f"LocalCluster, {n_workers} worker(s) ...", flush=True)
        with LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1,
                          memory_limit=args.memory_limit, dashboard_address=None,
                          env={"NUMBA_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:
            client.run(warm_up)
            lbfgs = run_lbfgs(directory, args, client)
            print(f"  L-BFGS: {lbfgs['s_per_evaluation']:.2f} s per evaluation", flush=True)
            stream = run_stream(directory, args, client)
            print(f"  SGD stream: {stream['s_per_epoch']:.2f} s per epoch", flush=True)
        rows.append({"run": f"LocalCluster, {n_workers} worker{'s' if n_workers > 1 else ''}",
                     "workers": n_workers, "lbfgs": lbfgs, "stream": stream})
    return rows


# =====================================================================================================
# the table


def _gb(value) -> str:
    return "n/a" if value is None else f"{value / 1e9:.2f}"


def print_table(results: dict) -> None:
    data, floor, rows = results["data"], results["floors"], results["rows"]
    print()
    for line in results["machine"]:
        print(line)
    print(f"\n{data['rows']:,} rows x {N_FEATURES} float32 features, {N_CLASSES} classes "
          f"({data['bytes'] / 1e9:.1f} GB of X in {data['files']} files of {data['rows_per_file']:,} rows); "
          f"softmax regression 100-10")
    print(f"L-BFGS: max_iter {results['lbfgs_iter']}; SGD: stream sampling, 1 epoch, batch {results['batch_size']}, "
          f"momentum 0.9, lr 0.1")
    reference = {row["workers"]: row for row in rows}
    one = reference.get(1)
    header = ["run", "L-BFGS s/eval", "x floor", "first iter s (evals)", "objective", "SGD s/epoch",
              "x floor", "train loss", "speed-up vs 1 worker (L-BFGS / SGD)", "peak RSS/worker GB (L-BFGS / SGD)",
              "max spilled GB"]
    lines = []
    floor_pass = max(floor["products_per_pass_s"], floor["read_all_X_s"])
    for row in rows:
        lbfgs, stream = row["lbfgs"], row["stream"]
        speed_up = "-"
        if one is not None and row["workers"] >= 1:
            speed_up = (f"{one['lbfgs']['s_per_evaluation'] / lbfgs['s_per_evaluation']:.2f} / "
                        f"{one['stream']['s_per_epoch'] / stream['s_per_epoch']:.2f}")
        lines.append([row["run"], f"{lbfgs['s_per_evaluation']:.2f}", f"{lbfgs['s_per_evaluation'] / floor_pass:.1f}",
                      f"{lbfgs['first_iteration_s']:.1f} ({lbfgs['first_iteration_evaluations']})",
                      f"{lbfgs['objective']:.6f}", f"{stream['s_per_epoch']:.2f}",
                      f"{stream['s_per_epoch'] / floor_pass:.1f}", f"{stream['train_loss']:.4f}", speed_up,
                      f"{_gb(lbfgs['memory']['max_peak'])} / {_gb(stream['memory']['max_peak'])}",
                      _gb(lbfgs["memory"]["max_spilled"])])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    print("\n| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in lines:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
    print(f"\nfloors: reading every X file once {floor['read_all_X_s']:.2f} s ({floor['read_gbps']:.2f} GB/s); "
          f"one pass's matrix products on one thread {floor['products_per_pass_s']:.2f} s "
          f"({floor['products_gflops']:.1f} GFLOP/s); 'x floor' divides by the larger, {floor_pass:.2f} s")
    print("peak RSS: the largest worker's VmHWM during the phase (the in-process row: this process, which also "
          "holds the imports); s/eval: L-BFGS iterations after the first, whose time includes loading the data "
          "(every process is warmed up on 256 rows first: imports and the kernels' compilation are not timed)")


# =====================================================================================================
# main


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _workers(text: str) -> list:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected worker counts like 1,2, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts >= 1 like 1,2, got {text!r}")
    return values


def main(argv=None) -> int:
    parser = _OneLineParser(prog="distributed_large.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, help="rows of the data set (default 20,000,000; quick 2,000,000)")
    parser.add_argument("--rows-per-file", type=int, default=500_000, dest="rows_per_file",
                        help="rows per chunk file (default 500,000: 200 MB of X)")
    parser.add_argument("--data-dir-out", type=Path, dest="data_dir_out",
                        help="where the chunk files are written or reused "
                             "(default /tmp/crossent-distributed-large-ROWS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lbfgs-iter", type=int, default=3, dest="lbfgs_iter", help="L-BFGS iterations (default 3)")
    parser.add_argument("--batch-size", type=int, default=65536, dest="batch_size",
                        help="SGD batch rows (default 65536)")
    parser.add_argument("--workers", type=_workers, default=[1, 2], help="cluster sizes to run, e.g. 1,2 (default)")
    parser.add_argument("--memory-limit", default="2GB", dest="memory_limit",
                        help="memory_limit of every worker (default 2GB)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads of the in-process row (default 1, as in every worker)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE (atomically)")
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = QUICK_ROWS if args.quick else FULL_ROWS
    for name in ("rows", "rows_per_file", "lbfgs_iter", "batch_size", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    directory = args.data_dir_out or Path("/tmp") / f"crossent-distributed-large-{args.rows}"

    import dask
    import distributed

    import crossent
    from crossent._io import atomic_output
    from crossent.bench import cpu_model

    load_before = os.getloadavg()
    machine = [f"{os.cpu_count()} CPUs ({cpu_model()}); Python {platform.python_version()}, crossent "
               f"{crossent.__version__}, NumPy {np.__version__}, dask {dask.__version__}, distributed "
               f"{distributed.__version__}",
               f"load average before the run: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}"]
    print(machine[0], flush=True)
    print(machine[1], flush=True)
    print(f"data: {directory} ...", flush=True)
    metadata, write_s = prepare_data(directory, args.rows, args.rows_per_file, args.seed)
    print(f"  {'written in ' + format(write_s, '.1f') + ' s' if write_s else 'reused (matching metadata)'}",
          flush=True)
    floor = floors(directory, args.rows)
    rows = run_all(args, directory)
    load_after = os.getloadavg()
    machine.append(f"load average after the run: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    results = {
        "argv": sys.argv[1:] if argv is None else list(argv), "machine": machine,
        "load_before": load_before, "load_after": load_after, "lbfgs_iter": args.lbfgs_iter,
        "batch_size": args.batch_size, "memory_limit": args.memory_limit, "threads": args.threads,
        "data": {**metadata, "directory": str(directory), "write_s": write_s,
                 "files": -(-args.rows // args.rows_per_file), "bytes": args.rows * N_FEATURES * 4},
        "floors": floor, "rows": rows,
    }
    print_table(results)
    if args.json:
        with atomic_output(args.json) as stream:
            stream.write((json.dumps(results, indent=1, default=str) + "\n").encode())
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
