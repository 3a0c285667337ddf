"""One settings object, read from the environment (prefix ``REFUNDWATCH_``).

Every setting is documented in ``docs/configuration.md``; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Defaults make ``refundwatch serve`` just work on SQLite."""

    model_config = SettingsConfigDict(env_prefix="REFUNDWATCH_", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = Field(
        default="sqlite:///./refundwatch.db",
        description="sqlite:///path or postgresql://user@host:port/db; drivers are picked here.",
    )
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=10, ge=0, le=500)
    bootstrap_admin_key: SecretStr | None = None
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_future_skew_seconds: int = Field(default=300, ge=0)
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
    log_level: str = "info"

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("database_url must start with sqlite:// or postgresql://")
        return value

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
