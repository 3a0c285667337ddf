"""What was measured on what: the machine, the library versions and the app code's fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import fastapi
import httpx
import sqlalchemy
import uvicorn


def code_fingerprint(tree: Path) -> dict[str, Any]:
    """Which app code was measured (others edit app/ while benchmarks run; no git here)."""
    digest = hashlib.sha256()
    newest = 0.0
    files = sorted((tree / "app").rglob("*.py")) + sorted((tree / "migrations").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    return {
        "app_sha256": digest.hexdigest()[:16],
        "files": len(files),
        "newest_change": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
        "tree": str(tree),
    }


def machine_info(pg_version: str, pg_settings: dict[str, str]) -> dict[str, Any]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "fastapi": fastapi.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "uvicorn": uvicorn.__version__,
        "asyncpg": asyncpg.__version__,
        "httpx": httpx.__version__,
    }
