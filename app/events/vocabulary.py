"""The fixed words of the event contract (DESIGN §1–2): reasons, kinds, stages."""

from __future__ import annotations

from typing import Final

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

#: Each reason code with the Chinese label sellers see on the platform, and in English.
REASON_LABELS_ZH: Final[dict[str, str]] = {
    "quality_issue": "质量问题",
    "not_as_described": "描述不符",
    "damaged": "破损",
    "wrong_item": "发错货",
    "missing_parts": "少件/漏发",
    "counterfeit": "假冒品牌",
    "changed_mind": "不想要了/七天无理由",
    "ordered_by_mistake": "拍错/多拍",
    "shipping_delay": "发货慢",
    "lost_in_transit": "快递丢件",
    "other": "其他",
}

REASON_LABELS_EN: Final[dict[str, str]] = {
    "quality_issue": "quality issue",
    "not_as_described": "not as described",
    "damaged": "damaged",
    "wrong_item": "wrong item",
    "missing_parts": "missing parts",
    "counterfeit": "counterfeit",
    "changed_mind": "changed mind",
    "ordered_by_mistake": "ordered by mistake",
    "shipping_delay": "shipping delay",
    "lost_in_transit": "lost in transit",
    "other": "other",
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
# A refund in one of these stages no longer counts (DESIGN §3), nor one whose appeal was upheld.
UNCOUNTED_STAGES: tuple[int, ...] = (STAGE_RANK["refund.rejected"], STAGE_RANK["refund.withdrawn"])
UPHELD = "upheld"
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
