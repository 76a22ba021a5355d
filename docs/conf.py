"""Sphinx configuration of crossent's documentation.

Build (from the repository root, after ``pip install -e '.[docs]'``)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
    .venv/bin/python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

The second command runs every ``.. doctest::`` / ``.. testcode::`` block of
the derivations and tutorials: they are the numeric checks of the formulas.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import crossent  # noqa: E402  (after the path set-up, as Sphinx expects)

project = "crossent"
author = "crossent contributors"
copyright = "crossent contributors"
release = version = crossent.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into _static: formulas render without a network
    "sphinx.ext.doctest",
    "crossent_api",  # docs/_ext/crossent_api.py: the layout of the API pages
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "furo"
html_title = f"crossent {release}"
default_role = "literal"

# --------------------------------------------------------------------------- autodoc and napoleon

# crossent.torch needs PyTorch, which the docs extra does not install: without it the page is
# generated from a stand-in module (the signatures and docstrings are crossent's own either way).
try:
    import torch  # noqa: F401
except ImportError:
    autodoc_mock_imports = ["torch"]

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the NumPy-style Parameters sections already give every type
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # dataclass fields: one description, not a second object entry per field
napoleon_custom_sections = ["Shapes", ("Keys", "params_style")]

# --------------------------------------------------------------------------- doctest

# Only the explicit ``.. doctest::`` / ``.. testcode::`` blocks of these pages run here; the
# ``>>>`` examples of the docstrings are run by pytest (--doctest-modules) over src/crossent.
doctest_test_doctest_blocks = ""
doctest_global_setup = """
import numpy as np
import crossent

try:  # the comparison page checks PyTorch's and scikit-learn's behaviour when they are installed
    import torch
except ImportError:
    torch = None
try:
    import sklearn.metrics as sklearn_metrics
except ImportError:
    sklearn_metrics = None
"""

# --------------------------------------------------------------------------- the API reference


def _api_modules(index: Path) -> list[str]:
    """The modules listed in the autosummary table of api/index.rst: the one place that names them."""
    modules, in_table = [], False
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and line.strip().startswith("crossent"):
            modules.append(line.strip())
        elif in_table and line and not line.startswith(" "):
            in_table = False
    return modules


#: The modules of the API reference, one page each: adding a module is one line in api/index.rst.
API_MODULES = _api_modules(DOCS / "api" / "index.rst")

crossent_api_modules = API_MODULES
autosummary_generate = True  # writes the two-line stub of each module page into api/generated/
