"""Policy shapes: what a client sends and reads back."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.api.params import Count, Text
from app.events.vocabulary import REASON_CODES, normalise_reason

#: Numeric(8, 6): what the database keeps of warn_ratio. A value is checked as it
#: will be stored (at most 6 places, refused beyond), never rounded afterwards.
WARN_RATIO_PLACES = 6
#: Tier thresholds are kept as text, but are held to the same precision as the
#: rate they are compared with: "1E-999999999" would make exact arithmetic explode.
THRESHOLD_PLACES = 6


def _as_stored(places: int) -> AfterValidator:
    quantum = Decimal(1).scaleb(-places)
    return AfterValidator(lambda value: value.quantize(quantum).normalize())


class TierLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Literal["demotion", "listing_ban", "delisting"] = Field(
        description="demotion 降权 · listing_ban 禁止上新 · delisting 下架"
    )
    scope: Literal["store", "product"]
    rate_threshold: Annotated[Decimal, _as_stored(THRESHOLD_PLACES)] = Field(
        gt=0,
        le=1,
        max_digits=THRESHOLD_PLACES + 1,
        decimal_places=THRESHOLD_PLACES,
        description="The rate line, in (0, 1], at most 6 decimal places: 0.01 is 1%",
        examples=["0.01"],
    )
    min_count: Annotated[Count, Field(ge=1)] = Field(
        description="The count line: at least this many quality refunds"
    )


class PolicyIn(BaseModel):
    """A policy. Every field has the default policy's value when omitted."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "strict",
                    "window_days": 30,
                    "quality_reasons": ["quality_issue", "not_as_described", "damaged"],
                    "reason_basis": "first",
                    "warn_ratio": "0.8",
                    "warn_headroom": 1,
                    "min_orders": 0,
                    "reminder_interval_seconds": 86400,
                    "tiers": [
                        {
                            "tier": "demotion",
                            "scope": "store",
                            "rate_threshold": "0.01",
                            "min_count": 5,
                        },
                        {
                            "tier": "listing_ban",
                            "scope": "store",
                            "rate_threshold": "0.02",
                            "min_count": 10,
                        },
                        {
                            "tier": "delisting",
                            "scope": "product",
                            "rate_threshold": "0.03",
                            "min_count": 5,
                        },
                    ],
                }
            ]
        },
    )

    name: Text = Field(min_length=1, max_length=100, description="Unique among policies")
    window_days: Annotated[Count, Field(ge=1, le=366)] = Field(
        default=30, description="The window: the last N days, today included"
    )
    quality_reasons: list[str] = Field(
        default_factory=lambda: ["quality_issue", "not_as_described"],
        min_length=1,
        max_length=50,
        description="Reason codes (or Chinese labels) that count as quality refunds",
    )
    reason_basis: Literal["first", "latest"] = Field(
        default="first",
        description="Judge a refund by its first reason (as applied) or its latest one",
    )
    warn_ratio: Annotated[Decimal, _as_stored(WARN_RATIO_PLACES)] = Field(
        default=Decimal("0.8"),
        gt=0,
        lt=1,
        max_digits=WARN_RATIO_PLACES + 2,
        decimal_places=WARN_RATIO_PLACES,
        description="approaching at this share of both lines, in (0, 1), at most 6 decimal "
        "places (the largest is 0.999999)",
        examples=["0.8"],
    )
    warn_headroom: Annotated[Count, Field(le=1000)] = Field(
        default=1, description="approaching when this few refunds are left to a breach"
    )
    min_orders: Count = Field(default=0, description="Below this many orders a scope is unrated")
    reminder_interval_seconds: Annotated[Count, Field(ge=60, le=30 * 86400)] = Field(
        default=86400,
        description="Remind this often while approaching or breached (60 s to 30 days)",
    )
    count_basis: Literal["counted", "applied"] = Field(
        default="counted",
        description="What the tiers judge: counted (quality_refunds: withdrawn, rejected and "
        "appeal-upheld refunds leave the count) or applied (applied_quality_refunds: every "
        "quality-reason application counts). Compare with the platform's figures to choose.",
    )
    reason_aliases: dict[Text, Text] = Field(
        default_factory=dict,
        max_length=500,
        description="Platform after-sale labels (退款原因) → reason codes, used by imports and "
        'connectors before the built-in label table, e.g. {"买家原因": "changed_mind"}',
    )
    tiers: list[TierLine] = Field(
        default_factory=lambda: [
            TierLine(tier="demotion", scope="store", rate_threshold=Decimal("0.01"), min_count=5),
            TierLine(
                tier="listing_ban", scope="store", rate_threshold=Decimal("0.02"), min_count=10
            ),
            TierLine(
                tier="delisting", scope="product", rate_threshold=Decimal("0.03"), min_count=5
            ),
        ],
        max_length=12,
    )

    @field_validator("quality_reasons")
    @classmethod
    def _known_reasons(cls, values: list[str]) -> list[str]:
        codes = []
        for value in values:
            code = normalise_reason(value)
            if code is None:
                raise ValueError(f"unknown reason {value!r}; valid: {', '.join(REASON_CODES)}")
            codes.append(code)
        return sorted(set(codes))

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, tiers: list[TierLine]) -> list[TierLine]:
        # A field validator (not a model one) so the 422 names body.tiers.
        seen: set[tuple[str, str]] = set()
        for line in tiers:
            pair = (line.tier, line.scope)
            if pair in seen:
                raise ValueError(f"each (tier, scope) pair may appear once; {pair} repeats")
            seen.add(pair)
        return tiers

    @field_validator("reason_aliases")
    @classmethod
    def _known_alias_reasons(cls, aliases: dict[str, str]) -> dict[str, str]:
        checked: dict[str, str] = {}
        for label, reason in aliases.items():
            text = label.strip()
            if not 1 <= len(text) <= 100 or "\x00" in text:
                raise ValueError(f"label {label!r} must be 1–100 characters without NUL")
            code = normalise_reason(reason)
            if code is None:
                raise ValueError(
                    f"unknown reason {reason!r} for label {label!r}; valid: {', '.join(REASON_CODES)}"
                )
            checked[text] = code
        return checked

    def tiers_json(self) -> list[dict[str, Any]]:
        return [
            {
                "tier": t.tier,
                "scope": t.scope,
                "rate_threshold": str(t.rate_threshold),
                "min_count": t.min_count,
            }
            for t in self.tiers
        ]


class PolicyOut(BaseModel):
    id: int
    name: str
    window_days: int
    quality_reasons: list[str]
    reason_basis: str
    warn_ratio: str
    warn_headroom: int
    min_orders: int
    reminder_interval_seconds: int
    tiers: list[dict[str, Any]]
    reason_aliases: dict[str, str]
    count_basis: str
    stores: int = Field(description="How many stores use it")
    created_at: datetime
    updated_at: datetime


class PolicyPage(BaseModel):
    items: list[PolicyOut]
    next_cursor: str | None


POLICY_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "name": "strict",
    "window_days": 30,
    "quality_reasons": ["damaged", "not_as_described", "quality_issue"],
    "reason_basis": "first",
    "warn_ratio": "0.8",
    "warn_headroom": 1,
    "min_orders": 0,
    "reminder_interval_seconds": 86400,
    "tiers": [
        {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 5},
        {"tier": "listing_ban", "scope": "store", "rate_threshold": "0.02", "min_count": 10},
        {"tier": "delisting", "scope": "product", "rate_threshold": "0.03", "min_count": 5},
    ],
    "reason_aliases": {"买家原因": "changed_mind"},
    "count_basis": "counted",
    "stores": 12,
    "created_at": "2026-11-20T02:00:00Z",
    "updated_at": "2026-11-20T02:00:00Z",
}
