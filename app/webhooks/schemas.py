"""Webhook subscription and delivery shapes."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, field_validator

from app.api.params import Flag, Instant, StoreIdText, Text
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

Format = Literal["standard", "dingtalk", "wecom", "feishu"]
TierName = Literal["demotion", "listing_ban", "delisting"]
AlertType = Literal["alert.approaching", "alert.breached", "alert.resolved", "alert.reminder"]

#: webhooks.url is String(2000): the URL as it will be sent (percent-encoded,
#: IDNA host) must fit, not only as it was typed.
MAX_URL_CHARS = 2000


def _fits_the_column(url: HttpUrl) -> HttpUrl:
    if len(str(url)) > MAX_URL_CHARS:
        raise ValueError(f"the URL is over {MAX_URL_CHARS} characters once encoded")
    return url


WebhookUrl = Annotated[HttpUrl, AfterValidator(_fits_the_column)]
StoreIds = Annotated[list[StoreIdText], Field(max_length=1000)]

# Query parameters that carry a credential: DingTalk's access_token, WeCom's key,
# and the usual names a receiver's own URL might use.
_SECRET_PARAMS = frozenset(
    {"access_token", "key", "token", "secret", "sign", "signature", "api_key", "apikey", "auth"}
)
# Feishu/Lark robots carry their token as the last path segment: …/bot/v2/hook/<token>.
_HOOK_PATH = re.compile(r"^(?P<head>.*/hook/)(?P<token>[^/]+)(?P<tail>/?)$")


def _mask(token: str) -> str:
    # The last 4 characters tell two robots apart; the rest is the credential.
    return "****" + token[-4:] if len(token) >= 12 else "****"


def masked_url(url: str) -> str:
    """The URL with its credentials masked: what a key without ``admin`` may read.

    A group robot's URL is its credential (anyone holding it can post to the
    group): DingTalk's ``access_token=``, WeCom's ``key=``, Feishu's hook path
    token. The same names in any URL are masked too.
    """
    parts = urlsplit(url)
    query = [
        (name, _mask(value) if name.lower() in _SECRET_PARAMS and value else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    path = parts.path
    hook = _HOOK_PATH.match(path)
    if hook is not None:
        path = f"{hook['head']}{_mask(hook['token'])}{hook['tail']}"
    return urlunsplit(parts._replace(path=path, query=urlencode(query, safe="*")))


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

    url: WebhookUrl = Field(description="http(s) URL; private and loopback addresses are refused")
    format: Format = Field(
        default="standard",
        description="standard (Standard Webhooks JSON) or a group robot: dingtalk, wecom, feishu",
    )
    description: Text | None = Field(default=None, max_length=200, description="For your team")
    secret: Text | None = Field(
        default=None,
        max_length=200,
        description="standard: leave empty to get a generated whsec_… (or give your own whsec_…); "
        "dingtalk/feishu: the robot's signing secret (加签); wecom: none",
    )
    store_ids: StoreIds | None = Field(default=None, description="Only these stores (null = all)")
    tiers: list[TierName] | None = Field(
        default=None, max_length=3, description="Only these tiers (null = all)"
    )
    alert_types: list[AlertType] | None = Field(
        default=None, max_length=4, description="Only these types (null = all)"
    )
    enabled: Flag = Field(default=True, description="false: subscribed, but sent nothing")
    daily_report_at: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Send a daily report (日报) at this local time, HH:MM (null: none)",
        examples=["09:00"],
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        min_length=1,
        max_length=64,
        description="The IANA time zone of daily_report_at",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


def known_zone(value: str) -> str:
    """An IANA time zone name, or a ValueError naming it."""
    try:
        ZoneInfo(value)
    # OSError: a name the file system refuses ("Asia" is a directory, too long a name).
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value[:64]!r}; use an IANA name") from None
    return value


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    url: WebhookUrl | None = Field(default=None, description="A new URL (checked again)")
    description: Text | None = Field(default=None, max_length=200)
    secret: Text | None = Field(
        default=None, max_length=200, description="Robots only; use rotate-secret for standard"
    )
    store_ids: StoreIds | None = Field(default=None, description="Only these stores (null = all)")
    tiers: list[TierName] | None = Field(
        default=None, max_length=3, description="Only these tiers (null = all)"
    )
    alert_types: list[AlertType] | None = Field(
        default=None, max_length=4, description="Only these types (null = all)"
    )
    enabled: Flag | None = Field(
        default=None,
        description="true re-enables and clears the failure streak and the robot's refusal",
    )
    daily_report_at: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="HH:MM for the daily report; null turns it off",
    )
    timezone: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_zone(value)


class RobotRefusal(BaseModel):
    """A group robot refused a message for a reason only its configuration can change."""

    code: str = Field(description="The robot's errcode (DingTalk, WeCom) or code (Feishu)")
    message: str = Field(description="The robot's own message, e.g. sign not match")
    at: datetime


class WebhookOut(BaseModel):
    id: int
    url: str = Field(
        description="The URL; its credentials (a robot's access_token, key or hook token) are "
        "masked unless the key has the `admin` scope"
    )
    format: str
    description: str | None
    store_ids: list[str] | None
    tiers: list[str] | None
    alert_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    last_refusal: RobotRefusal | None = Field(
        description="The robot's last refusal that needs its configuration fixed (a wrong "
        "secret, a keyword the message lacks, an address not allowed, an unknown token); "
        "null once a message is delivered or the URL or secret is edited"
    )
    has_secret: bool
    daily_report_at: str | None = Field(description="HH:MM of the daily report, if any")
    timezone: str = Field(description="The time zone of daily_report_at")
    last_report_on: date | None = Field(description="The day of the last daily report sent")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription, *, reveal: bool = True) -> WebhookOut:
        """The subscription as answered; ``reveal=False`` masks the URL's credentials."""
        return cls(
            id=sub.id,
            url=sub.url if reveal else masked_url(sub.url),
            format=sub.format,
            description=sub.description,
            store_ids=sub.store_ids,
            tiers=sub.tiers,
            alert_types=sub.alert_types,
            enabled=sub.enabled,
            disabled_reason=sub.disabled_reason,
            failing_since=sub.failing_since,
            last_refusal=RobotRefusal(
                code=sub.refusal_code, message=sub.refusal_message or "", at=sub.refused_at
            )
            if sub.refusal_code and sub.refused_at
            else None,
            has_secret=bool(sub.secret),
            daily_report_at=sub.daily_report_at,
            timezone=sub.report_timezone,
            last_report_on=sub.last_report_on,
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

    since: Instant = Field(description="Re-queue failed deliveries created at or after this time")


class RecoverOut(BaseModel):
    requeued: int


class TestOut(BaseModel):
    delivery: DeliveryOut
    outcome: str = Field(
        description="delivered; retry (will be sent again); gone (410: the webhook is now "
        "disabled); refused (a robot refused it for its settings: see the webhook's "
        "last_refusal); failed"
    )


WEBHOOK_EXAMPLE: dict[str, object] = {
    "id": 1,
    "url": "https://oapi.dingtalk.com/robot/send?access_token=****9f3a",
    "format": "dingtalk",
    "description": "运营群",
    "store_ids": ["s1"],
    "tiers": ["demotion", "delisting"],
    "alert_types": None,
    "enabled": True,
    "disabled_reason": None,
    "failing_since": None,
    "last_refusal": None,
    "has_secret": True,
    "daily_report_at": "09:00",
    "timezone": "Asia/Shanghai",
    "last_report_on": "2026-11-26",
    "created_at": "2026-11-20T02:00:00Z",
    "updated_at": "2026-11-20T02:00:00Z",
}

WEBHOOK_CREATED_EXAMPLE: dict[str, object] = {
    **WEBHOOK_EXAMPLE,
    "url": "https://hooks.example.com/refundwatch",
    "format": "standard",
    "description": None,
    "store_ids": None,
    "tiers": None,
    "daily_report_at": None,
    "last_report_on": None,
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

ATTEMPT_EXAMPLE: dict[str, object] = {
    "attempted_at": "2026-11-26T04:00:01Z",
    "status_code": 200,
    "duration_ms": 182,
    "error": None,
    "response_excerpt": '{"errcode":0,"errmsg":"ok"}',
    "digest_size": 1,
}

DELIVERY_EXAMPLE: dict[str, object] = {
    "id": 7,
    "webhook_id": 1,
    "msg_id": "msg_5f0c2a9e8b7d4c3a9e1f2b3c4d5e6f70",
    "alert_id": "0b6f3c1e-7d8a-4f57-9a51-2f9e5c1d4a3b",
    "event_type": "alert.breached",
    "status": "delivered",
    "attempts": 1,
    "next_attempt_at": None,
    "last_status_code": 200,
    "last_error": None,
    "created_at": "2026-11-26T04:00:00Z",
    "delivered_at": "2026-11-26T04:00:01Z",
    "attempt_log": [ATTEMPT_EXAMPLE],
}
