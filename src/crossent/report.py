r"""A training run as one self-contained HTML page: configuration, metrics, curves, confusion, mistakes.

:func:`write_report` writes ``<directory>/index.html``. The page is a single
file that can be mailed, archived or opened from disk years later:

* every figure is a PNG embedded as a ``data:image/png;base64,...`` URI,
  drawn with :mod:`crossent.plots` (matplotlib, imported lazily);
* the styling is one inline ``<style>`` block, there are no fonts, scripts or
  images from elsewhere, and a ``Content-Security-Policy`` meta tag forbids
  the browser from fetching anything that is not inline;
* every string that comes from the caller (configuration keys and values,
  class names, the title) is HTML-escaped.

A short inline script records, once the page has loaded, how many images
there are and how many decoded (``naturalWidth > 0``) as
``<body data-images="N" data-images-loaded="M">``, so a headless browser's
dumped DOM shows whether every figure rendered.

Sections, in order: configuration (a table of ``config`` and the model's
architecture), metrics (accuracy, loss in nats and bits, perplexity, and per
class precision, recall and support), training curves
(:func:`~crossent.plots.plot_history`) with the per-epoch numbers, the
confusion matrix (:func:`~crossent.plots.plot_confusion_matrix`), and, when
``image_shape`` is given, the weight templates of a
:class:`~crossent.nn.SoftmaxRegression` (:func:`~crossent.plots.plot_weight_templates`)
and the most confident mistakes on the test set
(:func:`~crossent.plots.plot_misclassified`).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ._io import atomic_output
from ._typing import PathLike
from ._validation import _describe
from .plots import _check_class_names, _history_records

if TYPE_CHECKING:
    from .nn import Model
    from .train import History

__all__ = ["write_report", "REPORT_FILE_NAME"]

#: the file :func:`write_report` writes inside its directory
REPORT_FILE_NAME = "index.html"

DEFAULT_TITLE = "crossent training report"

# Loaded before any figure, so a browser without JavaScript still shows the page; the counts only
# appear in the DOM (data-images, data-images-loaded on <body>) once every image has had its chance.
_IMAGE_CHECK_SCRIPT = """\
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  document.body.dataset.images = String(images.length);
  document.body.dataset.imagesLoaded = String(loaded);
});"""

# Nothing may be fetched: images are data: URIs, style and script are inline.
_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)

_STYLE = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1240px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
p.subtitle { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { font-size: 0.95em; }
"""


# --------------------------------------------------------------------------- argument checks


def _check_directory(directory) -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a folder name (str or os.PathLike), got {_describe(directory)}")
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"directory must be a folder; {str(path)!r} is a file")
    return path


def _check_evaluation(evaluation) -> Mapping:
    if not isinstance(evaluation, Mapping):
        raise TypeError(f"evaluation must be the dict returned by crossent.evaluate, got {_describe(evaluation)}")
    missing = [key for key in ("accuracy", "loss") if key not in evaluation]
    if missing:
        raise ValueError(
            f"evaluation must be crossent.evaluate's result; it has no {', '.join(repr(k) for k in missing)} "
            f"entry (keys: {', '.join(repr(k) for k in evaluation)})"
        )
    return evaluation


def _check_config(config) -> Mapping:
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict of run settings, got {_describe(config)}")
    return config


def _check_title(title) -> str:
    if title is None:
        return DEFAULT_TITLE
    if not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {_describe(title)}")
    return title


def _check_image_shape(image_shape, model, X_test) -> tuple:
    """``image_shape`` as a tuple matching the number of features, checked before anything is drawn."""
    from .plots import _check_image_shape as check_against_features

    if X_test is not None:
        n_features = int(np.shape(X_test)[-1])
    else:
        model_features = getattr(model, "n_features", None)
        if not isinstance(model_features, numbers.Integral):
            raise TypeError(
                f"image_shape needs a model with n_features or the test data, got model {_describe(model)}"
            )
        n_features = int(model_features)
    return check_against_features(image_shape, n_features, allow_channels=True)


def _check_test_data(X_test, y_test):
    if (X_test is None) != (y_test is None):
        given, missing = ("X_test", "y_test") if y_test is None else ("y_test", "X_test")
        raise ValueError(f"{given} was given without {missing}: pass both test arrays or neither")
    return X_test, y_test


# --------------------------------------------------------------------------- formatting


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _format_number(value, digits: int = 4) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, (bool, np.bool_)):
        return _escape(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value)}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "&mdash;"
        if math.isinf(number):
            return "&infin;" if number > 0 else "&minus;&infin;"
        if number != 0 and (abs(number) < 10 ** -digits or abs(number) >= 10 ** 7):
            return f"{number:.{digits}e}"
        return f"{number:.{digits}f}"
    return _escape(value)


def _format_setting(value) -> str:
    """A configuration value as escaped text: scalars as they are, containers as compact JSON."""
    if isinstance(value, (Mapping, list, tuple)):
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    return f"<code>{_escape(text)}</code>"


def _percent(value) -> str:
    if value is None or (isinstance(value, numbers.Real) and math.isnan(float(value))):
        return "&mdash;"
    return f"{100 * float(value):.2f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, css_class: str, numeric_from: int = 1) -> str:
    """An HTML table; ``header`` is escaped here, cells must already be HTML (escaped or formatted)."""
    lines = [f'<table class="{css_class}">', "<thead><tr>"]
    lines.extend(f"<th>{_escape(name)}</th>" for name in header)
    lines.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="number">{cell}</td>' if index >= numeric_from else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures


def _png_data_uri(figure) -> str:
    from .plots import SAVE_DPI

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=SAVE_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_html(figure, alt: str, caption: str) -> str:
    from .plots import SAVE_DPI

    width, height = (int(round(size * SAVE_DPI)) for size in figure.get_size_inches())
    return (
        f'<figure><img src="{_png_data_uri(figure)}" alt="{_escape(alt)}" width="{width}" height="{height}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _is_linear_softmax(model) -> bool:
    from .nn import SoftmaxRegression

    return isinstance(model, SoftmaxRegression)


# --------------------------------------------------------------------------- sections


def _configuration_section(config: Mapping, model) -> str:
    rows = [[f"<code>{_escape(key)}</code>", _format_setting(value)] for key, value in config.items()]
    parts = ["<section id=\"configuration\"><h2>Configuration</h2>"]
    if rows:
        parts.append(_table(["setting", "value"], rows, css_class="configuration", numeric_from=2))
    else:
        parts.append("<p>No settings were recorded.</p>")
    model_rows = [["class", f"<code>{_escape(type(model).__name__)}</code>"]]
    n_parameters = getattr(model, "n_parameters", None)
    if isinstance(n_parameters, numbers.Integral):
        model_rows.append(["parameters", f"{int(n_parameters):,}"])
    config_method = getattr(model, "config", None)
    if callable(config_method):
        try:
            architecture = config_method()
        except (TypeError, ValueError, NotImplementedError):
            architecture = None
        if isinstance(architecture, Mapping):
            model_rows.extend(
                [f"<code>{_escape(key)}</code>", _format_setting(value)]
                for key, value in architecture.items() if key != "class"
            )
    parts.append("<h3>Model</h3>")
    parts.append(_table(["property", "value"], model_rows, css_class="model", numeric_from=2))
    parts.append("</section>")
    return "\n".join(parts)


def _metrics_section(evaluation: Mapping, class_names) -> str:
    loss = float(evaluation["loss"])
    loss_bits = evaluation.get("loss_bits", loss / math.log(2))
    perplexity = evaluation.get("perplexity", math.exp(loss) if loss < 700 else math.inf)
    rows = [
        ["accuracy", _percent(evaluation["accuracy"])],
        ["error rate", _percent(1.0 - float(evaluation["accuracy"]))],
        ["loss (nats)", _format_number(loss)],
        ["loss (bits)", _format_number(loss_bits)],
        ["perplexity", _format_number(perplexity)],
    ]
    if "n_samples" in evaluation:
        rows.append(["samples", _format_number(evaluation["n_samples"])])
    parts = [
        "<section id=\"metrics\"><h2>Metrics</h2>",
        "<p>On the evaluation set. The loss is the mean cross-entropy; bits = nats / ln 2, perplexity = "
        "e<sup>loss</sup> (the effective number of classes the model hesitates between).</p>",
        _table(["metric", "value"], rows, css_class="metrics"),
    ]
    precision, recall = evaluation.get("precision"), evaluation.get("recall")
    if precision is not None and recall is not None:
        confusion = evaluation.get("confusion_matrix")
        support = np.asarray(confusion).sum(axis=1).tolist() if confusion is not None else None
        names = _check_class_names(class_names, len(precision))
        class_rows = []
        for index, (name, class_precision, class_recall) in enumerate(zip(names, precision, recall)):
            row = [_escape(name), _percent(class_precision), _percent(class_recall)]
            if support is not None and index < len(support):
                row.append(_format_number(int(support[index])))
            class_rows.append(row)
        header = ["class", "precision", "recall"] + (["support"] if support is not None else [])
        parts.append("<h3>Per class</h3>")
        parts.append(_table(header, class_rows, css_class="per-class"))
    parts.append("</section>")
    return "\n".join(parts)


_EPOCH_COLUMNS = (
    ("epoch", "epoch"),
    ("train_loss", "train loss"),
    ("train_accuracy", "train accuracy"),
    ("val_loss", "val loss"),
    ("val_accuracy", "val accuracy"),
    ("lr", "learning rate"),
    ("time_s", "time (s)"),
)


def _training_section(records: list, history) -> str:
    from .plots import plot_history

    figure = plot_history(history if hasattr(history, "records") else records)
    columns = [(key, label) for key, label in _EPOCH_COLUMNS if any(r.get(key) is not None for r in records)]
    rows = []
    for record in records:
        row = []
        for key, _ in columns:
            value = record.get(key)
            row.append(_percent(value) if key.endswith("accuracy") and value is not None else _format_number(value))
        rows.append(row)
    return "\n".join([
        "<section id=\"training\"><h2>Training</h2>",
        _figure_html(figure, "training curves: loss, accuracy and learning rate per epoch",
                     "Loss (nats) and accuracy per epoch, training against validation; the learning rate."),
        _table([label for _, label in columns], rows, css_class="epochs", numeric_from=0),
        "</section>",
    ])


def _confusion_section(evaluation: Mapping, class_names) -> str:
    from .plots import plot_confusion_matrix

    confusion = evaluation.get("confusion_matrix")
    if confusion is None:
        return ""
    n_classes = len(confusion)
    names = _check_class_names(class_names, n_classes)
    figure = plot_confusion_matrix(confusion, names)
    return "\n".join([
        "<section id=\"confusion\"><h2>Confusion matrix</h2>",
        _figure_html(figure, "confusion matrix", "Rows: true class; columns: predicted class; counts."),
        "</section>",
    ])


def _image_sections(model, X_test, y_test, image_shape, class_names) -> str:
    from .plots import plot_misclassified, plot_weight_templates

    parts = []
    if _is_linear_softmax(model) and len(image_shape) == 2:  # templates are drawn in grey levels only
        names = _check_class_names(class_names, model.n_classes) if class_names is not None else None
        figure = plot_weight_templates(model, image_shape=image_shape, class_names=names)
        parts.extend([
            "<section id=\"weights\"><h2>Weight templates</h2>",
            _figure_html(figure, "weight templates: one image per class",
                         "Each class's row of the weight matrix as an image: red pixels raise the class's "
                         "score where there is ink, blue pixels lower it."),
            "</section>",
        ])
    if X_test is not None:
        figure = plot_misclassified(model, X_test, y_test, image_shape=image_shape, class_names=class_names)
        parts.extend([
            "<section id=\"mistakes\"><h2>Mistakes</h2>",
            _figure_html(figure, "the most confident mistakes on the test set",
                         "The test images the model gets wrong, most confident first."),
            "</section>",
        ])
    return "\n".join(parts)


# --------------------------------------------------------------------------- the page


def write_report(
    directory: PathLike,
    *,
    model: Model,
    history: History | Sequence[Mapping[str, Any]],
    evaluation: Mapping[str, Any],
    config: Mapping[str, Any],
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    image_shape: tuple[int, ...] | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write ``directory/index.html``: a self-contained HTML report of one training run.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder for the report; created (with its parents) if missing. An
        existing ``index.html`` there is replaced atomically: readers see the
        old page or the new one, never half of one.
    model : crossent.nn model
        The trained model (its class, parameter count and architecture are
        listed; it draws the weight templates and the mistakes).
    history : crossent.History or list of dict
        :func:`crossent.fit`'s result: the training curves and per-epoch table.
    evaluation : dict
        :func:`crossent.evaluate`'s result on the test set: ``accuracy``,
        ``loss`` and, when present, ``loss_bits``, ``perplexity``,
        ``n_samples``, per-class ``precision`` and ``recall`` and the
        ``confusion_matrix``.
    config : dict
        The run's settings (data set, loss, optimiser, learning rate, ...),
        shown as a table in insertion order; containers are shown as JSON.
    X_test, y_test : array_like, optional
        Test features (N, D) and labels (N,), both or neither; with
        ``image_shape`` they give the grid of the most confident mistakes.
    image_shape : tuple, optional
        (height, width), or (height, width, 3 or 4) for colour, of the images
        when the features are pixels: adds the weight templates (for a
        :class:`~crossent.nn.SoftmaxRegression` and grey-level images) and the
        mistakes (when the test data is given). Checked against the number of
        features before anything is drawn.
    class_names : sequence of str, optional
        Names of the classes (default: their numbers).
    title : str, optional
        Page heading and ``<title>`` (default ``"crossent training report"``).

    Returns
    -------
    pathlib.Path
        The path of ``index.html``.

    Every caller-supplied string is HTML-escaped; images are embedded as
    base64 PNG ``data:`` URIs and the page makes no network request.

    Examples
    --------
    >>> import tempfile
    >>> import crossent
    >>> from crossent.datasets import load_digits
    >>> from crossent.nn import SoftmaxRegression
    >>> from crossent.report import write_report
    >>> X_train, y_train, X_test, y_test = load_digits(seed=0)
    >>> model = SoftmaxRegression(64, 10)
    >>> history = crossent.fit(model, X_train, y_train, lr=0.5, epochs=2, progress=False)
    >>> evaluation = crossent.evaluate(model, X_test, y_test)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = write_report(folder, model=model, history=history, evaluation=evaluation,
    ...                         config={"data": "digits", "lr": 0.5})
    ...     text = page.read_text(encoding="utf-8")
    >>> page.name, text.count("<img "), "http://" in text or "https://" in text
    ('index.html', 2, False)

    ``X_test=X_test, y_test=y_test, image_shape=(8, 8)`` would add the weight
    templates and the most confident mistakes.
    """
    folder = _check_directory(directory)
    records = _history_records(history, purpose="before writing its report")
    evaluation = _check_evaluation(evaluation)
    config = _check_config(config)
    title = _check_title(title)
    X_test, y_test = _check_test_data(X_test, y_test)
    if class_names is not None:
        _check_class_names(class_names, 0)  # type check now, before any drawing; the count is checked per use
    if image_shape is not None:
        image_shape = _check_image_shape(image_shape, model, X_test)

    sections = [
        _configuration_section(config, model),
        _metrics_section(evaluation, class_names),
        _training_section(records, history),
        _confusion_section(evaluation, class_names),
    ]
    if image_shape is not None:
        sections.append(_image_sections(model, X_test, y_test, image_shape, class_names))

    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from . import __version__

    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CONTENT_SECURITY_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title>",
        f"<style>\n{_STYLE}</style>",
        f"<script>\n{_IMAGE_CHECK_SCRIPT}\n</script>",
        "</head>",
        "<body>",
        f"<h1>{_escape(title)}</h1>",
        f'<p class="subtitle">Written by crossent {_escape(__version__)} on {created}.</p>',
        *[section for section in sections if section],
        "</body>",
        "</html>",
        "",
    ])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILE_NAME
    with atomic_output(path) as stream:
        stream.write(page.encode("utf-8"))
    return path
