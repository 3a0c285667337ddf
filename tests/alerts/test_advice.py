"""The advice line an alert carries: names what to do, in seller Chinese and English."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import get_args

import pytest

from app.alerts.advice import advice_for
from app.events.vocabulary import REASON_LABELS_EN, REASON_LABELS_ZH
from app.policies.tiers import TIER_LABELS_ZH, TierName, TierScope, TierState


def pending(*refund_ids: str) -> list[dict[str, object]]:
    return [
        {
            "refund_id": refund_id,
            "order_id": f"o-{refund_id}",
            "product_id": "p9",
            "requested_on": "2026-11-20",
        }
        for refund_id in refund_ids
    ]


def advise(
    state: TierState = "breached",
    *,
    tier: TierName = "demotion",
    scope: TierScope = "store",
    product_id: str | None = None,
    refunds_until_breach: int | None = 0,
    orders_to_recover: int | None = None,
    pending_refunds: Sequence[Mapping[str, object]] = (),
    top_reasons: Sequence[Mapping[str, object]] = (),
    top_products: Sequence[Mapping[str, object]] = (),
) -> dict[str, str]:
    return advice_for(
        tier,
        state,
        scope=scope,
        store_id="s1",
        product_id=product_id,
        refunds_until_breach=refunds_until_breach,
        orders_to_recover=orders_to_recover,
        pending_refunds=pending_refunds,
        top_reasons=top_reasons,
        top_products=top_products,
    )


# --- labels ---------------------------------------------------------------------------


def test_tier_labels_are_the_platform_words() -> None:
    assert TIER_LABELS_ZH == {"demotion": "降权", "listing_ban": "禁止上新", "delisting": "下架"}


def test_every_reason_code_has_its_chinese_and_english_label() -> None:
    assert REASON_LABELS_ZH == {
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
    assert set(REASON_LABELS_EN) == set(REASON_LABELS_ZH)


# --- the full breached line -------------------------------------------------------------


def test_breached_store_advice_names_pending_refunds_fix_and_recovery() -> None:
    advice = advise(
        "breached",
        orders_to_recover=101,
        pending_refunds=pending("r1", "r2", "r3", "r4"),
        top_reasons=[{"reason": "not_as_described", "count": 3}],
        top_products=[{"product_id": "p9", "quality_refunds": 4}],
    )
    assert advice["zh"] == (
        "店铺 s1 已触达降权线。"
        "尽快联系 4 笔未完结品质退款的买家（r1、r2、r3 等）沟通处理，买家撤销申请后不再计入；"
        "主要原因是「描述不符」，核对商品 p9 的主图、详情页和规格参数是否与实物一致；"
        "再有约 101 单无品质退款的订单，退款率即可回到线下。"
    )
    assert advice["en"] == (
        "Store s1 has crossed the demotion line. "
        "Contact the buyers of 4 pending quality refunds (r1, r2, r3 and 1 more) before they "
        "complete: a withdrawn refund no longer counts; "
        'most cite "not as described", so check the listing images and specs of product p9 '
        "against the real item; "
        "about 101 more clean orders bring the rate under the line."
    )


def test_at_most_three_refund_ids_are_named() -> None:
    advice = advise(pending_refunds=pending("r1", "r2", "r3", "r4", "r5"))
    assert "r4" not in advice["zh"] and "r4" not in advice["en"]
    assert "5 笔" in advice["zh"]
    assert "(r1, r2, r3 and 2 more)" in advice["en"]


def test_three_pending_refunds_are_all_named_without_more() -> None:
    advice = advise(pending_refunds=pending("r1", "r2", "r3"))
    assert "（r1、r2、r3）" in advice["zh"]
    assert "(r1, r2, r3)" in advice["en"]
    assert "more" not in advice["en"]


def test_a_single_pending_refund_reads_in_the_singular() -> None:
    advice = advise(pending_refunds=pending("r1"))
    assert "1 pending quality refund (r1)" in advice["en"]


def test_one_clean_order_to_recover_reads_in_the_singular() -> None:
    advice = advise(orders_to_recover=1)
    assert advice["en"].endswith("About 1 more clean order brings the rate under the line.")
    assert "再有约 1 单" in advice["zh"]


def test_orders_to_recover_is_left_out_when_unknown() -> None:
    advice = advise(orders_to_recover=None, pending_refunds=pending("r1"))
    assert "clean order" not in advice["en"]
    assert "回到线下" not in advice["zh"]


# --- approaching --------------------------------------------------------------------------


def test_approaching_says_how_many_refunds_are_left() -> None:
    advice = advise("approaching", refunds_until_breach=2)
    assert advice["zh"].startswith("店铺 s1 接近降权线：再有 2 单品质退款即触发。")
    assert advice["en"].startswith(
        "Store s1 is close to the demotion line: 2 more quality refunds would cross it."
    )


def test_approaching_with_one_refund_left_reads_in_the_singular() -> None:
    advice = advise("approaching", refunds_until_breach=1)
    assert "1 more quality refund would cross it" in advice["en"]


def test_approaching_without_orders_has_no_headroom_figure() -> None:
    advice = advise("approaching", refunds_until_breach=None)
    assert advice["zh"].startswith("店铺 s1 接近降权线。")
    assert advice["en"].startswith("Store s1 is close to the demotion line.")


def test_approaching_never_talks_about_recovery() -> None:
    advice = advise("approaching", refunds_until_breach=1, orders_to_recover=50)
    assert "clean order" not in advice["en"]


def test_approaching_with_pending_refunds_asks_to_contact_the_buyers() -> None:
    advice = advise("approaching", refunds_until_breach=1, pending_refunds=pending("r7", "r8"))
    assert "尽快联系 2 笔未完结品质退款的买家（r7、r8）" in advice["zh"]
    assert (
        "Contact the buyers of 2 pending quality refunds (r7, r8) before they complete"
        in (advice["en"])
    )


# --- ok and unrated ------------------------------------------------------------------------


def test_resolved_is_a_short_back_under_the_line() -> None:
    advice = advise(
        "ok",
        refunds_until_breach=3,
        pending_refunds=pending("r1"),
        top_reasons=[{"reason": "quality_issue", "count": 2}],
    )
    assert advice == {
        "zh": "店铺 s1 已回到降权线以下，继续保持。",
        "en": "Store s1 is back under the demotion line; keep it there.",
    }


def test_unrated_says_there_are_too_few_orders() -> None:
    advice = advise("unrated", refunds_until_breach=None)
    assert advice == {
        "zh": "店铺 s1 统计周期内订单量不足，暂不评估降权。",
        "en": "Store s1 has too few orders in the window to be rated for demotion yet.",
    }


# --- the reason decides the fix ------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "zh_fragment", "en_fragment"),
    [
        ("quality_issue", "抽检商品 p9 的库存品质", "spot-check the stock of product p9"),
        ("not_as_described", "主图、详情页和规格参数", "listing images and specs of product p9"),
        ("damaged", "加固商品 p9 的包装", "reinforce the packaging of product p9"),
        ("wrong_item", "核对商品 p9 的款式和规格", "variant of product p9"),
        ("missing_parts", "配件和数量", "against a packing list"),
        ("counterfeit", "品牌授权和进货凭证", "brand authorisation"),
        ("shipping_delay", "订单 24 小时内发货", "ship orders within 24 h"),
        ("lost_in_transit", "更稳定的快递", "more reliable courier"),
    ],
)
def test_the_top_reason_picks_the_fix(reason: str, zh_fragment: str, en_fragment: str) -> None:
    advice = advise(
        top_reasons=[{"reason": reason, "count": 2}],
        top_products=[{"product_id": "p9", "quality_refunds": 2}],
    )
    assert f"主要原因是「{REASON_LABELS_ZH[reason]}」" in advice["zh"]
    assert zh_fragment in advice["zh"]
    assert en_fragment in advice["en"]


@pytest.mark.parametrize("reason", ["changed_mind", "ordered_by_mistake", "other"])
def test_a_reason_the_seller_cannot_fix_gets_the_generic_look(reason: str) -> None:
    advice = advise(top_reasons=[{"reason": reason, "count": 5}])
    assert advice["zh"] == "店铺 s1 已触达降权线。查看品质退款明细，找出集中的商品和原因。"
    assert advice["en"] == (
        "Store s1 has crossed the demotion line. "
        "Review the quality refunds for a common product or reason."
    )


def test_the_most_frequent_reason_wins_whatever_the_order() -> None:
    advice = advise(
        top_reasons=[
            {"reason": "shipping_delay", "count": 1},
            {"reason": "damaged", "count": 4},
            {"reason": "quality_issue", "count": 4},
        ]
    )
    assert "「破损」" in advice["zh"]
    assert "发货" not in advice["zh"]


def test_a_chinese_reason_label_is_understood() -> None:
    advice = advise(top_reasons=[{"reason": "描述不符", "count": 2}])
    assert "listing images and specs" in advice["en"]
    assert "「描述不符」" in advice["zh"]


def test_a_half_of_a_two_part_label_is_understood() -> None:
    advice = advise(top_reasons=[{"reason": "漏发", "count": 2}])
    assert "packing list" in advice["en"]


def test_the_product_with_most_quality_refunds_is_named() -> None:
    advice = advise(
        top_reasons=[{"reason": "not_as_described", "count": 6}],
        top_products=[
            {"product_id": "p1", "quality_refunds": 1},
            {"product_id": "p2", "quality_refunds": 5},
        ],
    )
    assert "商品 p2 " in advice["zh"]
    assert "product p2" in advice["en"]
    assert "p1" not in advice["en"]


def test_without_top_products_the_fix_points_at_the_worst_listings() -> None:
    advice = advise(top_reasons=[{"reason": "damaged", "count": 2}])
    assert "加固品质退款最多的商品的包装" in advice["zh"]
    assert "the products with the most quality refunds" in advice["en"]


def test_malformed_entries_are_skipped_not_raised() -> None:
    advice = advise(
        pending_refunds=[{"refund_id": None}, {"refund_id": "r2"}],
        top_reasons=[{"reason": "damaged", "count": "9"}, {"reason": None, "count": 3}],
        top_products=[{"product_id": "p1", "quality_refunds": True}],
    )
    assert "2 pending quality refunds (r2 and 1 more)" in advice["en"]
    assert "packaging" not in advice["en"]


# --- product scope -------------------------------------------------------------------------


def test_product_delisting_advice_names_the_product_and_says_this_product() -> None:
    advice = advise(
        "breached",
        tier="delisting",
        scope="product",
        product_id="p1",
        orders_to_recover=12,
        top_reasons=[{"reason": "quality_issue", "count": 5}],
        top_products=[{"product_id": "p1", "quality_refunds": 5}],
    )
    assert advice["zh"].startswith("店铺 s1 的商品 p1 已触达下架线。")
    assert "抽检该商品的库存品质" in advice["zh"]
    assert advice["en"].startswith("Product p1 in store s1 has crossed the delisting line.")
    assert "the stock of this product" in advice["en"]


def test_product_scope_without_a_product_is_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        advise(scope="product", product_id=None)


# --- every case reads as a sentence in both languages -----------------------------------------


@pytest.mark.parametrize("tier", get_args(TierName))
@pytest.mark.parametrize("state", get_args(TierState))
@pytest.mark.parametrize("scope", get_args(TierScope))
def test_every_case_has_both_languages_ending_a_sentence(
    tier: TierName, state: TierState, scope: TierScope
) -> None:
    advice = advise(
        state,
        tier=tier,
        scope=scope,
        product_id="p1" if scope == "product" else None,
        refunds_until_breach=0 if state == "breached" else 2,
        orders_to_recover=30 if state == "breached" else None,
    )
    assert set(advice) == {"zh", "en"}
    assert TIER_LABELS_ZH[tier] in advice["zh"]
    assert advice["zh"].endswith("。")
    assert advice["en"].endswith(".")
    assert advice["en"][0].isupper()
    assert advice["en"].isascii()
