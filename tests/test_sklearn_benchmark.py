"""Smoke test of benchmarks/sklearn_mnist.py: its --quick run prints the whole table and writes its JSON.

The run fits crossent's SoftmaxClassifier, scikit-learn's SGDClassifier and
LogisticRegression on the first 2000 MNIST training images (about 10 s in
all). Timings are never checked -- the benchmark itself reports them; the
test checks that every row and column is there, that the figures are
well-formed, and that crossent's fit learned something (a broken fit stays
near 10 % accuracy).

MNIST is read from ``../shared/data/mnist`` beside the repository. Without it
the test is skipped -- except in CI (``CI=true``), where a missing folder is
an error.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("threadpoolctl")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "sklearn_mnist.py"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _mnist_present() -> bool:
    return all((MNIST_DIR / name).is_file() or (MNIST_DIR / f"{name}.gz").is_file() for name in MNIST_FILES)


@pytest.fixture(scope="module")
def benchmark():
    specification = importlib.util.spec_from_file_location("sklearn_mnist_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mnist_dir():
    if not _mnist_present():
        message = f"MNIST IDX files not found in {MNIST_DIR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI runs with shared/ beside the clone, so this is an error there")
        pytest.skip(message)
    return MNIST_DIR


def _table_lines(output: str) -> list:
    return [line for line in output.splitlines() if line.startswith("|")]


def _cells(line: str) -> list:
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_quick_run_prints_every_row_and_column(benchmark, mnist_dir, tmp_path, capsys):
    json_path = tmp_path / "sklearn_mnist.json"
    status = benchmark.main(["--quick", "--data-dir", str(mnist_dir), "--json", str(json_path)])
    assert status == 0
    output = capsys.readouterr().out

    lines = _table_lines(output)
    assert _cells(lines[0]) == list(benchmark.COLUMNS)
    assert set(lines[1]) <= {"|", "-"}
    rows = {_cells(line)[0]: _cells(line) for line in lines[2:]}
    for label in benchmark.ROW_LABELS:
        cells = rows[label]
        assert len(cells) == len(benchmark.COLUMNS)
        seconds, ratio = float(cells[1]), float(cells[2])
        assert seconds > 0 and ratio > 0
        accuracy = float(cells[3].removesuffix(" %"))
        assert 0 <= accuracy <= 100
        assert math.isfinite(float(cells[4])) and float(cells[4]) > 0
        assert cells[5].split()[1] in ("epochs", "iterations")
    assert float(rows[benchmark.CROSSENT_LABEL][2]) == 1.0
    assert any(label.strip().startswith("compute floor") for label in rows)
    assert any(label.strip().startswith("shuffle floor") for label in rows)

    for text in ("crossent: better log loss and accuracy than SGDClassifier at lower time",
                 "crossent >= 92.5% at <= 1/20 of LogisticRegression's time"):
        target_lines = [line for line in output.splitlines() if line.startswith(f"target: {text}: ")]
        assert len(target_lines) == 1, text
        verdict = target_lines[0].removeprefix(f"target: {text}: ").split(" (")[0]
        assert verdict in ("met", "NOT met")
    assert "load average before the run" in output and "load average after the run" in output

    results = json.loads(json_path.read_text())
    assert results["quick"] is True
    assert results["data"] == {"n_train": benchmark.QUICK_TRAIN_ROWS, "n_test": benchmark.QUICK_TEST_ROWS,
                               "n_features": 784, "n_classes": 10}
    assert set(results["rows"]) == set(benchmark.ROW_LABELS)
    for row in results["rows"].values():
        assert len(row["seconds_each"]) == row["repetitions"] == 1
    assert [target["met"] in (True, False) for target in results["targets"]] == [True, True]
    # the recipe's 4 epochs on 2000 images reach about 84 %; a fit that learned nothing stays near 10 %
    assert results["rows"][benchmark.CROSSENT_LABEL]["accuracy"] > 0.7
    # the floors are those of the dtype crossent trains in, not of the float64 input
    training_dtype = benchmark.CROSSENT_RECIPE.get("dtype", "float64")
    assert results["machine"]["training_dtype"] == training_dtype
    assert any(label.strip().startswith("compute floor") and f"({training_dtype})" in label for label in rows)
    assert not list(tmp_path.glob(".*.part"))


def test_missing_data_dir_is_a_usage_error(benchmark, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        benchmark.main(["--quick", "--data-dir", str(tmp_path / "absent")])
    assert raised.value.code == 2
    assert "--data-dir" in capsys.readouterr().err
