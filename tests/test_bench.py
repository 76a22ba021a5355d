"""``crossent bench`` and benchmarks/cross_entropy.py: every table and column, sane figures, one-line errors.

Timings are never compared with anything: only that they were measured (positive). Sizes are
scaled down to a few rows (``--scale 0.001``).
"""

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import crossent
from crossent import bench
from crossent.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cross_entropy.py"
TINY = ["--scale", "0.001"]
CE_ROWS = [bench.CROSSENT, bench.IN_PLACE, bench.NAIVE, bench.TORCH, bench.EXPONENTIAL_FLOOR, bench.NEW_COPY,
           bench.MEMCOPY]
LINEAR_ROWS = [bench.LINEAR_CROSSENT, bench.LINEAR_NUMPY, bench.LINEAR_TORCH, bench.SGEMM]


def run_cli(argv):
    """(exit status, stdout, stderr) of ``crossent ARGV`` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def parse_tables(text: str) -> dict:
    """{title line: (header cells, {row name: cells}, lines after the table)} of printed tables."""
    tables = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("[") or not lines[index + 1].startswith("| "):
            continue
        header = [cell.strip() for cell in lines[index + 1].strip("|").split("|")]
        rows, position = {}, index + 3
        while position < len(lines) and lines[position].startswith("| "):
            cells = [cell.strip() for cell in lines[position].strip("|").split("|")]
            rows[cells[0]] = dict(zip(header, cells))
            position += 1
        notes = []
        while position < len(lines) and lines[position] and not lines[position].startswith("["):
            notes.append(lines[position])
            position += 1
        tables[line] = (header, rows, notes)
    return tables


def number(cell: str) -> float:
    return float(cell.removesuffix("x"))


def assert_positive(row: dict, columns) -> None:
    for column in columns:
        value = number(row[column])
        assert math.isfinite(value) and value > 0, (row, column)


# ---------------------------------------------------------------------------------------------
# the softmax cross-entropy workloads, through the command line


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory):
    pytest.importorskip("torch")
    json_path = tmp_path_factory.mktemp("bench") / "results.json"
    status, out, err = run_cli(["bench", "--workloads", "ce,ce-options,ce-mnist,ce-float64", *TINY,
                                "--repeat", "2", "--json", str(json_path)])
    assert status == 0, err
    return out, json.loads(json_path.read_text())


def test_cli_prints_one_table_per_softmax_table_with_every_column_and_row(softmax_run):
    out, _ = softmax_run
    tables = parse_tables(out)
    titles = list(tables)
    assert [title.split("]")[0] + "]" for title in titles] == [
        "[ce]", "[ce-options]", "[ce-mnist]", "[ce-float64]", "[ce-float64]"]
    assert "8x32768 float32" in titles[0] and "66x10 float32" in titles[2]
    assert "8x32768 float64" in titles[3] and "66x10 float64" in titles[4]
    for header, rows, _ in tables.values():
        assert header == list(bench.CE_COLUMNS)
        assert list(rows) == CE_ROWS


def test_softmax_figures_are_positive_and_every_row_computes_the_same_loss_and_gradient(softmax_run):
    out, _ = softmax_run
    for title, (_, rows, _) in parse_tables(out).items():
        float64 = "float64" in title
        crossent_loss = number(rows[bench.CROSSENT]["loss"])
        for name, row in rows.items():
            if name == bench.IN_PLACE and row["time (s)"] == "n/a":
                continue  # the loss functions do not take out= yet
            assert_positive(row, ["time (s)", "x memcopy", "GB/s"])
            if name in (bench.IN_PLACE, bench.NAIVE, bench.TORCH):
                assert_positive(row, ["crossent faster by"])
                assert number(row["loss"]) == pytest.approx(crossent_loss, rel=1e-5)
                assert number(row["max grad diff"]) <= (1e-12 if float64 else 1e-6)
        assert rows[bench.MEMCOPY]["x memcopy"] == "1.00x"
        assert rows[bench.MEMCOPY]["loss"] == rows[bench.CROSSENT]["max grad diff"] == "-"


def test_header_names_the_cpu_and_threads_and_each_table_its_target(softmax_run):
    out, _ = softmax_run
    assert out.startswith("CPU: ")
    assert f"threads: {bench.check_options(['ce'], 1, None, 1.0)[2]} for crossent (Numba) and PyTorch" in out
    assert "fixed when NumPy was imported" in out
    notes = {title.split("]")[0]: notes for title, (_, _, notes) in parse_tables(out).items()}
    assert "target: crossent <= 1.5x memcopy and >= 10x faster than PyTorch" in notes["[ce"]
    assert "target: crossent <= 2x memcopy" in notes["[ce-options"]
    assert "target: crossent >= 3x faster than PyTorch" in notes["[ce-mnist"]
    assert "target: none (reported only)" in notes["[ce-float64"]
    verdicts = [line for line in notes["[ce"] if line.startswith("  crossent: ")]
    assert [line.split(":")[1].split()[0] for line in verdicts] == ["x", "x", "faster"]
    assert "x new copy <= 1.5" in verdicts[1]
    assert all(line.endswith((" -- met", " -- NOT met")) for line in verdicts)


def test_json_holds_every_repetition_and_the_figures_printed(softmax_run):
    out, results = softmax_run
    assert results["settings"]["repeat"] == 2 and results["settings"]["scale"] == 0.001
    assert results["machine"]["cpu_model"] and results["machine"]["threads"] >= 1
    assert len(results["tables"]) == 5
    for table in results["tables"]:
        by_name = {row["name"]: row for row in table["rows"]}
        assert list(by_name) == CE_ROWS
        for row in table["rows"]:
            if row["available"]:
                assert len(row["times_s"]) == 2 and min(row["times_s"]) > 0
                assert row["median_s"] == pytest.approx(np.median(row["times_s"]))
        assert by_name[bench.TORCH]["crossent_speedup"] == pytest.approx(
            by_name[bench.TORCH]["median_s"] / by_name[bench.CROSSENT]["median_s"])
    options = results["tables"][1]["options"]
    assert options["label_smoothing"] == 0.1 and options["ignore_index"] == -100
    assert "wrote" in out.splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# the module


def test_run_benchmark_restores_the_threads_and_formats_the_same_columns():
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    results = bench.run_benchmark("ce-mnist", repeat=1, threads=1, scale=0.001)
    assert numba.get_num_threads() == before
    assert results["settings"]["threads"] == results["machine"]["threads"] == 1
    assert "threads: 1 for crossent" in bench.format_header(results)
    (table,) = results["tables"]
    assert table["shape"] == [66, 10] and table["dtype"] == "float32"
    text = bench.format_table(table)
    for column in bench.CE_COLUMNS:
        assert column in text.splitlines()[1]
    for row in table["rows"]:
        if row["available"]:
            assert row["median_s"] > 0 and row["gb_per_s"] > 0 and row["ratio_to_limit"] > 0


def test_in_place_row_is_not_available_when_the_function_rejects_out(monkeypatch):
    original = crossent.softmax_cross_entropy_value_and_grad

    def without_out(logits, target, *, weight=None, label_smoothing=0.0, ignore_index=None):
        return original(logits, target, weight=weight, label_smoothing=label_smoothing, ignore_index=ignore_index)

    monkeypatch.setattr(crossent, "softmax_cross_entropy_value_and_grad", without_out)
    results = bench.run_benchmark(["ce-mnist"], repeat=1, scale=0.001)
    in_place = results["tables"][0]["rows"][1]
    assert in_place["name"] == bench.IN_PLACE and not in_place["available"]
    assert "out= not accepted" in in_place["reason"] and in_place["times_s"] == []
    text = bench.format_table(results["tables"][0])
    ((_, rows, notes),) = parse_tables(text).values()
    assert set(list(rows[bench.IN_PLACE].values())[1:]) == {"n/a"}
    assert f"{bench.IN_PLACE}: n/a -- {in_place['reason']}" in notes
    assert f"  {bench.IN_PLACE}: faster than PyTorch by >= 3x: not measured" in text


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("options", [
    {},
    {"label_smoothing": 0.1},
    {"class_weight": True},
    {"class_weight": True, "label_smoothing": 0.1, "ignore_index": -100},
])
def test_naive_numpy_peer_agrees_with_crossent_and_pytorch(dtype, tolerance, options):
    rng = np.random.default_rng(1)
    logits = (3 * rng.standard_normal((13, 7))).astype(dtype)
    labels = rng.integers(0, 7, 13)
    crossent_options = {"label_smoothing": options.get("label_smoothing", 0.0)}
    if options.get("class_weight"):
        options = {**options, "class_weight": rng.uniform(0.5, 2, 7).astype(dtype)}
        crossent_options["weight"] = options["class_weight"]
    if "ignore_index" in options:
        labels[[2, 5]] = -100
        crossent_options["ignore_index"] = -100
    loss, grad = bench.naive_numpy_cross_entropy(logits, labels, **options)
    expected_loss, expected_grad = crossent.softmax_cross_entropy_value_and_grad(logits, labels, **crossent_options)
    assert grad.dtype == dtype
    assert loss == pytest.approx(float(expected_loss), rel=tolerance)
    np.testing.assert_allclose(grad, expected_grad, rtol=0, atol=tolerance)
    if "ignore_index" in options:
        assert not grad[[2, 5]].any()

    torch = pytest.importorskip("torch")
    leaf = torch.tensor(logits.astype(np.float64), requires_grad=True)
    weight = torch.from_numpy(options["class_weight"].astype(np.float64)) if "class_weight" in options else None
    torch_loss = torch.nn.functional.cross_entropy(leaf, torch.from_numpy(labels), weight=weight,
                                                   label_smoothing=options.get("label_smoothing", 0.0),
                                                   ignore_index=options.get("ignore_index", -100))
    torch_loss.backward()
    assert loss == pytest.approx(torch_loss.item(), rel=tolerance)
    np.testing.assert_allclose(grad, leaf.grad.numpy(), rtol=0, atol=tolerance)


def test_linear_variant_is_not_available_without_linear_cross_entropy(monkeypatch):
    monkeypatch.delattr(crossent, "linear_cross_entropy")
    numba = pytest.importorskip("numba")
    result = bench._linear_variant({"variant": bench.LINEAR_CROSSENT, "shape": [2, 3, 5], "repeat": 1,
                                    "threads": numba.get_num_threads(), "seed": 0})
    assert result == {"reason": "crossent.linear_cross_entropy is not available"}


# ---------------------------------------------------------------------------------------------
# linear + cross-entropy: child processes


def test_linear_workload_measures_every_variant_in_a_child_process_with_its_memory():
    pytest.importorskip("torch")
    status, out, err = run_cli(["bench", "--workloads", "linear-ce", *TINY, "--repeat", "1"])
    assert status == 0, err
    ((title, (header, rows, notes)),) = parse_tables(out).items()
    assert title == "[linear-ce] linear + cross-entropy fwd+bwd, N=8 H=512 V=50257 float32"
    assert header == list(bench.LINEAR_COLUMNS)
    assert list(rows) == LINEAR_ROWS
    crossent_loss = number(rows[bench.LINEAR_CROSSENT]["loss"])
    for name, row in rows.items():
        assert_positive(row, ["time (s)", "x 3 sgemm", "GFLOP/s"])
        if name != bench.SGEMM:
            # each variant writes gradients of 8*512 + 50257*512 floats (103 MB): its RSS grows at least that much
            assert number(row["RSS above inputs (MB)"]) >= 100
            float(row["RSS above inputs+outputs (MB)"])
            assert number(row["loss"]) == pytest.approx(crossent_loss, rel=1e-4)
    for name in (bench.LINEAR_NUMPY, bench.LINEAR_TORCH):
        assert_positive(rows[name], ["crossent faster by"])
    assert rows[bench.SGEMM]["RSS above inputs (MB)"] == "-"
    assert notes[-3] == f"target: {bench.TARGETS['linear-ce']}"
    assert notes[-2].startswith("  crossent fused: x 3 sgemm <= 1.3: ")
    assert notes[-1].startswith("  crossent fused: RSS above inputs+outputs / PyTorch's <= 0.05: ")


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("argv, message", [
    (["--workloads", "ce,softmax"], "--workloads: unknown workload 'softmax'; choose from ce, ce-options"),
    (["--workloads", ","], "--workloads names no workload"),
    (["--repeat", "0"], "--repeat must be an integer >= 1, got 0"),
    (["--repeat", "two"], "argument --repeat: invalid int value: 'two'"),
    (["--scale", "0"], "--scale must be a finite number > 0, got 0.0"),
    (["--scale", "nan"], "--scale must be a finite number > 0, got nan"),
    (["--scale", "1e-5"], "--scale 1e-05 leaves no rows in workload ce: 8192 x 1e-05 rounds to 0"),
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--threads", "100000"], "--threads 100000 exceeds the"),
    (["--json", "no-such-directory/results.json"], "--json no-such-directory/results.json: directory "
                                                   "no-such-directory does not exist"),
])
def test_bad_arguments_are_one_line_on_stderr_and_exit_status_2(argv, message):
    status, out, err = run_cli(["bench", *argv])
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("crossent bench: error: ")
    assert message in err


def test_script_is_the_same_benchmark_with_the_same_errors(tmp_path):
    completed = subprocess.run([sys.executable, str(SCRIPT), "--workloads", "ce-mnist", *TINY, "--repeat", "1"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert completed.returncode == 0, completed.stderr
    ((header, rows, _),) = parse_tables(completed.stdout).values()
    assert header == list(bench.CE_COLUMNS) and list(rows)[0] == bench.CROSSENT
    assert_positive(rows[bench.CROSSENT], ["time (s)", "x memcopy", "GB/s"])

    completed = subprocess.run([sys.executable, str(SCRIPT), "--scale", "-1"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr == "benchmarks/cross_entropy.py: error: --scale must be a finite number > 0, got -1.0\n"
