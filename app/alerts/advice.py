"""The short advice line an alert carries, in Chinese and English (DESIGN §5).

An alert is only worth sending if the seller can act on it before the platform
does. So the line names the cheapest lever first — pending quality refunds that
can still be turned by talking to the buyer — then the fix for the main refund
reason, and, once a line is crossed, how many clean orders dilute the rate back
under it. Pure function of the alert's figures: the same alert always reads the
same, and the webhook formats (standard, DingTalk, WeCom, Feishu) just embed it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from app.events.vocabulary import REASON_LABELS_EN, REASON_LABELS_ZH
from app.policies.tiers import TIER_LABELS_EN, TIER_LABELS_ZH, TierName, TierScope, TierState

__all__ = ["advice_for"]

# Ingest accepts Chinese labels too (each half of "少件/漏发" on its own), so a
# caller passing raw reasons still gets the right fix.
_REASON_CODE_BY_LABEL: Final[dict[str, str]] = {
    part: code for code, label in REASON_LABELS_ZH.items() for part in (label, *label.split("/"))
}

# What to do about each reason, as (zh, en) templates; {p} is the product to look
# at. Reasons the seller cannot fix (changed mind, ordered by mistake, other) have
# no entry: advising on them would be noise.
_REASON_ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "quality_issue": (
        "抽检{p}的库存品质，并核对主图和规格参数与实物一致",
        "spot-check the stock of {p} and check its listing images and specs against the item",
    ),
    "not_as_described": (
        "核对{p}的主图、详情页和规格参数是否与实物一致",
        "check the listing images and specs of {p} against the real item",
    ),
    "damaged": (
        "加固{p}的包装（气泡膜、加厚纸箱）",
        "reinforce the packaging of {p}",
    ),
    "wrong_item": (
        "发货前核对{p}的款式和规格",
        "double-check the variant of {p} before it ships",
    ),
    "missing_parts": (
        "打包时按清单核对{p}的配件和数量",
        "check the parts and quantity of {p} against a packing list",
    ),
    "counterfeit": (
        "备好{p}的品牌授权和进货凭证",
        "have the brand authorisation and purchase records of {p} ready",
    ),
    "shipping_delay": (
        "订单 24 小时内发货",
        "ship orders within 24 h",
    ),
    "lost_in_transit": (
        "换用更稳定的快递，及时跟进物流异常",
        "switch to a more reliable courier and chase stuck parcels",
    ),
}

#: How many refund ids an advice line names before "and N more": enough to act
#: on from a phone notification, short enough to stay one line.
MAX_NAMED_REFUNDS: Final = 3


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _plural(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _top_reason(top_reasons: Sequence[Mapping[str, object]]) -> str | None:
    """The reason code with the highest count (the first on a tie), if any counts."""
    best: tuple[int, str] | None = None
    for entry in top_reasons:
        reason = _text(entry.get("reason"))
        count = _count(entry.get("count"))
        if reason is None or count <= 0:
            continue
        code = _REASON_CODE_BY_LABEL.get(reason, reason)
        if best is None or count > best[0]:
            best = (count, code)
    return None if best is None else best[1]


def _top_product(top_products: Sequence[Mapping[str, object]]) -> str | None:
    """The product with the most quality refunds: where a listing fix pays off most."""
    best: tuple[int, str] | None = None
    for entry in top_products:
        product_id = _text(entry.get("product_id"))
        count = _count(entry.get("quality_refunds"))
        if product_id is None or count <= 0:
            continue
        if best is None or count > best[0]:
            best = (count, product_id)
    return None if best is None else best[1]


def _pending_action(pending_refunds: Sequence[Mapping[str, object]]) -> tuple[str, str] | None:
    # The cheapest lever, so it comes first: an open refund the buyer withdraws
    # leaves the count (DESIGN §3), while every other fix only helps future orders.
    if not pending_refunds:
        return None
    total = len(pending_refunds)
    ids = [rid for entry in pending_refunds if (rid := _text(entry.get("refund_id")))]
    named = ids[:MAX_NAMED_REFUNDS]
    more = total - len(named)
    zh_ids = "、".join(named) + (" 等" if more > 0 and named else "")
    en_ids = ", ".join(named) + (f" and {more} more" if more > 0 and named else "")
    zh_list = f"（{zh_ids}）" if named else ""
    en_list = f" ({en_ids})" if named else ""
    refunds_en = _plural(total, "pending quality refund", "pending quality refunds")
    return (
        f"尽快联系 {total} 笔未完结品质退款的买家{zh_list}沟通处理，买家撤销申请后不再计入",
        f"contact the buyers of {refunds_en}{en_list} before they complete: "
        "a withdrawn refund no longer counts",
    )


def _reason_action(
    reason: str | None, scope: TierScope, top_product: str | None
) -> tuple[str, str] | None:
    if reason is None or reason not in _REASON_ACTIONS:
        return None
    zh_template, en_template = _REASON_ACTIONS[reason]
    if scope == "product":
        product_zh, product_en = "该商品", "this product"
    elif top_product is not None:
        product_zh, product_en = f"商品 {top_product} ", f"product {top_product}"
    else:
        product_zh, product_en = "品质退款最多的商品", "the products with the most quality refunds"
    return (
        f"主要原因是「{REASON_LABELS_ZH[reason]}」，{zh_template.format(p=product_zh)}",
        f'most cite "{REASON_LABELS_EN[reason]}", so {en_template.format(p=product_en)}',
    )


def _recover_action(orders_to_recover: int | None) -> tuple[str, str] | None:
    if orders_to_recover is None or orders_to_recover < 1:
        return None
    verb = "brings" if orders_to_recover == 1 else "bring"
    return (
        f"再有约 {orders_to_recover} 单无品质退款的订单，退款率即可回到线下",
        f"about {_plural(orders_to_recover, 'more clean order', 'more clean orders')} "
        f"{verb} the rate under the line",
    )


def advice_for(
    tier: TierName,
    state: TierState,
    *,
    scope: TierScope,
    store_id: str,
    product_id: str | None,
    refunds_until_breach: int | None,
    orders_to_recover: int | None,
    pending_refunds: Sequence[Mapping[str, object]],
    top_reasons: Sequence[Mapping[str, object]],
    top_products: Sequence[Mapping[str, object]],
) -> dict[str, str]:
    """One advice line for an alert, as ``{"zh": ..., "en": ...}``.

    ``pending_refunds`` items carry ``refund_id``, ``order_id``, ``product_id``,
    ``requested_on``; ``top_reasons`` items ``reason`` (a code) and ``count``;
    ``top_products`` items ``product_id`` and ``quality_refunds``. Missing or
    malformed entries are skipped rather than raised: advice is a courtesy, and
    must never stop an alert from being written.
    """
    if scope == "product" and product_id is None:
        raise ValueError("a product-scope advice needs a product_id")
    tier_zh = TIER_LABELS_ZH[tier]
    line_en = f"the {TIER_LABELS_EN[tier]} line"
    if scope == "product":
        subject_zh = f"店铺 {store_id} 的商品 {product_id} "
        subject_en = f"Product {product_id} in store {store_id}"
    else:
        subject_zh = f"店铺 {store_id} "
        subject_en = f"Store {store_id}"

    if state == "ok":
        return {
            "zh": f"{subject_zh}已回到{tier_zh}线以下，继续保持。",
            "en": f"{subject_en} is back under {line_en}; keep it there.",
        }
    if state == "unrated":
        return {
            "zh": f"{subject_zh}统计周期内订单量不足，暂不评估{tier_zh}。",
            "en": f"{subject_en} has too few orders in the window to be rated for "
            f"{TIER_LABELS_EN[tier]} yet.",
        }

    if state == "breached":
        head_zh = f"{subject_zh}已触达{tier_zh}线"
        head_en = f"{subject_en} has crossed {line_en}"
    elif refunds_until_breach is not None and refunds_until_breach >= 1:
        refunds_en = _plural(refunds_until_breach, "more quality refund", "more quality refunds")
        head_zh = f"{subject_zh}接近{tier_zh}线：再有 {refunds_until_breach} 单品质退款即触发"
        head_en = f"{subject_en} is close to {line_en}: {refunds_en} would cross it"
    else:
        head_zh = f"{subject_zh}接近{tier_zh}线"
        head_en = f"{subject_en} is close to {line_en}"

    actions = [
        action
        for action in (
            _pending_action(pending_refunds),
            _reason_action(_top_reason(top_reasons), scope, _top_product(top_products)),
            _recover_action(orders_to_recover) if state == "breached" else None,
        )
        if action is not None
    ]
    if not actions:
        actions.append(
            (
                "查看品质退款明细，找出集中的商品和原因",
                "review the quality refunds for a common product or reason",
            )
        )
    body_zh = "；".join(zh for zh, _ in actions)
    body_en = "; ".join(en for _, en in actions)
    return {
        "zh": f"{head_zh}。{body_zh}。",
        "en": f"{head_en}. {body_en[0].upper()}{body_en[1:]}.",
    }
