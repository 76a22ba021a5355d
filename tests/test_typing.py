"""The type annotations of the public API: mypy accepts the package, and the package says it is typed.

``python -m mypy`` runs with the ``[tool.mypy]`` configuration of pyproject.toml
(``files = ["src/crossent"]``); its report is the failure message. The
``py.typed`` marker (PEP 561) is what makes a type checker read crossent's
annotations in a user's project: it must be inside the installed package and
listed as package data, so that wheels carry it too.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_py_typed_marker_ships_with_the_package():
    marker = resources.files("crossent").joinpath("py.typed")
    assert marker.is_file(), f"crossent/py.typed is missing from the installed package ({marker})"
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data.get("crossent", []), (
        "pyproject.toml must list py.typed as package data of 'crossent', or wheels leave it out: "
        f"[tool.setuptools.package-data] is {package_data}"
    )


def test_mypy_accepts_the_package(request, tmp_path):
    # One test for the whole package: mypy checks every module in one process, with one cache.
    pytest.importorskip("mypy")
    # keep mypy's incremental cache between runs in pytest's cache directory (seconds instead of a minute)
    pytest_cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, f"mypy reported errors:\n{result.stdout}{result.stderr}"


# --------------------------------------------------------------------------- what the annotations brought to light


def test_animate_training_rejects_a_missing_path_before_training():
    # path=None used to pass the path check, train every batch and only then fail inside the file writer
    import numpy as np

    from crossent.nn import SoftmaxRegression
    from crossent.plots import animate_training

    model = SoftmaxRegression(2, 2, dtype=np.float64)
    before = [parameter.copy() for parameter in model.parameters()]
    X, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])
    with pytest.raises(TypeError, match=r"path must be a file name ending in \.gif"):
        animate_training(model, X, y, optimizer="sgd", path=None)
    assert all(np.array_equal(old, new) for old, new in zip(before, model.parameters())), "the model was trained"


def test_benchmark_entry_point_runs_without_docstrings():
    # python -OO strips the module docstring that the entry point takes its description from
    command = "import sys, crossent.bench as bench; sys.exit(bench.main(['--workloads', 'nonsense']))"
    result = subprocess.run([sys.executable, "-OO", "-c", command], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert "unknown workload 'nonsense'" in result.stderr, result.stderr
