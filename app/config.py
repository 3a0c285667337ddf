"""One settings object, read from the environment (prefix ``REFUNDWATCH_``).

Every setting is documented in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Defaults make ``refundwatch serve`` just work on SQLite."""

    model_config = SettingsConfigDict(env_prefix="REFUNDWATCH_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Where the embedded database, uploads and the development key file live.",
    )
    database_url: str = Field(
        default="",
        description="sqlite:///path or postgresql://user@host:port/db; drivers are picked here. "
        "Default: sqlite in data_dir, the same file whatever folder a command runs in.",
    )
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=10, ge=0, le=500)
    bootstrap_admin_key: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="Encrypts marketplace credentials at rest; required in production.",
    )
    pdd_gateway_url: str = "https://gw-api.pinduoduo.com/api/router"
    pdd_calls_per_minute: int = Field(default=600, ge=1, le=100_000)
    sync_interval_seconds: float = Field(default=60.0, gt=0)
    sync_lease_seconds: int = Field(default=120, ge=10)
    sync_windows_per_run: int = Field(default=200, ge=1, le=100_000)
    pdd_messages: bool = Field(
        default=False,
        description="Listen to the platform's message push: a pushed change syncs its store "
        "at once (the app must subscribe to the messages on the open platform).",
    )
    pdd_message_url: str = Field(
        default="wss://message-api.pinduoduo.com",
        description="The platform's message service (ws:// only for a loopback fake).",
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_future_skew_seconds: int = Field(default=300, ge=0)
    max_import_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024,
        description="Largest file POST /v1/imports takes (1 GiB); larger → 413.",
    )
    ingest_group_max_events: int = Field(
        default=1000,
        ge=0,
        le=10_000,
        description="Events one group-commit transaction may merge from waiting requests; 0 = off.",
    )
    default_timezone: str = "Asia/Shanghai"
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    evaluation_interval_seconds: float = Field(default=60.0, gt=0)
    relay_interval_seconds: float = Field(default=1.0, gt=0)
    relay_batch_size: int = Field(default=50, ge=1, le=1000)
    relay_lease_seconds: int = Field(default=60, ge=5)
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs that outbound webhooks may reach although private.",
    )
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="How long a console sign-in lasts before the operator signs in again.",
    )
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: one readable line per record; json: one JSON object per line.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve GET /metrics without a key (else it needs the read scope).",
    )
    worker_metrics_address: str = Field(
        default="",
        pattern=r"^$|^[^\s:]*:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$",
        description="HOST:PORT where `refundwatch worker` serves its own /metrics; empty = none.",
    )
    db_pgbouncer: bool = Field(
        default=False,
        description="The database URL points at PgBouncer in transaction (or statement) "
        "pooling: no prepared statement outlives its transaction.",
    )
    raw_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Drop raw event payloads received more than this many days ago, keeping "
        "each event's id and content hash; unset = keep every payload.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("database_url must start with sqlite:// or postgresql://")
        return value

    @field_validator("pdd_message_url")
    @classmethod
    def _websocket_scheme(cls, value: str) -> str:
        if not value.startswith(("wss://", "ws://")):
            raise ValueError("pdd_message_url must start with wss:// (or ws://)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _embedded_database_in_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir.expanduser().resolve()}/refundwatch.db"
        return self

    @model_validator(mode="after")
    def _secure_outside_development(self) -> Settings:
        key = self.bootstrap_admin_key
        if (
            self.environment == "production"
            and key is not None
            and len(key.get_secret_value()) < 24
        ):
            raise ValueError("bootstrap_admin_key must be at least 24 characters in production")
        return self

    @property
    def async_database_url(self) -> str:
        """The URL with the async driver this service uses (aiosqlite / asyncpg)."""
        return to_async_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def database_label(self) -> str:
        """The database URL with any password masked: what commands print."""
        return masked_url(self.database_url)

    @property
    def import_dir(self) -> Path:
        """Where uploaded files wait for (and during) their import."""
        return self.data_dir.expanduser() / "imports"


def to_async_url(url: str) -> str:
    """Map a plain database URL to the async driver: users write ``postgresql://``."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql+psycopg://") or url.startswith("postgresql+psycopg2://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    return url


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/refundwatch`` (``~/.local/share/refundwatch``): one place for every command."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "refundwatch"


def masked_url(url: str) -> str:
    """A database URL fit to print: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
