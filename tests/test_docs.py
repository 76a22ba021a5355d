"""The documentation site: it builds without a warning, its examples and formula checks pass, its links resolve.

The site is built once per test run from a copy of ``docs/`` (so that the
stubs autosummary writes never touch the working tree): first the HTML
builder with warnings as errors, then the doctest builder on the same
doctrees, which runs every ``.. doctest::`` / ``.. testcode::`` block of the
derivations and tutorials -- the numeric checks of the formulas.
"""

from __future__ import annotations

import html.parser
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("sphinx")

DOCS = Path(__file__).resolve().parents[1] / "docs"


class _PageParser(html.parser.HTMLParser):
    """Collects the anchors a page defines and the links it makes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (attribute, value)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.anchors.add(value)
            elif name == "href" and tag in ("a", "link", "area"):
                self.links.append(("href", value))
            elif name == "src" and tag in ("img", "script", "iframe", "source"):
                self.links.append(("src", value))


def parse_site(root: Path) -> dict[Path, _PageParser]:
    pages = {}
    for path in sorted(root.rglob("*.html")):
        parser = _PageParser()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = parser
    return pages


def broken_internal_links(root: Path, pages: dict[Path, _PageParser] | None = None) -> list[str]:
    """Every link without a scheme whose file, or whose ``#anchor`` in an HTML file, does not exist."""
    pages = parse_site(root) if pages is None else pages
    broken = []
    for page, parser in pages.items():
        for attribute, value in parser.links:
            parts = urlsplit(value)
            if parts.scheme or parts.netloc:  # an external address: not this site's to check
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: {attribute}={value!r}"
            if not target.is_file():
                broken.append(f"{where} -> missing file")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                anchors = pages[target.resolve()].anchors if target.resolve() in pages else set()
                if fragment not in anchors:
                    broken.append(f"{where} -> no anchor #{fragment} in {target.relative_to(root)}")
    return broken


def api_modules() -> list[str]:
    """The modules listed in the autosummary table of docs/api/index.rst (as docs/conf.py reads them)."""
    text = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")
    table = text.split(".. autosummary::", 1)[1]
    return re.findall(r"^\s+(crossent(?:\.\w+)*)\s*$", table, flags=re.MULTILINE)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Build the HTML and run the doctests; return the paths and exit statuses."""
    work = tmp_path_factory.mktemp("docs")
    source = work / "source"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "generated"))
    doctrees = work / "doctrees"
    # in a child process: autodoc (autodoc_preserve_defaults) rewrites the documented functions' default
    # values in place, which would leak into every test that runs after this one in the same process
    def build(builder: str, out: Path) -> int:
        result = subprocess.run(
            [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, "-d", str(doctrees),
             str(source), str(out)], capture_output=True, text=True, timeout=600,
        )
        print(result.stdout[-4000:], result.stderr[-4000:])  # shown by pytest when a test fails
        return result.returncode

    html_status = build("html", work / "html")
    doctest_status = build("doctest", work / "doctest")
    return {
        "html": work / "html",
        "html_status": html_status,
        "doctest_report": work / "doctest" / "output.txt",
        "doctest_status": doctest_status,
    }


@pytest.fixture(scope="session")
def pages(site):
    """Anchors and links of every page of the built site."""
    return parse_site(site["html"])


def test_html_builds_with_warnings_as_errors(site):
    assert site["html_status"] == 0, "sphinx -W -b html reported warnings or errors (see the captured output)"
    for page in ("index.html", "installation.html", "comparison.html", "derivations/options.html",
                 "tutorials/numerical-stability.html", "api/generated/crossent.html"):
        assert (site["html"] / page).is_file(), page


def test_every_doctest_passes(site):
    report = site["doctest_report"].read_text(encoding="utf-8")
    summary = report[report.rindex("Doctest summary"):]
    tests = int(re.search(r"(\d+) tests", summary).group(1))
    failures = int(re.search(r"(\d+) failures? in tests", summary).group(1))
    assert failures == 0 and site["doctest_status"] == 0, report[-4000:]
    # the derivations alone hold well over a hundred checks: a count near zero means they stopped running
    assert tests >= 300, summary


def test_formula_pages_are_checked_by_doctests(site):
    report = site["doctest_report"].read_text(encoding="utf-8")
    for page in ("softmax", "options", "binary", "information", "variants", "backprop", "optimizers"):
        match = re.search(rf"Document: derivations/{page}\n-+\n(?:(?!Document:).)*?(\d+) passed and (\d+) failed", report, re.DOTALL)
        assert match, f"derivations/{page} ran no doctest"
        assert int(match.group(1)) >= 5 and int(match.group(2)) == 0, f"derivations/{page}: {match.group(0)}"


def test_internal_links_and_anchors_resolve(site, pages):
    assert broken_internal_links(site["html"], pages) == []


def test_formulas_render_offline(site, pages):
    # MathJax is served from the site itself (its files exist: the link check above), not from a CDN
    scripts = [value for attribute, value in pages[(site["html"] / "derivations/softmax.html").resolve()].links
               if attribute == "src"]
    mathjax = [src for src in scripts if "mathjax" in src.lower()]
    assert mathjax and all("://" not in src for src in mathjax), scripts


def test_every_public_name_is_documented(site, pages):
    modules = api_modules()
    assert "crossent" in modules and "crossent.losses" in modules
    root_anchors = pages[(site["html"] / "api/generated/crossent.html").resolve()].anchors
    root = importlib.import_module("crossent")
    missing = []
    for module_name in modules:
        page = (site["html"] / "api/generated" / f"{module_name}.html").resolve()
        assert page in pages, f"no API page for {module_name}"
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if isinstance(obj, type(root)):
                continue  # a submodule: it has a page of its own or is described on its package's page
            if f"{module_name}.{name}" in pages[page].anchors:
                continue
            if getattr(root, name, None) is obj and f"crossent.{name}" in root_anchors:
                continue  # re-exported by crossent and documented there
            missing.append(f"{module_name}.{name}")
    assert missing == []


def test_link_checker_reports_missing_files_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">bad anchor</a>'
        '<a href="missing.html">bad file</a> <a href="https://example.org/x.html">external</a>'
        '<a href="#top">self</a><img src="img.png">',
        encoding="utf-8",
    )
    (tmp_path / "sub" / "page.html").write_text('<section id="here"></section><a href="../index.html"></a>',
                                                encoding="utf-8")
    broken = broken_internal_links(tmp_path)
    assert len(broken) == 4, broken
    assert any("#gone" in line for line in broken) and any("missing.html" in line for line in broken)
    assert any("#top" in line for line in broken) and any("img.png" in line for line in broken)
