"""Saving an uploaded file for an import (``POST /v1/imports`` and the console's form).

Streamed into the import folder in 1 MiB blocks, hashed as it goes (a rerun of
the same file resumes by its SHA-256), refused past ``REFUNDWATCH_MAX_IMPORT_BYTES``
with nothing left behind.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Protocol

from app.config import Settings
from app.errors import PayloadTooLarge

BLOCK = 1 << 20
SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".xlsx")
"""File name endings kept on the saved copy (the reader looks at them for XLSX)."""


class Upload(Protocol):
    """What both doors hand over: Starlette's ``UploadFile`` satisfies it."""

    async def read(self, size: int = -1) -> bytes: ...


def upload_suffix(name: str | None) -> str:
    """The upload's known ending, lower-cased, or ``''``."""
    suffix = Path(name or "").suffix.lower()
    return suffix if suffix in SUFFIXES else ""


async def save_upload(upload: Upload, settings: Settings, suffix: str) -> tuple[Path, str]:
    """Stream the upload into the import folder, hashing it; refuse it over the limit.

    Returns the saved path and the file's SHA-256 (hex). Raises
    :class:`PayloadTooLarge` (``file_too_large``) past the limit, the partial
    file removed.
    """
    folder = settings.import_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            while block := await upload.read(BLOCK):
                size += len(block)
                if size > settings.max_import_bytes:
                    raise PayloadTooLarge(
                        f"the file is over the limit of {settings.max_import_bytes} bytes",
                        code="file_too_large",
                    )
                digest.update(block)
                out.write(block)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest()
