"""Training by gradient descent: :func:`fit`, :func:`evaluate` and the :class:`History` they report.

One step of :func:`fit` is::

    logits = model.forward(X_batch, training=True)
    loss, dlogits = loss.value_and_grad(logits, y_batch)   # softmax - target, fused, 1/N folded in
    model.backward(dlogits)                                 # fills model.gradients()
    optimizer.step(model.gradients())                       # updates model.parameters() in place

``batch_size=None`` is full-batch gradient descent, ``batch_size=1`` pure
stochastic gradient descent, anything in between minibatch SGD. The rows are
shuffled at every epoch by a generator derived from ``(seed, epoch)``, so a
run is reproducible and a resumed run sees exactly the batches the
uninterrupted one would have seen.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_float_array, check_scalar
from .losses import Loss, LossSum, get_loss
from .progress import ProgressBar

__all__ = ["fit", "evaluate", "History", "TrainingDivergedError", "make_optimizer", "resolve_loss"]


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the message names epoch, step, learning rate and likely cause."""


@dataclass
class History:
    """Per-epoch record of a :func:`fit` run.

    ``history.records`` is a list with one dict per epoch (``epoch``,
    ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``lr``,
    ``time_s`` and, for a sum of losses, ``train_loss/<term>``);
    ``history["train_loss"]`` is the list of one column.
    """

    records: list = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None
    #: whether fit put back the weights of ``best_epoch`` (False when that epoch predates a resume)
    restored_best: bool = False
    #: the learning rate a named schedule starts from (kept so that a resumed run rebuilds it exactly)
    base_lr: float | None = None

    def __getitem__(self, key: str) -> list:
        return [record.get(key) for record in self.records]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def columns(self) -> list:
        names: list = []
        for record in self.records:
            names.extend(key for key in record if key not in names)
        return names

    def to_dict(self) -> dict:
        return {"records": self.records, "stopped_early": self.stopped_early, "best_epoch": self.best_epoch,
                "base_lr": self.base_lr}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(records=list(data.get("records", [])), stopped_early=bool(data.get("stopped_early", False)),
                   best_epoch=data.get("best_epoch"), base_lr=data.get("base_lr"))


OPTIMIZERS = ("gd", "sgd", "momentum", "nesterov", "adam", "adamw")


def make_optimizer(name, parameters, *, lr=None, momentum=None, weight_decay=0.0):
    """Build an optimiser by name over ``parameters``.

    ``"gd"`` and ``"sgd"``: plain steps (default lr 0.1); ``"momentum"`` and
    ``"nesterov"``: SGD with momentum (default 0.9, lr 0.05); ``"adam"`` /
    ``"adamw"``: default lr 1e-3.
    """
    from . import optim

    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    if name in ("gd", "sgd"):
        return optim.SGD(parameters, lr=0.1 if lr is None else lr, momentum=momentum or 0.0,
                         weight_decay=weight_decay)
    if name in ("momentum", "nesterov"):
        return optim.SGD(parameters, lr=0.05 if lr is None else lr,
                         momentum=0.9 if momentum is None else momentum,
                         nesterov=name == "nesterov", weight_decay=weight_decay)
    cls = optim.Adam if name == "adam" else optim.AdamW
    options = {} if name == "adamw" and weight_decay == 0.0 else {"weight_decay": weight_decay}
    return cls(parameters, lr=1e-3 if lr is None else lr, **options)


def resolve_loss(loss, model) -> Loss | LossSum:
    """A Loss object from ``None`` (the model's default), a name, a Loss, a LossSum or (coefficient, loss) pairs."""
    if loss is None:
        return get_loss(model.default_loss)
    if isinstance(loss, (Loss, LossSum)):
        return loss
    if isinstance(loss, str):
        return get_loss(loss)
    if isinstance(loss, dict):
        return LossSum([(coefficient, name) for name, coefficient in loss.items()])
    if isinstance(loss, (list, tuple)):
        return LossSum(loss)
    raise TypeError(f"loss must be a loss name, a Loss object or (coefficient, loss) pairs, got {loss!r}")


def _is_sigmoid_model(model) -> bool:
    return getattr(model, "default_loss", "") == "sigmoid_binary_cross_entropy"


def _target_for(model, logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shape the target as the loss expects: (N, 1) logits of a one-output sigmoid model take (N,) labels."""
    if _is_sigmoid_model(model) and y.ndim == logits.ndim - 1 and logits.shape[-1] == 1:
        return y.reshape(logits.shape)
    return y


def _correct(model, logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(number of correct predictions, number of predictions) for accuracy."""
    if _is_sigmoid_model(model):
        target = _target_for(model, logits, y)
        # logit >= 0 is probability >= 0.5, the threshold LogisticRegression.predict uses
        return float(np.sum((logits >= 0) == (np.asarray(target) > 0.5))), int(np.size(logits))
    predicted = logits.argmax(axis=-1)
    truth = y.argmax(axis=-1) if y.ndim == logits.ndim else y
    return float(np.count_nonzero(predicted == truth)), int(predicted.size)


def _check_data(X, y, name_x="X", name_y="y"):
    X = as_float_array(X, name_x)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"{name_x} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(
            f"{name_x} and {name_y} must have the same number of rows, got {X.shape[0]} and "
            f"{y.shape[0] if y.ndim else 'a scalar'}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name_x} is empty: fit needs at least one sample")
    if not np.isfinite(X).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise ValueError(f"{name_x} must be finite; found {X[row, column].item()!r} at row {row}, column {column}")
    return X, y


#: last word of the seed of adversarial training's random starts, (seed, epoch, step, ATTACK_STREAM):
#: keeps that stream apart from the shuffling generators seeded with (seed, epoch)
ATTACK_STREAM = 0x0A77AC4

#: bytes of training rows gathered at once into the reused buffer (a multiple of the batch size)
GATHER_BYTES = 8 * 2**20


def _batches(X: np.ndarray, y: np.ndarray, batch_size: int, order: np.ndarray | None):
    """Yield ``(X[rows], y[rows])`` for consecutive slices of ``order`` (None: the rows as they are).

    The rows of several batches (about :data:`GATHER_BYTES`) are gathered in
    one ``np.take`` into buffers allocated once per call, and each batch is a
    contiguous view of them: one copy per chunk instead of a fancy-indexing
    copy into new memory at every step. The views are overwritten by later
    batches, so a batch is valid until the next one is drawn (a training step
    uses it only within the step).
    """
    n_samples = X.shape[0]
    if order is None:  # no shuffling: the batches are views of X itself
        for start in range(0, n_samples, batch_size):
            yield X[start : start + batch_size], y[start : start + batch_size]
        return
    row_bytes = max(1, X[:1].nbytes)
    chunk = min(n_samples, max(1, GATHER_BYTES // (row_bytes * batch_size)) * batch_size)
    x_buffer = np.empty((chunk,) + X.shape[1:], dtype=X.dtype)
    y_buffer = np.empty((chunk,) + y.shape[1:], dtype=y.dtype)
    for chunk_start in range(0, n_samples, chunk):
        rows = order[chunk_start : chunk_start + chunk]
        # mode="clip" (the rows are a permutation, always in range) lets np.take write straight
        # into `out`; the default mode="raise" gathers into a temporary and copies it over
        x_chunk = np.take(X, rows, axis=0, out=x_buffer[: rows.size], mode="clip")
        y_chunk = np.take(y, rows, axis=0, out=y_buffer[: rows.size], mode="clip")
        for start in range(0, rows.size, batch_size):
            yield x_chunk[start : start + batch_size], y_chunk[start : start + batch_size]


def _run_batched(model, X, y, loss, batch_size: int):
    """Evaluation pass: (mean loss, per-term means, correct, counted, logits) without training mode."""
    total = correct = counted = 0.0
    terms: dict = {}
    weight_total = 0
    logits_parts = []
    for start in range(0, X.shape[0], batch_size):
        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        logits = model.forward(xb, training=False)
        target = _target_for(model, logits, yb)
        value = float(loss(logits, target))
        rows = xb.shape[0]
        total += value * rows
        weight_total += rows
        if isinstance(loss, LossSum):
            for name, term in loss.last_terms.items():
                terms[name] = terms.get(name, 0.0) + float(term) * rows
        c, n = _correct(model, logits, yb)
        correct += c
        counted += n
        logits_parts.append(logits)
    terms = {name: value / weight_total for name, value in terms.items()}
    return total / weight_total, terms, correct, counted, np.concatenate(logits_parts)


def fit(
    model,
    X,
    y=None,
    *,
    loss=None,
    optimizer="sgd",
    lr=None,
    momentum=None,
    weight_decay=0.0,
    schedule=None,
    epochs: int = 10,
    batch_size: int | None = 32,
    validation_data=None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    seed: int = 0,
    early_stopping: int | None = None,
    clip_grad_norm: float | None = None,
    adversarial=None,
    adversarial_options: dict | None = None,
    callbacks=(),
    progress="auto",
    history: History | None = None,
    client=None,
) -> History:
    """Train ``model`` on ``(X, y)`` by gradient descent on a cross-entropy loss.

    Data that is not one NumPy array in memory -- a dask array, a
    ``numpy.memmap``, a zarr array, the path of a ``.npy`` file or of a
    directory of chunk files (:func:`crossent.distributed.write_chunks`, with
    ``y=None``) -- or a ``client=`` is trained by
    :func:`crossent.distributed.fit_minibatch` with the same batches (same
    ``seed``, ``batch_size`` and ``shuffle``), block by block or on the dask
    cluster; ``validation_split``, ``early_stopping`` and ``adversarial`` are
    not available there.

    Parameters
    ----------
    model : crossent.nn model
        Anything with ``forward``, ``backward``, ``parameters`` and ``gradients``.
    X : array_like, shape (n_samples, n_features)
    y : array_like
        Class labels (n_samples,) for softmax models; 0/1 targets (n_samples,)
        or (n_samples, n_outputs) for ``LogisticRegression``; or whatever the
        chosen loss takes.
    loss : str, Loss, LossSum, dict or list of (coefficient, loss), optional
        Default: the model's (``"cross_entropy"`` or
        ``"sigmoid_binary_cross_entropy"``). ``{"cross_entropy": 1.0,
        "focal": 0.5}`` or ``CrossEntropyLoss() + 0.5 * FocalLoss()`` is a
        weighted sum whose terms are recorded in the History.
    optimizer : str or optimiser, default "sgd"
        An optimiser built over ``model.parameters()``, or a name for
        :func:`make_optimizer` with ``lr``, ``momentum`` and ``weight_decay``.
    schedule : str or schedule object, optional
        Learning rate per optimiser step (see :mod:`crossent.optim.schedules`);
        a name is built with :func:`crossent.optim.make_schedule` from the
        optimiser's learning rate (kept in ``history.base_lr`` for resuming)
        for ``epochs`` times the steps per epoch of the training rows.
    epochs : int, default 10
        Number of epochs to reach (a resumed ``history`` counts its epochs).
    batch_size : int or None, default 32
        ``None``: full batch (gradient descent); 1: pure SGD; k: minibatches.
    validation_data : (X_val, y_val), optional
    validation_split : float in [0, 1), default 0
        Fraction of the rows held out for validation (a seeded random choice)
        when ``validation_data`` is not given.
    shuffle : bool, default True
        Reshuffle the rows every epoch (generator seeded by ``(seed, epoch)``).
    seed : int, default 0
    early_stopping : int, optional
        Stop after this many epochs without improvement of the validation
        loss (training loss without validation data) and restore the best
        weights (``history.restored_best``); after a resume, the weights of a
        best epoch from before the resume were not kept and cannot be restored.
        Epochs of a model whose ``annealing_finished`` is False (a
        :class:`~crossent.nn.LargeMarginSoftmaxClassifier` whose beta still
        falls, making each epoch's objective harder) are not compared: the
        count starts when it becomes True.
    clip_grad_norm : float, optional
        Rescale the gradients so their global L2 norm is at most this.
    adversarial : {None, "fgsm", "pgd"} or crossent.attacks.AdversarialTraining
        Adversarial training: before its gradient step every minibatch is
        replaced (``ratio=1``) or partly replaced by its attacked version
        (:func:`crossent.attacks.fgsm` / :func:`~crossent.attacks.pgd` at the
        current weights, evaluation mode), the random starts drawn from a
        generator seeded by ``(seed, epoch, step)``. ``train_loss`` and
        ``train_accuracy`` are then those of the batches as trained on. The
        ball and ``clip`` range are in ``X``'s units: for normalised inputs,
        fit a :class:`crossent.attacks.NormalizedModel` on the raw ``X``.
    adversarial_options : dict, optional
        The attack's settings, see :class:`crossent.attacks.AdversarialTraining`:
        ``eps`` (required), ``norm``, ``clip``, ``ratio``, ``loss`` and for
        PGD ``steps``, ``step``, ``random_start``; e.g. ``{"eps": 0.1, "steps": 7}``.
    callbacks : iterable of callables
        ``callback(record, model)`` after every epoch; returning ``False`` stops training.
    progress : bool or "auto", default "auto"
        Progress bar on stderr; "auto" draws only on a terminal.
    history : History, optional
        A History to continue (resuming from a checkpoint): training starts at
        epoch ``len(history)`` and appends to it.
    client : dask.distributed.Client, optional
        Train on this cluster (see above); the current client is used for a dask array.

    Returns
    -------
    History

    Raises
    ------
    TrainingDivergedError
        If a batch loss is NaN or infinite (the weights are left as they were
        before that step).
    """
    from . import optim

    if client is not None or (type(X) is not np.ndarray and _is_out_of_core(X)):
        return _fit_out_of_core(
            model, X, y, client=client, validation_split=validation_split, early_stopping=early_stopping,
            adversarial=adversarial, adversarial_options=adversarial_options, loss=loss, optimizer=optimizer,
            lr=lr, momentum=momentum, weight_decay=weight_decay, schedule=schedule, epochs=epochs,
            batch_size=batch_size, validation_data=validation_data, shuffle=shuffle, seed=seed,
            clip_grad_norm=clip_grad_norm, callbacks=callbacks, progress=progress, history=history)
    if y is None:
        raise ValueError("y is required unless X is a directory of chunk files (crossent.distributed.write_chunks)")
    X, y = _check_data(X, y)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer or None (full batch), got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    validation_split = check_scalar(validation_split, "validation_split", low=0.0, high=1.0,
                                    high_inclusive=False)
    if early_stopping is not None and (
        isinstance(early_stopping, bool) or not isinstance(early_stopping, numbers.Integral) or early_stopping < 1
    ):
        raise ValueError(f"early_stopping must be a positive number of epochs or None, got {early_stopping!r}")
    loss = resolve_loss(loss, model)
    X = X.astype(model.parameters()[0].dtype, copy=False)
    adversary = None
    if adversarial is not None:
        from .attacks import AdversarialTraining

        adversary = AdversarialTraining.from_arguments(adversarial, adversarial_options)
        adversary.check_inputs(X)
    elif adversarial_options:
        raise ValueError("adversarial_options is given but adversarial is None; set adversarial='fgsm' or 'pgd'")

    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val, y_val = _check_data(*validation_data, name_x="validation X", name_y="validation y")
        X_val = X_val.astype(X.dtype, copy=False)
    elif validation_split > 0:
        order = np.random.default_rng([seed, 1]).permutation(X.shape[0])
        n_val = int(round(validation_split * X.shape[0]))
        if n_val < 1 or n_val >= X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} leaves {n_val} validation rows out of {X.shape[0]}"
            )
        X_val, y_val = X[order[:n_val]], y[order[:n_val]]
        X, y = X[order[n_val:]], y[order[n_val:]]
    else:
        X_val = y_val = None

    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum,
                                   weight_decay=weight_decay)
    n_samples = X.shape[0]
    batch = n_samples if batch_size is None else min(batch_size, n_samples)
    steps_per_epoch = math.ceil(n_samples / batch)
    history = History() if history is None else history
    start_epoch = len(history)
    if isinstance(schedule, str):
        if history.base_lr is None:
            history.base_lr = float(optimizer.lr)
        schedule = optim.make_schedule(schedule, history.base_lr, epochs * steps_per_epoch)
    parameters, gradients = model.parameters(), model.gradients()
    bar = ProgressBar(epochs, steps_per_epoch, enabled=progress)
    monitor = "val_loss" if X_val is not None else "train_loss"
    best_value, best_parameters, waited = math.inf, None, 0
    if early_stopping is not None and history.best_epoch is not None:
        # resuming: the best epoch's weights were not saved, only its score; beating it is required
        best_value = history.records[history.best_epoch][monitor]
        waited = len(history) - 1 - history.best_epoch

    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        bar.start_epoch(epoch)
        full_batch = batch >= n_samples  # the order of rows cannot change a full-batch gradient
        if shuffle and not full_batch:
            order = np.random.default_rng([seed, epoch]).permutation(n_samples)
        else:
            order = None
        loss_sum = correct = counted = 0.0
        term_sums: dict = {}
        seen = 0
        for step, (xb, yb) in enumerate(_batches(X, y, batch, order)):
            global_step = epoch * steps_per_epoch + step
            if schedule is not None:
                optimizer.lr = schedule.lr_at(global_step)
            if adversary is not None:
                xb = adversary.perturb(model, xb, yb, loss, np.random.default_rng([seed, epoch, step, ATTACK_STREAM]))
            # overflow on the way to a non-finite loss is reported once, clearly, just below
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                logits = model.forward(xb, training=True)
                value, grad = loss.value_and_grad(logits, _target_for(model, logits, yb))
            value = float(value)
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"the training loss became {value} at epoch {epoch + 1}, step {step + 1} "
                    f"(learning rate {optimizer.lr:g}); the learning rate is probably too high for "
                    f"this model and data -- try a smaller --lr, gradient clipping, or normalised inputs"
                )
            model.backward(grad, need_input_grad=False)
            if clip_grad_norm is not None:
                optim.clip_grad_norm(gradients, clip_grad_norm)
            optimizer.step(gradients)
            rows_in_batch = xb.shape[0]
            loss_sum += value * rows_in_batch
            if isinstance(loss, LossSum):
                for name, term in loss.last_terms.items():
                    term_sums[name] = term_sums.get(name, 0.0) + float(term) * rows_in_batch
            c, n = _correct(model, logits, yb)
            correct += c
            counted += n
            seen += rows_in_batch
            if bar.enabled:
                bar.update(step + 1, seen, loss_sum / seen, correct / counted)

        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / n_samples,
            "train_accuracy": correct / counted,
            "lr": float(optimizer.lr),
        }
        for name, total in term_sums.items():
            record[f"train_loss/{name}"] = total / n_samples
        if X_val is not None:
            val_loss, val_terms, val_correct, val_counted, _ = _run_batched(model, X_val, y_val, loss, 4096)
            record["val_loss"] = val_loss
            record["val_accuracy"] = val_correct / val_counted
            for name, value in val_terms.items():
                record[f"val_loss/{name}"] = value
        record["time_s"] = time.perf_counter() - started
        history.records.append(record)
        summary = f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f}, accuracy {100 * record['train_accuracy']:.2f}%"
        if X_val is not None:
            summary += f", val loss {record['val_loss']:.4f}, val accuracy {100 * record['val_accuracy']:.2f}%"
        bar.end_epoch(summary + f" ({record['time_s']:.2f} s)")

        stop = False
        if early_stopping is not None and not getattr(model, "annealing_finished", True):
            # an annealed objective (L-Softmax's beta) is harder every step: its epochs are not comparable yet
            best_value, best_parameters, waited, history.best_epoch = math.inf, None, 0, None
        elif early_stopping is not None:
            if record[monitor] < best_value:
                best_value, waited = record[monitor], 0
                best_parameters = [p.copy() for p in parameters]
                history.best_epoch = len(history.records) - 1
            else:
                waited += 1
                stop = waited >= early_stopping
        for callback in callbacks:
            if callback(record, model) is False:
                stop = True
        if stop:
            history.stopped_early = True
            break
    history.restored_best = False
    if early_stopping is not None and best_parameters is not None:
        for parameter, best in zip(parameters, best_parameters):
            parameter[...] = best
        history.restored_best = True
    return history


def _is_out_of_core(X) -> bool:
    """Whether X is data that :mod:`crossent.distributed` reads block by block (not an in-memory array)."""
    if isinstance(X, (np.memmap, str, os.PathLike)):
        return True
    module = type(X).__module__
    return (module.startswith("dask.array") and hasattr(X, "chunks")) or (
        module.startswith("zarr") and hasattr(X, "oindex"))


def _fit_out_of_core(model, X, y, *, client, validation_split, early_stopping, adversarial, adversarial_options,
                     **options) -> History:
    """:func:`fit` on data outside memory or on a cluster: :func:`crossent.distributed.fit_minibatch`."""
    from .distributed import fit_minibatch

    if client is not None:
        where = "client= is given"
    elif isinstance(X, (str, os.PathLike)):
        where = f"X is the path {str(X)!r}"
    elif isinstance(X, np.memmap):
        where = "X is a numpy.memmap"
    else:
        where = f"X is a {type(X).__module__.split('.')[0]} array"
    for name, value, hint in (
            ("validation_split", validation_split, "pass validation_data=(X_val, y_val)"),
            ("early_stopping", early_stopping, "use a callback that returns False to stop"),
            ("adversarial", adversarial, "adversarial training needs the rows in memory"),
            ("adversarial_options", adversarial_options, "adversarial training needs the rows in memory")):
        if value:
            raise ValueError(f"{name}={value!r} is not supported when {where} (training goes through "
                             f"crossent.distributed.fit_minibatch); {hint}")
    return fit_minibatch(model, X, y, client=client, **options)


def evaluate(model, X, y, *, loss=None, batch_size: int = 4096) -> dict:
    """Accuracy, loss (nats and bits), perplexity and per-class statistics of ``model`` on ``(X, y)``.

    Returns
    -------
    dict
        ``accuracy``, ``loss`` (mean, in nats), ``loss_bits`` (``loss / ln 2``),
        ``perplexity`` (``exp(loss)``), ``n_samples``, and for classifiers
        ``precision``, ``recall`` (per class, lists; NaN for a class never
        predicted / never present) and ``confusion_matrix`` (rows: true class,
        columns: predicted class).
    """
    X, y = _check_data(X, y)
    X = X.astype(model.parameters()[0].dtype, copy=False)
    loss = resolve_loss(loss, model)
    mean_loss, terms, correct, counted, logits = _run_batched(model, X, y, loss, batch_size)
    result = {
        "n_samples": int(X.shape[0]),
        "accuracy": correct / counted,
        "loss": mean_loss,
        "loss_bits": mean_loss / math.log(2),
        "perplexity": math.exp(mean_loss) if mean_loss < 700 else math.inf,
    }
    if terms:
        result["loss_terms"] = terms
    if _is_sigmoid_model(model):
        predicted = (logits >= 0).astype(np.int64)
        truth = (np.asarray(_target_for(model, logits, y)) > 0.5).astype(np.int64)
        if predicted.shape[-1] == 1:  # binary: a 2 x 2 confusion matrix
            predicted, truth, n_classes = predicted.reshape(-1), truth.reshape(-1), 2
        else:  # multi-label: per-label precision and recall only
            true_positive = np.sum(predicted & truth, axis=0)
            result["precision"] = _ratio(true_positive, predicted.sum(axis=0))
            result["recall"] = _ratio(true_positive, truth.sum(axis=0))
            result["confusion_matrix"] = None
            return result
    else:
        n_classes = logits.shape[-1]
        predicted = np.argmax(logits, axis=-1)
        truth = np.argmax(y, axis=-1) if y.ndim == logits.ndim else y.astype(np.int64)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    diagonal = np.diag(confusion)
    result["precision"] = _ratio(diagonal, confusion.sum(axis=0))
    result["recall"] = _ratio(diagonal, confusion.sum(axis=1))
    result["confusion_matrix"] = confusion.tolist()
    return result


def _ratio(numerator, denominator) -> list:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan).tolist()
