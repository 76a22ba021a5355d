"""Cross-entropy speed: crossent next to naive NumPy, PyTorch CPU and the machine's limits, in one run.

Run from the repository root::

    .venv/bin/python benchmarks/cross_entropy.py                          # every workload, 10-15 minutes
    .venv/bin/python benchmarks/cross_entropy.py --workloads ce,ce-options,ce-mnist
    .venv/bin/python benchmarks/cross_entropy.py --scale 0.01 --repeat 2  # a quick smoke run
    .venv/bin/python benchmarks/cross_entropy.py --json cross_entropy.json

The same as ``crossent bench``: the measuring code, the workloads and the
options are in :mod:`crossent.bench` (see benchmarks/README.md).
"""

import sys

from crossent.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="benchmarks/cross_entropy.py"))
