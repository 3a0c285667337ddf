"""API key shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.api.params import Text
from app.auth.keys import Scope


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "erp-sync", "scopes": ["ingest"]}]}
    )

    name: Text = Field(min_length=1, max_length=100, description="A name to tell the key apart")
    scopes: list[Scope] = Field(
        min_length=1, max_length=3, description="ingest, read, admin (admin implies all)"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


API_KEY_EXAMPLE: dict[str, object] = {
    "id": 2,
    "name": "erp-sync",
    "prefix": "rw_Qd3k9Zp",
    "scopes": ["ingest"],
    "created_at": "2026-11-26T04:00:00Z",
    "revoked_at": None,
}
