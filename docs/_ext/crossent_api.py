"""The ``crossent-api`` directive: one page of the API reference, generated from a module's ``__all__``.

``docs/api/index.rst`` lists the modules of the reference in one autosummary
table; autosummary writes a two-line stub per module (from
``_templates/crossent-module.rst``) that calls this directive, which lays out the page:

1. the module's docstring;
2. a summary table of every public name (``__all__``) documented on the page;
3. the names that are re-exported from :mod:`crossent` itself, as links to
   their documentation on the ``crossent`` page (each object is documented
   once, under the name users type: ``crossent.softmax_cross_entropy``);
4. the documentation of each name, in ``__all__`` order;
5. the docstrings of the public submodules that define those names (where the
   derivations of the losses live).
"""

from __future__ import annotations

import importlib
import inspect
import types

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = "crossent"
#: autodata shows the value of a constant only when it is this short
MAX_VALUE_LENGTH = 70


def api_modules(env) -> list[str]:
    """The modules that have a page of their own (set by conf.py as ``crossent_api_modules``)."""
    return list(env.config.crossent_api_modules)


def public_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return list(names)


def documented_at_root(name: str, obj) -> bool:
    """Whether ``obj`` is documented on the ``crossent`` page as ``crossent.<name>``."""
    root = importlib.import_module(ROOT)
    return (
        name in public_names(root)
        and getattr(root, name, None) is obj
        and not isinstance(obj, types.ModuleType)
    )


def _is_private(module_name: str) -> bool:
    return any(part.startswith("_") for part in module_name.split("."))


def _owner_page(module_name: str, pages: list[str]) -> str | None:
    """The page a module belongs to: the longest page name that is it or one of its parents."""
    owners = [page for page in pages if module_name == page or module_name.startswith(page + ".")]
    return max(owners, key=len) if owners else None


def _directive_for(full_name: str, obj) -> list[str]:
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return [f".. autoexception:: {full_name}"]
        return [f".. autoclass:: {full_name}", "   :members:"]
    if callable(obj):
        return [f".. autofunction:: {full_name}"]
    lines = [f".. autodata:: {full_name}"]
    if len(repr(obj)) > MAX_VALUE_LENGTH:
        lines.append("   :no-value:")
    return lines


def _role_for(obj) -> str:
    if inspect.isclass(obj):
        return "exc" if issubclass(obj, BaseException) else "class"
    return "func" if callable(obj) else "data"


def page_lines(module_name: str, pages: list[str]) -> list[str]:
    """The reST of the page of ``module_name`` (without its title)."""
    module = importlib.import_module(module_name)
    documented, linked_to_root, linked_modules = [], [], []
    defining_modules: list[str] = []
    for name in public_names(module):
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            linked_modules.append(obj.__name__)
            continue
        if module_name != ROOT and documented_at_root(name, obj):
            linked_to_root.append((name, obj))
        else:
            documented.append((name, obj))
        defined_in = getattr(obj, "__module__", None)
        if isinstance(defined_in, str) and defined_in not in defining_modules:
            defining_modules.append(defined_in)

    lines = [f".. automodule:: {module_name}", "   :no-members:", ""]

    if documented:
        lines += [".. rubric:: Summary", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {name}" for name, _ in documented]  # automodule made the module current
        lines.append("")
    if linked_to_root:
        references = ", ".join(f":{_role_for(obj)}:`{ROOT}.{name}`" for name, obj in linked_to_root)
        lines += [
            f"Also exported here, and documented as the top-level names of :mod:`{ROOT}`: {references}.",
            "",
        ]
    children = [name for name in linked_modules if name in pages and name != module_name]
    if children:
        lines += ["Modules with a page of their own: "
                  + ", ".join(f":mod:`{name}`" for name in children) + ".", ""]

    if documented:
        lines += ["Reference", "---------", ""]
        for name, obj in documented:
            lines += _directive_for(f"{module_name}.{name}", obj) + [""]

    notes = [
        name for name in defining_modules + linked_modules
        if name.startswith(module_name + ".") and not _is_private(name)
        and _owner_page(name, pages) == module_name
    ]
    notes = list(dict.fromkeys(notes))
    if notes:
        lines += ["Modules", "-------", "",
                  "The docstrings of the modules that define the names above.", ""]
        documented_names = {f"{module_name}.{name}" for name, _ in documented}
        for name in notes:
            lines += [name, "~" * len(name), "", f".. automodule:: {name}", "   :no-members:"]
            if name in documented_names:  # e.g. the module crossent.gradcheck and the function of that name
                lines.append("   :no-index:")
            lines.append("")
    return lines


class ApiModuleDirective(SphinxDirective):
    """``.. crossent-api:: crossent.losses`` -- the body of that module's API page."""

    required_arguments = 1
    has_content = False

    def run(self):
        module_name = self.arguments[0]
        lines = page_lines(module_name, api_modules(self.env))
        content = StringList(lines, source=f"<crossent-api {module_name}>")
        container = nodes.section()  # a throw-away parent: its children are what the page gets
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container, self.content_offset)
        return container.children


def skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn adds to every estimator (documented by scikit-learn)."""
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def drop_type_docstrings(app, what, name, obj, options, lines):
    """A constant without a ``#:`` comment shows nothing, not the docstring of its type (``dict()`` ...)."""
    type_doc = inspect.getdoc(type(obj))
    if what in ("data", "attribute") and type_doc and "\n".join(lines).strip() == type_doc.strip():
        lines[:] = []


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("autodoc-process-docstring", drop_type_docstrings)
    app.add_config_value("crossent_api_modules", [], "env")
    app.add_directive("crossent-api", ApiModuleDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
