"""``python -m nnkern.bench``: see nnkern.bench.cli."""

from .cli import main

raise SystemExit(main())
