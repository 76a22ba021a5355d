"""pytest configuration for the whole repository.

The doctests of the modules that wrap an optional package (``crossent.torch``,
``crossent.sklearn``) are collected only when that package is installed.
"""

import importlib.util

collect_ignore = [
    f"src/crossent/{module}.py"
    for module, package in (("torch", "torch"), ("sklearn", "sklearn"))
    if importlib.util.find_spec(package) is None
]
