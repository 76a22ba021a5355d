"""MNIST training speed and accuracy: crossent next to a PyTorch CPU loop and scikit-learn, in one run.

Run from the repository root (MNIST read from ``../shared/data/mnist``)::

    .venv/bin/python benchmarks/mnist_training.py                # full run, 5-10 minutes
    .venv/bin/python benchmarks/mnist_training.py --quick        # smoke run, 1-2 minutes
    .venv/bin/python benchmarks/mnist_training.py --json out.json --skip-sklearn

Workloads (recipes in ``SOFTMAX`` and ``MLP`` below; each framework trains on
exactly the same float32 data, from the same initial weights, on the same
sequence of shuffled batches, with the same learning-rate at every step):

* **softmax** -- softmax regression 784-10, minibatch SGD with momentum. The
  time of the whole training run, median of ``--reps`` runs.
* **mlp** -- MLP 784-800-10 with ReLU, cross-entropy. Seconds per epoch,
  median over the epochs of a full training run; the test accuracy after it.

Peers, each in its own process so that thread pools never compete:

* a PyTorch CPU training loop (``torch.set_num_threads(--threads)``; the
  NumPy/SciPy workers get ``OPENBLAS_NUM_THREADS=--threads``):
  the rows are permuted once per epoch (``X[perm]``) and each batch is a
  slice; per step ``zero_grad``, forward, ``F.cross_entropy``, ``backward``,
  ``torch.optim.SGD.step``, and the running loss and accuracy (``fit`` keeps
  those too, for its History);
* scikit-learn: ``LogisticRegression(solver="lbfgs")`` (defaults: C=1,
  max_iter=100) for the softmax workload, and ``MLPClassifier`` (solver
  "sgd", same batch size, momentum and L2) for one or a few epochs, reported
  per epoch (its accuracy after so few epochs is not comparable).

The processes run interleaved (crossent, torch, torch, crossent, ...): this
machine is shared and its timings drift, so only ratios measured in the same
run mean much. The machine's limits are measured in the same run: sgemm
GFLOP/s (a float32 matmul of ``--sgemm-size``, NumPy and torch) and memcopy
bandwidth, and each table shows the floor they imply -- the floating-point
work of the workload divided by NumPy's sgemm rate (compute floor) and one
permuted copy of the training set per epoch at memcopy speed (shuffle floor).

``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``, when set, slow NumPy's BLAS on
these machines; the run reports them, the kernel threadpoolctl names, and the
sgemm rate of a child process with them unset (``--blas-env both`` also trains
crossent in that environment). Tests and CI keep them as they are.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data" / "mnist"
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

N_FEATURES, N_CLASSES, HIDDEN = 784, 10, 800

#: softmax regression: zero initial weights, cosine decay of the learning rate per step to 0
#: (test accuracy with seeds 0-3: 92.59, 92.69, 92.62, 92.56 %; batch 256 with lr 0.4 gives 92.55-92.61 %)
SOFTMAX = {
    "epochs": 5, "batch_size": 512, "optimizer": "SGD momentum 0.9", "momentum": 0.9, "nesterov": False,
    "lr": 1.2, "schedule": "cosine", "weight_decay": 0.0, "label_smoothing": 0.0, "seed": 0,
}
#: MLP 784-800-10 ReLU: He-normal initial weights drawn by crossent.nn.MLP(seed=seed), copied into torch.
#: Without label smoothing this reaches about 98.3 % (98.28 with lr 0.05 / weight decay 1e-4, 98.34 with
#: lr 0.1 / 5e-4, also with 30 epochs, batch 64 or dropout 0.2 on the hidden layer); with it 98.47 %.
MLP = {
    "epochs": 20, "batch_size": 128, "optimizer": "SGD momentum 0.9", "momentum": 0.9, "nesterov": False,
    "lr": 0.1, "schedule": "cosine", "weight_decay": 5e-4, "label_smoothing": 0.1, "seed": 0,
}


# =====================================================================================================
# workers: one process per framework, driven by JSON lines on stdin/stdout
# =====================================================================================================


def cosine_lr(lr: float, step: int, total_steps: int) -> float:
    """crossent.optim.cosine(lr, total_steps) at ``step``, written out for the torch loop."""
    if step >= total_steps:
        return 0.0
    return lr * (1 + math.cos(math.pi * step / total_steps)) / 2


def epoch_order(seed: int, epoch: int, n_samples: int):
    """The permutation crossent.fit draws for ``epoch``: every framework sees the same batches."""
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n_samples)


def blas_description() -> dict:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"threadpoolctl": "not installed"}
    pools = threadpool_info()
    blas = [pool for pool in pools if pool.get("user_api") == "blas"]
    pool = blas[0] if blas else (pools[0] if pools else {})
    return {
        "library": pool.get("internal_api"), "version": pool.get("version"),
        "kernel": pool.get("architecture"), "threads": pool.get("num_threads"),
    }


def sgemm_rate(size: int, repeats: int, framework: str) -> float:
    """Median GFLOP/s of a float32 size^3 matrix product."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    if framework == "torch":
        import torch

        a, b = torch.from_numpy(a), torch.from_numpy(b)
        product = torch.matmul
    else:
        product = np.matmul
    product(a, b)  # warm-up: thread start, page faults of the result
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


class Worker:
    """State of one framework's process: the data, and the model being trained."""

    def __init__(self, framework: str, data_dir: str, threads: int):
        import numpy as np

        self.framework = framework
        if framework == "torch":
            import torch

            torch.set_num_threads(threads)
        from crossent.datasets import load_mnist

        self.X_train, self.y_train, self.X_test, self.y_test = load_mnist(data_dir, download=False)
        assert self.X_train.dtype == np.float32 and self.X_train.shape == (60000, N_FEATURES)
        self.run = None

    # -------------------------------------------------------------------------------- commands

    def info(self, _command) -> dict:
        import numpy as np

        versions = {"python": platform.python_version(), "numpy": np.__version__}
        if self.framework == "torch":
            import torch

            versions["torch"] = torch.__version__
            versions["torch_threads"] = torch.get_num_threads()
        if self.framework == "sklearn":
            import sklearn

            versions["sklearn"] = sklearn.__version__
        if self.framework == "crossent":
            import crossent

            versions["crossent"] = getattr(crossent, "__version__", "?")
        return {
            "versions": versions, "blas": blas_description(),
            "env": {name: os.environ.get(name) for name in BLAS_VARIABLES},
        }

    def sgemm(self, command) -> dict:
        return {"gflops": sgemm_rate(command["size"], command["repeats"], self.framework)}

    def memcopy(self, command) -> dict:
        from crossent.bench import memcopy_rate

        return {"gbps": memcopy_rate(command["megabytes"], command["repeats"])}

    def start(self, command) -> dict:
        """Build the model and optimiser of ``command["workload"]`` with ``command["recipe"]``."""
        workload, recipe = command["workload"], command["recipe"]
        n_samples = self.X_train.shape[0]
        steps_per_epoch = math.ceil(n_samples / recipe["batch_size"])
        self.run = {
            "workload": workload, "recipe": recipe, "epoch": 0,
            "total_steps": recipe["epochs"] * steps_per_epoch, "steps_per_epoch": steps_per_epoch,
        }
        getattr(self, f"_start_{self.framework}")(workload, recipe)
        return {"steps_per_epoch": steps_per_epoch}

    def train(self, command) -> dict:
        """Train ``command["epochs"]`` more epochs: total seconds and the seconds of each epoch."""
        started = time.perf_counter()
        result = getattr(self, f"_train_{self.framework}")(command["epochs"])
        result["seconds"] = time.perf_counter() - started
        self.run["epoch"] += command["epochs"]
        return result

    def evaluate(self, _command) -> dict:
        import numpy as np

        predicted = getattr(self, f"_predict_{self.framework}")(self.X_test)
        return {"accuracy": float(np.mean(predicted == self.y_test))}

    def parts(self, command) -> dict:
        """Seconds per epoch of two parts of a training step, each timed alone on this workload's shapes.

        ``matmul``: the step's matrix products (forward and weight gradient of
        every layer, input gradient of all but the first) on real batches;
        ``optimizer``: one SGD step with this recipe's options over the model's
        parameters. The fastest of 5 blocks of ``repeats / 5`` steps (median
        within a block) -- a floor, as undisturbed as this machine allows --
        times the steps per epoch.
        """
        import numpy as np

        workload, recipe, repeats = command["workload"], command["recipe"], command["repeats"]
        batch = recipe["batch_size"]
        widths = [N_FEATURES, N_CLASSES] if workload == "softmax" else [N_FEATURES, HIDDEN, N_CLASSES]
        rng = np.random.default_rng(0)
        weights = [rng.standard_normal((out, inp)).astype(np.float32) * 0.05 for inp, out in zip(widths, widths[1:])]
        biases = [np.zeros(out, dtype=np.float32) for out in widths[1:]]
        order = epoch_order(0, 0, self.X_train.shape[0])
        steps_per_epoch = math.ceil(self.X_train.shape[0] / batch)
        torch_mode = self.framework == "torch"
        if torch_mode:
            import torch

            weights = [torch.from_numpy(w) for w in weights]
            biases = [torch.from_numpy(b) for b in biases]
            matmul = torch.matmul
        else:
            matmul = np.matmul
        weight_grads = [w * 0 for w in weights]

        def products(x):
            activations, layer_input = [], x
            for w in weights:
                activations.append(layer_input)
                layer_input = matmul(layer_input, w.T)
            grad = layer_input
            for index in range(len(weights) - 1, -1, -1):
                matmul(grad.T, activations[index], out=weight_grads[index])
                if index > 0:
                    grad = matmul(grad, weights[index])
            return grad

        def floor(times):
            block = max(1, len(times) // 5)
            return min(statistics.median(times[i : i + block]) for i in range(0, len(times), block))

        matmul_times = []
        for step in range(repeats):
            rows = order[(step * batch) % 50000 : (step * batch) % 50000 + batch]
            x = self.X_train[rows]
            if torch_mode:
                x = torch.from_numpy(x)
            started = time.perf_counter()
            products(x)
            matmul_times.append(time.perf_counter() - started)

        parameters = [p for pair in zip(weights, biases) for p in pair]
        gradients = [p * 1e-6 + 1e-7 for p in parameters]
        if torch_mode:
            for parameter, gradient in zip(parameters, gradients):
                parameter.grad = gradient
            optimizer = torch.optim.SGD(parameters, lr=1e-3, momentum=recipe["momentum"],
                                        nesterov=recipe["nesterov"], weight_decay=recipe["weight_decay"])
            step_once = optimizer.step
        else:
            import crossent

            optimizer = crossent.optim.SGD(parameters, lr=1e-3, momentum=recipe["momentum"],
                                           nesterov=recipe["nesterov"], weight_decay=recipe["weight_decay"])
            step_once = lambda: optimizer.step(gradients)  # noqa: E731
        step_once()  # the first momentum step only copies
        optimizer_times = []
        for _ in range(repeats):
            started = time.perf_counter()
            step_once()
            optimizer_times.append(time.perf_counter() - started)
        return {"matmul": floor(matmul_times) * steps_per_epoch, "optimizer": floor(optimizer_times) * steps_per_epoch}

    def logistic_regression(self, command) -> dict:
        """scikit-learn's LogisticRegression(lbfgs) on the full training set."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(solver="lbfgs", max_iter=command["max_iter"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            started = time.perf_counter()
            model.fit(self.X_train, self.y_train)
            seconds = time.perf_counter() - started
        converged = not any(issubclass(item.category, ConvergenceWarning) for item in caught)
        accuracy = float(model.score(self.X_test, self.y_test))
        return {"seconds": seconds, "accuracy": accuracy, "n_iter": int(model.n_iter_[0]), "converged": converged}

    # -------------------------------------------------------------------------------- crossent

    def _start_crossent(self, workload, recipe):
        import crossent
        from crossent.nn import MLP as CrossentMLP
        from crossent.nn import SoftmaxRegression

        if workload == "softmax":
            model = SoftmaxRegression(N_FEATURES, N_CLASSES)
        else:
            model = CrossentMLP(N_FEATURES, [HIDDEN], N_CLASSES, seed=recipe["seed"])
        optimizer = crossent.optim.SGD(
            model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"], nesterov=recipe["nesterov"],
            weight_decay=recipe["weight_decay"],
        )
        schedule = None
        if recipe["schedule"] == "cosine":
            schedule = crossent.optim.cosine(recipe["lr"], self.run["total_steps"])
        loss = crossent.losses.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])
        self.run.update(model=model, optimizer=optimizer, schedule=schedule, loss=loss, history=crossent.History())

    def _train_crossent(self, epochs):
        import crossent

        run, recipe = self.run, self.run["recipe"]
        # a later call resumes from the History: same batches, same schedule steps as one long call
        crossent.fit(
            run["model"], self.X_train, self.y_train, loss=run["loss"], optimizer=run["optimizer"],
            schedule=run["schedule"], epochs=run["epoch"] + epochs, batch_size=recipe["batch_size"], seed=recipe["seed"],
            history=run["history"], progress=False,
        )
        records = run["history"].records[-epochs:]
        # the epoch's own time as fit measures it: the per-call argument checks belong to no epoch
        return {"epoch_seconds": [record["time_s"] for record in records],
                "train_loss": records[-1]["train_loss"], "train_accuracy": records[-1]["train_accuracy"]}

    def _predict_crossent(self, X):
        return self.run["model"].predict(X)

    # -------------------------------------------------------------------------------- torch

    def _start_torch(self, workload, recipe):
        import torch
        from crossent.nn import MLP as CrossentMLP

        if workload == "softmax":
            model = torch.nn.Linear(N_FEATURES, N_CLASSES)
            with torch.no_grad():
                model.weight.zero_()
                model.bias.zero_()
        else:
            model = torch.nn.Sequential(
                torch.nn.Linear(N_FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, N_CLASSES)
            )
            # the same initial weights as crossent's run (He-normal, drawn by crossent from the seed)
            reference = CrossentMLP(N_FEATURES, [HIDDEN], N_CLASSES, seed=recipe["seed"])
            state = {name: torch.from_numpy(value.copy()) for name, value in
                     zip(reference.parameter_names(), reference.parameters())}
            model.load_state_dict(state)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"], nesterov=recipe["nesterov"],
            weight_decay=recipe["weight_decay"],
        )
        self.run.update(
            model=model, optimizer=optimizer,
            X=torch.from_numpy(self.X_train), y=torch.from_numpy(self.y_train),
        )

    def _train_torch(self, epochs):
        epoch_seconds = []
        for epoch in range(self.run["epoch"], self.run["epoch"] + epochs):
            started = time.perf_counter()
            result = self._torch_epoch(epoch)
            epoch_seconds.append(time.perf_counter() - started)
        return {"epoch_seconds": epoch_seconds, **result}

    def _torch_epoch(self, epoch: int):
        import torch
        import torch.nn.functional as F

        run, recipe = self.run, self.run["recipe"]
        model, optimizer, batch = run["model"], run["optimizer"], recipe["batch_size"]
        n_samples = run["X"].shape[0]
        order = torch.from_numpy(epoch_order(recipe["seed"], epoch, n_samples))
        X, y = run["X"][order], run["y"][order]  # one gather per epoch, then contiguous slices
        loss_sum, correct = 0.0, 0
        step = epoch * run["steps_per_epoch"]
        for start in range(0, n_samples, batch):
            if recipe["schedule"] == "cosine":
                for group in optimizer.param_groups:
                    group["lr"] = cosine_lr(recipe["lr"], step, run["total_steps"])
            xb, yb = X[start : start + batch], y[start : start + batch]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=recipe["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * xb.shape[0]
            correct += int((logits.argmax(dim=1) == yb).sum())
            step += 1
        return {"train_loss": loss_sum / n_samples, "train_accuracy": correct / n_samples}

    def _predict_torch(self, X):
        import torch

        with torch.no_grad():
            return self.run["model"](torch.from_numpy(X)).argmax(dim=1).numpy()

    # -------------------------------------------------------------------------------- scikit-learn

    def _start_sklearn(self, workload, recipe):
        from sklearn.neural_network import MLPClassifier

        if workload != "mlp":
            raise ValueError("scikit-learn trains the softmax workload with logistic_regression")
        # sklearn's alpha is divided by the batch size in the gradient: alpha = weight decay * batch;
        # it has no label smoothing and no per-step schedule (a constant rate here)
        self.run["model"] = MLPClassifier(
            hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd", batch_size=recipe["batch_size"],
            learning_rate="constant", learning_rate_init=recipe["lr"], momentum=recipe["momentum"],
            nesterovs_momentum=recipe["nesterov"], alpha=recipe["weight_decay"] * recipe["batch_size"],
            shuffle=True, random_state=recipe["seed"],
        )

    def _train_sklearn(self, epochs):
        import numpy as np

        epoch_seconds = []
        for _ in range(epochs):
            started = time.perf_counter()
            self.run["model"].partial_fit(self.X_train, self.y_train, classes=np.arange(N_CLASSES))
            epoch_seconds.append(time.perf_counter() - started)
        return {"epoch_seconds": epoch_seconds, "train_loss": float(self.run["model"].loss_)}

    def _predict_sklearn(self, X):
        return self.run["model"].predict(X)


def serve(framework: str, data_dir: str, threads: int) -> None:
    """Worker loop: one JSON command per stdin line, one JSON answer per stdout line."""
    answers = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the protocol
    worker = Worker(framework, data_dir, threads)
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        try:
            answer = getattr(worker, command["cmd"])(command)
        except Exception as error:  # report, let the parent decide
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


# =====================================================================================================
# parent: starts the workers, interleaves them, prints the tables
# =====================================================================================================


class Process:
    def __init__(self, label: str, framework: str, args, unset_blas: bool = False):
        self.label, self.framework = label, framework
        environment = dict(os.environ)
        if unset_blas:
            for name in BLAS_VARIABLES:
                environment.pop(name, None)
        environment["OPENBLAS_NUM_THREADS"] = str(args.threads)  # NumPy's and SciPy's BLAS, like torch's
        environment.setdefault("PYTHONPATH", "")
        environment["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(ROOT / "src"), environment["PYTHONPATH"]) if part
        )
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", framework,
             "--data-dir", str(args.data_dir), "--threads", str(args.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment,
        )
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"{label} worker did not start: {ready}")

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.label} worker exited (exit code {self.process.poll()}); see stderr")
        return json.loads(line)

    def ask(self, cmd: str, **arguments) -> dict:
        self.process.stdin.write(json.dumps({"cmd": cmd, **arguments}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"{self.label} {cmd}: {answer['error']}")
        return answer

    def close(self) -> None:
        try:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        self.process.wait(timeout=60)


def settle() -> None:
    """Let the other process's BLAS/OpenMP threads stop spinning before the next timed run."""
    time.sleep(0.2)


def interleaved(processes: list, repetition: int) -> list:
    """The processes in alternating order: crossent first on even repetitions, last on odd ones."""
    return processes if repetition % 2 == 0 else processes[::-1]


def softmax_flops_per_epoch(n_samples: int) -> float:
    # forward x W^T and weight gradient G^T x: 2 N D C each; no input gradient
    return 2 * 2 * n_samples * N_FEATURES * N_CLASSES


def mlp_flops_per_epoch(n_samples: int) -> float:
    # forward of both layers, weight gradients of both, input gradient of the second layer only
    per_row = 2 * (N_FEATURES * HIDDEN + HIDDEN * N_CLASSES) * 2 + 2 * HIDDEN * N_CLASSES
    return n_samples * per_row


def train_run(process: Process, workload: str, recipe: dict, epochs: int) -> dict:
    """A whole training run in one call (for crossent: one fit call, its argument checks included)."""
    process.ask("start", workload=workload, recipe=recipe)
    result = process.ask("train", epochs=epochs)
    result["accuracy"] = process.ask("evaluate")["accuracy"]
    return result


def run_softmax(args, trainers: list, sklearn_process) -> dict:
    recipe = dict(SOFTMAX)
    reps = args.reps
    results = {process.label: [] for process in trainers}
    for repetition in range(reps):
        for process in interleaved(trainers, repetition):
            settle()
            results[process.label].append(train_run(process, "softmax", recipe, recipe["epochs"]))
            print(f"  softmax {process.label} run {repetition + 1}/{reps}: "
                  f"{results[process.label][-1]['seconds']:.3f} s", file=sys.stderr, flush=True)
    rows = {}
    for label, runs in results.items():
        rows[label] = {
            "seconds": statistics.median(run["seconds"] for run in runs),
            "all_seconds": [run["seconds"] for run in runs],
            "accuracy": runs[0]["accuracy"],
            "all_accuracy": [run["accuracy"] for run in runs],
        }
    if sklearn_process is not None:
        max_iter = 10 if args.quick else 100
        runs = []
        for _ in range(args.sklearn_reps):
            settle()
            runs.append(sklearn_process.ask("logistic_regression", max_iter=max_iter))
            print(f"  softmax sklearn LogisticRegression: {runs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
        rows[f"scikit-learn LogisticRegression(lbfgs, max_iter={max_iter})"] = {
            "seconds": statistics.median(run["seconds"] for run in runs),
            "all_seconds": [run["seconds"] for run in runs],
            "accuracy": runs[0]["accuracy"], "n_iter": runs[0]["n_iter"], "converged": runs[0]["converged"],
        }
    return {"recipe": recipe, "repetitions": reps, "rows": rows, "parts": measure_parts(trainers, "softmax", recipe)}


def measure_parts(trainers: list, workload: str, recipe: dict) -> dict:
    """Matrix products and optimiser step of each trainer, timed alone (seconds per epoch)."""
    parts = {}
    for process in trainers:
        settle()
        parts[process.label] = process.ask("parts", workload=workload, recipe=recipe, repeats=200)
    return parts


def run_mlp(args, trainers: list, sklearn_process) -> dict:
    recipe = dict(MLP)
    epochs = 2 if args.quick else recipe["epochs"]
    for process in trainers:
        process.ask("start", workload="mlp", recipe=recipe)
    epoch_seconds = {process.label: [] for process in trainers}
    for epoch in range(epochs):
        for process in interleaved(trainers, epoch):
            settle()
            epoch_seconds[process.label].extend(process.ask("train", epochs=1)["epoch_seconds"])
        print("  mlp epoch {}/{}: {}".format(epoch + 1, epochs, ", ".join(
            f"{label} {seconds[-1]:.3f} s" for label, seconds in epoch_seconds.items())), file=sys.stderr, flush=True)
    rows = {}
    for process in trainers:
        seconds = epoch_seconds[process.label]
        rows[process.label] = {
            "seconds_per_epoch": statistics.median(seconds), "epoch_seconds": seconds,
            "accuracy": process.ask("evaluate")["accuracy"], "epochs": epochs,
        }
    if sklearn_process is not None:
        sklearn_epochs = 1 if args.quick else args.sklearn_epochs
        sklearn_process.ask("start", workload="mlp", recipe=recipe)
        seconds = []
        for _ in range(sklearn_epochs):
            settle()
            seconds.extend(sklearn_process.ask("train", epochs=1)["epoch_seconds"])
            print(f"  mlp sklearn MLPClassifier epoch: {seconds[-1]:.3f} s", file=sys.stderr, flush=True)
        rows[f"scikit-learn MLPClassifier (sgd), {sklearn_epochs} epoch(s)"] = {
            "seconds_per_epoch": statistics.median(seconds), "epoch_seconds": seconds,
            "accuracy": sklearn_process.ask("evaluate")["accuracy"], "epochs": sklearn_epochs,
        }
    return {"recipe": recipe, "epochs": epochs, "rows": rows, "parts": measure_parts(trainers, "mlp", recipe)}


def recipe_text(recipe: dict, epochs: int | None = None) -> str:
    schedule = f"{recipe['schedule']} decay per step to 0" if recipe["schedule"] else "constant"
    return (
        f"{epochs or recipe['epochs']} epochs, batch {recipe['batch_size']}, {recipe['optimizer']}"
        f"{' (Nesterov)' if recipe['nesterov'] else ''}, lr {recipe['lr']:g} {schedule}, "
        f"weight decay {recipe['weight_decay']:g}, "
        + (f"label smoothing {recipe['label_smoothing']:g}, " if recipe["label_smoothing"] else "")
        + f"seed {recipe['seed']}"
    )


def print_table(title: str, header: list, rows: list, notes: list) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    line = "| " + " | ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                            for i, (cell, width) in enumerate(zip(header, widths))) + " |"
    print(line)
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                                for i, (cell, width) in enumerate(zip(row, widths))) + " |")
    for note in notes:
        print(note)


def report(results: dict) -> None:
    machine = results["machine"]
    print("\nMachine")
    for line in machine["lines"]:
        print(f"  {line}")
    sgemm = machine["sgemm_gflops"]["numpy"]
    memcopy = machine["memcopy_gbps"]
    n_samples = 60000
    data_bytes = n_samples * N_FEATURES * 4

    if "softmax" in results:
        block = results["softmax"]
        rows = block["rows"]
        reference = rows["crossent"]["seconds"]
        epochs = block["recipe"]["epochs"]
        table = []
        for label, row in rows.items():
            table.append([label, f"{row['seconds']:.3f}", f"{row['seconds'] / epochs:.4f}" if "LogisticRegression"
                          not in label else "-", f"{100 * row['accuracy']:.2f} %", f"{row['seconds'] / reference:.2f}"])
        flops = softmax_flops_per_epoch(n_samples)
        compute_floor = flops * epochs / (sgemm * 1e9)
        shuffle_floor = 2 * data_bytes * epochs / (memcopy * 1e9)
        table.append([f"compute floor: {flops / 1e9:.2f} GFLOP/epoch at {sgemm:.0f} GFLOP/s",
                      f"{compute_floor:.3f}", f"{compute_floor / epochs:.4f}", "", f"{compute_floor / reference:.2f}"])
        table.append([f"shuffle floor: {2 * data_bytes / 1e6:.0f} MB/epoch at {memcopy:.0f} GB/s",
                      f"{shuffle_floor:.3f}", f"{shuffle_floor / epochs:.4f}", "", f"{shuffle_floor / reference:.2f}"])
        for label, part in block["parts"].items():
            for name, text in (("matmul", "its matrix products alone"), ("optimizer", "its SGD step alone")):
                table.append([f"  {label}: {text}", f"{part[name] * epochs:.3f}", f"{part[name]:.4f}", "",
                              f"{part[name] * epochs / reference:.2f}"])
        notes = [f"time: the whole training run (data loading and test evaluation excluded), median of "
                 f"{block['repetitions']} interleaved runs; ratio = time / crossent's time; 'alone' rows: that "
                 f"part of a step timed by itself (fastest of 5 blocks of 40 steps) times the steps"]
        if "PyTorch CPU loop" in rows:
            notes.append(f"crossent / PyTorch = {reference / rows['PyTorch CPU loop']['seconds']:.2f} (target <= 0.5)")
        for label, row in rows.items():
            if "LogisticRegression" in label:
                notes.append(f"crossent / sklearn = {reference / row['seconds']:.3f} (target <= 0.05); lbfgs "
                             f"{row['n_iter']} iterations, {'converged' if row['converged'] else 'not converged'}")
        print_table(f"MNIST softmax regression 784-10: {recipe_text(block['recipe'])}",
                    ["implementation", "time (s)", "s/epoch", "test accuracy", "ratio"], table, notes)

    if "mlp" in results:
        block = results["mlp"]
        rows = block["rows"]
        reference = rows["crossent"]["seconds_per_epoch"]
        table = []
        for label, row in rows.items():
            table.append([label, f"{row['seconds_per_epoch']:.3f}", f"{100 * row['accuracy']:.2f} %",
                          str(row["epochs"]), f"{row['seconds_per_epoch'] / reference:.2f}"])
        flops = mlp_flops_per_epoch(n_samples)
        compute_floor = flops / (sgemm * 1e9)
        table.append([f"compute floor: {flops / 1e9:.1f} GFLOP/epoch at {sgemm:.0f} GFLOP/s",
                      f"{compute_floor:.3f}", "", "", f"{compute_floor / reference:.2f}"])
        for label, part in block["parts"].items():
            for name, text in (("matmul", "its matrix products alone"), ("optimizer", "its SGD step alone")):
                table.append([f"  {label}: {text}", f"{part[name]:.3f}", "", "", f"{part[name] / reference:.2f}"])
        notes = ["s/epoch: median over the epochs of one run, crossent and PyTorch epochs interleaved; "
                 "ratio = s/epoch / crossent's; 'alone' rows: that part of a step timed by itself "
                 "(fastest of 5 blocks of 40 steps) times the steps per epoch"]
        if "PyTorch CPU loop" in rows:
            torch_epoch = rows["PyTorch CPU loop"]["seconds_per_epoch"]
            notes.append(f"crossent / PyTorch = {reference / torch_epoch:.2f} (target <= 0.8)")
            crossent_parts = block["parts"].get("crossent")
            if crossent_parts:
                notes.append(
                    f"bound: crossent's matrix products alone / PyTorch = {crossent_parts['matmul'] / torch_epoch:.2f}, "
                    f"with its SGD step {(crossent_parts['matmul'] + crossent_parts['optimizer']) / torch_epoch:.2f}"
                )
        print_table(f"MNIST MLP 784-800-10 ReLU: {recipe_text(block['recipe'], block['epochs'])}",
                    ["implementation", "s/epoch", "test accuracy", "epochs", "ratio"], table, notes)


def describe_machine(args, processes: dict) -> dict:
    lines = []
    from crossent.bench import cpu_model

    cpu = cpu_model()
    lines.append(f"{os.cpu_count()} CPUs ({cpu}); {args.threads} threads for NumPy's BLAS and torch")
    lines.append("load average before the run: {:.2f} (other processes competing for the CPUs slow the "
                 "multi-threaded small matrix products of every framework)".format(os.getloadavg()[0]))
    info = {label: process.ask("info") for label, process in processes.items()}
    crossent_info = info["crossent"]
    blas = crossent_info["blas"]
    lines.append(f"crossent {crossent_info['versions'].get('crossent')}, NumPy {crossent_info['versions']['numpy']} "
                 f"with {blas.get('library')} {blas.get('version')} (kernel {blas.get('kernel')}, "
                 f"{blas.get('threads')} threads, per threadpoolctl)")
    if "torch" in info:
        lines.append(f"torch {info['torch']['versions']['torch']} ({info['torch']['versions']['torch_threads']} threads)")
    if "sklearn" in info:
        lines.append(f"scikit-learn {info['sklearn']['versions']['sklearn']}")
    env = crossent_info["env"]
    set_variables = {name: value for name, value in env.items() if value is not None}
    lines.append("BLAS environment: " + (", ".join(f"{name}={value}" for name, value in set_variables.items())
                                          if set_variables else "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE not set"))
    size, repeats = args.sgemm_size, 3
    sgemm = {}
    settle()
    sgemm["numpy"] = processes["crossent"].ask("sgemm", size=size, repeats=repeats)["gflops"]
    if "crossent (OPENBLAS_* unset)" in processes:
        settle()
        unset = processes["crossent (OPENBLAS_* unset)"]
        sgemm["numpy, OPENBLAS_* unset"] = unset.ask("sgemm", size=size, repeats=repeats)["gflops"]
        unset_blas = info["crossent (OPENBLAS_* unset)"]["blas"]
        lines.append(f"with OPENBLAS_* unset: kernel {unset_blas.get('kernel')} per threadpoolctl")
    if "torch" in processes:
        settle()
        sgemm["torch"] = processes["torch"].ask("sgemm", size=size, repeats=repeats)["gflops"]
    settle()
    memcopy = processes["crossent"].ask("memcopy", megabytes=512, repeats=5)["gbps"]
    lines.append(f"sgemm {size}^3 float32 (median of {repeats}): " +
                 ", ".join(f"{label} {value:.0f} GFLOP/s" for label, value in sgemm.items()))
    lines.append(f"memcopy 512 MB (read + write, median of 5): {memcopy:.1f} GB/s")
    return {"lines": lines, "sgemm_gflops": sgemm, "memcopy_gbps": memcopy, "info": info}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repetitions: a smoke run")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder with the MNIST IDX files")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every figure to this JSON file")
    parser.add_argument("--workloads", default="softmax,mlp", help="comma-separated: softmax, mlp")
    parser.add_argument("--reps", type=int, default=None, help="softmax runs per framework (default 5, quick 2)")
    parser.add_argument("--sklearn-reps", type=int, default=1, help="LogisticRegression fits (default 1)")
    parser.add_argument("--sklearn-epochs", type=int, default=2, help="MLPClassifier epochs (default 2)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of torch and of NumPy's/SciPy's OpenBLAS (default: the usable CPUs)")
    parser.add_argument("--sgemm-size", type=int, default=None, help="default 4096, quick 2048")
    parser.add_argument("--blas-env", choices=("inherit", "both"), default="inherit",
                        help="'both' also trains crossent with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset")
    parser.add_argument("--set", action="append", default=[], metavar="WORKLOAD.KEY=VALUE",
                        help="change a recipe entry, e.g. --set mlp.batch_size=64 --set softmax.lr=0.2")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        serve(args.worker, str(args.data_dir), args.threads)
        return 0
    for assignment in args.set:
        try:
            target, value = assignment.split("=", 1)
            workload, key = target.split(".", 1)
            recipe = {"softmax": SOFTMAX, "mlp": MLP}[workload]
            if key not in recipe:
                raise KeyError(key)
            recipe[key] = json.loads(value) if value not in ("", "none") else None
        except (ValueError, KeyError) as error:
            parser.error(f"--set {assignment!r}: expected WORKLOAD.KEY=JSON-VALUE with a known key ({error})")
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    if args.sgemm_size is None:
        args.sgemm_size = 2048 if args.quick else 4096
    workloads = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = set(workloads) - {"softmax", "mlp"}
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from softmax, mlp")
    if not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} does not exist (MNIST IDX files expected there)")

    processes = {"crossent": Process("crossent", "crossent", args)}
    blas_set = any(os.environ.get(name) is not None for name in BLAS_VARIABLES)
    if blas_set:
        processes["crossent (OPENBLAS_* unset)"] = Process("crossent (OPENBLAS_* unset)", "crossent", args,
                                                           unset_blas=True)
    if not args.skip_torch:
        processes["torch"] = Process("PyTorch CPU loop", "torch", args)
    if not args.skip_sklearn:
        processes["sklearn"] = Process("scikit-learn", "sklearn", args)
    try:
        results = {"machine": describe_machine(args, processes), "argv": sys.argv[1:]}
        trainers = [processes["crossent"]]
        if blas_set and args.blas_env == "both":
            trainers.append(processes["crossent (OPENBLAS_* unset)"])
        if "torch" in processes:
            trainers.append(processes["torch"])
        sklearn_process = processes.get("sklearn")
        if "softmax" in workloads:
            results["softmax"] = run_softmax(args, trainers, sklearn_process)
        if "mlp" in workloads:
            results["mlp"] = run_mlp(args, trainers, sklearn_process)
    finally:
        for process in processes.values():
            process.close()
    results["machine"]["lines"].append(f"load average after the run: {os.getloadavg()[0]:.2f}")
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
