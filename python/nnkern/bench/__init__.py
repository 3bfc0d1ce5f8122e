"""nnkern.bench: nnkern's kernels timed against their NumPy twins and PyTorch.

Run ``python -m nnkern.bench --help``. Every case is validated (nnkern vs the NumPy twin and
vs PyTorch, float32 tolerance) before it is timed; see :mod:`nnkern.bench.harness` for the
machinery and :mod:`nnkern.bench.suites` for the cases and the fairness rules they follow.
PyTorch is optional: without it the torch columns show "-".
"""

from .harness import CASES, Case, Skip, register, require
from . import suites  # noqa: F401,E402  (registers the cases)

__all__ = ["CASES", "Case", "Skip", "register", "require", "main"]


def main(argv=None) -> int:
    """The command line entry point; returns the exit code."""
    from .cli import main as _main

    return _main(argv)
