"""Policy shapes: what a client sends and reads back."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.events.vocabulary import REASON_CODES, normalise_reason


class TierLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Literal["demotion", "listing_ban", "delisting"] = Field(
        description="demotion 降权 · listing_ban 禁止上新 · delisting 下架"
    )
    scope: Literal["store", "product"]
    rate_threshold: Decimal = Field(
        gt=0, le=1, description="The rate line, in (0, 1]: 0.01 is 1%", examples=["0.01"]
    )
    min_count: int = Field(ge=1, description="The count line: at least this many quality refunds")


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

    name: str = Field(min_length=1, max_length=100)
    window_days: int = Field(default=30, ge=1, le=366)
    quality_reasons: list[str] = Field(
        default_factory=lambda: ["quality_issue", "not_as_described"],
        min_length=1,
        description="Reason codes (or Chinese labels) that count as quality refunds",
    )
    reason_basis: Literal["first", "latest"] = "first"
    warn_ratio: Decimal = Field(default=Decimal("0.8"), gt=0, lt=1)
    warn_headroom: int = Field(default=1, ge=0, le=1000)
    min_orders: int = Field(default=0, ge=0)
    reminder_interval_seconds: int = Field(default=86400, ge=60, le=30 * 86400)
    reason_aliases: dict[str, str] = Field(
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
    stores: int = Field(description="How many stores use it")
    created_at: datetime
    updated_at: datetime


class PolicyPage(BaseModel):
    items: list[PolicyOut]
    next_cursor: str | None
