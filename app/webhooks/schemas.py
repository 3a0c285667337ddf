"""Webhook subscription and delivery shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

Format = Literal["standard", "dingtalk", "wecom", "feishu"]
TierName = Literal["demotion", "listing_ban", "delisting"]
AlertType = Literal["alert.approaching", "alert.breached", "alert.resolved", "alert.reminder"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://hooks.example.com/refundwatch", "format": "standard"},
                {
                    "url": "https://oapi.dingtalk.com/robot/send?access_token=XXXX",
                    "format": "dingtalk",
                    "secret": "SEC0123456789abcdef",
                    "store_ids": ["s1"],
                    "tiers": ["demotion", "delisting"],
                },
            ]
        },
    )

    url: HttpUrl = Field(description="http(s) URL; private and loopback addresses are refused")
    format: Format = "standard"
    description: str | None = Field(default=None, max_length=200)
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="standard: leave empty to get a generated whsec_… (or give your own whsec_…); "
        "dingtalk/feishu: the robot's signing secret (加签); wecom: none",
    )
    store_ids: list[str] | None = Field(default=None, description="Only these stores (null = all)")
    tiers: list[TierName] | None = Field(default=None, description="Only these tiers (null = all)")
    alert_types: list[AlertType] | None = Field(
        default=None, description="Only these types (null = all)"
    )
    enabled: bool = True


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    url: HttpUrl | None = None
    description: str | None = Field(default=None, max_length=200)
    secret: str | None = Field(
        default=None, max_length=200, description="Robots only; use rotate-secret for standard"
    )
    store_ids: list[str] | None = None
    tiers: list[TierName] | None = None
    alert_types: list[AlertType] | None = None
    enabled: bool | None = Field(
        default=None, description="true re-enables and clears the failure streak"
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    format: str
    description: str | None
    store_ids: list[str] | None
    tiers: list[str] | None
    alert_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    has_secret: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription) -> WebhookOut:
        return cls(
            id=sub.id,
            url=sub.url,
            format=sub.format,
            description=sub.description,
            store_ids=sub.store_ids,
            tiers=sub.tiers,
            alert_types=sub.alert_types,
            enabled=sub.enabled,
            disabled_reason=sub.disabled_reason,
            failing_since=sub.failing_since,
            has_secret=bool(sub.secret),
            created_at=sub.created_at,
            updated_at=sub.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str | None = Field(description="The signing secret: shown only now")


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    response_excerpt: str | None
    digest_size: int = Field(description="How many alerts the message carried (robot digests)")

    @classmethod
    def of(cls, a: DeliveryAttempt) -> AttemptOut:
        return cls(
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            duration_ms=a.duration_ms,
            error=a.error,
            response_excerpt=a.response_excerpt,
            digest_size=a.digest_size,
        )


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    msg_id: str = Field(description="The webhook-id header: the same on every retry")
    alert_id: str | None
    event_type: str
    status: str = Field(description="pending, delivering, delivered, failed, cancelled")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryOut:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            msg_id=d.msg_id,
            alert_id=d.alert_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
            attempt_log=[AttemptOut.of(a) for a in attempts],
        )


class RecoverIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"since": "2026-11-25T00:00:00+08:00"}]}
    )

    since: datetime = Field(description="Re-queue failed deliveries created at or after this time")


class RecoverOut(BaseModel):
    requeued: int


class TestOut(BaseModel):
    delivery: DeliveryOut
    outcome: str = Field(description="delivered, retry, gone or failed")
