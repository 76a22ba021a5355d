"""Adversarial robustness on MNIST: clean and PGD accuracy of standard and PGD-trained models, checked against PyTorch.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/adversarial_mnist.py                 # a few minutes
    .venv/bin/python benchmarks/adversarial_mnist.py --quick         # smoke run: 1 epoch, 1000 test rows
    .venv/bin/python benchmarks/adversarial_mnist.py --json adversarial.json

Models (pixels scaled to [0, 1], no further normalisation, so the ball and
the [0, 1] range are in pixel units):

* softmax regression 784-10, zero initial weights;
* MLP 784-``--hidden``-10 (default 100), ReLU, He initial weights (seed 0).

Each is trained twice with the same recipe -- ``--epochs`` epochs of SGD with
momentum 0.9, lr 0.05, batch 128, seed 0 -- once on the clean data
(standard) and once with every minibatch replaced by its PGD attack at the
current weights (``crossent.fit(adversarial="pgd")``: L-inf, ``--train-eps``,
``--train-steps`` steps of 2.5 * eps / steps, random start). Every model is
then attacked on the test set with PGD (L-inf, 40 steps of 2.5 * eps / 40,
uniform random start, seed 0) at each eps of ``--eps``.

PyTorch check: for the PGD-trained MLP the same attack runs in PyTorch (the
network rebuilt with the same float32 weights, the input gradient by
autograd, its own random start from ``torch.Generator``), and its robust
accuracy is compared with crossent's. The two differ only through the random
start, so the difference should be within the noise, which the table shows
two ways: crossent's own change between random-start seeds 0 and 1, and the
binomial standard error of a difference of two accuracies on n rows,
sqrt(2 p (1 - p) / n). The attack times of both, their ratio and the
compute floor of the attack (its matrix products at NumPy's sgemm rate,
measured in the same run) are printed too.

Threads: ``--threads N`` (default 1) caps NumPy's BLAS (threadpoolctl),
Numba's threads and torch's. On the shared 2-core machines two threads made
PGD training several times slower (small multi-threaded products stall when
the other core is busy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"
RECIPE = {"optimizer": "momentum", "lr": 0.05, "batch_size": 128, "seed": 0}


def sgemm_rate(size: int = 2048, repeats: int = 3) -> float:
    """NumPy float32 matrix product FLOP/s (best of ``repeats``): the machine's compute limit for the attack."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def attack_flops(model, n_rows: int, steps: int) -> float:
    """Matrix-product FLOPs of a PGD attack: per step a forward pass and a backward pass to the input."""
    per_row = sum(2 * 2 * p.size for name, p in zip(model.parameter_names(), model.parameters())
                  if name.endswith("weight"))
    return float(per_row) * n_rows * steps


def train(model, X, y, epochs: int, adversarial: dict | None):
    import crossent

    options = {} if adversarial is None else {"adversarial": "pgd", "adversarial_options": adversarial}
    started = time.perf_counter()
    crossent.fit(model, X, y, epochs=epochs, progress=False, **RECIPE, **options)
    return time.perf_counter() - started


def torch_network(model):
    import torch

    layers = []
    for layer in model.network.layers:
        if hasattr(layer, "weight"):
            linear = torch.nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.weight))
                linear.bias.copy_(torch.from_numpy(layer.bias))
            layers.append(linear)
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def torch_pgd_accuracy(network, X, y, eps: float, steps: int, seed: int) -> float:
    """Madry et al.'s L-inf PGD written with autograd: uniform random start, sign steps, projection, clamp."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    alpha = 2.5 * eps / steps
    x = (X + (torch.rand(X.shape, generator=generator) * 2 - 1) * eps).clamp(0.0, 1.0)
    for _ in range(steps):
        x.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(network(x), y)
        (gradient,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x = x + alpha * gradient.sign()
            x = torch.min(torch.max(x, X - eps), X + eps).clamp(0.0, 1.0)
    with torch.no_grad():
        return float((network(x).argmax(dim=1) == y).double().mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of every model (default: 5)")
    parser.add_argument("--hidden", type=int, default=100, help="hidden units of the MLP (default: 100)")
    parser.add_argument("--train-eps", type=float, default=0.1, help="L-inf radius of PGD training (default: 0.1)")
    parser.add_argument("--train-steps", type=int, default=10, help="PGD steps in training (default: 10)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.3])
    parser.add_argument("--attack-steps", type=int, default=40, help="PGD steps of the evaluation (default: 40)")
    parser.add_argument("--test-rows", type=int, default=None, help="attack the first N test rows (default: all)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of NumPy's BLAS (capped with threadpoolctl) and of torch (default: 1, the "
                             "steady choice on a shared machine, where small multi-threaded products stall)")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 1000 test rows, 10 attack steps")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.test_rows, args.attack_steps = 1, 1000, 10
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        args.blas_threads = "as started (threadpoolctl is not installed)"
        return run(args)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))  # crossent's compiled kernels
    args.blas_threads = args.threads
    with threadpool_limits(limits=args.threads, user_api="blas"):
        return run(args)


def run(args) -> int:
    import crossent
    from crossent import attacks, nn
    from crossent.datasets import load_mnist

    X_train, y_train, X_test, y_test = load_mnist(args.data_dir, download=False)  # float32 pixels in [0, 1]
    if args.test_rows is not None:
        X_test, y_test = X_test[: args.test_rows], y_test[: args.test_rows]
    n_test = len(X_test)
    blas = args.blas_threads
    print(f"crossent {crossent.__version__}, NumPy {np.__version__} (BLAS and Numba threads: {blas}); MNIST "
          f"{len(X_train):,} train / {n_test:,} test rows; load average {os.getloadavg()[0]:.1f}", flush=True)
    train_attack = {"eps": args.train_eps, "steps": args.train_steps}
    attack = {"steps": args.attack_steps, "seed": 0}
    builders = {
        "softmax regression": lambda: nn.SoftmaxRegression(784, 10),
        f"MLP 784-{args.hidden}-10": lambda: nn.MLP(784, [args.hidden], 10, seed=0),
    }

    results, models = [], {}
    for name, build in builders.items():
        for training in ("standard", f"PGD eps {args.train_eps:g}"):
            model = build()
            seconds = train(model, X_train, y_train, args.epochs, None if training == "standard" else train_attack)
            row = {"model": name, "training": training, "train_time_s": seconds,
                   "clean_accuracy": crossent.evaluate(model, X_test, y_test)["accuracy"], "robust_accuracy": {}}
            for eps in args.eps:
                row["robust_accuracy"][eps] = attacks.robust_accuracy(model, X_test, y_test, eps, **attack)
            results.append(row)
            models[name, training] = model
            print(f"  {name}, {training}: trained in {seconds:.1f} s, clean {100 * row['clean_accuracy']:.2f} %",
                  flush=True)

    print()
    print(f"Clean and robust test accuracy (%), PGD L-inf {args.attack_steps} steps of 2.5*eps/{args.attack_steps}, "
          f"random start; {args.epochs} epochs of training")
    print()
    header = "| model | training | clean | " + " | ".join(f"eps {eps:g}" for eps in args.eps) + " | train time |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in results:
        cells = [f"{100 * row['robust_accuracy'][eps]:.2f}" for eps in args.eps]
        print(f"| {row['model']} | {row['training']} | {100 * row['clean_accuracy']:.2f} | " + " | ".join(cells)
              + f" | {row['train_time_s']:.1f} s |")

    check = None
    if not args.skip_torch:
        check = torch_check(models, args, X_test, y_test, attack, builders)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        from crossent._io import atomic_output

        figures = {"arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "recipe": RECIPE, "results": results, "torch_check": check}
        with atomic_output(args.json) as file:
            file.write((json.dumps(figures, indent=1) + "\n").encode())
        print(f"\nwrote {args.json}")
    return 0


def torch_check(models, args, X_test, y_test, attack, builders) -> list:
    try:
        import torch
    except ImportError:
        print("\nPyTorch is not installed: no check (pip install -e '.[oracle]')")
        return None
    from crossent import attacks

    torch.set_num_threads(args.threads)
    name = list(builders)[1]
    model = models[name, f"PGD eps {args.train_eps:g}"]
    network = torch_network(model)
    with torch.no_grad():
        agree = np.mean(network(torch.from_numpy(X_test)).argmax(dim=1).numpy() == model.predict(X_test))
    rate = sgemm_rate()
    n_test = len(X_test)
    print()
    print(f"PyTorch {torch.__version__} check, {name} PGD-trained: the same PGD attack on the same weights "
          f"(clean predictions agree on {100 * agree:.2f} % of rows); NumPy sgemm {rate / 1e9:.0f} GFLOP/s, "
          f"torch threads {args.threads}")
    print()
    print("| eps | crossent seed 0 | crossent seed 1 | PyTorch | PyTorch - crossent | 2 x binomial SE of a difference "
          "| crossent time | PyTorch time | ratio | sgemm floor |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for eps in args.eps:
        started = time.perf_counter()
        ours = attacks.robust_accuracy(model, X_test, y_test, eps, **attack)
        ours_time = time.perf_counter() - started
        other_seed = attacks.robust_accuracy(model, X_test, y_test, eps, **{**attack, "seed": 1})
        started = time.perf_counter()
        theirs = torch_pgd_accuracy(network, X_test, y_test, eps, args.attack_steps, seed=0)
        torch_time = time.perf_counter() - started
        noise = 2 * math.sqrt(2 * ours * (1 - ours) / n_test)
        floor = attack_flops(model, n_test, args.attack_steps) / rate
        rows.append({"eps": eps, "crossent": ours, "crossent_seed_1": other_seed, "torch": theirs,
                     "two_standard_errors": noise, "crossent_time_s": ours_time, "torch_time_s": torch_time,
                     "sgemm_floor_s": floor, "within_noise": abs(theirs - ours) <= noise})
        print(f"| {eps:g} | {100 * ours:.2f} | {100 * other_seed:.2f} | {100 * theirs:.2f} | "
              f"{100 * (theirs - ours):+.2f} | {100 * noise:.2f} | {ours_time:.2f} s | {torch_time:.2f} s | "
              f"{ours_time / torch_time:.2f} | {floor:.2f} s |", flush=True)
    within = all(row["within_noise"] for row in rows)
    print(f"\nPyTorch's robust accuracy within 2 binomial standard errors of crossent's at every eps: "
          f"{'yes' if within else 'NO'}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
