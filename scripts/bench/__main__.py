"""``python scripts/bench [options]`` (or ``python -m bench`` from scripts/): run the bench."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: import the package by name, from scripts/
    _package = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _package]
    sys.path.insert(0, str(_package.parent))

from bench.cli import main

sys.exit(main())
