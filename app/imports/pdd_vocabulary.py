"""What the Pinduoduo merchant backend and open platform say, in refundwatch's words.

Shared by the export importers (``app.imports``) and the open-platform connector
(``app.connectors.pdd``): the after-sale reason labels sellers see, the event ids
derived from the platform's own numbers, and the platform's naive local times.
All pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Literal
from zoneinfo import ZoneInfo

from app.events.vocabulary import REASON_CODES

# The after-sale reason labels of the merchant backend (售后列表 退款原因) and the
# open platform (after_sale_reason), each to a reason code. Matching is exact after
# trimming; a label written "A/B" here also matches each of its parts alone.
_LABELS: Final[dict[str, tuple[str, ...]]] = {
    "quality_issue": ("质量问题", "做工问题", "做工粗糙", "瑕疵", "商品腐败/变质/胀气"),
    "not_as_described": (
        "货物与描述不符",
        "商品描述不符",
        "描述不符",
        "大小/规格/重量与描述不符",
        "品种/标签/图片/包装与描述不符",
    ),
    "damaged": ("破损/压坏", "破损"),
    "wrong_item": ("发错货",),
    "missing_parts": ("少件/漏发", "少件"),
    "counterfeit": ("疑似假货", "假冒品牌", "非正品"),
    "changed_mind": ("不想要了", "七天无理由退货", "七天无理由"),
    "ordered_by_mistake": ("拍错/多拍",),
    "shipping_delay": ("发货慢", "发货履约原因"),
    "lost_in_transit": ("快递丢件",),
    "other": ("其他", "其他原因"),
}


def _label_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, labels in _LABELS.items():
        for label in labels:
            table.setdefault(label, code)
    # Parts of "A/B" labels, where no whole label claims the same text first.
    for code, labels in _LABELS.items():
        for label in labels:
            for part in label.split("/"):
                table.setdefault(part.strip(), code)
    return table


REASON_BY_PLATFORM_LABEL: Final[Mapping[str, str]] = _label_table()
"""Every platform label (and part of an ``A/B`` label) with its reason code."""


def reason_code(label: str, aliases: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """The reason code of a platform label, and whether the label was known.

    ``aliases`` (the seller's ``--reason-map`` or the policy's ``reason_aliases``)
    are consulted first, so a seller can re-map even a label the table knows. A
    reason code itself is accepted as is. Anything else is ``other``, reported
    as unknown so the import can list it.
    """
    text = label.strip()
    if aliases:
        mapped = aliases.get(text)
        if mapped is not None:
            return mapped, True
    if text in REASON_CODES:
        return text, True
    code = REASON_BY_PLATFORM_LABEL.get(text)
    if code is not None:
        return code, True
    return "other", False


EventStep = Literal[
    "paid", "shipped", "delivered", "requested", "succeeded", "withdrawn", "rejected"
]


def order_event_id(store_id: str, order_sn: str, step: EventStep) -> str:
    """``pdd:{store_id}:order:{订单号}:paid|shipped|delivered``."""
    return f"pdd:{store_id}:order:{order_sn}:{step}"


def refund_event_id(store_id: str, after_sale_id: str, step: EventStep) -> str:
    """``pdd:{store_id}:refund:{售后编号}:requested|succeeded|withdrawn|rejected``.

    The outcome is keyed by its status, so a refund seen again with a new status
    adds only that outcome, and seen again with the same one changes nothing.
    """
    return f"pdd:{store_id}:refund:{after_sale_id}:{step}"


_NAIVE_TIME = re.compile(
    r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?$"
)


def parse_local_time(text: str, tz: ZoneInfo) -> datetime | None:
    """A platform time (``2026-11-26 10:00:00``, naive, in ``tz``) as an aware instant.

    Also takes ``/`` as the date separator, a missing seconds or time part, and
    fractional seconds, which spreadsheet tools produce when a seller re-saves an
    export. None when the text is not such a time (or not a real date).
    """
    match = _NAIVE_TIME.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        return None


def rfc3339(moment: datetime) -> str:
    """An aware instant as RFC 3339 with its offset (what ``POST /v1/events`` takes)."""
    return moment.isoformat(timespec="seconds")
