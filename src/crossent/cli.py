"""The ``crossent`` command line (also ``python -m crossent``).

``crossent train``      train a classifier by gradient descent and report it
``crossent evaluate``   a saved model on a data set's test split
``crossent predict``    classes and probabilities for new inputs
``crossent info``       what a saved model file holds
``crossent demo``       softmax, loss and gradient of one example (cat/dog/bird)
``crossent losses``     the losses the library provides
``crossent plot``       training history, loss surface, animation, curves, confusion, weights
``crossent experiment`` reproduce a claim from the literature and check it
``crossent bench``      the fused kernels next to naive NumPy, PyTorch and the machine's limits
``crossent export``     a saved model as an ONNX file
``crossent attack``     clean vs robust accuracy of a saved model under FGSM / PGD

Every user error (a wrong argument, a missing file, a model that does not fit
the data) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__

if TYPE_CHECKING:
    from .losses import Loss, LossSum


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------------------------------------
# Loss names users bring from Keras and PyTorch: (crossent loss, target form)
# target form: "labels" (class indices), "one-hot" (probability rows), "binary" (0/1 per output)

LOSS_ALIASES = {
    "categorical_crossentropy": ("cross_entropy", "one-hot"),
    "CategoricalCrossentropy": ("cross_entropy", "one-hot"),
    "sparse_categorical_crossentropy": ("cross_entropy", "labels"),
    "SparseCategoricalCrossentropy": ("cross_entropy", "labels"),
    "binary_crossentropy": ("sigmoid_binary_cross_entropy", "binary"),
    "BinaryCrossentropy": ("sigmoid_binary_cross_entropy", "binary"),
    "categorical_focal_crossentropy": ("focal", "labels"),
    "CategoricalFocalCrossentropy": ("focal", "labels"),
    "binary_focal_crossentropy": ("sigmoid_focal", "binary"),
    "BinaryFocalCrossentropy": ("sigmoid_focal", "binary"),
    "mean_squared_error": ("mse", "labels"),
    "CrossEntropyLoss": ("cross_entropy", "labels"),
    # PyTorch's NLLLoss follows a LogSoftmax layer; on logits that pair is exactly cross-entropy
    "NLLLoss": ("cross_entropy", "labels"),
    "BCEWithLogitsLoss": ("sigmoid_binary_cross_entropy", "binary"),
    # PyTorch's BCELoss follows a Sigmoid layer; on logits that pair is BCE-with-logits, computed stably
    "BCELoss": ("sigmoid_binary_cross_entropy", "binary"),
    "MSELoss": ("mse", "labels"),
}

# command-line option -> loss keyword, for the options common enough to have their own flag
LOSS_FLAGS = {
    "label_smoothing": "label_smoothing",
    "z_loss": "z_loss",
    "gamma": "gamma",
    "q": "q",
    "poly_epsilon": "epsilon",
}


def resolve_cli_loss(name: str, options: dict, model_kind: str):
    """(Loss object, target form) for a --loss name and its options; UsageError when they do not fit."""
    from .losses import LOSSES, get_loss

    loss_name, target_form = LOSS_ALIASES.get(name, (name, None))
    if loss_name not in LOSSES:
        known = sorted(set(LOSSES) | set(LOSS_ALIASES))
        raise UsageError(f"--loss {name!r} is not a known loss; choose from {', '.join(known)}")
    loss_class = LOSSES[loss_name]
    parameters = inspect.signature(loss_class.function).parameters
    first = next(iter(parameters))
    if first != "logits":
        raise UsageError(
            f"--loss {name!r} takes {first}, not logits: it cannot train a model (try cross_entropy)"
        )
    binary = loss_name in ("sigmoid_binary_cross_entropy", "sigmoid_focal")
    if target_form is None:
        target_form = "binary" if binary else "labels"
    if binary != (model_kind == "logistic"):
        wanted = "--model logistic" if binary else "--model softmax or --model mlp"
        raise UsageError(f"--loss {name!r} needs {wanted} (got --model {model_kind})")
    for key in options:
        if key not in parameters or parameters[key].kind is not inspect.Parameter.KEYWORD_ONLY:
            raise UsageError(f"--loss {name!r} has no option {key!r}")
    try:
        loss = get_loss(loss_name, **options)
        if any(p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.KEYWORD_ONLY
               for p in parameters.values()) and not all(
                   k in options for k, p in parameters.items()
                   if p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.KEYWORD_ONLY):
            raise UsageError(f"--loss {name!r} needs options the command line cannot give (use the library)")
    except TypeError as error:
        raise UsageError(str(error)) from None
    return loss, target_form


def _loss_options(args) -> dict:
    options = {}
    for flag, keyword in LOSS_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            options[keyword] = value
    for item in args.loss_option or []:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise UsageError(f"--loss-option takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def _hidden_sizes(text: str) -> list:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--hidden takes layer sizes like 800 or 800,300, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden takes positive layer sizes like 800 or 800,300, got {text!r}")
    return sizes


def _batch_size(text: str):
    if text in ("full", "none", "None"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}")
    return value


def _targets(y: np.ndarray, form: str, n_classes: int) -> np.ndarray:
    if form == "one-hot":
        return np.eye(n_classes, dtype=np.float32)[y]
    if form == "binary":
        return y.astype(np.float32)
    return y


def _load_data(args):
    from .datasets import load_dataset

    target = getattr(args, "target", None)
    if target is not None and target.isdigit():
        target = int(target)
    return load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download, target=target)


def _build_model(args, n_features: int, n_classes: int):
    from . import nn

    if args.model == "softmax":
        return nn.SoftmaxRegression(n_features, n_classes, seed=args.seed)
    if args.model == "logistic":
        if n_classes != 2:
            raise UsageError(
                f"--model logistic is a binary classifier but the data set has {n_classes} classes; "
                f"use --model softmax (multinomial logistic regression)"
            )
        return nn.LogisticRegression(n_features, 1, seed=args.seed)
    return nn.MLP(n_features, _hidden_sizes(args.hidden), n_classes, activation=args.activation,
                  dropout=args.dropout, seed=args.seed)


def _margin(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer margin >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer margin >= 1, got {text!r}")
    return value


def _build_margin_model(args, n_features: int, n_classes: int, n_rows: int):
    """L-Softmax classifier for --margin; beta falls from 1000 to its floor 1 over about the first half of the run."""
    from . import nn

    if args.model == "logistic":
        raise UsageError("--margin needs --model softmax or mlp: L-Softmax is a multi-class loss")
    if args.loss or _loss_options(args):
        raise UsageError("--margin trains with the large-margin softmax loss; it cannot be combined with --loss "
                         "or loss options")
    rows = max(1, round(n_rows * (1 - args.validation_split)))
    steps = args.epochs * math.ceil(rows / (rows if args.batch_size is None else min(args.batch_size, rows)))
    # (1 + gamma t)^-35 = 1/1000 at t = steps / 2, with the reference recipe's beta_start 1000 and power 35;
    # the floor 1 keeps half of the plain logit: without it (pure L-Softmax) a network trained from scratch
    # without batch normalisation can shrink its features towards 0 (an MLP on digits with margin 4: ~47 %)
    gamma = (1000.0 ** (1 / 35) - 1) / max(1.0, steps / 2)
    hidden = _hidden_sizes(args.hidden) if args.model == "mlp" else []
    return nn.LargeMarginSoftmaxClassifier(
        n_features, n_classes, margin=args.margin, hidden_sizes=hidden, activation=args.activation,
        dropout=args.dropout, beta_start=1000.0, beta_gamma=gamma, beta_power=35.0, beta_min=1.0, seed=args.seed,
    )


def _print(args, text: str = "") -> None:
    if not args.quiet:
        print(text)


#: the settings of a training run; a resumed run keeps all of them
RUN_SETTINGS = ("model", "hidden", "activation", "dropout", "loss", "label_smoothing", "z_loss", "gamma", "q",
                "poly_epsilon", "loss_option", "optimizer", "lr", "momentum", "weight_decay", "schedule",
                "clip_grad_norm", "batch_size", "validation_split", "early_stopping", "normalize", "seed",
                "adversarial", "adv_eps", "adv_norm", "adv_steps", "adv_step", "adv_ratio", "margin")
MLP_SETTINGS = ("hidden", "activation", "dropout")


def _given_settings(args) -> list:
    """The run settings the user set to something other than their defaults."""
    defaults = build_parser().parse_args(["train"])
    return [key for key in RUN_SETTINGS if getattr(args, key) != getattr(defaults, key)]


def _check_output_path(path, option: str) -> None:
    """Fail before training, not after, when an output file cannot be written."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: directory {parent} does not exist")


def _train(args) -> int:
    from . import evaluate, fit, load_checkpoint, save
    from .datasets import Normalizer
    from ._attack_cli import adversarial_training, describe_training
    from .attacks import NormalizedModel
    from .train import History, make_optimizer, resolve_loss
    from . import _dask_cli

    if _dask_cli.wanted(args):  # --dask or a chunk directory: crossent.distributed trains
        return _dask_cli.train(args)
    _check_output_path(args.save, "--save")
    _check_output_path(args.metrics_out, "--metrics-out")
    given = _given_settings(args)
    if args.model != "mlp" and not args.resume:
        stray = [key for key in MLP_SETTINGS if key in given]
        if stray:
            raise UsageError(f"--{stray[0]} applies to --model mlp only (got --model {args.model})")
    X_train, y_train, X_test, y_test, info = _load_data(args)
    n_features, n_classes = info["n_features"], info["n_classes"]
    history = checkpoint = None
    loss: str | Loss | LossSum | None  # a name, an object or (saved without one) None until resolved below
    if args.resume:
        if given:
            raise UsageError(
                f"--resume continues the saved run with its own settings; --{given[0].replace('_', '-')} "
                f"cannot change it (train a new model to change settings)"
            )
        checkpoint = load_checkpoint(args.resume)
        model = checkpoint.model
        _check_compatible(model, info, args.resume)
        for key, value in checkpoint.extra.get("cli", {}).items():
            setattr(args, key, value)
        history = History.from_dict(checkpoint.training.get("history", {}))
        if args.epochs <= len(history):
            raise UsageError(
                f"--epochs is the total number of epochs; {args.resume} has trained {len(history)} already, "
                f"so ask for more than {len(history)}"
            )
        normalizer = Normalizer.from_state(checkpoint.metadata["normalizer"])
        loss, target_form = checkpoint.loss(), checkpoint.extra.get("target_form", "labels")
        if args.margin is not None:  # the L-Softmax loss is bound to the model's output layer
            loss = model.default_loss
    elif args.margin is not None:
        model = _build_margin_model(args, n_features, n_classes, len(X_train))
        normalizer = Normalizer(args.normalize).fit(X_train)
        loss, target_form = model.default_loss, "labels"
    else:
        model = _build_model(args, n_features, n_classes)
        normalizer = Normalizer(args.normalize).fit(X_train)
        loss, target_form = resolve_cli_loss(args.loss or model.default_loss, _loss_options(args), args.model)
    # a model file saved without its loss resumes with the model's default: one Loss object from here on
    loss = resolve_loss(loss, model)
    adversarial = adversarial_training(args, info)
    raw_X_train = X_train if adversarial else None  # attacked in the units of eps and the clip range
    X_train, X_test = normalizer.transform(X_train), normalizer.transform(X_test)
    optimizer = make_optimizer(args.optimizer, model.parameters(), lr=args.lr, momentum=args.momentum,
                               weight_decay=args.weight_decay)
    if checkpoint is not None and checkpoint.optimizer_state is not None:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    validation_split = args.validation_split
    if args.early_stopping and validation_split == 0:
        validation_split = 0.1

    _print(args, f"crossent {__version__}: training {type(model).__name__} "
                 f"({model.n_parameters:,} parameters) on {info['name']} "
                 f"({len(X_train):,} train / {len(X_test):,} test, {n_features} features, {n_classes} classes)")
    _print(args, f"loss {loss!r}, optimizer {args.optimizer} (lr {optimizer.lr:g}), "
                 f"batch size {args.batch_size or 'full'}, {args.epochs} epochs, seed {args.seed}")
    if adversarial:
        _print(args, describe_training(adversarial))
    started = time.perf_counter()
    history = fit(
        NormalizedModel(model, normalizer) if adversarial else model, raw_X_train if adversarial else X_train,
        _targets(y_train, target_form, n_classes), loss=loss, optimizer=optimizer, adversarial=adversarial,
        schedule=None if args.schedule == "constant" else args.schedule, epochs=args.epochs, batch_size=args.batch_size, validation_split=validation_split,
        seed=args.seed, early_stopping=args.early_stopping, clip_grad_norm=args.clip_grad_norm,
        progress=False if args.quiet else "auto", history=history,
    )
    train_time = time.perf_counter() - started
    report = evaluate(model, X_test, _targets(y_test, target_form, n_classes), loss=loss)
    return _finish_training(args, model=model, optimizer=optimizer, loss=loss, normalizer=normalizer,
                            history=history, report=report, train_time=train_time, info=info,
                            target_form=target_form, X_test=X_test, y_test=y_test)


def _finish_training(args, *, model, optimizer, loss, normalizer, history, report, train_time: float, info,
                     target_form: str, X_test=None, y_test=None, extra_arguments: dict | None = None) -> int:
    """What every ``crossent train`` run ends with: the epoch table and test summary, then --save, --plots,
    --report and --metrics-out (``extra_arguments`` join the run settings in the metrics file)."""
    from . import save
    from ._io import atomic_output

    _print(args)
    _print(args, f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}" + (
        f"  {'val loss':>9}  {'val acc':>8}" if "val_loss" in history.columns else "") + f"  {'lr':>9}  {'time':>7}")
    for record in history.records:
        line = f"{record['epoch']:>5}  {record['train_loss']:>10.4f}  {100 * record['train_accuracy']:>8.2f}%"
        if "val_loss" in record:
            line += f"  {record['val_loss']:>9.4f}  {100 * record['val_accuracy']:>7.2f}%"
        _print(args, line + f"  {record['lr']:>9.3g}  {record['time_s']:>6.2f}s")
    if history.stopped_early and history.restored_best:
        _print(args, f"stopped early; restored the weights of epoch {(history.best_epoch or 0) + 1}")
    elif history.stopped_early:
        _print(args, f"stopped early; the best epoch ({(history.best_epoch or 0) + 1}) predates the resume, "
                     f"so the last weights are kept")
    _print(args)
    _print(args, f"test accuracy {100 * report['accuracy']:.2f}%  |  test loss {report['loss']:.4f} nats "
                 f"({report['loss_bits']:.4f} bits, perplexity {report['perplexity']:.3f})  |  "
                 f"trained in {train_time:.2f} s")

    cli_state = {key: getattr(args, key) for key in RUN_SETTINGS}
    if args.save:
        save(model, args.save, optimizer=optimizer, loss=loss, class_names=info["class_names"],
             normalizer=normalizer, training={"history": history.to_dict(), "dataset": info["name"]},
             extra={"cli": cli_state, "image_shape": info.get("image_shape"), "target_form": target_form})
        _print(args, f"saved to {args.save}")
    if args.plots:
        written = _write_figures(args.plots, model=model, history=history, report=report, X_test=X_test,
                                 y_test=y_test, info=info)
        _print(args, f"figures written to {args.plots}: {', '.join(p.name for p in written)}")
    if args.report:
        from .report import write_report

        page = write_report(args.report, model=model, history=history, evaluation=report,
                            config={"dataset": info["name"], **cli_state, "epochs": len(history)},
                            X_test=X_test if info.get("image_shape") else None, y_test=y_test,
                            image_shape=info.get("image_shape"), class_names=info["class_names"])
        _print(args, f"report written to {page}")
    if args.metrics_out:
        metrics = {
            "dataset": info["name"], "model": args.model, "model_config": model.config(),
            "loss": loss.config(), "epochs": len(history), "train_time_s": train_time,
            "test_accuracy": report["accuracy"], "test_loss": report["loss"],
            "test_loss_bits": report["loss_bits"], "test_perplexity": report["perplexity"],
            "confusion_matrix": report["confusion_matrix"], "history": history.to_dict()["records"],
            "arguments": {**cli_state, **(extra_arguments or {})},
        }
        with atomic_output(args.metrics_out) as file:
            file.write(json.dumps(metrics, indent=1).encode())
        _print(args, f"metrics written to {args.metrics_out}")
    return 0


def _write_figures(directory, *, model, history, report, X_test, y_test, info) -> list:
    """The pictures of a training run in ``directory``: curves, confusion, and for images templates and mistakes."""
    from . import nn, plots

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "history.png", directory / "confusion.png"]
    plots.plot_history(history, path=written[0])
    if report.get("confusion_matrix") is not None:
        plots.plot_confusion_matrix(report["confusion_matrix"], info["class_names"], path=written[1])
    else:
        written.pop()
    image_shape = info.get("image_shape")
    if image_shape is not None and not isinstance(model, nn.LogisticRegression):
        if isinstance(model, nn.SoftmaxRegression):
            written.append(directory / "weights.png")
            plots.plot_weight_templates(model, image_shape=image_shape, class_names=info["class_names"],
                                        path=written[-1])
        written.append(directory / "mistakes.png")
        plots.plot_misclassified(model, X_test, y_test, image_shape=image_shape, class_names=info["class_names"],
                                 path=written[-1])
    return written


def _evaluate(args) -> int:
    from . import evaluate, load_checkpoint
    from .datasets import Normalizer

    checkpoint = load_checkpoint(args.model_file)
    model = checkpoint.model
    X_train, y_train, X_test, y_test, info = _load_data(args)
    _check_compatible(model, info, args.model_file)
    if checkpoint.metadata.get("normalizer"):
        X_test = Normalizer.from_state(checkpoint.metadata["normalizer"]).transform(X_test)
    target_form = checkpoint.extra.get("target_form", "labels")
    loss = checkpoint.loss()
    report = evaluate(model, X_test, _targets(y_test, target_form, info["n_classes"]), loss=loss)
    names = checkpoint.class_names or info["class_names"]
    print(f"{type(model).__name__} from {args.model_file} on {info['name']} test split ({report['n_samples']:,} rows)")
    print(f"accuracy {100 * report['accuracy']:.2f}%  loss {report['loss']:.4f} nats "
          f"({report['loss_bits']:.4f} bits, perplexity {report['perplexity']:.3f})")
    if report.get("confusion_matrix") is not None:
        width = max(5, max(len(str(n)) for n in names))
        print()
        print(f"{'class':<{width}}  {'precision':>9}  {'recall':>7}")
        for name, precision, recall in zip(names, report["precision"], report["recall"]):
            print(f"{str(name):<{width}}  {precision:>9.3f}  {recall:>7.3f}")
        print()
        print("confusion matrix (rows: true class, columns: predicted)")
        for row in report["confusion_matrix"]:
            print(" ".join(f"{value:>5d}" for value in row))
    return 0


def _check_compatible(model, info, model_file) -> None:
    config = model.config()
    n_features = config.get("n_features")
    if n_features is not None and n_features != info["n_features"]:
        raise UsageError(
            f"{model_file} takes {n_features} features but {info['name']} has {info['n_features']}: "
            f"the model was trained on another data set"
        )
    n_classes = config.get("n_classes", 2 if config.get("n_outputs") == 1 else config.get("n_outputs"))
    if n_classes is not None and n_classes != info["n_classes"]:
        raise UsageError(
            f"{model_file} predicts {n_classes} classes but {info['name']} has {info['n_classes']}: "
            f"the model was trained on another data set"
        )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
#: the largest raw pixel value of each image data set, to scale integer inputs as the loader does
RAW_PIXEL_MAX = {"digits": 16.0, "mnist": 255.0, "fashion-mnist": 255.0}


def _read_inputs(path: Path, n_features: int, image_shape, raw_max: float) -> np.ndarray:
    """Rows of features from .npz (X), .csv, an IDX file or an image, scaled like the training data."""
    from .datasets import read_idx

    if not path.is_file():
        raise FileNotFoundError(f"no input file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        try:
            from PIL import Image
        except ImportError:
            raise UsageError("reading images needs Pillow (pip install pillow)") from None
        if image_shape is None:
            raise UsageError("this model was not trained on images; give .npz or .csv input")
        try:
            image = Image.open(path)
        except OSError:
            raise UsageError(f"{path} is not an image file Pillow can read") from None
        with image:
            pixels = np.asarray(image.convert("L").resize(tuple(image_shape[::-1])), dtype=np.float32)
        return pixels.reshape(1, -1) / 255.0
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                key = "X" if "X" in data.files else "X_test" if "X_test" in data.files else data.files[0]
                X = data[key]
        except (ValueError, OSError, IndexError):
            raise UsageError(f"{path} is not a NumPy .npz archive holding an array X") from None
    elif suffix == ".csv":
        if not path.read_text().strip():
            raise UsageError(f"{path} holds no rows to predict")
        try:
            X = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float32)
        except ValueError as error:
            raise UsageError(f"{path} is not a CSV file of numbers ({error})") from None
    else:
        X = read_idx(path)
    X = np.asarray(X)
    if X.size == 0:
        raise UsageError(f"{path} holds no rows to predict")
    X = X.reshape(1, -1) if X.ndim <= 1 or X.size == n_features else X.reshape(len(X), -1)
    if X.shape[1] != n_features:
        raise UsageError(f"{path} has {X.shape[1]} features per row but the model takes {n_features}")
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        raise UsageError(f"{path} holds {X[row, column]} at row {row}, column {column}; inputs must be finite")
    # image models were trained on pixels scaled to [0, 1]: values above 1 are raw pixels
    return X / raw_max if image_shape is not None and X.max() > 1.0 else X


def _predict(args) -> int:
    from . import load_checkpoint
    from .datasets import Normalizer

    checkpoint = load_checkpoint(args.model_file)
    model = checkpoint.model
    image_shape = checkpoint.extra.get("image_shape")
    dataset = checkpoint.training.get("dataset")
    X = _read_inputs(Path(args.input), int(model.config()["n_features"]), image_shape,
                     RAW_PIXEL_MAX.get(dataset or "", 1.0))
    if checkpoint.metadata.get("normalizer"):
        X = Normalizer.from_state(checkpoint.metadata["normalizer"]).transform(X)
    probabilities = model.predict_proba(X)
    names = checkpoint.class_names or [str(i) for i in range(probabilities.shape[-1])]
    if probabilities.ndim == 1:  # binary logistic: probability of class 1, class 1 from 0.5 on
        predicted = (probabilities >= 0.5).astype(np.int64)
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    else:
        predicted = np.argmax(probabilities, axis=1)
    shown = len(X) if args.all else min(len(X), 20)
    print(f"{'row':>5}  {'class':<12}  {'probability':>11}")
    for row in range(shown):
        print(f"{row:>5}  {str(names[predicted[row]]):<12}  {probabilities[row, predicted[row]]:>11.4f}")
    if shown < len(X):
        print(f"... {len(X) - shown} more rows (use --all, or --output FILE.csv)")
    if args.output:
        from ._io import atomic_output

        lines = ["row,class," + ",".join(f"p_{name}" for name in names)]
        for row in range(len(X)):
            lines.append(f"{row},{names[predicted[row]]}," + ",".join(f"{p:.6g}" for p in probabilities[row]))
        with atomic_output(args.output) as file:
            file.write(("\n".join(lines) + "\n").encode())
        print(f"predictions written to {args.output}")
    return 0


def _info(args) -> int:
    from . import load_checkpoint

    checkpoint = load_checkpoint(args.model_file)
    model, metadata = checkpoint.model, checkpoint.metadata
    print(f"file           {args.model_file}")
    print(f"format         {metadata['format']} version {metadata['format_version']} "
          f"(written by crossent {metadata.get('crossent_version')})")
    print(f"model          {json.dumps(model.config())}")
    print(f"parameters     {model.n_parameters:,} in " + ", ".join(
        f"{name} {tuple(p.shape)}" for name, p in zip(model.parameter_names(), model.parameters())))
    if metadata.get("loss"):
        print(f"loss           {checkpoint.loss()!r}")
    if metadata.get("class_names"):
        print(f"classes        {', '.join(metadata['class_names'])}")
    if metadata.get("optimizer"):
        print(f"optimizer      {metadata['optimizer']['class']} (state saved: training can resume)")
    history = checkpoint.training.get("history", {}).get("records", [])
    if history:
        last = history[-1]
        print(f"trained        {len(history)} epochs on {checkpoint.training.get('dataset', '?')}; "
              f"last train loss {last['train_loss']:.4f}, accuracy {100 * last['train_accuracy']:.2f}%")
    return 0


def _demo(args) -> int:
    from .functional import softmax
    from .losses import LOSSES, get_loss

    logits = np.asarray(args.logits, dtype=np.float64)
    classes = args.classes or [f"class {i}" for i in range(logits.size)]
    if len(classes) != logits.size:
        raise UsageError(f"--classes names {len(classes)} classes but --logits has {logits.size} values")
    if args.target in classes:
        label = classes.index(args.target)
    else:
        try:
            label = int(args.target)
        except ValueError:
            raise UsageError(
                f"--target {args.target!r} is neither one of {', '.join(classes)} nor a class number"
            ) from None
        if not 0 <= label < logits.size:
            raise UsageError(f"--target {label} is out of range [0, {logits.size - 1}]")
    choices = _demo_losses(LOSSES)
    if args.loss not in choices:
        raise UsageError(
            f"--loss {args.loss!r} is not a loss on logits and class labels; choose from {', '.join(choices)}"
        )
    loss = get_loss(args.loss)
    value, grad = loss.value_and_grad(logits[None, :], np.array([label]))
    probs = softmax(logits)
    width = max(len(name) for name in classes)
    print(f"logits z = {', '.join(f'{v:g}' for v in logits)}; true class: {classes[label]}")
    print()
    print(f"  {'class':<{width}}  {'logit':>8}  {'softmax p':>9}  {'target y':>8}  {'dL/dz':>9}")
    for i, name in enumerate(classes):
        print(f"  {name:<{width}}  {logits[i]:>8.4g}  {probs[i]:>9.4f}  {int(i == label):>8d}  {grad[0, i]:>+9.4f}")
    print()
    if args.loss in ("cross_entropy", "softmax_cross_entropy"):
        print(f"{args.loss} loss: {float(value):.4f} nats = {float(value) / math.log(2):.4f} bits")
        print(f"  = -log p[{classes[label]}] = -log {probs[label]:.4f}")
        print("  dL/dz = softmax(z) - onehot(y): the gradient pushes the true class up, the rest down")
    else:
        print(f"{args.loss} loss: {float(value):.4f}")
    return 0


def _demo_losses(registry) -> list:
    """Names of the losses that take logits and class labels and need no extra option."""
    example_logits, example_label = np.array([[1.0, 2.0, 0.5]]), np.array([1])
    names = []
    for name, cls in registry.items():
        if next(iter(inspect.signature(cls.function).parameters)) != "logits":
            continue
        try:
            cls()(example_logits, example_label)
        except (TypeError, ValueError):
            continue  # needs other targets (binary losses) or a required option (sim_loss)
        names.append(name)
    return sorted(names)


TOY_SETS = ("moons", "blobs", "spirals")


def _toy_model(args):
    from . import nn
    from .datasets import make_blobs, make_moons, make_spirals

    name = args.dataset or "moons"
    if name not in TOY_SETS:
        raise UsageError(f"--dataset for {args.kind} must be one of {', '.join(TOY_SETS)}, got {name!r}")
    X, y = {"moons": make_moons, "blobs": make_blobs, "spirals": make_spirals}[name](seed=args.seed)
    model = nn.MLP(2, _hidden_sizes(args.hidden), int(y.max()) + 1, seed=args.seed)
    return X, y, model


def _plot(args) -> int:
    from . import evaluate, fit, load_checkpoint, plots
    from .datasets import Normalizer
    from .train import History, make_optimizer

    out = args.out or f"crossent-{args.kind}.{'gif' if args.kind == 'animate' else 'png'}"
    _check_output_path(out, "--out")
    needs_model = args.kind in ("history", "confusion", "weights")
    if needs_model and not args.model_file:
        raise UsageError(f"plot {args.kind} needs a saved model: crossent plot {args.kind} MODEL")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be a positive integer, got {args.epochs}")
    if args.kind == "curve":
        plots.plot_cross_entropy_curve(path=out)
    elif args.kind == "softmax":
        plots.plot_softmax_bars(path=out)
    elif args.kind in ("surface", "animate"):
        X, y, model = _toy_model(args)
        if args.kind == "surface":
            fit(model, X, y, optimizer="adam", lr=0.01, epochs=args.epochs or 200, batch_size=32, seed=args.seed,
                progress=False)
            plots.plot_decision_surface(model, X, y, path=out)
        else:
            optimizer = make_optimizer("adam", model.parameters(), lr=0.02)
            animation = plots.animate_training(model, X, y, optimizer=optimizer, epochs=args.epochs or 3,
                                               batch_size=32, seed=args.seed, path=out)
            print(f"{animation.n_frames} frames, final batch loss {animation.losses[-1]:.4f}")
    else:
        checkpoint = load_checkpoint(args.model_file)
        model = checkpoint.model
        if args.kind == "history":
            records = checkpoint.training.get("history")
            if not records or not records.get("records"):
                raise UsageError(f"{args.model_file} holds no training history")
            plots.plot_history(History.from_dict(records), path=out)
        elif args.kind == "weights":
            image_shape = checkpoint.extra.get("image_shape")
            if image_shape is None:
                raise UsageError(f"{args.model_file} was not trained on images: no weight templates to draw")
            plots.plot_weight_templates(model, image_shape=image_shape, class_names=checkpoint.class_names, path=out)
        else:
            args.dataset = args.dataset or checkpoint.training.get("dataset", "digits")
            X_train, y_train, X_test, y_test, info = _load_data(args)
            _check_compatible(model, info, args.model_file)
            if checkpoint.metadata.get("normalizer"):
                X_test = Normalizer.from_state(checkpoint.metadata["normalizer"]).transform(X_test)
            target_form = checkpoint.extra.get("target_form", "labels")
            report = evaluate(model, X_test, _targets(y_test, target_form, info["n_classes"]), loss=checkpoint.loss())
            if report.get("confusion_matrix") is None:
                raise UsageError("a multi-label model has no single confusion matrix")
            plots.plot_confusion_matrix(report["confusion_matrix"], checkpoint.class_names, path=out)
    print(f"wrote {out}")
    return 0


def _experiment(args) -> int:
    from .experiments import EXPERIMENTS, run_experiment

    if args.name not in EXPERIMENTS:
        raise UsageError(f"no experiment {args.name!r}; choose from {', '.join(EXPERIMENTS)}")
    result = run_experiment(args.name, data_dir=args.data_dir, out_dir=args.out, budget=args.budget, seed=args.seed)
    print(result.table)
    for figure in result.figures:
        print(f"figure: {figure}")
    print(f"claim: {result.claim} -- {'HOLDS' if result.holds else 'DOES NOT HOLD'}")
    return 0 if result.holds else 1


def _losses(args) -> int:
    from .losses import LOSSES

    by_class: dict = {}
    for name, cls in LOSSES.items():
        by_class.setdefault(cls, []).append(name)
    for cls, names in by_class.items():
        summary = (cls.function.__doc__ or "").strip().splitlines()[0]
        print(f"{' | '.join(names):<48} {summary}")
    aliases = ", ".join(f"{alias} -> {target}" for alias, (target, _) in LOSS_ALIASES.items())
    print(f"\nalso accepted by 'crossent train --loss': {aliases}")
    return 0


def _bench(args) -> int:
    from .bench import run_command

    return run_command(args)


def _add_data_arguments(parser, default="digits") -> None:
    parser.add_argument("--dataset", default=default,
                        help="digits (shipped, offline), mnist, fashion-mnist, or a .csv/.npz file "
                             f"(default: {default})")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the MNIST files are (else $CROSSENT_DATA, else the download cache)")
    parser.add_argument("--no-download", action="store_true", help="never download a missing data set")
    parser.add_argument("--target", metavar="COLUMN", help="the label column of a .csv file (name or number)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crossent", description="Train classifiers with cross-entropy losses by gradient descent.")
    parser.add_argument("--version", action="version", version=f"crossent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser("train", help="train a classifier and report it (default: digits, a few seconds)",
                                description="Train a classifier by gradient descent on a cross-entropy loss.")
    _add_data_arguments(train)
    train.add_argument("--model", choices=["softmax", "logistic", "mlp"], default="softmax",
                       help="softmax regression, binary logistic regression, or a multilayer perceptron")
    train.add_argument("--hidden", default="100", help="MLP hidden layer sizes, e.g. 800 or 800,300 (default: 100)")
    train.add_argument("--activation", choices=["relu", "tanh", "sigmoid"], default="relu")
    train.add_argument("--dropout", type=float, default=0.0, help="MLP dropout probability (default: 0)")
    train.add_argument("--margin", type=_margin, metavar="M",
                       help="train with the large-margin softmax (L-Softmax) loss of integer margin M: "
                            "bias-free output layer, beta annealed from 1000 to a floor of 1 over the first half "
                            "of the run; predictions use the plain scores (softmax or mlp)")
    train.add_argument("--loss", help="a loss from 'crossent losses', or a Keras/PyTorch name "
                                      "(default: cross_entropy, or binary cross-entropy for logistic)")
    train.add_argument("--label-smoothing", type=float, dest="label_smoothing")
    train.add_argument("--z-loss", type=float, dest="z_loss")
    train.add_argument("--gamma", type=float, help="focusing parameter of the focal losses")
    train.add_argument("--q", type=float, help="q of generalized cross-entropy")
    train.add_argument("--poly-epsilon", type=float, dest="poly_epsilon", help="epsilon of Poly-1")
    train.add_argument("--loss-option", action="append", metavar="KEY=VALUE",
                       help="any other option of the loss (repeatable; VALUE is JSON)")
    train.add_argument("--optimizer", choices=["gd", "sgd", "momentum", "nesterov", "adam", "adamw"],
                       default="momentum", help="(default: momentum)")
    train.add_argument("--lr", type=float, help="learning rate (default: 0.1 sgd/gd, 0.05 momentum, 0.001 adam)")
    train.add_argument("--momentum", type=float, help="momentum (default 0.9 for momentum/nesterov)")
    train.add_argument("--weight-decay", type=float, default=0.0, dest="weight_decay", help="L2 coefficient")
    train.add_argument("--schedule", default="constant",
                       choices=["constant", "step", "cosine", "linear", "warmup-cosine", "warmup-linear"])
    train.add_argument("--clip-grad-norm", type=float, dest="clip_grad_norm")
    from ._attack_cli import add_training_arguments as add_adversarial_arguments

    add_adversarial_arguments(train)
    train.add_argument("--batch-size", type=_batch_size, default=32, dest="batch_size",
                       help="minibatch size, 1 for pure SGD, 'full' for full-batch gradient descent (default: 32)")
    train.add_argument("--epochs", type=int, default=20, help="(default: 20)")
    train.add_argument("--validation-split", type=float, default=0.0, dest="validation_split")
    train.add_argument("--early-stopping", type=int, metavar="N", dest="early_stopping",
                       help="stop after N epochs without validation improvement (holds out 10%% if needed)")
    train.add_argument("--normalize", choices=["none", "unit", "standardize"], default="standardize",
                       help="input scaling fitted on the training split (default: standardize)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save", metavar="FILE", help="save the trained model (and optimizer state) to FILE")
    train.add_argument("--resume", metavar="FILE",
                       help="continue a run saved with --save, with its settings, up to --epochs in total")
    train.add_argument("--metrics-out", metavar="FILE.json", dest="metrics_out", help="write metrics as JSON")
    train.add_argument("--plots", metavar="DIR", help="write training curves, confusion matrix (and for images "
                                                       "weight templates and mistakes) as PNG files in DIR")
    train.add_argument("--report", metavar="DIR", help="write a self-contained HTML report to DIR/index.html")
    train.add_argument("--quiet", action="store_true", help="print nothing")
    from ._dask_cli import add_arguments as add_dask_arguments

    add_dask_arguments(train)
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a data set's test split")
    evaluate.add_argument("model_file", metavar="MODEL")
    _add_data_arguments(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="predict classes for new inputs (npz, csv, IDX or image)")
    predict.add_argument("model_file", metavar="MODEL")
    predict.add_argument("input", metavar="INPUT")
    predict.add_argument("--all", action="store_true", help="print every row, not the first 20")
    predict.add_argument("--output", metavar="FILE.csv", help="write class and probabilities of every row")
    predict.set_defaults(handler=_predict)

    info = commands.add_parser("info", help="show what a saved model file holds")
    info.add_argument("model_file", metavar="MODEL")
    info.set_defaults(handler=_info)

    demo = commands.add_parser("demo", help="softmax, loss and gradient of one example (default: cat/dog/bird)",
                               description="Show softmax, loss and gradient for one example, step by step.")
    demo.add_argument("--logits", type=float, nargs="+", default=[1.0, 2.0, 0.5], metavar="Z",
                      help="the example's logits (default: 1 2 0.5)")
    demo.add_argument("--classes", nargs="+", metavar="NAME",
                      help="class names (default: cat dog bird when --logits is left alone)")
    demo.add_argument("--target", default="dog", help="the true class, by name or number (default: dog)")
    demo.add_argument("--loss", default="cross_entropy",
                      help="a loss name from 'crossent losses' (default: cross_entropy)")
    demo.set_defaults(handler=_demo)

    listing = commands.add_parser("losses", help="list the available losses")
    listing.set_defaults(handler=_losses)

    plot = commands.add_parser("plot", help="draw a picture: history, surface, animate, curve, softmax, "
                                            "confusion, weights")
    plot.add_argument("kind", choices=["history", "surface", "animate", "curve", "softmax", "confusion", "weights"])
    plot.add_argument("model_file", metavar="MODEL", nargs="?",
                      help="a saved model (history, confusion, weights)")
    plot.add_argument("--out", metavar="FILE", help="output file (default: crossent-KIND.png, .gif for animate)")
    plot.add_argument("--dataset", default=None,
                      help="surface/animate: moons, blobs or spirals (default moons); confusion: the data set "
                           "to evaluate on (default digits)")
    plot.add_argument("--data-dir", metavar="DIR")
    plot.add_argument("--no-download", action="store_true")
    plot.add_argument("--target", metavar="COLUMN")
    plot.add_argument("--hidden", default="32", help="surface/animate: MLP hidden sizes (default 32)")
    plot.add_argument("--epochs", type=int, default=None, help="surface: default 200; animate: default 3")
    plot.add_argument("--seed", type=int, default=0)
    plot.set_defaults(handler=_plot)

    experiment = commands.add_parser("experiment", help="reproduce a claim from the literature and check it")
    experiment.add_argument("name", metavar="NAME", help="worked-example, slowdown, mnist-linear, mnist-800, "
                                                        "noisy-labels, mse-vs-ce")
    experiment.add_argument("--data-dir", metavar="DIR", help="where MNIST is (else $CROSSENT_DATA)")
    experiment.add_argument("--out", metavar="DIR", help="write the experiment's figures to DIR")
    experiment.add_argument("--budget", choices=["full", "ci"], default="full",
                            help="ci: a reduced budget on which the claim must still hold")
    experiment.add_argument("--seed", type=int, default=0)
    experiment.set_defaults(handler=_experiment)

    from .bench import add_arguments as add_bench_arguments

    bench = commands.add_parser("bench", help="time cross-entropy next to naive NumPy, PyTorch and the machine's "
                                              "limits (memcopy, sgemm)",
                                description="Time softmax cross-entropy and linear + cross-entropy, forward and "
                                            "backward, next to naive NumPy, PyTorch CPU and the machine's limits.")
    add_bench_arguments(bench)
    bench.set_defaults(handler=_bench)

    from .onnx_export import add_arguments as add_export_arguments, run as run_export

    export = commands.add_parser("export", help="write a saved model as an ONNX file (needs crossent[onnx])",
                                 description="Write a saved model as an ONNX graph (input -> logits, probabilities"
                                             "[, label]) with its input normalisation built in.")
    add_export_arguments(export)
    export.set_defaults(handler=run_export)

    from ._attack_cli import add_arguments as add_attack_arguments, run as run_attack

    attack = commands.add_parser("attack", help="clean vs robust accuracy of a saved model under FGSM / PGD",
                                 description="Attack a saved model's test inputs with FGSM or PGD on its "
                                             "cross-entropy, for each --eps in the data set's units (before the "
                                             "model's saved normalisation), and print clean and robust accuracy.")
    add_attack_arguments(attack)
    attack.set_defaults(handler=run_attack)
    return parser


def main(argv=None) -> int:
    from .datasets import DatasetNotFoundError
    from .serialization import ModelFileError
    from .train import TrainingDivergedError

    from . import kernels

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        kernels.backend()  # a bad CROSSENT_BACKEND is one line here, not a failure in the middle of a run
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if args.command == "demo" and args.classes is None:
            if args.logits == [1.0, 2.0, 0.5]:
                args.classes = ["cat", "dog", "bird"]
            elif args.target == "dog":
                args.target = "0"
        return args.handler(args)
    except UsageError as error:
        command = f"crossent {argv[0]}" if argv and not argv[0].startswith("-") else "crossent"
        print(f"{command}: error: {error}", file=sys.stderr)
        return 2
    except (OSError, ModelFileError, DatasetNotFoundError, TrainingDivergedError, ValueError,
            TypeError, KeyboardInterrupt) as error:
        command = f"crossent {argv[0]}" if argv and not argv[0].startswith("-") else "crossent"
        message = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error).splitlines()[0] if str(
            error) else type(error).__name__
        if isinstance(error, DatasetNotFoundError):
            message = str(error)  # its lines say which files to place where
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
