"""Where the bench finds the project, the venv's tools and its own results."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench-results"


def use_tests() -> None:
    """Make the project's ``tests`` package importable (its fakes and export writers)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
