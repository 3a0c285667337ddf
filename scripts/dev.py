#!/usr/bin/env python3
"""Zero-setup entry point: `python3 scripts/dev.py run|test|lint|bench`.

Needs only Python 3.11+. Creates `.venv` next to the project on first use,
installs the project into it (with the dev extras for test/lint), then runs
the command inside it. Later runs reuse the venv and reinstall only when
pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"refundwatch needs Python 3.11+, this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    print(f"installing refundwatch{f'[{extras}]' if extras else ''} into {VENV} ...", flush=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", target],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def run(args: list[str]) -> int:
    return subprocess.call(args, cwd=ROOT)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    rest = argv[1:]
    if command == "run":
        ensure_venv("")
        return run([str(BIN / "refundwatch"), "serve", *rest])
    if command == "test":
        ensure_venv("dev")
        return run([str(PY), "-m", "pytest", *rest])
    if command == "lint":
        ensure_venv("dev")
        return (
            run([str(BIN / "ruff"), "check", "app", "tests", "migrations", "scripts"])
            or run(
                [str(BIN / "ruff"), "format", "--check", "app", "tests", "migrations", "scripts"]
            )
            or run([str(BIN / "mypy")])
        )
    if command == "bench":
        ensure_venv("dev")
        return run([str(PY), "scripts/bench", *rest]) or run(
            [str(PY), "scripts/bench_alert_latency.py"]
        )
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
