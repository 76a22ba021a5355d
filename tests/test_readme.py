"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples save files
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", README.read_text(), flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in ci.splitlines()


def test_readme_pictures_exist_and_are_regenerated_by_the_documented_script():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert images, "the README shows no pictures"
    script = (README.parent / "docs" / "make-images.sh").read_text()
    for image in images:
        path = README.parent / image
        assert path.is_file() and path.stat().st_size > 1000, image
        assert f'"$out/{path.name}"' in script, f"{image} is not written by docs/make-images.sh"
