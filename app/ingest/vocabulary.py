"""The fixed words of the event contract (DESIGN §1–2): reasons, kinds, stages."""

from __future__ import annotations

REASON_CODES: tuple[str, ...] = (
    "quality_issue",
    "not_as_described",
    "damaged",
    "wrong_item",
    "missing_parts",
    "counterfeit",
    "changed_mind",
    "ordered_by_mistake",
    "shipping_delay",
    "lost_in_transit",
    "other",
)

# Each reason is also accepted as its Chinese label (and the label's halves).
REASON_BY_LABEL: dict[str, str] = {
    "质量问题": "quality_issue",
    "描述不符": "not_as_described",
    "破损": "damaged",
    "发错货": "wrong_item",
    "少件/漏发": "missing_parts",
    "少件": "missing_parts",
    "漏发": "missing_parts",
    "假冒品牌": "counterfeit",
    "不想要了/七天无理由": "changed_mind",
    "不想要了": "changed_mind",
    "七天无理由": "changed_mind",
    "拍错/多拍": "ordered_by_mistake",
    "拍错": "ordered_by_mistake",
    "多拍": "ordered_by_mistake",
    "发货慢": "shipping_delay",
    "快递丢件": "lost_in_transit",
    "其他": "other",
}

KINDS: tuple[str, ...] = ("refund_only_unshipped", "return_refund", "intercept", "refund_only")

ORDER_EVENT_TYPES: tuple[str, ...] = ("order.paid", "order.shipped", "order.delivered")

# Lifecycle stages in the order that breaks ties at one instant ("the later stage
# wins"): the order DESIGN §2 lists them in.
STAGE_RANK: dict[str, int] = {
    "refund.requested": 0,
    "refund.approved": 1,
    "refund.return_shipped": 2,
    "refund.return_received": 3,
    "refund.succeeded": 4,
    "refund.rejected": 5,
    "refund.withdrawn": 6,
}
OPEN_STAGE_MAX = 3
OUTCOME_BY_STAGE: dict[int, str] = {
    0: "open",
    1: "open",
    2: "open",
    3: "open",
    4: "succeeded",
    5: "rejected",
    6: "withdrawn",
}
STAGE_NAMES: dict[int, str] = {
    rank: name.removeprefix("refund.") for name, rank in STAGE_RANK.items()
}

APPEAL_RESULT: dict[str, str] = {
    "refund.appeal_upheld": "upheld",
    "refund.appeal_rejected": "rejected",
}

REFUND_EVENT_TYPES: tuple[str, ...] = (
    *STAGE_RANK,
    "refund.reason_changed",
    *APPEAL_RESULT,
)

EVENT_TYPES: tuple[str, ...] = (*ORDER_EVENT_TYPES, *REFUND_EVENT_TYPES)


def normalise_reason(value: str) -> str | None:
    """The reason code for a code or a Chinese label; None when unknown."""
    if value in REASON_CODES:
        return value
    return REASON_BY_LABEL.get(value.strip())
