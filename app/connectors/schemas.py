"""Connection shapes: what a client sends (credentials) and reads back (never them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.params import Flag, Instant
from app.connectors.models import Connection

NoNulText = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
MallId = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,19}$")]


class ConnectionIn(BaseModel):
    """A store's authorised app on the open platform (DESIGN of the connector)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "platform": "pdd",
                    "store_id": "s1",
                    "client_id": "8a1b2c3d4e5f",
                    "client_secret": "app-secret-from-the-open-platform",
                    "access_token": "store-access-token",
                    "sync_from": "2026-10-01T00:00:00+08:00",
                }
            ]
        },
    )

    platform: Literal["pdd"] = Field(description="pdd: the Pinduoduo open platform")
    store_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    ] = Field(description="The refundwatch store the connection fills")
    client_id: Annotated[
        str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]+$")
    ]
    client_secret: NoNulText = Field(description="The app's secret: stored encrypted, never shown")
    access_token: NoNulText = Field(description="The store's token: stored encrypted, never shown")
    refresh_token: NoNulText | None = Field(
        default=None,
        description="The store's refresh_token, if the app has one: an expired access_token "
        "is then renewed (pdd.pop.auth.token.refresh) instead of failing. Stored encrypted, "
        "never shown",
    )
    sync_from: Instant | None = Field(
        default=None,
        description="Backfill from here (default: the policy's window + 15 days ago)",
    )
    mall_id: MallId | None = Field(
        default=None,
        description="The store's mall id (店铺ID) at the platform. With message push on, "
        "a pushed change of this mall syncs the store at once; without it, every pushed "
        "message of the app wakes this connection",
    )


class ConnectionPatch(BaseModel):
    """Pause or resume, or give new credentials (a failing connection then starts again)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"enabled": False}, {"access_token": "…"}]}
    )

    enabled: Flag | None = Field(default=None, description="false pauses (disabled), true resumes")
    client_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]+$")]
        | None
    ) = None
    client_secret: NoNulText | None = None
    access_token: NoNulText | None = None
    refresh_token: NoNulText | None = None
    mall_id: MallId | None = Field(
        default=None, description="The store's mall id (店铺ID); null forgets it"
    )


class ConnectionError(BaseModel):
    code: str = Field(description="The platform's error_code (or network, malformed, …)")
    message: str = Field(description="The platform's message, never a credential")
    at: datetime


class ConnectionCounts(BaseModel):
    events_accepted: int
    events_duplicate: int
    events_rejected: int
    calls: int = Field(description="Gateway calls made")
    windows: int = Field(description="Windows read and committed")


class ConnectionOut(BaseModel):
    id: int
    platform: str
    store_id: str
    client_id: str
    mall_id: str | None = Field(description="The store's mall id at the platform, if given")
    status: str = Field(description="backfilling, live, failing or disabled")
    enabled: bool
    sync_from: datetime
    synced_through: datetime = Field(description="Every update up to this instant is in")
    lag_seconds: int = Field(description="How far synced_through is behind now")
    backfill_progress: float = Field(description="From sync_from to now − 3 min, 0 to 1")
    next_sync_at: datetime | None
    last_sync_at: datetime | None
    counts: ConnectionCounts
    last_error: ConnectionError | None
    has_refresh_token: bool = Field(
        description="Whether an expired access_token is renewed with a stored refresh_token"
    )
    token_refreshed_at: datetime | None = Field(
        description="When the access_token was last renewed by refresh_token"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, record: Connection, now: datetime, horizon: datetime) -> ConnectionOut:
        span = (horizon - record.sync_from).total_seconds()
        done = (record.synced_through - record.sync_from).total_seconds()
        return cls(
            id=record.id,
            platform=record.platform,
            store_id=record.store_id,
            client_id=record.client_id,
            mall_id=record.mall_id,
            status=record.status,
            enabled=record.enabled,
            sync_from=record.sync_from,
            synced_through=record.synced_through,
            lag_seconds=max(0, int((now - record.synced_through).total_seconds())),
            backfill_progress=1.0 if span <= 0 else max(0.0, min(1.0, done / span)),
            next_sync_at=record.next_sync_at if record.enabled else None,
            last_sync_at=record.last_sync_at,
            counts=ConnectionCounts(
                events_accepted=record.events_accepted,
                events_duplicate=record.events_duplicate,
                events_rejected=record.events_rejected,
                calls=record.calls,
                windows=record.windows,
            ),
            last_error=ConnectionError(
                code=record.last_error_code,
                message=record.last_error_message or "",
                at=record.last_error_at,
            )
            if record.last_error_code and record.last_error_at
            else None,
            has_refresh_token=record.refresh_token_encrypted is not None,
            token_refreshed_at=record.token_refreshed_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


CONNECTION_EXAMPLE: dict[str, object] = {
    "id": 1,
    "platform": "pdd",
    "store_id": "s1",
    "client_id": "8a1b2c3d4e5f",
    "mall_id": "171504183",
    "status": "live",
    "enabled": True,
    "sync_from": "2026-09-30T16:00:00Z",
    "synced_through": "2026-11-26T03:57:00Z",
    "lag_seconds": 180,
    "backfill_progress": 1.0,
    "next_sync_at": "2026-11-26T04:01:00Z",
    "last_sync_at": "2026-11-26T04:00:00Z",
    "counts": {
        "events_accepted": 12840,
        "events_duplicate": 310,
        "events_rejected": 0,
        "calls": 2755,
        "windows": 2736,
    },
    "last_error": None,
    "has_refresh_token": True,
    "token_refreshed_at": None,
    "created_at": "2026-11-20T02:00:00Z",
    "updated_at": "2026-11-26T04:00:00Z",
}
