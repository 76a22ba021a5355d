import subprocess
import sys

import pytest

from crossent.cli import main


def test_demo_prints_the_worked_example(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "0.4644 nats" in out
    for fragment in ("cat", "0.2312", "+0.2312", "dog", "0.6285", "-0.3715", "bird", "0.1402"):
        assert fragment in out


def test_demo_with_other_logits_and_numbered_target(capsys):
    assert main(["demo", "--logits", "3", "1", "--target", "1"]) == 0
    out = capsys.readouterr().out
    assert "2.1269 nats" in out  # -log(e / (e^3 + e))


@pytest.mark.parametrize("argv,message", [
    (["demo", "--target", "fish"], "--target 'fish' is neither one of cat, dog, bird"),
    (["demo", "--target", "5"], "--target 5 is out of range [0, 2]"),
    (["demo", "--classes", "a", "b"], "--classes names 2 classes but --logits has 3 values"),
    (["demo", "--loss", "nll"], "--loss 'nll' is not a loss on logits and class labels"),
])
def test_demo_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_no_command_prints_help_and_losses_lists_registry(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["losses"]) == 0
    assert "cross_entropy" in capsys.readouterr().out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "crossent.cli", "demo"], capture_output=True, text=True,
                            check=True)
    assert "0.4644" in result.stdout
