"""crossent.plots: files of the stated pixel size, figures that show the right numbers, a GIF frame per batch.

Figures are drawn with the Agg canvas (crossent.plots never touches pyplot);
files go to tmp_path and are read back with Pillow.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import crossent
from crossent import plots
from crossent.datasets.synthetic import make_blobs, make_moons
from crossent.nn import MLP, SoftmaxRegression

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")


def _run_python(code: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, timeout=120)


# --------------------------------------------------------------------------- lazy import


def test_importing_crossent_plots_does_not_import_matplotlib():
    result = _run_python(f"""
        import sys
        import crossent, crossent.plots
        assert "matplotlib" not in sys.modules, "importing crossent.plots imported matplotlib"
        if {HAS_MATPLOTLIB}:
            crossent.plots.plot_softmax_bars()
            assert "matplotlib" in sys.modules
            # figures are made without pyplot: no GUI backend, no display needed
            assert "matplotlib.pyplot" not in sys.modules, "a plot function imported pyplot"
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_matplotlib_raises_import_error_with_the_install_command():
    result = _run_python("""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
        import crossent.plots
        try:
            crossent.plots.plot_cross_entropy_curve()
        except ImportError as error:
            print(error)
        else:
            print("no error")
    """)
    assert result.returncode == 0, result.stderr
    assert "pip install 'crossent[plot]'" in result.stdout


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def blobs_model():
    X, y = make_blobs(120, 3, seed=0)
    model = SoftmaxRegression(2, 3)
    history = crossent.fit(model, X, y, optimizer="adam", lr=0.05, epochs=6, batch_size=32,
                           validation_split=0.25, schedule="cosine", early_stopping=3, progress=False)
    return model, X, y, history


@pytest.fixture(scope="module")
def digits_model():
    X_train, y_train, X_test, y_test = crossent.datasets.load_digits()
    model = SoftmaxRegression(64, 10)
    crossent.fit(model, X_train, y_train, epochs=1, progress=False)
    return model, X_test, y_test


def _png_size(path):
    from PIL import Image

    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


# --------------------------------------------------------------------------- every function writes its stated size


@needs_matplotlib
@pytest.mark.parametrize(
    "name, draw, expected_size",
    [
        ("history", lambda b, d, p: plots.plot_history(b[3], path=p), (1200, 360)),
        ("surface", lambda b, d, p: plots.plot_decision_surface(b[0], b[1], b[2], resolution=50, path=p), (600, 520)),
        ("curve", lambda b, d, p: plots.plot_cross_entropy_curve(path=p), (1100, 420)),
        ("bars", lambda b, d, p: plots.plot_softmax_bars(path=p), (560, 400)),
        ("confusion", lambda b, d, p: plots.plot_confusion_matrix(crossent.evaluate(*d)["confusion_matrix"], path=p),
         (640, 560)),
        ("misclassified", lambda b, d, p: plots.plot_misclassified(*d, image_shape=(8, 8), path=p), (640, 760)),
        ("misclassified-5", lambda b, d, p: plots.plot_misclassified(*d, image_shape=(8, 8), n=5, path=p),
         (3 * 160, 2 * 190)),
        ("templates", lambda b, d, p: plots.plot_weight_templates(d[0], image_shape=(8, 8), path=p), (840, 340)),
        ("templates-3", lambda b, d, p: plots.plot_weight_templates(b[0], image_shape=(2, 1), path=p), (540, 170)),
    ],
)
def test_each_plot_writes_a_png_of_the_stated_size_and_returns_the_figure(
    name, draw, expected_size, blobs_model, digits_model, tmp_path
):
    from matplotlib.figure import Figure

    path = tmp_path / f"{name}.png"
    figure = draw(blobs_model, digits_model, path)
    assert isinstance(figure, Figure)
    assert _png_size(path) == expected_size
    assert os.listdir(tmp_path) == [path.name]  # the temporary file was moved, not left behind


@needs_matplotlib
def test_no_path_writes_nothing_and_other_suffixes_choose_the_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plots.plot_softmax_bars()
    assert os.listdir(tmp_path) == []
    plots.plot_softmax_bars(path=tmp_path / "bars.svg")
    plots.plot_softmax_bars(path=str(tmp_path / "bars.PDF"))
    assert b"<svg" in (tmp_path / "bars.svg").read_bytes()[:500]
    assert (tmp_path / "bars.PDF").read_bytes().startswith(b"%PDF")


@needs_matplotlib
def test_saving_replaces_an_existing_file_and_a_bad_path_leaves_it_alone(tmp_path):
    path = tmp_path / "curve.png"
    path.write_bytes(b"old")
    plots.plot_cross_entropy_curve(path=path)
    assert _png_size(path) == (1100, 420)
    with pytest.raises(ValueError, match="path"):
        plots.plot_cross_entropy_curve(path=tmp_path / "curve.unknown")
    with pytest.raises(ValueError, match="path"):
        plots.plot_cross_entropy_curve(path=tmp_path / "no_suffix")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plots.plot_cross_entropy_curve(path=tmp_path / "missing" / "curve.png")
    with pytest.raises(TypeError, match="path"):
        plots.plot_cross_entropy_curve(path=3)
    assert sorted(os.listdir(tmp_path)) == ["curve.png"]


@needs_matplotlib
def test_drawing_into_given_axes_returns_their_figure_and_saves_it_at_save_dpi(blobs_model, tmp_path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3))
    left, right = figure.subplots(1, 2)
    model, X, y, history = blobs_model
    assert plots.plot_decision_surface(model, X, y, resolution=20, ax=left) is figure
    path = tmp_path / "mine.png"
    assert plots.plot_softmax_bars(ax=right, path=path) is figure
    assert _png_size(path) == (4 * plots.SAVE_DPI, 3 * plots.SAVE_DPI)
    assert len(left.images) == 1 and len(right.patches) == 3

    panels = Figure().subplots(1, 2)
    assert plots.plot_history(history, ax=panels) is panels[0].figure  # loss and accuracy only
    with pytest.raises(ValueError, match="ax"):
        plots.plot_history(history, ax=[panels[0]])
    with pytest.raises(TypeError, match="ax"):
        plots.plot_softmax_bars(ax="left")


# --------------------------------------------------------------------------- what the figures show


@needs_matplotlib
def test_cross_entropy_curves_are_the_closed_forms():
    figure = plots.plot_cross_entropy_curve()
    loss_ax, gradient_ax = figure.axes
    p = loss_ax.lines[0].get_xdata()
    expected = [-np.log(p), -np.log(p), -np.log1p(-p), 0.5 * (1 - p) ** 2]
    for line, values in zip(loss_ax.lines, expected, strict=True):
        np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-12, atol=1e-15)
    # the gradient with respect to the logit: p - 1 for cross-entropy, (p - 1) p (1 - p) for the quadratic
    expected_gradients = [1 - p, (1 - p) * p * (1 - p)]
    for line, values in zip(gradient_ax.lines, expected_gradients, strict=True):
        np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-9, atol=1e-15)


@needs_matplotlib
def test_softmax_bars_show_the_probabilities_and_the_target_loss():
    logits = np.array([0.3, -1.0, 2.5, 0.0])
    figure = plots.plot_softmax_bars(logits, ["a", "b", "c", "d"], target="b")
    axes = figure.axes[0]
    heights = [bar.get_height() for bar in axes.patches]
    reference = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(heights, reference, rtol=1e-12)
    assert f"{-np.log(reference[1]):.3f}" in axes.get_title() and "p(b)" in axes.get_title()
    colours = [bar.get_facecolor() for bar in axes.patches]
    assert colours[1] != colours[0] and colours[0] == colours[2] == colours[3]
    # an index names the target too
    assert plots.plot_softmax_bars(logits, ["a", "b", "c", "d"], target=1).axes[0].get_title() == axes.get_title()


@needs_matplotlib
def test_decision_surface_colours_the_predicted_class():
    # class 0 left of x1 = 0, class 1 right of it
    model = SoftmaxRegression(2, 2, dtype=np.float64)
    weight, bias = model.parameters()
    weight[...] = [[-5.0, 0.0], [5.0, 0.0]]
    bias[...] = 0.0
    X = np.array([[-2.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [2.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    figure = plots.plot_decision_surface(model, X, y, resolution=40)
    image = np.asarray(figure.axes[0].images[0].get_array())
    assert image.shape == (40, 40, 3)
    left, right = image[:, 0], image[:, -1]
    # tab:blue (class 0) has more blue than red; tab:orange (class 1) the opposite
    assert np.all(left[:, 2] > left[:, 0]) and np.all(right[:, 0] > right[:, 2])
    # confident far from the boundary, pale next to it
    middle = image[:, 19]
    assert np.all(middle.sum(axis=1) > left.sum(axis=1))
    assert "100.0%" in figure.axes[0].get_title()


@needs_matplotlib
def test_confusion_matrix_counts_and_row_normalisation():
    confusion = np.array([[5, 1, 0], [2, 2, 0], [0, 0, 0]])
    counts_figure = plots.plot_confusion_matrix(confusion, ["x", "y", "z"])
    texts = [text.get_text() for text in counts_figure.axes[0].texts]
    assert texts == [str(value) for value in confusion.ravel()]
    assert "70.0%" in counts_figure.axes[0].get_title()  # 7 of 10 on the diagonal
    rates_figure = plots.plot_confusion_matrix({"confusion_matrix": confusion.tolist()}, normalize=True)
    shown = np.asarray(rates_figure.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, [[5 / 6, 1 / 6, 0], [0.5, 0.5, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="confusion"):
        plots.plot_confusion_matrix([[1, -1], [0, 1]])
    with pytest.raises(TypeError, match="normalize"):
        plots.plot_confusion_matrix(confusion, normalize="rows")
    with pytest.raises(ValueError, match="class_names"):
        plots.plot_confusion_matrix(confusion, ["only", "two"])


@needs_matplotlib
def test_misclassified_shows_the_most_confident_mistakes_first(digits_model):
    model, X, y = digits_model
    probabilities = model.predict_proba(X)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    assert wrong.size >= 4
    figure = plots.plot_misclassified(model, X, y, image_shape=(8, 8), n=4)
    panels = figure.axes
    most_confident = wrong[np.argsort(-probabilities[wrong].max(axis=1), kind="stable")][:4]
    for panel, row in zip(panels, most_confident, strict=True):
        assert panel.get_title().startswith(f"true {y[row]}, pred {predicted[row]}")
        np.testing.assert_array_equal(panel.images[0].get_array(), X[row].reshape(8, 8))
    assert f"{wrong.size} of {len(y)} misclassified" in figure.get_suptitle()

    right = predicted == y
    figure = plots.plot_misclassified(model, X[right], y[right], image_shape=(8, 8), n=4)
    assert "no misclassified" in figure.get_suptitle()
    assert all(not panel.images for panel in figure.axes)
    with pytest.raises(ValueError, match="image_shape"):
        plots.plot_misclassified(model, X, y, image_shape=(7, 8))
    with pytest.raises(ValueError, match="n must"):
        plots.plot_misclassified(model, X, y, image_shape=(8, 8), n=0)


@needs_matplotlib
def test_weight_templates_are_the_weight_rows_on_a_symmetric_scale(digits_model):
    model, _, _ = digits_model
    weight = model.parameters()[0]
    figure = plots.plot_weight_templates(model, image_shape=(8, 8), class_names=list("abcdefghij"))
    images = [panel.images[0] for panel in figure.axes if panel.images]
    assert len(images) == 10
    limit = np.abs(weight).max()
    for image, row in zip(images, weight, strict=True):
        np.testing.assert_allclose(image.get_array(), row.reshape(8, 8))
        assert image.get_clim() == pytest.approx((-limit, limit))
    assert [panel.get_title() for panel in figure.axes[:10]] == list("abcdefghij")
    with pytest.raises(ValueError, match="single linear layer"):
        plots.plot_weight_templates(MLP(64, [4], 10), image_shape=(8, 8))
    with pytest.raises(ValueError, match="image_shape"):
        plots.plot_weight_templates(model, image_shape=(8, 8, 1))


@needs_matplotlib
def test_history_plots_the_recorded_columns(blobs_model):
    history = blobs_model[3]
    figure = plots.plot_history(history)
    loss_ax, accuracy_ax, lr_ax = figure.axes
    train_line, val_line = loss_ax.lines[:2]
    np.testing.assert_allclose(train_line.get_ydata(), history["train_loss"])
    np.testing.assert_allclose(val_line.get_ydata(), history["val_loss"])
    np.testing.assert_allclose(accuracy_ax.lines[0].get_ydata(), 100 * np.array(history["train_accuracy"]))
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata(), history["lr"])
    assert loss_ax.get_ylabel() == "loss (nats)"
    if history.best_epoch is not None:  # the dotted marker of early stopping's best epoch
        assert loss_ax.lines[2].get_xdata()[0] == history.records[history.best_epoch]["epoch"]
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_history([])
    with pytest.raises(TypeError, match="history"):
        plots.plot_history({"train_loss": [1.0]})


@needs_matplotlib
@pytest.mark.parametrize(
    "call, error, argument",
    [
        (lambda m, X, y: plots.plot_decision_surface(m, X, y, resolution=1), ValueError, "resolution"),
        (lambda m, X, y: plots.plot_decision_surface(m, np.hstack([X, X]), y), ValueError, "X"),
        (lambda m, X, y: plots.plot_decision_surface(m, X, y[:-1]), ValueError, "y"),
        (lambda m, X, y: plots.plot_decision_surface(m, X, y.astype(float)), TypeError, "y"),
        (lambda m, X, y: plots.plot_softmax_bars([1.0, 2.0], ["a"]), ValueError, "labels"),
        (lambda m, X, y: plots.plot_softmax_bars(target="fish"), ValueError, "target"),
        (lambda m, X, y: plots.plot_softmax_bars(target=3), ValueError, "target"),
        (lambda m, X, y: plots.plot_softmax_bars([1.0, np.nan, 0.0]), ValueError, "logits"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, argument, blobs_model):
    model, X, y, _ = blobs_model
    with pytest.raises(error, match=argument):
        call(model, X, y)


# --------------------------------------------------------------------------- animation


@needs_matplotlib
def test_animation_has_one_frame_per_batch_and_trains_like_fit(tmp_path):
    from PIL import Image

    X, y = make_moons(40, seed=0)
    animated, fitted = MLP(2, [8], 2, seed=0), MLP(2, [8], 2, seed=0)
    path = tmp_path / "training.gif"
    result = plots.animate_training(
        animated, X, y, optimizer=crossent.optim.SGD(animated.parameters(), lr=0.2), epochs=1,
        batch_size=10, seed=3, path=path, resolution=20,
    )
    assert len(result.losses) == 4 and result.n_frames == 4 and result.frame_batches == [0, 1, 2, 3]
    assert result.path == path
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4
        assert gif.size == plots.ANIMATION_PIXELS
    assert os.listdir(tmp_path) == ["training.gif"]
    # the same batches and steps as fit with the same seed: identical weights
    history = crossent.fit(fitted, X, y, optimizer="sgd", lr=0.2, epochs=1, batch_size=10, seed=3, progress=False)
    for mine, theirs in zip(animated.parameters(), fitted.parameters(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert np.mean(result.losses) == pytest.approx(history["train_loss"][0])


@needs_matplotlib
def test_animation_max_frames_spreads_frames_and_keeps_every_loss(tmp_path):
    from PIL import Image

    X, y = make_moons(40, seed=1)
    model = MLP(2, [8], 2, seed=0)
    result = plots.animate_training(model, X, y, optimizer="adam", epochs=2, batch_size=10, path=tmp_path / "a.gif",
                                    max_frames=3, resolution=16, fps=20)
    assert len(result.losses) == 8
    assert result.frame_batches == [2, 5, 7] and result.n_frames == 3
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 3
        assert gif.info["duration"] == 50  # 1000 / fps milliseconds per frame


@needs_matplotlib
def test_animation_checks_arguments_before_training_and_writes_nothing_when_training_diverges(tmp_path):
    X, y = make_moons(40, seed=0)
    model = MLP(2, [8], 2, seed=0)
    before = [parameter.copy() for parameter in model.parameters()]
    for keywords, argument in [
        ({"path": tmp_path / "a.png"}, "path"),
        ({"path": tmp_path / "a.gif", "fps": 0}, "fps"),
        ({"path": tmp_path / "a.gif", "max_frames": 0}, "max_frames"),
        ({"path": tmp_path / "a.gif", "batch_size": 0}, "batch_size"),
        ({"path": tmp_path / "a.gif", "epochs": 0}, "epochs"),
    ]:
        with pytest.raises(ValueError, match=argument):
            plots.animate_training(model, X, y, optimizer="sgd", **keywords)
    with pytest.raises(TypeError, match="optimizer"):
        plots.animate_training(model, X, y, optimizer=0.1, path=tmp_path / "a.gif")
    for parameter, original in zip(model.parameters(), before, strict=True):
        np.testing.assert_array_equal(parameter, original)

    class PoisonedOptimizer:
        """Makes every weight NaN: the next batch's loss is NaN."""

        def step(self, gradients):
            for parameter in model.parameters():
                parameter[...] = np.nan

    with pytest.raises(crossent.TrainingDivergedError, match="batch 2"):
        plots.animate_training(model, X, y, optimizer=PoisonedOptimizer(), batch_size=10, path=tmp_path / "a.gif")
    assert os.listdir(tmp_path) == []
