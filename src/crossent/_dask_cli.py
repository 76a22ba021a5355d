"""``crossent train --dask ...`` and ``crossent train --dataset DIR`` (a directory of chunk files).

Training goes through :func:`crossent.distributed.fit_minibatch`:

* ``--dask local`` / ``local:N``: a ``LocalCluster`` of N worker processes
  (default 2) with one thread each, started for the run and stopped after it;
* ``--dask tcp://host:port``: the scheduler of a running cluster
  (``dask-scheduler`` and ``dask-worker``, or a managed one);
* ``--dataset DIR``: a directory of chunk files in the layout of
  :func:`crossent.distributed.write_chunks` (``X_000.npy``, ``y_000.npy``, ...),
  trained block by block -- in this process without ``--dask``. Its test
  split is ``DIR/test/`` in the same layout, or ``--test-dataset DIR2``.

An in-memory data set (digits, mnist, a .csv/.npz file) is normalised as
usual and its training rows are written to a temporary chunk directory first,
so that the workers read them from files: a lost worker's blocks are read
again instead of being lost with it. A chunk directory is normalised on the
fly: the statistics (``--normalize``) come from one pass over its rows, and
every block is scaled when a worker reads it.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_LOCAL_WORKERS = 2
_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d+$")
#: options of ``crossent train`` that need the rows in memory (or a path not taken here)
_UNSUPPORTED = (("resume", "--resume"), ("margin", "--margin"), ("validation_split", "--validation-split"),
                ("early_stopping", "--early-stopping"), ("adversarial", "--adversarial"), ("plots", "--plots"),
                ("report", "--report"))


def dask_address(text: str):
    """``local`` / ``local:N`` -> ("local", N, text); ``tcp://host:port`` -> ("address", text, text)."""
    match = re.fullmatch(r"local(?::(\d+))?", text)
    if match:
        workers = int(match.group(1)) if match.group(1) else DEFAULT_LOCAL_WORKERS
        if workers < 1:
            raise argparse.ArgumentTypeError(f"local:N needs N >= 1 worker processes, got {text!r}")
        return ("local", workers, text)
    if _ADDRESS.match(text):
        return ("address", text, text)
    raise argparse.ArgumentTypeError(f"expected local, local:N (N worker processes) or a scheduler address "
                                     f"tcp://host:port, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The distributed options of ``crossent train``."""
    parser.add_argument("--dask", type=dask_address, metavar="local[:N]|tcp://HOST:PORT",
                        help="train on a dask cluster: a LocalCluster of N worker processes (default 2) or the "
                             "scheduler at tcp://HOST:PORT (needs crossent[dask])")
    parser.add_argument("--test-dataset", dest="test_dataset", metavar="DIR",
                        help="test split of a --dataset chunk directory (default: DIR/test)")
    parser.add_argument("--sampling", choices=["rows", "stream"], default="rows",
                        help="with --dask or a chunk directory: 'rows' gives crossent.fit's batches (the data is "
                             "held in the workers' memory), 'stream' reads each block once per epoch for data "
                             "larger than memory (default: rows)")


def wanted(args) -> bool:
    """Whether ``crossent train`` runs here: --dask, --dataset naming a directory, or an option of this module."""
    return (args.dask is not None or Path(args.dataset).is_dir() or args.test_dataset is not None
            or args.sampling != "rows")


def _usage_error(message: str):
    from .cli import UsageError

    return UsageError(message)


def _check_arguments(args) -> None:
    for key, flag in _UNSUPPORTED:
        if getattr(args, key, None):
            where = "--dask" if args.dask is not None else "a chunk-directory --dataset"
            raise _usage_error(f"{flag} is not available with {where} (training goes through "
                               f"crossent.distributed.fit_minibatch)")
    if args.test_dataset is not None and not Path(args.dataset).is_dir():
        raise _usage_error("--test-dataset applies to a chunk-directory --dataset only")
    if args.sampling != "rows" and args.dask is None and not Path(args.dataset).is_dir():
        raise _usage_error("--sampling applies with --dask or a chunk-directory --dataset only")


class _Cluster:
    """The dask client of ``--dask`` (None without it); a LocalCluster it started is closed with it."""

    def __init__(self, spec):
        self.spec, self.cluster, self.client = spec, None, None

    def __enter__(self):
        if self.spec is None:
            return None
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise _usage_error("--dask needs dask.distributed: pip install 'crossent[dask]'") from None
        kind, value, _ = self.spec
        if kind == "local":
            # ":0": a free port, so that a second cluster on the machine prints no port warning
            self.cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                        dashboard_address=":0")
            self.client = Client(self.cluster, set_as_default=False)
        else:
            self.client = Client(value, timeout="10s", set_as_default=False)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


def _compute(client, *values):
    import dask

    if client is None:
        return dask.compute(*values, scheduler="threads")
    return tuple(client.gather(client.compute(list(values))))


def _directory_arrays(directory: Path):
    from .distributed import _dask_parts

    X, y, sample_weight = _dask_parts(directory, None, None, None, None)
    if sample_weight is not None:
        raise _usage_error(f"{directory} holds sample_weight files; crossent train does not use row weights "
                           f"(call crossent.distributed.fit_minibatch)")
    return X, y


def _fit_normalizer(method: str, X, client):
    """A Normalizer fitted on a dask X with one pass over its blocks (the in-memory Normalizer's statistics)."""
    from .datasets import Normalizer

    n_features = X.shape[1]
    if method == "none":
        return Normalizer("none").fit(np.zeros((1, n_features)))
    wide = X.astype(np.float64)
    if method == "unit":
        low, high = (float(v) for v in _compute(client, wide.min(), wide.max()))
        offset, scale = np.full(n_features, low), np.full(n_features, high - low if high > low else 1.0)
    else:
        mean, variance = _compute(client, wide.mean(axis=0), wide.var(axis=0))
        scale = np.sqrt(variance)
        # a constant feature maps to exactly 0, as in Normalizer.fit
        offset, scale = np.asarray(mean), np.where(scale > 0, scale, 1.0)
    return Normalizer.from_state({"method": method, "n_features": int(n_features), "offset": offset.tolist(),
                                  "scale": scale.tolist()})


def _scaled(X, normalizer):
    offset, scale = np.asarray(normalizer.offset), np.asarray(normalizer.scale)
    return ((X - offset) / scale).astype(np.float32)


def _load(args, client, scratch: Path):
    """(X_train, y_train for fit_minibatch, test data, info, normalizer, description of the data)."""
    from .cli import _load_data
    from .datasets import Normalizer
    from .distributed import write_chunks

    dataset = Path(args.dataset)
    if dataset.is_dir():
        test_directory = Path(args.test_dataset) if args.test_dataset else dataset / "test"
        if not test_directory.is_dir():
            raise _usage_error(f"{dataset} needs a test split: a chunk directory {dataset / 'test'} or "
                               f"--test-dataset DIR")
        X, y = _directory_arrays(dataset)
        X_test, y_test = _directory_arrays(test_directory)
        if X_test.shape[1] != X.shape[1]:
            raise _usage_error(f"the test split has {X_test.shape[1]} features, the training data {X.shape[1]}")
        for name, labels in (("training", y), ("test", y_test)):
            if labels.ndim != 1 or np.dtype(labels.dtype).kind not in "iu":
                raise _usage_error(f"the {name} labels (y_*.npy) must be integer class numbers, one per row; got "
                                   f"dtype {labels.dtype} and shape {labels.shape}")
        low, high, test_high = (int(v) for v in _compute(client, y.min(), y.max(), y_test.max()))
        if low < 0:
            raise _usage_error(f"the labels of {dataset} must be class numbers >= 0, found {low}")
        n_classes = max(high, test_high) + 1
        normalizer = _fit_normalizer(args.normalize, X, client)
        info = {"name": dataset.name, "n_features": int(X.shape[1]), "n_classes": n_classes,
                "class_names": [str(c) for c in range(n_classes)], "image_shape": None}
        sizes = (int(X.shape[0]), int(X_test.shape[0]))
        return _scaled(X, normalizer), y, (_scaled(X_test, normalizer), y_test), info, normalizer, sizes
    X_train, y_train, X_test, y_test, info = _load_data(args)
    normalizer = Normalizer(args.normalize).fit(X_train)
    X_train, X_test = normalizer.transform(X_train), normalizer.transform(X_test)
    # files, not arrays scattered from this process: a worker that dies is replaced and reads its blocks again
    workers = 1 if client is None else max(1, len(client.scheduler_info().get("workers", {})))
    write_chunks(scratch, X_train, y_train, rows_per_file=max(1, math.ceil(len(X_train) / (2 * workers))))
    return scratch, None, (X_test, y_test), info, normalizer, (len(X_train), len(X_test))


def _evaluate(model, test, loss, target_form, n_classes) -> dict:
    """Test accuracy and loss, block by block for a dask test split."""
    from . import evaluate
    from .cli import _targets

    X_test, y_test = test
    if not hasattr(X_test, "chunks"):
        return evaluate(model, X_test, _targets(y_test, target_form, n_classes), loss=loss)
    rows = correct = 0
    total = 0.0
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    for X_block, y_block in zip(X_test.to_delayed().ravel(), y_test.to_delayed().ravel()):
        X_block, y_block = np.asarray(X_block.compute()), np.asarray(y_block.compute())
        report = evaluate(model, X_block, y_block, loss=loss)
        rows += report["n_samples"]
        total += report["loss"] * report["n_samples"]
        correct += report["accuracy"] * report["n_samples"]
        confusion += np.asarray(report["confusion_matrix"], dtype=np.int64)
    mean = total / rows
    return {"n_samples": rows, "accuracy": correct / rows, "loss": mean, "loss_bits": mean / math.log(2),
            "perplexity": math.exp(mean) if mean < 700 else math.inf, "confusion_matrix": confusion.tolist()}


def train(args) -> int:
    """``crossent train`` with --dask or a chunk-directory --dataset."""
    from . import __version__
    from ._attack_cli import adversarial_training
    from .cli import MLP_SETTINGS, _build_model, _check_output_path, _finish_training, _given_settings, _loss_options
    from .cli import _print, resolve_cli_loss
    from .distributed import fit_minibatch
    from .train import make_optimizer

    _check_arguments(args)
    _check_output_path(args.save, "--save")
    _check_output_path(args.metrics_out, "--metrics-out")
    if args.model != "mlp":
        stray = [key for key in MLP_SETTINGS if key in _given_settings(args)]
        if stray:
            raise _usage_error(f"--{stray[0]} applies to --model mlp only (got --model {args.model})")
    with _Cluster(args.dask) as client, tempfile.TemporaryDirectory(prefix="crossent-train-") as scratch:
        X_train, y_train, test, info, normalizer, (n_train, n_test) = _load(args, client, Path(scratch))
        adversarial_training(args, info)  # rejects stray --adv-* options
        n_features, n_classes = info["n_features"], info["n_classes"]
        model = _build_model(args, n_features, n_classes)
        loss, target_form = resolve_cli_loss(args.loss or model.default_loss, _loss_options(args), args.model)
        if target_form != "labels":
            raise _usage_error(f"--loss {args.loss} takes {target_form} targets; with --dask or a chunk directory "
                               f"the labels are class numbers (use cross_entropy or another label loss)")
        optimizer = make_optimizer(args.optimizer, model.parameters(), lr=args.lr, momentum=args.momentum,
                                   weight_decay=args.weight_decay)
        if client is None:
            where = "this process, block by block"
        else:
            scheduler = client.scheduler_info()
            where = f"dask cluster {scheduler['address']} ({len(scheduler['workers'])} workers)"
        _print(args, f"crossent {__version__}: training {type(model).__name__} ({model.n_parameters:,} parameters) "
                     f"on {info['name']} ({n_train:,} train / {n_test:,} test, {n_features} features, "
                     f"{n_classes} classes) in {where}")
        _print(args, f"loss {loss!r}, optimizer {args.optimizer} (lr {optimizer.lr:g}), batch size "
                     f"{args.batch_size or 'full'}, {args.epochs} epochs, sampling {args.sampling}, seed {args.seed}")
        started = time.perf_counter()
        history = fit_minibatch(model, X_train, y_train, loss=loss, optimizer=optimizer,
                                schedule=None if args.schedule == "constant" else args.schedule,
                                epochs=args.epochs, batch_size=args.batch_size, sampling=args.sampling,
                                seed=args.seed, clip_grad_norm=args.clip_grad_norm, client=client,
                                progress=False if args.quiet else "auto")
        train_time = time.perf_counter() - started
        report = _evaluate(model, test, loss, target_form, n_classes)
    # --plots and --report were refused above: the shared tail prints, saves and writes the metrics only
    return _finish_training(args, model=model, optimizer=optimizer, loss=loss, normalizer=normalizer,
                            history=history, report=report, train_time=train_time, info=info,
                            target_form=target_form,
                            extra_arguments={"dask": None if args.dask is None else args.dask[2],
                                             "sampling": args.sampling})
