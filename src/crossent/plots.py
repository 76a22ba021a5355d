r"""Figures for training runs and for the ideas behind cross-entropy (matplotlib, imported lazily).

Importing this module does not import matplotlib; the first function called
does, and raises an ImportError naming ``pip install 'crossent[plot]'`` when
it is missing.

Every function returns the :class:`matplotlib.figure.Figure` it drew on.

* ``ax=None`` (the default): a new figure is made with the Agg canvas, never
  through :mod:`matplotlib.pyplot`, so no display is needed, no global pyplot
  state changes and the figure is freed when dropped. A notebook shows the
  returned figure; a script saves it with ``path=`` or ``figure.savefig``.
* ``ax=`` an Axes (or, for the functions that draw several panels, a sequence
  of Axes): the function draws into it and returns its figure.
* ``path=``: the figure is also written there, atomically (a temporary file in
  the same directory is moved over ``path`` only once it is complete), in the
  format of the file name's suffix (``.png``, ``.pdf``, ``.svg``, ...), at
  :data:`SAVE_DPI` dots per inch. The pixel size of a figure this module made
  is stated in each docstring; a figure passed in through ``ax`` keeps its own
  size in inches.

=============================  =====================================================================
function                       draws
=============================  =====================================================================
plot_history                   loss (nats) and accuracy per epoch, train vs validation; learning rate
plot_decision_surface          a 2-D classifier's class regions (shaded by confidence) and the data
animate_training               a GIF with one frame per training batch: surface and batch-loss curve
plot_cross_entropy_curve       loss and its logit gradient against the probability of the true class
plot_softmax_bars              softmax probabilities of a few logits and the cross-entropy of a target
plot_confusion_matrix          counts or row-normalised rates, true class against predicted class
plot_misclassified             the most confident mistakes of an image classifier
plot_weight_templates          the rows of a linear classifier's weight matrix as images
=============================  =====================================================================
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ._io import atomic_output
from ._typing import LossLike, PathLike, Seed
from ._validation import _describe, as_float_array, check_finite_scalar
from .functional import softmax
from .losses import (
    mean_squared_error,
    mean_squared_error_grad,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_grad,
    softmax_cross_entropy,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .nn import Model
    from .optim import Optimizer
    from .train import History

__all__ = [
    "plot_history",
    "plot_decision_surface",
    "animate_training",
    "TrainingAnimation",
    "plot_cross_entropy_curve",
    "plot_softmax_bars",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_weight_templates",
    "SAVE_DPI",
    "ANIMATION_DPI",
]

#: dots per inch of every file written through ``path=``
SAVE_DPI = 100
#: dots per inch of the frames of :func:`animate_training`
ANIMATION_DPI = 80

INSTALL_HINT = "pip install 'crossent[plot]'"

# Pixel sizes (width, height) of the figures this module makes, at SAVE_DPI.
HISTORY_PIXELS = (1200, 360)
DECISION_SURFACE_PIXELS = (600, 520)
CROSS_ENTROPY_CURVE_PIXELS = (1100, 420)
SOFTMAX_BARS_PIXELS = (560, 400)
CONFUSION_MATRIX_PIXELS = (640, 560)
MISCLASSIFIED_CELL_PIXELS = (160, 190)
WEIGHT_TEMPLATE_CELL_PIXELS = (150, 170)
#: extra width of the weight-template figure for its colour bar
WEIGHT_TEMPLATE_COLORBAR_PIXELS = 90
#: frame size of animate_training, at ANIMATION_DPI
ANIMATION_PIXELS = (720, 300)


# --------------------------------------------------------------------------- matplotlib, figures, files


def _matplotlib():
    """Import matplotlib on first use; a missing install becomes an ImportError with the fix."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"crossent.plots needs matplotlib (and Pillow for animations): {INSTALL_HINT}"
        ) from error
    return matplotlib, Figure, FigureCanvasAgg


def _inches(pixels: int, dpi: int) -> float:
    # Agg truncates width * dpi to an integer: nudge the size up if division rounded it below
    inches = pixels / dpi
    while inches * dpi < pixels:
        inches = math.nextafter(inches, math.inf)
    return inches


def _new_figure(pixels: tuple[int, int], dpi: int = SAVE_DPI):
    """A pyplot-free figure of exactly ``pixels`` at ``dpi``, drawn by the Agg canvas."""
    _, Figure, FigureCanvasAgg = _matplotlib()
    figure = Figure(figsize=(_inches(pixels[0], dpi), _inches(pixels[1], dpi)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _root_figure(ax):
    # an Axes inside a SubFigure: save the whole figure
    get_figure = getattr(ax, "get_figure", None)
    try:
        return get_figure(root=True)
    except TypeError:  # matplotlib < 3.10 has no root argument; ax.figure is then the root
        return ax.figure


def _check_path(path, allowed_suffixes=None) -> Path | None:
    """``path`` as a Path whose suffix names a format and whose directory exists (None passes)."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name (str or os.PathLike), got {_describe(path)}")
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if allowed_suffixes is None:
        _, Figure, FigureCanvasAgg = _matplotlib()
        allowed_suffixes = sorted(FigureCanvasAgg.get_supported_filetypes())
    if suffix not in allowed_suffixes:
        raise ValueError(
            f"path must end in one of {', '.join('.' + s for s in allowed_suffixes)} (the suffix "
            f"chooses the format), got {str(path)!r}"
        )
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {str(path)!r}: directory {str(directory)!r} does not exist")
    return path


def _finish(figure, path: Path | None):
    """Save ``figure`` atomically to ``path`` (when given) at SAVE_DPI; return the figure."""
    if path is not None:
        with atomic_output(path) as stream:
            figure.savefig(stream, format=path.suffix.lower().lstrip("."), dpi=SAVE_DPI)
    return figure


def _is_axes(value) -> bool:
    matplotlib, _, _ = _matplotlib()
    return isinstance(value, matplotlib.axes.Axes)


def _one_axes(ax):
    """(figure, axes) for a single-panel plot: a new figure or the caller's Axes."""
    if not _is_axes(ax):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {_describe(ax)}")
    return _root_figure(ax), ax


def _axes_sequence(ax, name: str = "ax") -> list:
    """The caller's Axes for a multi-panel plot: one Axes or a sequence of Axes, as a list."""
    if _is_axes(ax):
        return [ax]
    if isinstance(ax, np.ndarray):
        ax = ax.ravel().tolist()
    if not isinstance(ax, Sequence) or isinstance(ax, str) or not ax or not all(_is_axes(a) for a in ax):
        raise TypeError(f"{name} must be None, a matplotlib Axes or a sequence of Axes, got {_describe(ax)}")
    return list(ax)


# --------------------------------------------------------------------------- argument checks


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {int(value)}")
    return int(value)


def _check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def _check_features(X, name: str = "X", n_features: int | None = None) -> np.ndarray:
    features = as_float_array(X, name)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features), got shape {features.shape}")
    if n_features is not None and features.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} columns, got shape {features.shape}")
    if not np.isfinite(features).all():
        row, column = (int(i) for i in np.argwhere(~np.isfinite(features))[0])
        raise ValueError(f"{name} must be finite; found {features[row, column].item()!r} at row {row}, column {column}")
    return features


def _check_labels(y, n_rows: int, name: str = "y") -> np.ndarray:
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), one class label per row of X, got {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds class labels >= 0; found {int(labels.min())}")
    return labels.astype(np.int64, copy=False)


def _check_class_names(class_names, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(index) for index in range(n_classes)]
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of names, got {_describe(class_names)}")
    if len(class_names) < n_classes:
        raise ValueError(f"class_names must name all {n_classes} classes, got {len(class_names)} names")
    return [str(name) for name in class_names]


def _check_image_shape(image_shape, n_features: int, *, allow_channels: bool) -> tuple:
    if isinstance(image_shape, (str, bytes)) or not isinstance(image_shape, Sequence):
        raise TypeError(f"image_shape must be a tuple such as (28, 28), got {_describe(image_shape)}")
    allowed_ranks = (2, 3) if allow_channels else (2,)
    if len(image_shape) not in allowed_ranks:
        expected = "(height, width) or (height, width, channels)" if allow_channels else "(height, width)"
        raise ValueError(f"image_shape must be {expected}, got {tuple(image_shape)!r}")
    shape = tuple(_check_positive_int(size, "image_shape") for size in image_shape)
    if len(shape) == 3 and shape[2] not in (3, 4):
        raise ValueError(f"image_shape with a channel axis must have 3 (RGB) or 4 (RGBA) channels, got {shape!r}")
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape {shape!r} holds {math.prod(shape)} values, but each row has {n_features} features"
        )
    return shape


def _class_probabilities(model, X) -> np.ndarray:
    """``model.predict_proba(X)`` as (N, C) float64; a binary model's (N,) probabilities become 2 columns."""
    probabilities = np.asarray(model.predict_proba(X), dtype=np.float64)
    if probabilities.ndim == 1:
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    if probabilities.ndim != 2:
        raise ValueError(
            f"model.predict_proba must return (N,) or (N, n_classes) probabilities, got shape {probabilities.shape}"
        )
    return probabilities


def _class_colours(n_classes: int) -> np.ndarray:
    """(n_classes, 3) RGB colours: the qualitative tab10/tab20 palettes, evenly spaced hues beyond 20."""
    matplotlib, _, _ = _matplotlib()
    if n_classes <= 10:
        colours = matplotlib.colormaps["tab10"].colors[:n_classes]
    elif n_classes <= 20:
        colours = matplotlib.colormaps["tab20"].colors[:n_classes]
    else:
        colours = matplotlib.colormaps["hsv"](np.linspace(0.0, 1.0, n_classes, endpoint=False))[:, :3]
    return np.asarray(colours, dtype=np.float64)[:, :3]


# --------------------------------------------------------------------------- plot_history


def _history_records(history, purpose: str = "before plotting it") -> list:
    """The per-epoch records of a History (or a list of dicts), checked; ``purpose`` ends the empty-history message."""
    records = getattr(history, "records", history)
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or isinstance(records, str):
        raise TypeError(
            f"history must be a crossent History or a list of per-epoch dicts, got {_describe(history)}"
        )
    if not records:
        raise ValueError(f"history is empty: train for at least one epoch {purpose}")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"history record {index} must be a dict, got {_describe(record)}")
    return list(records)


def _series(records, epochs, key, scale=1.0):
    """(epochs, values) of one column, skipping epochs where it is missing."""
    pairs = [(epoch, float(record[key]) * scale) for epoch, record in zip(epochs, records)
             if record.get(key) is not None]
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]


def plot_history(
    history: History | Sequence[Mapping[str, Any]], *, ax: Axes | Sequence[Axes] | None = None,
    path: PathLike | None = None,
) -> Figure:
    """Loss (nats) and accuracy per epoch, train against validation, with the learning rate beside them.

    Parameters
    ----------
    history : crossent.History or list of dict
        As returned by :func:`crossent.fit` (``history.records``): per-epoch
        ``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy`` and
        ``lr``; columns that are missing or None are left out. A History's
        ``best_epoch`` (early stopping) is marked with a dotted line.
    ax : None, or a sequence of 2 or 3 Axes
        Panels for (loss, accuracy[, learning rate]). None makes a figure of
        1200 x 360 pixels with all three.
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from crossent.plots import plot_history
    >>> records = [{"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.7, "lr": 0.1},
    ...            {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.85, "lr": 0.05}]
    >>> figure = plot_history(records)
    >>> [axes.get_ylabel() for axes in figure.axes]
    ['loss (nats)', 'accuracy (%)', 'learning rate']
    """
    records = _history_records(history)
    path = _check_path(path)
    if ax is None:
        figure = _new_figure(HISTORY_PIXELS)
        panels = list(figure.subplots(1, 3, width_ratios=(1.0, 1.0, 0.7)))
    else:
        panels = _axes_sequence(ax)
        if len(panels) not in (2, 3):
            raise ValueError(f"ax must hold 2 or 3 Axes (loss, accuracy[, learning rate]), got {len(panels)}")
        figure = _root_figure(panels[0])
    loss_ax, accuracy_ax = panels[0], panels[1]
    lr_ax = panels[2] if len(panels) == 3 else None

    epochs = [record.get("epoch", index + 1) for index, record in enumerate(records)]
    marker = "o" if len(records) <= 30 else None  # single epochs stay visible as points
    for axes, key, scale, title in (
        (loss_ax, "loss", 1.0, "cross-entropy loss"),
        (accuracy_ax, "accuracy", 100.0, "accuracy"),
    ):
        drawn = False
        for split, style in (("train", "-"), ("val", "--")):
            x, values = _series(records, epochs, f"{split}_{key}", scale)
            if values:
                label = "train" if split == "train" else "validation"
                axes.plot(x, values, style, marker=marker, markersize=3, label=label)
                drawn = True
        if not drawn:
            axes.text(0.5, 0.5, f"no {key} recorded", ha="center", va="center", transform=axes.transAxes)
        best_epoch = getattr(history, "best_epoch", None)
        if best_epoch is not None and 0 <= best_epoch < len(epochs):
            axes.axvline(epochs[best_epoch], color="grey", linestyle=":", label="best epoch")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        if drawn:
            axes.legend(loc="best", fontsize="small")
        axes.grid(True, alpha=0.3)
    loss_ax.set_ylabel("loss (nats)")
    accuracy_ax.set_ylabel("accuracy (%)")

    if lr_ax is not None:
        x, rates = _series(records, epochs, "lr")
        if rates:
            lr_ax.plot(x, rates, color="tab:green", marker=marker, markersize=3)
            positive = [rate for rate in rates if rate > 0]
            if len(positive) == len(rates) and max(rates) > 20 * min(rates):
                lr_ax.set_yscale("log")  # a decaying schedule spans decades
        else:
            lr_ax.text(0.5, 0.5, "no learning rate recorded", ha="center", va="center", transform=lr_ax.transAxes)
        lr_ax.set_title("learning rate")
        lr_ax.set_xlabel("epoch")
        lr_ax.set_ylabel("learning rate")
        lr_ax.grid(True, alpha=0.3)
    return _finish(figure, path)


# --------------------------------------------------------------------------- decision surfaces


def _surface_grid(X: np.ndarray, resolution: int):
    """A resolution x resolution grid over X's bounding box plus a 10% margin: (points, extent)."""
    low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
    margin = np.maximum(0.1 * (high - low), 0.5 * (high - low == 0))
    low, high = low - margin, high + margin
    xs, ys = np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    return points, (low[0], high[0], low[1], high[1])


def _surface_image(probabilities: np.ndarray, colours: np.ndarray, resolution: int) -> np.ndarray:
    """RGB image of the predicted class, paler where the model is less sure.

    The colour of the most probable class is mixed with white in proportion
    to its probability above chance (1/C), from 20% (a coin toss) to 75%
    (certain), so the decision boundary shows as a change of hue and the
    confidence as saturation.
    """
    n_classes = probabilities.shape[1]
    winner = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    chance = 1.0 / n_classes
    strength = 0.2 + 0.55 * np.clip((confidence - chance) / (1.0 - chance), 0.0, 1.0)
    rgb = 1.0 - strength[:, None] * (1.0 - colours[winner])
    return rgb.reshape(resolution, resolution, 3)


def _draw_points(axes, X, y, colours, class_names):
    handles = []
    for label in np.unique(y):
        rows = y == label
        handles.append(axes.scatter(
            X[rows, 0], X[rows, 1], s=14, color=colours[label], edgecolors="black", linewidths=0.4,
            label=class_names[label],
        ))
    return handles


def plot_decision_surface(
    model: Model, X: ArrayLike, y: ArrayLike, *, resolution: int = 200, class_names: Sequence[str] | None = None,
    ax: Axes | None = None, path: PathLike | None = None,
) -> Figure:
    """A 2-D classifier's predicted class over the plane, shaded by its confidence, with the data on top.

    Every point of a ``resolution`` x ``resolution`` grid over the data's
    bounding box (plus a 10% margin) is coloured by the most probable class
    (``argmax`` of ``model.predict_proba``), mixed with white the less sure
    the model is (``max`` of the probabilities, from chance 1/C to 1). The
    samples are drawn in their true class's colour, so mistakes stand out.

    Parameters
    ----------
    model : crossent.nn model (or anything with ``predict_proba``)
        Taking 2 features. Binary models returning (N,) probabilities of
        class 1 are handled as two classes; (N, K) multi-label
        probabilities would be read as K classes competing by argmax.
    X : array_like, shape (N, 2)
    y : array_like of int, shape (N,)
        True class labels.
    resolution : int >= 2, default 200
        Grid points per axis.
    class_names : sequence of str, optional
        Legend names (default: the class numbers).
    ax : matplotlib Axes, optional
        None makes a figure of 600 x 520 pixels.
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = _check_features(X, "X", n_features=2)
    y = _check_labels(y, X.shape[0])
    resolution = _check_positive_int(resolution, "resolution", minimum=2)
    path = _check_path(path)
    figure, axes = (_new_figure(DECISION_SURFACE_PIXELS), None) if ax is None else _one_axes(ax)
    if axes is None:
        axes = figure.add_subplot()

    grid, extent = _surface_grid(X, resolution)
    probabilities = _class_probabilities(model, grid)
    n_classes = max(probabilities.shape[1], int(y.max()) + 1)
    colours = _class_colours(n_classes)
    names = _check_class_names(class_names, n_classes)
    axes.imshow(_surface_image(probabilities, colours, resolution), origin="lower", extent=extent,
                aspect="auto", interpolation="nearest")
    _draw_points(axes, X, y, colours, names)
    predicted = _class_probabilities(model, X).argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    axes.set_title(f"decision regions: accuracy {100 * accuracy:.1f}% on {X.shape[0]} points")
    axes.set_xlabel("$x_1$")
    axes.set_ylabel("$x_2$")
    axes.legend(loc="best", fontsize="small", title="class")
    return _finish(figure, path)


@dataclass(frozen=True)
class TrainingAnimation:
    """What :func:`animate_training` did: the batch losses, the frames written and where."""

    #: the loss of every training batch, in order (before that batch's update)
    losses: list[float]
    #: number of frames in the GIF
    n_frames: int
    #: the (0-based) batch after which each frame was drawn
    frame_batches: list[int]
    #: the GIF file
    path: Path


def _frame_batches(total_batches: int, max_frames: int | None) -> list:
    """Every batch, or ``max_frames`` batches evenly spread over the run and ending at the last one."""
    if max_frames is None or max_frames >= total_batches:
        return list(range(total_batches))
    return [math.ceil((frame + 1) * total_batches / max_frames) - 1 for frame in range(max_frames)]


def animate_training(
    model: Model,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str | LossLike | None = None,
    optimizer: str | Optimizer,
    epochs: int = 1,
    batch_size: int = 16,
    seed: Seed = 0,
    path: PathLike,
    fps: float = 8,
    max_frames: int | None = None,
    resolution: int = 80,
) -> TrainingAnimation:
    """Train ``model`` batch by batch and write a GIF: one frame per batch, decision surface and loss curve.

    Each step is the step of :func:`crossent.fit`: forward in training mode,
    the loss's fused value and gradient, backward, ``optimizer.step``
    (through ``model.loss_and_backward`` when the model has it). The rows are
    shuffled at every epoch with the generator :func:`crossent.fit` uses for
    the same ``seed``, so the batches are the ones ``fit(..., seed=seed)``
    would see. After each batch a frame shows the decision surface (as in
    :func:`plot_decision_surface`, on a coarse ``resolution`` grid) beside the
    curve of batch losses so far.

    The figure and its artists are made once and updated in place; frames are
    collected by matplotlib's :class:`~matplotlib.animation.PillowWriter`
    (no ffmpeg) and the GIF is written atomically. Frames are
    720 x 300 pixels (:data:`ANIMATION_DPI` dots per inch).

    Parameters
    ----------
    model : crossent.nn model
        Taking 2 features; it is trained in place.
    X : array_like, shape (N, 2)
    y : array_like of int, shape (N,)
    loss : str, Loss or None
        As for :func:`crossent.fit` (None: the model's default loss).
    optimizer : str or optimiser
        An optimiser over ``model.parameters()`` (e.g.
        ``crossent.optim.SGD(model.parameters(), lr=0.1)``), or a name for
        :func:`crossent.train.make_optimizer` with its default learning rate.
    epochs : int >= 1, default 1
    batch_size : int >= 1, default 16
    seed : int, default 0
        Seeds the shuffling (same seed, same batches, same GIF).
    path : str or os.PathLike
        The GIF to write (must end in ``.gif``; its directory must exist).
    fps : float > 0, default 8
        Frames per second of the GIF.
    max_frames : int >= 1, optional
        Draw at most this many frames, at batches spread evenly over the run
        (always including the last). Every batch still trains and its loss is
        recorded. Default: one frame per batch. Frames are held in memory
        until the GIF is written.
    resolution : int >= 2, default 80
        Grid points per axis of the decision surface in each frame.

    Returns
    -------
    TrainingAnimation
        ``losses`` (one per batch), ``n_frames``, ``frame_batches`` and ``path``.

    Raises
    ------
    crossent.TrainingDivergedError
        If a batch loss is NaN or infinite; nothing is written.
    """
    from .train import TrainingDivergedError, make_optimizer, resolve_loss

    X = _check_features(X, "X", n_features=2)
    y = _check_labels(y, X.shape[0])
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {_describe(seed)}")
    fps = check_finite_scalar(fps, "fps", low=0.0, low_inclusive=False)
    if max_frames is not None:
        max_frames = _check_positive_int(max_frames, "max_frames")
    resolution = _check_positive_int(resolution, "resolution", minimum=2)
    gif_path = _check_path(path, allowed_suffixes=("gif",))
    if gif_path is None:  # _check_path lets None through; here it would surface only after training
        raise TypeError("path must be a file name ending in .gif (str or os.PathLike), got None")
    matplotlib, _, _ = _matplotlib()
    import matplotlib.ticker

    try:
        from matplotlib.animation import PillowWriter
    except ImportError as error:  # matplotlib's PillowWriter needs Pillow
        raise ImportError(f"animate_training needs Pillow: {INSTALL_HINT}") from error
    stepper: Optimizer
    if isinstance(optimizer, str):
        stepper = make_optimizer(optimizer, model.parameters())
    elif callable(getattr(optimizer, "step", None)):
        stepper = optimizer
    else:
        raise TypeError(
            f"optimizer must be an optimiser with step(gradients) or a name such as 'sgd', got {_describe(optimizer)}"
        )
    loss_object: LossLike = resolve_loss(loss, model)
    X = X.astype(model.parameters()[0].dtype, copy=False)

    n_samples = X.shape[0]
    batch = min(batch_size, n_samples)
    steps_per_epoch = math.ceil(n_samples / batch)
    total_batches = epochs * steps_per_epoch
    frame_batches = _frame_batches(total_batches, max_frames)
    frame_set = set(frame_batches)

    # --- the figure and artists, made once and updated for every frame
    figure = _new_figure(ANIMATION_PIXELS, dpi=ANIMATION_DPI)
    surface_ax, loss_ax = figure.subplots(1, 2, width_ratios=(1.0, 1.2))
    grid, extent = _surface_grid(X, resolution)
    grid = grid.astype(X.dtype)
    probabilities = _class_probabilities(model, grid)
    n_classes = max(probabilities.shape[1], int(y.max()) + 1)
    colours = _class_colours(n_classes)
    image = surface_ax.imshow(_surface_image(probabilities, colours, resolution), origin="lower",
                              extent=extent, aspect="auto", interpolation="nearest")
    _draw_points(surface_ax, X, y, colours, _check_class_names(None, n_classes))
    surface_ax.set_xticks([])
    surface_ax.set_yticks([])
    surface_title = surface_ax.set_title(" ", fontsize="medium")
    (loss_line,) = loss_ax.plot([], [], color="tab:red", linewidth=1.2)
    loss_ax.set_xlim(0.5, total_batches + 0.5)
    loss_ax.set_xlabel("batch")
    loss_ax.set_ylabel("batch loss (nats)")
    loss_ax.grid(True, alpha=0.3)
    loss_title = loss_ax.set_title(" ", fontsize="medium")
    # tick labels of one width: the layout, computed once below, then fits every frame
    loss_ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2f"))
    loss_ax.set_ylim(0.0, 1.0)
    # Lay the figure out once and freeze it: constrained layout on every frame would more than
    # double the time to render one.
    figure.canvas.draw()
    figure.set_layout_engine("none")

    losses: list[float] = []

    def draw_frame(epoch: int, step: int) -> None:
        image.set_data(_surface_image(_class_probabilities(model, grid), colours, resolution))
        accuracy = float(np.mean(_class_probabilities(model, X).argmax(axis=1) == y))
        surface_title.set_text(f"epoch {epoch + 1}, batch {step + 1}: accuracy {100 * accuracy:.0f}%")
        loss_line.set_data(np.arange(1, len(losses) + 1), losses)
        highest = max(losses)
        loss_ax.set_ylim(0.0, 1.08 * highest if highest > 0 else 1.0)
        loss_title.set_text(f"batch {len(losses)} of {total_batches}: loss {losses[-1]:.3f}")

    has_loss_and_backward = callable(getattr(model, "loss_and_backward", None))
    gradients = model.gradients()
    writer = PillowWriter(fps=fps)  # type: ignore[arg-type]  # stubs say int; any fps > 0 works (1000 / fps ms)
    # PillowWriter writes to a file name, not a stream: it writes a scratch file, which is then
    # copied into the atomic output so that `path` only ever holds a complete GIF. finish() is
    # called only on success (a diverged run writes nothing).
    with tempfile.TemporaryDirectory(prefix="crossent-animation-") as scratch_directory:
        scratch = Path(scratch_directory) / "frames.gif"
        # a user's savefig.bbox = "tight" would change the frame size from frame to frame
        with matplotlib.rc_context({"savefig.bbox": None}):
            writer.setup(figure, scratch, dpi=ANIMATION_DPI)
            for epoch in range(epochs):
                order = np.random.default_rng([int(seed), epoch]).permutation(n_samples) if batch < n_samples else None
                for step in range(steps_per_epoch):
                    rows = slice(step * batch, (step + 1) * batch)
                    xb, yb = (X[rows], y[rows]) if order is None else (X[order[rows]], y[order[rows]])
                    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                        if has_loss_and_backward:
                            value = float(model.loss_and_backward(xb, yb, loss_object))
                        else:
                            value, grad = loss_object.value_and_grad(model.forward(xb, training=True), yb)
                            value = float(value)
                            model.backward(grad)
                    if not math.isfinite(value):
                        raise TrainingDivergedError(
                            f"the training loss became {value} at epoch {epoch + 1}, batch {step + 1}; "
                            f"try a smaller learning rate"
                        )
                    stepper.step(gradients)
                    losses.append(value)
                    if len(losses) - 1 in frame_set:
                        draw_frame(epoch, step)
                        writer.grab_frame()
            writer.finish()
        with open(scratch, "rb") as gif, atomic_output(gif_path) as stream:
            shutil.copyfileobj(gif, stream)
    return TrainingAnimation(losses=losses, n_frames=len(frame_batches), frame_batches=frame_batches, path=gif_path)


# --------------------------------------------------------------------------- the ideas behind cross-entropy


def plot_cross_entropy_curve(*, ax: Axes | Sequence[Axes] | None = None, path: PathLike | None = None) -> Figure:
    r"""Cross-entropy, binary cross-entropy and the quadratic cost against the predicted probability.

    Left panel, for a predicted probability :math:`p` (a sigmoid output
    :math:`p = \sigma(z)`, or the softmax probability of the true class):

    * :math:`-\log p`, the cross-entropy of the true class -- which is also
      binary cross-entropy for label 1 (the two curves coincide);
    * :math:`-\log(1 - p)`, binary cross-entropy for label 0;
    * :math:`\tfrac12 (1 - p)^2`, the quadratic cost for label 1, which stays
      below :math:`\tfrac12` however wrong the prediction.

    Right panel: the size of their gradients with respect to the logit
    :math:`z`, for label 1. Cross-entropy's is :math:`|p - 1|`; the quadratic
    cost's is :math:`|p - 1|\, p(1 - p)`, which vanishes as :math:`p \to 0` --
    a confidently wrong unit barely learns (the learning slowdown).

    Every curve is computed with crossent's own losses from the logits
    :math:`z = \log p - \log(1 - p)`: :func:`crossent.softmax_cross_entropy`
    (logits :math:`(0, z)`, class 1), :func:`crossent.sigmoid_binary_cross_entropy`
    and :func:`crossent.mean_squared_error` (``activation="sigmoid"``), and their
    ``_grad`` functions, each with ``reduction="none"``.

    Parameters
    ----------
    ax : None, an Axes, or a sequence of 2 Axes
        One Axes draws the loss panel only; two draw (losses, gradients).
        None makes a figure of 1100 x 420 pixels with both.
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.plots import plot_cross_entropy_curve
    >>> figure = plot_cross_entropy_curve()
    >>> line = figure.axes[0].lines[0]
    >>> p, loss = line.get_data()
    >>> bool(np.allclose(loss, -np.log(p)))
    True
    """
    path = _check_path(path)
    if ax is None:
        figure = _new_figure(CROSS_ENTROPY_CURVE_PIXELS)
        loss_ax, gradient_ax = figure.subplots(1, 2)
    else:
        panels = _axes_sequence(ax)
        if len(panels) not in (1, 2):
            raise ValueError(f"ax must be one Axes or a sequence of 2 Axes, got {len(panels)}")
        loss_ax, gradient_ax = panels[0], (panels[1] if len(panels) == 2 else None)
        figure = _root_figure(loss_ax)

    p = np.linspace(0.001, 0.999, 999)
    logits = np.log(p) - np.log1p(-p)
    ones, zeros = np.ones_like(p), np.zeros_like(p)
    true_class = np.ones(p.shape, dtype=np.int64)
    cross_entropy = softmax_cross_entropy(np.stack([zeros, logits], axis=1), true_class, reduction="none")
    binary_label_1 = sigmoid_binary_cross_entropy(logits, ones, reduction="none")
    binary_label_0 = sigmoid_binary_cross_entropy(logits, zeros, reduction="none")
    quadratic = mean_squared_error(logits, ones, activation="sigmoid", reduction="none")

    loss_ax.plot(p, cross_entropy, color="tab:blue", linewidth=4, alpha=0.45,
                 label=r"cross-entropy $-\log p$ of the true class")
    loss_ax.plot(p, binary_label_1, color="tab:blue", linestyle="--", linewidth=1.5,
                 label=r"binary CE, label 1: $-\log p$")
    loss_ax.plot(p, binary_label_0, color="tab:orange", linewidth=1.5,
                 label=r"binary CE, label 0: $-\log(1-p)$")
    loss_ax.plot(p, quadratic, color="tab:green", linewidth=1.5,
                 label=r"quadratic, label 1: $\frac{1}{2}(1-p)^2$")
    loss_ax.set_xlim(0.0, 1.0)
    loss_ax.set_ylim(0.0, 5.0)
    loss_ax.set_xlabel("predicted probability $p$")
    loss_ax.set_ylabel("loss (nats)")
    loss_ax.set_title("loss against the predicted probability")
    loss_ax.legend(loc="upper center", fontsize="small")
    loss_ax.grid(True, alpha=0.3)

    if gradient_ax is not None:
        cross_entropy_gradient = np.abs(sigmoid_binary_cross_entropy_grad(logits, ones, reduction="none"))
        quadratic_gradient = np.abs(
            mean_squared_error_grad(logits, ones, activation="sigmoid", reduction="none")
        )
        gradient_ax.plot(p, cross_entropy_gradient, color="tab:blue", linewidth=1.5,
                         label=r"cross-entropy: $|p - 1|$")
        gradient_ax.plot(p, quadratic_gradient, color="tab:green", linewidth=1.5,
                         label=r"quadratic: $|p - 1|\,p(1-p)$")
        gradient_ax.set_xlim(0.0, 1.0)
        gradient_ax.set_ylim(0.0, 1.05)
        gradient_ax.set_xlabel("predicted probability $p$ (label 1)")
        gradient_ax.set_ylabel(r"$|\partial L / \partial z|$")
        gradient_ax.set_title("gradient with respect to the logit $z$")
        gradient_ax.legend(loc="upper right", fontsize="small")
        gradient_ax.grid(True, alpha=0.3)
    return _finish(figure, path)


def plot_softmax_bars(
    logits: Sequence[float] = (1.0, 2.0, 0.5), labels: Sequence[str] = ("cat", "dog", "bird"),
    target: str | int | None = "dog", *, ax: Axes | None = None, path: PathLike | None = None,
) -> Figure:
    r"""The softmax of a few logits as bars, the target class highlighted and its cross-entropy in the title.

    The bars are :math:`p = \mathrm{softmax}(z)` (:func:`crossent.softmax`);
    the loss is :math:`-\log p_t`, computed by
    :func:`crossent.softmax_cross_entropy` from the logits. Each bar is
    labelled with its probability and logit.

    Parameters
    ----------
    logits : sequence of float, default (1.0, 2.0, 0.5)
        At least two finite scores.
    labels : sequence of str, default ("cat", "dog", "bird")
        One name per logit.
    target : str, int or None, default "dog"
        The true class: one of ``labels``, or an index. None draws no loss.
    ax : matplotlib Axes, optional
        None makes a figure of 560 x 400 pixels.
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from crossent.plots import plot_softmax_bars
    >>> figure = plot_softmax_bars()
    >>> figure.axes[0].get_title()
    'cross-entropy = -log p(dog) = 0.464 nats'
    """
    scores = as_float_array(logits, "logits").astype(np.float64)
    if scores.ndim != 1 or scores.size < 2:
        raise ValueError(f"logits must be a 1-D sequence of at least 2 scores, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"logits must be finite, got {scores.tolist()!r}")
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a sequence of class names, got {_describe(labels)}")
    names = [str(label) for label in labels]
    if len(names) != scores.size:
        raise ValueError(f"labels must name each of the {scores.size} logits, got {len(names)} labels")
    if target is None:
        target_index = None
    elif isinstance(target, str):
        if target not in names:
            raise ValueError(f"target must be one of the labels {names!r} or an index, got {target!r}")
        target_index = names.index(target)
    elif isinstance(target, numbers.Integral) and not isinstance(target, bool):
        if not 0 <= target < scores.size:
            raise ValueError(f"target index must lie in [0, {scores.size - 1}], got {int(target)}")
        target_index = int(target)
    else:
        raise TypeError(f"target must be a label, an index or None, got {_describe(target)}")
    path = _check_path(path)
    figure, axes = (_new_figure(SOFTMAX_BARS_PIXELS), None) if ax is None else _one_axes(ax)
    if axes is None:
        axes = figure.add_subplot()

    probabilities = softmax(scores)
    colours = ["tab:gray"] * scores.size
    if target_index is not None:
        colours[target_index] = "tab:orange"
    positions = np.arange(scores.size)
    bars = axes.bar(positions, probabilities, color=colours, edgecolor="black", linewidth=0.6)
    for bar, probability in zip(bars, probabilities):
        axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02, f"{probability:.3f}",
                  ha="center", va="bottom", fontsize="small")
    axes.set_xticks(positions, [f"{name}\n$z$ = {score:g}" for name, score in zip(names, scores)])
    axes.set_ylim(0.0, 1.12)
    axes.set_ylabel("softmax probability")
    if target_index is None:
        axes.set_title("softmax probabilities")
    else:
        loss = float(softmax_cross_entropy(scores[None, :], np.array([target_index])))
        axes.set_title(f"cross-entropy = -log p({names[target_index]}) = {loss:.3f} nats")
        bars[target_index].set_label(f"target: {names[target_index]}")
        axes.legend(loc="upper right", fontsize="small")
    return _finish(figure, path)


# --------------------------------------------------------------------------- evaluation


def plot_confusion_matrix(
    confusion: ArrayLike | Mapping[str, Any], class_names: Sequence[str] | None = None, *, normalize: bool = False,
    ax: Axes | None = None, path: PathLike | None = None,
) -> Figure:
    """A confusion matrix as a heat map: rows are the true class, columns the predicted class.

    Parameters
    ----------
    confusion : array_like of shape (C, C), or the dict from :func:`crossent.evaluate`
        Counts (non-negative); ``evaluate(...)["confusion_matrix"]`` is used
        when given the whole result.
    class_names : sequence of str, optional
        Tick labels (default: the class numbers).
    normalize : bool, default False
        Divide each row by its total: the diagonal becomes each class's recall
        and a row shows where that class's samples went. Empty rows stay 0.
    ax : matplotlib Axes, optional
        None makes a figure of 640 x 560 pixels.
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Cells are annotated with their count (or rate) when there are at most 20
    classes. The title gives the accuracy (trace over total).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(confusion, Mapping):
        if "confusion_matrix" not in confusion:
            raise ValueError("confusion is a dict without a 'confusion_matrix' entry (pass evaluate()'s result)")
        matrix: ArrayLike = confusion["confusion_matrix"]
        if matrix is None:
            raise ValueError("this evaluate() result has no confusion matrix (a multi-label model)")
    else:
        matrix = confusion
    counts = as_float_array(matrix, "confusion").astype(np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {counts.shape}")
    if not np.isfinite(counts).all() or counts.min() < 0:
        raise ValueError("confusion must hold finite counts >= 0")
    normalize = _check_flag(normalize, "normalize")
    n_classes = counts.shape[0]
    names = _check_class_names(class_names, n_classes)
    path = _check_path(path)
    figure, axes = (_new_figure(CONFUSION_MATRIX_PIXELS), None) if ax is None else _one_axes(ax)
    if axes is None:
        axes = figure.add_subplot()

    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        top = 1.0
    else:
        values = counts
        top = max(float(counts.max()), 1.0)
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=top, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="fraction of the true class" if normalize else "count")
    if n_classes <= 20:
        integral = bool(np.all(counts == np.round(counts)))
        for row in range(n_classes):
            for column in range(n_classes):
                value = values[row, column]
                text = f"{value:.2f}" if normalize else (f"{int(value)}" if integral else f"{value:g}")
                axes.text(column, row, text, ha="center", va="center", fontsize="small",
                          color="white" if value > top / 2 else "black")
    positions = np.arange(n_classes)
    rotation = 45 if max(len(name) for name in names) > 3 else 0
    axes.set_xticks(positions, names, rotation=rotation, ha="right" if rotation else "center")
    axes.set_yticks(positions, names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    total = counts.sum()
    if total > 0:
        axes.set_title(f"accuracy {100 * np.trace(counts) / total:.1f}% of {total:g} samples")
    else:
        axes.set_title("no samples")
    return _finish(figure, path)


def _grid_shape(n_panels: int, max_columns: int | None = None) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(n_panels)) if max_columns is None else min(n_panels, max_columns)
    return math.ceil(n_panels / columns), columns


def _show_image(axes, pixels: np.ndarray, image_shape: tuple, **options):
    image = pixels.reshape(image_shape)
    if image.ndim == 3:  # colour: imshow takes floats in [0, 1]
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
        options.pop("cmap", None)
    artist = axes.imshow(image, interpolation="nearest", **options)
    axes.set_xticks([])
    axes.set_yticks([])
    return artist


def plot_misclassified(
    model: Model, X: ArrayLike, y: ArrayLike, *, image_shape: tuple[int, ...], class_names: Sequence[str] | None = None,
    n: int = 16, ax: Axes | Sequence[Axes] | None = None, path: PathLike | None = None,
) -> Figure:
    """A grid of the samples the model gets wrong, most confident mistakes first.

    Each panel shows the image with its true class, the predicted class and
    the probability the model gave its (wrong) prediction.

    Parameters
    ----------
    model : crossent.nn model (or anything with ``predict_proba``)
    X : array_like, shape (N, D)
        Flattened images, ``D = prod(image_shape)``.
    y : array_like of int, shape (N,)
    image_shape : tuple
        (height, width) for grey-scale, drawn dark on light; (height, width,
        3 or 4) for colour, scaled to [0, 1] per image.
    class_names : sequence of str, optional
    n : int >= 1, default 16
        Panels in the grid: ``ceil(sqrt(n))`` columns. Fewer mistakes leave
        panels blank.
    ax : None or a sequence of Axes
        Panels to draw into (at most ``len(ax)`` mistakes). None makes a
        figure of ``160 * columns`` x ``190 * rows`` pixels (640 x 760 for n=16).
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = _check_positive_int(n, "n")
    X = _check_features(X, "X")
    y = _check_labels(y, X.shape[0])
    shape = _check_image_shape(image_shape, X.shape[1], allow_channels=True)
    path = _check_path(path)
    if ax is None:
        rows, columns = _grid_shape(n)
        width, height = MISCLASSIFIED_CELL_PIXELS
        figure = _new_figure((width * columns, height * rows))
        panels = list(np.atleast_1d(figure.subplots(rows, columns)).ravel())
    else:
        panels = _axes_sequence(ax)
        figure = _root_figure(panels[0])

    probabilities = _class_probabilities(model, X)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    n_classes = max(probabilities.shape[1], int(y.max()) + 1)
    names = _check_class_names(class_names, n_classes)
    mistakes = np.flatnonzero(predicted != y)
    mistakes = mistakes[np.argsort(-confidence[mistakes], kind="stable")]
    shown = mistakes[: min(n, len(panels))]
    for panel, row in zip(panels, shown):
        _show_image(panel, X[row], shape, cmap="gray_r")
        panel.set_title(
            f"true {names[y[row]]}, pred {names[predicted[row]]}\n({100 * confidence[row]:.0f}% sure)",
            fontsize="small", color="tab:red",
        )
    for panel in panels[len(shown):]:
        panel.axis("off")
    if mistakes.size == 0:
        figure.suptitle(f"no misclassified samples among {X.shape[0]}")
    else:
        figure.suptitle(
            f"{mistakes.size} of {X.shape[0]} misclassified; the {len(shown)} most confident mistakes"
        )
    return _finish(figure, path)


def _linear_weight(model) -> np.ndarray:
    if isinstance(model, np.ndarray):
        weight = model
    else:
        parameters = getattr(model, "parameters", None)
        if not callable(parameters):
            raise TypeError(f"model must be a crossent model or a (C, D) weight array, got {_describe(model)}")
        parameters = parameters()
        if len(parameters) != 2:
            raise ValueError(
                f"model must have a single linear layer (SoftmaxRegression, LogisticRegression), but "
                f"{type(model).__name__} has {len(parameters)} parameter arrays; to see a first layer's "
                f"weights, pass model.parameters()[0] instead"
            )
        weight = parameters[0]
    weight = as_float_array(weight, "model weight")
    if weight.ndim != 2:
        raise ValueError(f"the weight must be a (C, D) matrix, got shape {weight.shape}")
    return weight


def plot_weight_templates(
    model: Model, *, image_shape: tuple[int, ...], class_names: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None, path: PathLike | None = None,
) -> Figure:
    r"""The rows of a linear classifier's weight matrix drawn as images: what each class looks for.

    For :class:`~crossent.nn.SoftmaxRegression` the logit of class :math:`c`
    is :math:`z_c = w_c \cdot x + b_c`, so row :math:`w_c` reshaped to the
    image is a template: red pixels raise the class's score where there is
    ink, blue pixels lower it. All rows share one colour scale centred at 0
    (``RdBu_r``, from :math:`-\max|W|` to :math:`+\max|W|`) so they can be
    compared.

    Parameters
    ----------
    model : single-layer crossent model, or a (C, D) array
        A model whose parameters are (weight (C, D), bias (C,)), such as
        SoftmaxRegression; or any weight matrix (e.g. an MLP's first layer,
        ``model.parameters()[0]``).
    image_shape : (height, width)
        With ``height * width == D``.
    class_names : sequence of str, optional
        Panel titles (default: the row numbers).
    ax : None or a sequence of at least C Axes
        None makes a figure of ``150 * columns + 90`` x ``170 * rows`` pixels
        with up to 5 columns (840 x 340 for 10 classes).
    path : str or os.PathLike, optional
        Also save the figure there (format from the suffix, :data:`SAVE_DPI`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    weight = _linear_weight(model)
    n_templates, n_features = weight.shape
    shape = _check_image_shape(image_shape, n_features, allow_channels=False)
    names = _check_class_names(class_names, n_templates)
    path = _check_path(path)
    if ax is None:
        rows, columns = _grid_shape(n_templates, max_columns=5)
        width, height = WEIGHT_TEMPLATE_CELL_PIXELS
        figure = _new_figure((width * columns + WEIGHT_TEMPLATE_COLORBAR_PIXELS, height * rows))
        panels = list(np.atleast_1d(figure.subplots(rows, columns)).ravel())
    else:
        panels = _axes_sequence(ax)
        if len(panels) < n_templates:
            raise ValueError(f"ax must hold at least {n_templates} Axes (one per class), got {len(panels)}")
        figure = _root_figure(panels[0])

    limit = float(np.max(np.abs(weight)))
    limit = limit if limit > 0 else 1.0
    image = None
    for panel, row, name in zip(panels, weight, names):
        image = _show_image(panel, np.asarray(row, dtype=np.float64), shape, cmap="RdBu_r", vmin=-limit, vmax=limit)
        panel.set_title(name, fontsize="small")
    for panel in panels[n_templates:]:
        panel.axis("off")
    figure.colorbar(image, ax=panels, shrink=0.8, label="weight")
    return _finish(figure, path)
