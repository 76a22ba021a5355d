"""The command line end to end: train on the shipped digits, save, evaluate, predict, info, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from crossent.cli import main


@pytest.fixture(autouse=True)
def no_mnist_anywhere(tmp_path, monkeypatch):
    """These tests must not find (or download) MNIST: CI points CROSSENT_DATA at it."""
    monkeypatch.delenv("CROSSENT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_with_no_arguments_prints_a_summary(capsys):
    code, out, err = run(["train", "--epochs", "3"], capsys)
    assert code == 0 and err == ""
    assert "SoftmaxRegression" in out and "digits" in out
    assert "test accuracy" in out and "nats" in out
    accuracy = float(out.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 85.0


def test_train_save_evaluate_predict_info(tmp_path, capsys):
    model = tmp_path / "model.npz"
    metrics = tmp_path / "metrics.json"
    code, out, _ = run(["train", "--model", "mlp", "--hidden", "32", "--epochs", "4", "--seed", "1",
                        "--save", str(model), "--metrics-out", str(metrics), "--quiet"], capsys)
    assert code == 0 and out == ""
    report = json.loads(metrics.read_text())
    for key in ("dataset", "model", "epochs", "train_time_s", "test_accuracy", "test_loss", "history"):
        assert key in report
    assert report["dataset"] == "digits" and report["epochs"] == 4 and len(report["history"]) == 4
    assert report["test_accuracy"] > 0.85

    code, out, _ = run(["evaluate", str(model)], capsys)
    assert code == 0
    assert f"accuracy {100 * report['test_accuracy']:.2f}%" in out
    assert "confusion matrix" in out

    digits = np.load(__import__("crossent").datasets.digits.__file__.replace("digits.py", "data/digits.npz"))
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, X=digits["X"][:4])
    code, out, _ = run(["predict", str(model), str(inputs), "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 0
    predicted = [int(line.split()[1]) for line in out.splitlines()[1:5]]
    assert np.mean(np.array(predicted) == digits["y"][:4]) >= 0.75
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("row,class,p_0") and len(lines) == 5

    code, out, _ = run(["info", str(model)], capsys)
    assert code == 0 and "MLP" in out and "trained        4 epochs on digits" in out


def test_resume_continues_to_the_requested_epochs(tmp_path, capsys):
    first = tmp_path / "first.npz"
    straight = tmp_path / "straight.npz"
    assert run(["train", "--epochs", "4", "--save", str(straight), "--quiet"], capsys)[0] == 0
    assert run(["train", "--epochs", "2", "--save", str(first), "--quiet"], capsys)[0] == 0
    resumed = tmp_path / "resumed.npz"
    assert run(["train", "--epochs", "4", "--resume", str(first), "--save", str(resumed), "--quiet"], capsys)[0] == 0
    import crossent

    a, b = crossent.load(straight), crossent.load(resumed)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy",
                                  "CrossEntropyLoss", "NLLLoss", "focal", "gce", "poly1", "sce"])
def test_loss_names_from_keras_pytorch_and_the_library(loss, capsys):
    code, out, err = run(["train", "--epochs", "2", "--loss", loss], capsys)
    assert code == 0, err
    assert float(out.split("test accuracy ")[1].split("%")[0]) > 70


def test_binary_losses_train_a_logistic_model_on_a_two_class_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    path = tmp_path / "data.csv"
    lines = ["a,b,c,outcome"] + [f"{a},{b},{c},{t}" for (a, b, c), t in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    for loss in ("BCEWithLogitsLoss", "binary_crossentropy"):
        code, out, err = run(["train", "--dataset", str(path), "--target", "outcome", "--model", "logistic",
                              "--loss", loss, "--epochs", "10"], capsys)
        assert code == 0, err
        assert float(out.split("test accuracy ")[1].split("%")[0]) > 90


@pytest.mark.parametrize("argv,message", [
    (["train", "--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["train", "--loss", "crossentropy"], "--loss 'crossentropy' is not a known loss"),
    (["train", "--loss", "binary_crossentropy"], "needs --model logistic"),
    (["train", "--model", "logistic"], "binary classifier but the data set has 10 classes"),
    (["train", "--dataset", "missing.csv"], "missing.csv"),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent", "--no-download"], "MNIST files not found"),
    (["train", "--batch-size", "0"], "expected a positive integer or 'full'"),
    (["train", "--hidden", "a,b", "--model", "mlp"], "--hidden takes layer sizes"),
    (["train", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "--loss", "kl_div"], "cannot train a model"),
    (["train", "--loss-option", "nonsense"], "--loss-option takes KEY=VALUE"),
    (["evaluate", "missing.npz"], "no model file at"),
    (["info", "README.md"], "not a readable crossent model"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 or "MNIST files not found" in err
    assert "Traceback" not in err


def test_model_and_dataset_mismatch(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert run(["train", "--epochs", "1", "--save", str(model), "--quiet"], capsys)[0] == 0
    data = tmp_path / "other.npz"
    np.savez(data, X=np.zeros((40, 5)), y=np.arange(40) % 2)
    code, _, err = run(["evaluate", str(model), "--dataset", str(data)], capsys)
    assert code == 2 and "takes 64 features but other.npz has 5" in err


def test_python_dash_m_and_console_script():
    result = subprocess.run([sys.executable, "-m", "crossent", "train", "--epochs", "1", "--quiet"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    result = subprocess.run([sys.executable, "-m", "crossent", "train", "--lr", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_predict_reads_an_image_file(tmp_path, capsys):
    image_module = pytest.importorskip("PIL.Image")
    model = tmp_path / "model.npz"
    assert run(["train", "--epochs", "10", "--save", str(model), "--quiet"], capsys)[0] == 0
    import crossent

    digits = np.load(crossent.datasets.digits.__file__.replace("digits.py", "data/digits.npz"))
    hits = 0
    for index in range(5):
        pixels = (digits["X"][index].reshape(8, 8) * (255 / 16)).astype(np.uint8)
        path = tmp_path / f"digit{index}.png"
        image_module.fromarray(pixels).resize((32, 32), image_module.NEAREST).save(path)
        code, out, err = run(["predict", str(model), str(path)], capsys)
        assert code == 0, err
        hits += int(out.splitlines()[1].split()[1]) == int(digits["y"][index])
    assert hits >= 4


def test_resume_keeps_the_schedule_and_refuses_changed_settings(tmp_path, capsys):
    first, resumed = tmp_path / "f.npz", tmp_path / "r.npz"
    common = ["--schedule", "cosine", "--label-smoothing", "0.1", "--quiet"]
    assert run(["train", "--epochs", "2", "--save", str(first), *common], capsys)[0] == 0
    code, _, err = run(["train", "--resume", str(first), "--epochs", "4", "--save", str(resumed), "--quiet"], capsys)
    assert code == 0, err
    import crossent

    checkpoint = crossent.load_checkpoint(resumed)
    assert repr(checkpoint.loss()) == "CrossEntropyLoss(label_smoothing=0.1)"
    records = checkpoint.training["history"]["records"]
    assert checkpoint.training["history"]["base_lr"] == 0.05
    # the schedule is rebuilt from its base rate (0.05) for the new total of 4 epochs, not from the last rate
    assert records[2]["lr"] > records[1]["lr"] and records[3]["lr"] < records[2]["lr"]
    code, _, err = run(["train", "--resume", str(first), "--epochs", "4", "--lr", "0.5"], capsys)
    assert code == 2 and "--lr cannot change it" in err
    code, _, err = run(["train", "--resume", str(first), "--epochs", "2"], capsys)
    assert code == 2 and "has trained 2 already" in err


def test_evaluate_refuses_a_model_with_other_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "binary.npz"
    np.savez(data, X=rng.normal(size=(80, 64)), y=np.arange(80) % 2)
    model = tmp_path / "binary_model.npz"
    assert run(["train", "--dataset", str(data), "--model", "logistic", "--epochs", "2", "--save", str(model),
                "--quiet"], capsys)[0] == 0
    code, _, err = run(["evaluate", str(model)], capsys)
    assert code == 2 and "predicts 2 classes but digits has 10" in err


def test_predict_scales_raw_pixels_in_any_container(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert run(["train", "--epochs", "10", "--save", str(model), "--quiet"], capsys)[0] == 0
    import crossent

    digits = np.load(crossent.datasets.digits.__file__.replace("digits.py", "data/digits.npz"))
    raw = digits["X"][:6]
    npz, csv = tmp_path / "raw.npz", tmp_path / "raw.csv"
    np.savez(npz, X=raw)
    np.savetxt(csv, raw, delimiter=",", fmt="%d")
    outputs = []
    for path in (npz, csv):
        code, out, err = run(["predict", str(model), str(path)], capsys)
        assert code == 0, err
        outputs.append([line.split()[1] for line in out.splitlines()[1:7]])
    assert outputs[0] == outputs[1]
    assert np.mean(np.array(outputs[0], dtype=int) == digits["y"][:6]) >= 5 / 6
