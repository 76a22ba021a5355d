"""Cost of crossent.distributed on MNIST: one epoch in memory, block by block, and on a 2-worker LocalCluster.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/distributed_mnist.py [--epochs 1] [--batch-size 128] [--hidden 0]

Workload: softmax regression 784-10 (``--hidden 800`` for the MLP 784-800-10),
SGD with momentum 0.9, lr 0.05, float32. Rows:

* ``crossent.fit`` on the NumPy array (the reference);
* ``fit_minibatch(sampling="rows")`` on the same array, no cluster -- the
  same batches, so the same weights; the difference is the cost of the sums;
* ``fit_minibatch(sampling="stream")`` on a directory of 6 chunk files, no cluster;
* both samplings on a ``LocalCluster(n_workers=2, threads_per_worker=1)`` reading
  the chunk files (every step is a round trip through the scheduler);
* one full-batch loss and gradient (what each L-BFGS evaluation costs), in
  memory and on the cluster.

The table gives seconds per epoch (per evaluation for full batch), the ratio
to ``crossent.fit`` and the test accuracy. The machine is shared and its
timings drift: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"


def main() -> None:
    import crossent
    from crossent.datasets import load_mnist
    from crossent.distributed import fit_minibatch, loss_and_gradient, write_chunks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=0, help="hidden units (0: softmax regression)")
    args = parser.parse_args()

    X_train, y_train, X_test, y_test = load_mnist(args.data_dir, download=False)
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32)
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32)

    def new_model():
        if args.hidden:
            return crossent.nn.MLP(784, [args.hidden], 10, seed=0)
        return crossent.nn.SoftmaxRegression(784, 10)

    options = dict(optimizer="momentum", lr=0.05, batch_size=args.batch_size, epochs=args.epochs, seed=0,
                   progress=False)
    rows = []

    def run(name, train):
        model = new_model()
        started = time.perf_counter()
        train(model)
        seconds = (time.perf_counter() - started) / args.epochs
        rows.append((name, seconds, crossent.evaluate(model, X_test, y_test)["accuracy"]))
        print(f"  {name}: {seconds:.2f} s", flush=True)

    with tempfile.TemporaryDirectory() as directory:
        chunks = Path(directory) / "chunks"
        write_chunks(chunks, X_train, y_train, rows_per_file=10_000)
        run("crossent.fit, in memory", lambda m: crossent.fit(m, X_train, y_train, **options))
        run("rows, no cluster (same batches)", lambda m: fit_minibatch(m, X_train, y_train, **options))
        run("stream, no cluster, 6 files", lambda m: fit_minibatch(m, chunks, sampling="stream", **options))

        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, memory_limit="4GiB",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            run("rows, LocalCluster(2), 6 files", lambda m: fit_minibatch(m, chunks, client=client, **options))
            run("stream, LocalCluster(2), 6 files",
                lambda m: fit_minibatch(m, chunks, sampling="stream", client=client, **options))
            model = new_model()
            evaluations = []
            for target, kwargs in (("in memory", {}), ("LocalCluster(2)", {"client": client})):
                data = (X_train, y_train) if not kwargs else (chunks, None)
                loss_and_gradient(model, *data, **kwargs)  # warm-up
                started = time.perf_counter()
                for _ in range(3):
                    loss_and_gradient(model, *data, **kwargs)
                evaluations.append((f"full-batch loss+gradient, {target}", (time.perf_counter() - started) / 3))

    reference = rows[0][1]
    print(f"\nMNIST, {'MLP 784-' + str(args.hidden) + '-10' if args.hidden else 'softmax regression'}, "
          f"batch {args.batch_size}, {args.epochs} epoch(s)")
    print(f"{'run':<40} {'s/epoch':>9} {'ratio':>7} {'test acc':>9}")
    for name, seconds, accuracy in rows:
        print(f"{name:<40} {seconds:9.2f} {seconds / reference:7.2f} {100 * accuracy:8.2f}%")
    print(f"{'run':<40} {'s/eval':>9}")
    for name, seconds in evaluations:
        print(f"{name:<40} {seconds:9.3f}")


if __name__ == "__main__":
    main()
