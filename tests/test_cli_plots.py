"""crossent plot / experiment / train --plots --report from the command line."""

import pytest

from crossent.cli import main

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")


@pytest.fixture(autouse=True)
def no_mnist_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _image_size(path):
    with Image.open(path) as image:
        return image.size


def test_train_writes_plots_and_a_report(tmp_path, capsys):
    plots, report = tmp_path / "plots", tmp_path / "report"
    assert main(["train", "--epochs", "3", "--plots", str(plots), "--report", str(report), "--quiet"]) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["confusion.png", "history.png", "mistakes.png", "weights.png"]
    for path in plots.iterdir():
        width, height = _image_size(path)
        assert width > 100 and height > 100
    html = (report / "index.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html


@pytest.mark.parametrize("kind", ["curve", "softmax", "surface"])
def test_plots_without_a_model(kind, tmp_path, capsys):
    out = tmp_path / f"{kind}.png"
    argv = ["plot", kind, "--out", str(out)] + (["--epochs", "20"] if kind == "surface" else [])
    assert main(argv) == 0
    assert _image_size(out)[0] > 100


def test_animation_has_frames(tmp_path, capsys):
    out = tmp_path / "training.gif"
    assert main(["plot", "animate", "--epochs", "1", "--out", str(out)]) == 0
    with Image.open(out) as image:
        assert image.n_frames == 10  # 300 moons / batch 32 -> 10 batches, one frame each


def test_plots_of_a_saved_model(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["train", "--epochs", "2", "--save", str(model), "--quiet"]) == 0
    for kind in ("history", "confusion", "weights"):
        out = tmp_path / f"{kind}.png"
        assert main(["plot", kind, str(model), "--out", str(out)]) == 0
        assert out.stat().st_size > 1000


@pytest.mark.parametrize("argv,message", [
    (["plot", "weights"], "needs a saved model"),
    (["plot", "surface", "--dataset", "digits"], "must be one of moons, blobs, spirals"),
    (["plot", "pie"], "invalid choice: 'pie'"),
    (["experiment", "nope"], "no experiment 'nope'"),
])
def test_bad_plot_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_experiment_prints_its_claim(capsys):
    assert main(["experiment", "worked-example"]) == 0
    out = capsys.readouterr().out
    assert "0.4644" in out and "HOLDS" in out
