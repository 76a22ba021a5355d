"""crossent.report: one self-contained, escaped HTML page whose every figure renders in a real browser.

The report of a small 8 x 8 digits run is written once per module. Its
structure is checked by parsing the HTML (tables, images, no external
references, escaping); then headless Chromium opens it from disk and the
page's own inline script reports how many of its images decoded. The browser
test is skipped when Chromium is absent, except in CI (``CI=true``), where a
missing browser is an error.
"""

from __future__ import annotations

import base64
import html
import html.parser
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

import crossent  # noqa: E402
from crossent.datasets import load_digits  # noqa: E402
from crossent.nn import MLP, SoftmaxRegression  # noqa: E402
from crossent.report import write_report  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
HOSTILE = '<script>alert("x")</script> & co'
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(html.parser.HTMLParser):
    """The tags, table classes, image attributes and text of an HTML page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.tables: list[str | None] = []
        self.images: list[dict] = []
        self.text_parts: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append(attributes.get("class"))
        if tag == "img":
            self.images.append(attributes)

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def digits_run():
    X_train, y_train, X_test, y_test = load_digits(seed=0)
    model = SoftmaxRegression(64, 10)
    history = crossent.fit(model, X_train, y_train, optimizer="momentum", lr=0.1, momentum=0.9, epochs=3,
                           batch_size=64, validation_data=(X_test, y_test), seed=0, progress=False)
    evaluation = crossent.evaluate(model, X_test, y_test)
    return model, history, evaluation, X_test, y_test


@pytest.fixture(scope="module")
def report(digits_run, tmp_path_factory):
    model, history, evaluation, X_test, y_test = digits_run
    config = {"data": "digits 8x8", "optimizer": "momentum", "lr": 0.1, "epochs": 3,
              "layers": [64, 10], HOSTILE: HOSTILE}
    names = [f"digit {digit}" for digit in range(9)] + ["nine & <9>"]
    path = write_report(tmp_path_factory.mktemp("report") / "run", model=model, history=history,
                        evaluation=evaluation, config=config, X_test=X_test, y_test=y_test,
                        image_shape=(8, 8), class_names=names, title=f"digits {HOSTILE}")
    return path, path.read_text(encoding="utf-8"), evaluation


def test_report_is_index_html_in_the_created_directory(report):
    path, _, _ = report
    assert path.name == "index.html" and path.parent.name == "run" and path.is_file()
    assert not [name for name in os.listdir(path.parent) if name != "index.html"]  # no temporary files left


def test_report_has_the_tables_and_four_embedded_pngs(report):
    _, text, evaluation = report
    page = _Page(text)
    assert {"configuration", "model", "metrics", "per-class", "epochs"} <= set(page.tables)
    # training curves, confusion matrix, weight templates, mistakes
    assert len(page.images) == 4
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix)
        data = base64.b64decode(image["src"][len(prefix):], validate=True)
        assert _png_size(data) == (int(image["width"]), int(image["height"]))
        assert image.get("alt")
    # the metrics table shows this evaluation's numbers
    assert f"{100 * evaluation['accuracy']:.2f}%" in page.text
    assert f"{evaluation['loss']:.4f}" in page.text and f"{evaluation['loss_bits']:.4f}" in page.text
    assert f"{evaluation['perplexity']:.4f}" in page.text
    first_recall = evaluation["recall"][0]
    assert f"{100 * first_recall:.2f}%" in page.text
    for section in ("configuration", "metrics", "training", "confusion", "weights", "mistakes"):
        assert f'<section id="{section}">' in text


def test_report_makes_no_external_reference(report):
    _, text, _ = report
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "@import" not in text and "url(" not in text
    # every src attribute in the page is an embedded image
    assert re.findall(r'\bsrc="([^"]{0,22})', text) == ["data:image/png;base64,"] * 4
    assert "default-src 'none'" in text  # and the browser is told to fetch nothing


def test_every_user_string_is_escaped(report):
    _, text, _ = report
    assert "<script>alert" not in text
    assert html.escape(HOSTILE, quote=True) in text
    assert "nine &amp; &lt;9&gt;" in text  # a class name, in the per-class table
    assert "<title>digits &lt;script&gt;" in text
    page = _Page(text)
    assert page.tags.count("script") == 1  # only the report's own image check
    assert HOSTILE in page.text  # and the reader sees the strings as they were given


def test_mlp_report_has_no_weight_templates_and_mistakes_need_test_data(digits_run, tmp_path):
    _, _, _, X_test, y_test = digits_run
    model = MLP(64, [16], 10, seed=0)
    history = crossent.fit(model, X_test, y_test, epochs=1, progress=False)
    evaluation = crossent.evaluate(model, X_test, y_test)
    text = write_report(tmp_path, model=model, history=history, evaluation=evaluation, config={},
                        image_shape=(8, 8)).read_text(encoding="utf-8")
    assert text.count("<img ") == 2  # curves and confusion: an MLP has no templates, no test data no mistakes
    assert 'id="weights"' not in text and 'id="mistakes"' not in text
    assert "No settings were recorded." in text


def test_a_failed_report_leaves_the_previous_one(digits_run, tmp_path):
    model, history, evaluation, X_test, y_test = digits_run
    page = tmp_path / "index.html"
    page.write_text("previous report")
    with pytest.raises(ValueError, match="image_shape"):
        write_report(tmp_path, model=model, history=history, evaluation=evaluation, config={},
                     X_test=X_test, y_test=y_test, image_shape=(9, 9))
    assert page.read_text() == "previous report"
    assert sorted(os.listdir(tmp_path)) == ["index.html"]


def test_arguments_are_checked(digits_run, tmp_path):
    model, history, evaluation, X_test, y_test = digits_run
    common = {"model": model, "history": history, "evaluation": evaluation, "config": {}}
    with pytest.raises(ValueError, match="X_test was given without y_test"):
        write_report(tmp_path, **common, X_test=X_test)
    with pytest.raises(ValueError, match="history is empty"):
        write_report(tmp_path, **{**common, "history": []})
    with pytest.raises(ValueError, match="'accuracy'"):
        write_report(tmp_path, **{**common, "evaluation": {"loss": 1.0}})
    with pytest.raises(TypeError, match="config must be a dict"):
        write_report(tmp_path, **{**common, "config": [("lr", 0.1)]})
    with pytest.raises(TypeError, match="directory"):
        write_report(3, **common)
    with pytest.raises(TypeError, match="title"):
        write_report(tmp_path, **common, title=5)
    assert not (tmp_path / "index.html").exists()


# --------------------------------------------------------------------------- in a real browser


def _chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium():
    browser = _chromium()
    if browser is None:
        if IN_CI:
            pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    return browser


def _dump_dom(browser: str, page: Path, profile: Path) -> str:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def _image_counts(dom: str) -> tuple[int, int]:
    body = re.search(r"<body\b[^>]*>", dom)
    assert body is not None, dom[:500]
    total = re.search(r'\bdata-images="(\d+)"', body.group(0))
    loaded = re.search(r'\bdata-images-loaded="(\d+)"', body.group(0))
    assert total and loaded, f"the page's load script did not run: {body.group(0)}"
    return int(total.group(1)), int(loaded.group(1))


def test_every_image_renders_in_headless_chromium(report, chromium, tmp_path):
    path, text, _ = report
    dom = _dump_dom(chromium, path, tmp_path / "profile")
    total, loaded = _image_counts(dom)
    assert total == loaded == 4
    assert '<table class="metrics">' in dom and "loss (bits)" in dom

    # the check can fail: a damaged image is counted as not loaded
    damaged = tmp_path / "damaged" / "index.html"
    damaged.parent.mkdir()
    start = text.index("base64,") + len("base64,")
    damaged.write_text(text[:start] + "AAAA" + text[start + 4:], encoding="utf-8")
    total, loaded = _image_counts(_dump_dom(chromium, damaged, tmp_path / "profile"))
    assert (total, loaded) == (4, 3)
