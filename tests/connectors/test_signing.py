"""The request signature, checked against vectors computed by hand from the PHP
client's algorithm (ksort, skip ``sign`` and empty values, wrap in the secret,
MD5, upper case)."""

from __future__ import annotations

import pytest

from app.connectors.pdd.signing import build_form, form_value, sign, signature_base

# The form of one order-increment call, and its sign computed by hand:
# md5("secret0123" + "access_tokentoken-abc" + "client_idapp-42" + "data_typeJSON"
#     + "end_updated_at1764130500" + "is_lucky_flag0" + "order_status5" + "page1"
#     + "page_size100" + "refund_status5" + "start_updated_at1764128700"
#     + "timestamp1764129600" + "typepdd.order.number.list.increment.get"
#     + "versionV1" + "secret0123").upper()
ORDER_FORM = {
    "type": "pdd.order.number.list.increment.get",
    "client_id": "app-42",
    "access_token": "token-abc",
    "timestamp": "1764129600",
    "data_type": "JSON",
    "version": "V1",
    "start_updated_at": "1764128700",
    "end_updated_at": "1764130500",
    "is_lucky_flag": "0",
    "order_status": "5",
    "refund_status": "5",
    "page": "1",
    "page_size": "100",
}
ORDER_SIGN = "74630F1FC08B778419EE3F14FC429785"


def test_known_vector_of_an_order_increment_call() -> None:
    assert sign(ORDER_FORM, "secret0123") == ORDER_SIGN


def test_parameters_are_sorted_by_name_whatever_the_insertion_order() -> None:
    reversed_form = dict(reversed(list(ORDER_FORM.items())))
    assert sign(reversed_form, "secret0123") == ORDER_SIGN


def test_page_sorts_before_page_size_as_in_php_ksort() -> None:
    base = signature_base({"page_size": "100", "page": "1"}, "s")
    assert base == "spage1page_size100s"


def test_sign_and_empty_values_are_left_out() -> None:
    form = {**ORDER_FORM, "sign": "WHATEVER", "trade_type": ""}
    assert sign(form, "secret0123") == ORDER_SIGN


def test_a_zero_is_not_empty() -> None:
    assert signature_base({"a": "0"}, "s") == "sa0s"


def test_sign_is_upper_case_hex_md5_of_utf8() -> None:
    assert sign({"a": "1", "b": "2"}, "s") == "5EE29085AF57D942F21F1C5BA3C2A90A"
    assert sign({"k": "名字值"}, "s") == "80B19383A6B046D5457E9D70904C0352"


def test_a_different_secret_gives_a_different_sign() -> None:
    assert sign(ORDER_FORM, "secret0124") != ORDER_SIGN


def test_booleans_are_written_true_and_false_like_the_sdks() -> None:
    assert form_value(True) == "true"
    assert form_value(False) == "false"
    assert form_value(0) == "0"


def test_build_form_sets_the_common_fields_and_signs_them() -> None:
    form = build_form(
        "pdd.order.number.list.increment.get",
        {
            "start_updated_at": 1764128700,
            "end_updated_at": 1764130500,
            "is_lucky_flag": 0,
            "order_status": 5,
            "refund_status": 5,
            "page": 1,
            "page_size": 100,
        },
        client_id="app-42",
        access_token="token-abc",
        client_secret="secret0123",
        timestamp=1764129600,
    )
    assert form == {**ORDER_FORM, "sign": ORDER_SIGN}
    assert "secret0123" not in form.values()


def test_build_form_refuses_an_api_parameter_named_like_a_common_one() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        build_form(
            "x", {"timestamp": 1}, client_id="a", access_token="t", client_secret="s", timestamp=1
        )
