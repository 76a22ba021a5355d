"""Smoke test of benchmarks/torch_interop.py: its --quick run on tiny shapes prints both tables and writes its JSON.

The script runs once, in a subprocess, on one thread: the MLP trains for 2
epochs on the first 4000 MNIST training images with each loss function, and
the linear workload runs at N=512, H=32, V=1000 (about 20 s in all, most of it
importing torch in the script and in its two child processes). Timings are
never compared with a bound -- the benchmark reports them; the test checks that
every row and column is there, that the printed ratios are those of the JSON's
figures, that every time is finite and positive, that both models learned
(a broken training run stays near 10 % accuracy) and that both implementations
of each workload computed the same loss.

MNIST is read from ``../shared/data/mnist`` beside the repository; without it
the test is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "torch_interop.py"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

TRAIN_ROWS, EPOCHS = 4000, 2
LINEAR_SHAPE = (512, 32, 1000)
TINY_RUN = ["--quick", "--threads", "1", "--train-rows", str(TRAIN_ROWS),
            "--linear-shape", ",".join(map(str, LINEAR_SHAPE))]

MLP_ROWS = ("s/epoch (median)", "loss fwd+bwd 128x10 (us)", "loss fwd+bwd 4096x1000 (ms)",
            "final train loss (last epoch)", "test accuracy")
LINEAR_ROWS = ("fwd+bwd time (s), median of 3", "GFLOP/s", "peak RSS above inputs (MB)", "loss")


def _mnist_present() -> bool:
    return all((MNIST_DIR / name).is_file() or (MNIST_DIR / f"{name}.gz").is_file() for name in MNIST_FILES)


@pytest.fixture(scope="module")
def benchmark():
    specification = importlib.util.spec_from_file_location("torch_interop_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(specification)
    specification.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if not _mnist_present():
        pytest.skip(f"MNIST IDX files not found in {MNIST_DIR}")
    directory = tmp_path_factory.mktemp("torch_interop")
    json_path = directory / "torch_interop.json"
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY_RUN, "--data-dir", str(MNIST_DIR), "--json", str(json_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout, json.loads(json_path.read_text()), directory


def _tables(output: str) -> list:
    """The tables of the output, each a list of rows of stripped cells (header and separator included)."""
    tables, current = [], None
    for line in output.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        else:
            current = None
    return tables


def _positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_run_prints_both_tables(benchmark, quick_run):
    output, results, _ = quick_run
    tables = _tables(output)
    assert len(tables) == 2
    for table, labels in zip(tables, (MLP_ROWS, LINEAR_ROWS)):
        assert table[0] == list(benchmark.COLUMNS)
        assert all(set(cell) <= {"-"} for cell in table[1])
        assert [row[0] for row in table[2:]] == list(labels)
        assert all(len(row) == len(benchmark.COLUMNS) for row in table)
    mlp_rows = {row[0]: row for row in tables[0][2:]}
    linear_rows = {row[0]: row for row in tables[1][2:]}

    # the printed ratios are those of the figures in the JSON
    mlp = results["mlp"]
    ratio = mlp["crossent.torch"]["seconds_per_epoch"] / mlp["torch"]["seconds_per_epoch"]
    assert mlp_rows["s/epoch (median)"][3] == f"{ratio:.2f}"
    for step, label in zip(results["loss_steps"], MLP_ROWS[1:3]):
        ratio = step["crossent.torch"]["seconds"] / step["torch"]["seconds"]
        assert mlp_rows[label][3] == f"{ratio:.2f}"
    linear = results["linear"]
    ratio = linear["crossent"]["seconds"] / linear["torch"]["seconds"]
    assert linear_rows["fwd+bwd time (s), median of 3"][3] == f"{ratio:.2f}"
    for label in MLP_ROWS[:3] + LINEAR_ROWS[:3]:
        row = mlp_rows.get(label) or linear_rows[label]
        assert float(row[1]) >= 0 and float(row[2]) >= 0, label
    for label in MLP_ROWS[:3] + ("peak RSS above inputs (MB)",):
        row = mlp_rows.get(label) or linear_rows[label]
        assert float(row[4].split()[0]) >= 0, label  # the machine's limit, then what it is
    for label in LINEAR_ROWS[:2]:  # torch's and NumPy's three products
        words = linear_rows[label][4].replace(",", "").split()
        assert words[0] == "torch" and words[2] == "NumPy" and float(words[1]) > 0 and float(words[3]) > 0
    for row in (mlp_rows["s/epoch (median)"], linear_rows["fwd+bwd time (s), median of 3"]):
        assert float(row[1]) > 0 and float(row[2]) > 0
    accuracy = mlp_rows["test accuracy"]
    assert accuracy[1] == f"{100 * mlp['crossent.torch']['test_accuracy']:.2f} %"
    assert accuracy[2] == f"{100 * mlp['torch']['test_accuracy']:.2f} %"

    for when in ("before", "after"):
        lines = [line for line in output.splitlines() if line.startswith(f"load average {when} the run: ")]
        assert len(lines) == 1
        assert float(lines[0].split(": ", 1)[1].split()[0]) == pytest.approx(
            results["machine"][f"load_average_{when}"], abs=0.005)


def test_quick_run_json_holds_every_figure(quick_run):
    _, results, directory = quick_run
    settings = results["settings"]
    assert settings["quick"] is True and settings["threads"] == 1
    assert (settings["epochs"], settings["train_rows"], settings["linear_shape"]) == (
        EPOCHS, TRAIN_ROWS, list(LINEAR_SHAPE))

    mlp = results["mlp"]
    for name in ("crossent.torch", "torch"):
        run = mlp[name]
        assert len(run["epoch_seconds"]) == len(run["train_loss"]) == EPOCHS
        assert all(_positive_finite(seconds) for seconds in run["epoch_seconds"])
        assert run["seconds_per_epoch"] == statistics.median(run["epoch_seconds"])
        # 2 epochs on 4000 images reach about 89 %; a run that learned nothing stays near 10 %
        assert run["test_accuracy"] > 0.8, name
    # the same initial weights and batches: the two runs differ by rounding only
    assert 0 <= mlp["first_batch"]["loss_difference"] < 1e-5
    assert 0 <= mlp["first_batch"]["max_abs_gradient_difference"] < 1e-5
    assert mlp["crossent.torch"]["train_loss"] == pytest.approx(mlp["torch"]["train_loss"], rel=1e-3)
    assert 0 <= mlp["max_abs_weight_difference"] < 1e-2

    assert [step["shape"] for step in results["loss_steps"]] == [[128, 10], [4096, 1000]]
    for step in results["loss_steps"]:
        for name in ("crossent.torch", "torch"):
            assert len(step[name]["seconds_each_round"]) == settings["loss_step_rounds"]
            assert all(_positive_finite(seconds) for seconds in step[name]["seconds_each_round"])

    linear = results["linear"]
    for name in ("crossent", "torch"):
        entry = linear[name]
        assert "reason" not in entry, entry.get("reason")
        assert len(entry["seconds_each"]) == 3 and all(_positive_finite(s) for s in entry["seconds_each"])
        assert isinstance(entry["rss_above_inputs_bytes"], int) and entry["rss_above_inputs_bytes"] >= 0
        # random unit-variance logits over V classes: the loss is about log V + 1/2
        assert abs(entry["loss"] - (math.log(LINEAR_SHAPE[2]) + 0.5)) < 0.5
    assert linear["crossent"]["loss"] == pytest.approx(linear["torch"]["loss"], rel=1e-5)
    for sgemm in (linear["sgemm"], linear["sgemm_numpy"]):
        assert sgemm["flops"] == 2 * math.prod(LINEAR_SHAPE) * 3
        assert len(sgemm["seconds_each"]) == 3 and all(_positive_finite(s) for s in sgemm["seconds_each"])
        assert sgemm["gflop_per_s"] == pytest.approx(sgemm["flops"] / sgemm["seconds"] / 1e9)
    assert linear["gradient_bytes"] == (LINEAR_SHAPE[0] + LINEAR_SHAPE[2]) * LINEAR_SHAPE[1] * 4

    machine = results["machine"]
    assert _positive_finite(machine["memcopy_gb_per_s"])
    assert machine["load_average_before"] >= 0 and machine["load_average_after"] >= 0
    assert machine["load_average_highest_seen"] >= max(machine["load_average_before"], machine["load_average_after"])
    assert not list(directory.glob(".*.part"))  # the JSON was written atomically


@pytest.mark.parametrize("arguments, named", [
    (["--epochs", "0"], "--epochs"),
    (["--threads", "0"], "--threads"),
    (["--train-rows", "60001"], "--train-rows"),
    (["--linear-shape", "8,8"], "--linear-shape"),
])
def test_wrong_option_is_one_line_and_status_2(benchmark, arguments, named, capsys):
    assert benchmark.main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and named in error


def test_missing_data_dir_is_one_line_and_status_2(benchmark, tmp_path, capsys):
    assert benchmark.main(["--quick", "--data-dir", str(tmp_path / "absent")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--data-dir" in error
