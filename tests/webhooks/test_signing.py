"""Signing: Standard Webhooks (verified with the reference library), DingTalk, Feishu."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.webhooks import signing

BODY = '{"type":"alert.breached","data":{"store_id":"s1","advice":"联系买家"}}'.encode()


def _now() -> int:
    # The reference verifier refuses timestamps more than 5 minutes from its clock.
    return int(time.time())


# --------------------------------------------------------------------------- secrets


def test_generated_secret_is_whsec_base64_of_24_bytes() -> None:
    secret = signing.generate_standard_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert signing.validate_standard_secret(secret) == secret


def test_generated_secrets_differ() -> None:
    assert len({signing.generate_standard_secret() for _ in range(50)}) == 50


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with 'whsec_'"),
        ("whsec_not*base64*at*all!", "standard base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "got 5"),
        ("whsec_", "got 0"),
    ],
)
def test_validate_standard_secret_refuses_bad_secrets(secret: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        signing.validate_standard_secret(secret)


def test_validate_accepts_unpadded_base64() -> None:
    key = base64.b64encode(b"k" * 20).decode().rstrip("=")
    assert signing.validate_standard_secret("whsec_" + key)


# --------------------------------------------------------------------------- standard


def test_spec_test_vector() -> None:
    """The example from the Standard Webhooks spec / reference libraries' tests."""
    signature = signing.sign_standard(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_independent_hmac() -> None:
    # Computed with `openssl dgst -sha256 -mac HMAC` outside Python.
    signature = signing.sign_standard(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "msg_1", 1700000000, b'{"a":1}'
    )
    assert signature == "v1,hVsFLpmw4Ib/Xm0eZLt3KqYBZdt0U8gdGeuz0EsGv78="


def test_reference_library_verifies_single_secret() -> None:
    secret = signing.generate_standard_secret()
    headers = signing.standard_headers([secret], "dlv_01", _now(), BODY)
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "alert.breached",
        "data": {"store_id": "s1", "advice": "联系买家"},
    }


def test_standard_headers_shape() -> None:
    secret = signing.generate_standard_secret()
    ts = _now()
    headers = signing.standard_headers([secret], "dlv_01", ts, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}
    assert headers["webhook-id"] == "dlv_01"
    assert headers["webhook-timestamp"] == str(ts)
    assert headers["content-type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")


def test_rotation_either_secret_verifies() -> None:
    old, new = signing.generate_standard_secret(), signing.generate_standard_secret()
    headers = signing.standard_headers([new, old], "dlv_02", _now(), BODY)
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2
    assert all(part.startswith("v1,") for part in parts)
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_standard_secret()).verify(BODY, headers)


def test_tampering_is_detected() -> None:
    secret = signing.generate_standard_secret()
    headers = signing.standard_headers([secret], "dlv_03", _now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"s1", b"s2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "dlv_04"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-timestamp": str(_now() - 1)})


def test_same_id_and_timestamp_sign_identically() -> None:
    """A retry re-signs with a new timestamp; the id stays (receivers dedupe on it)."""
    secret = signing.generate_standard_secret()
    a = signing.sign_standard([secret], "dlv_05", 1700000000, BODY)
    assert a == signing.sign_standard([secret], "dlv_05", 1700000000, BODY)
    assert a != signing.sign_standard([secret], "dlv_05", 1700000001, BODY)


def test_sign_standard_refuses_misuse() -> None:
    secret = signing.generate_standard_secret()
    with pytest.raises(ValueError, match="at least one secret"):
        signing.sign_standard([], "dlv", 1, BODY)
    with pytest.raises(TypeError, match="not a single string"):
        signing.sign_standard(secret, "dlv", 1, BODY)
    with pytest.raises(ValueError, match="UTF-8"):
        signing.sign_standard([secret], "dlv", 1, b"\xff\xfe")


@given(body=st.text(max_size=200), msg_id=st.text(min_size=1, max_size=40).filter(str.strip))
def test_any_utf8_body_matches_plain_hmac(body: str, msg_id: str) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    raw = body.encode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.1700000000.".encode() + raw, hashlib.sha256).digest()
    signature = signing.sign_standard([secret], msg_id, 1700000000, raw)
    assert signature == "v1," + base64.b64encode(expected).decode()


# --------------------------------------------------------------------------- DingTalk


def test_dingtalk_sign_known_vector() -> None:
    # printf '1700000000000\nSECtest-secret' | openssl dgst -sha256 -hmac SECtest-secret
    assert (
        signing.dingtalk_sign("SECtest-secret", 1700000000000)
        == "LC7hxZ4wslL+P7j7gu1hoQ+wzByekL+yWgiUMekZs0g="
    )


def test_dingtalk_signed_url_keeps_access_token_and_encodes_sign() -> None:
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc123"
    signed = signing.dingtalk_signed_url(url, "SECtest-secret", 1700000000000)
    parts = urlsplit(signed)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "oapi.dingtalk.com", "/robot/send")
    assert parts.query.startswith("access_token=abc123&timestamp=1700000000000&sign=")
    raw_sign = parts.query.split("sign=", 1)[1]
    # base64's "+", "/" and "=" must be percent-encoded in the query string.
    assert "+" not in raw_sign and "/" not in raw_sign and "=" not in raw_sign
    assert raw_sign == "LC7hxZ4wslL%2BP7j7gu1hoQ%2BwzByekL%2ByWgiUMekZs0g%3D"
    query = parse_qs(parts.query)
    assert query == {
        "access_token": ["abc123"],
        "timestamp": ["1700000000000"],
        "sign": ["LC7hxZ4wslL+P7j7gu1hoQ+wzByekL+yWgiUMekZs0g="],
    }


def test_dingtalk_signed_url_replaces_stale_signature() -> None:
    once = signing.dingtalk_signed_url(
        "https://oapi.dingtalk.com/robot/send?access_token=abc", "SECx", 1
    )
    twice = signing.dingtalk_signed_url(once, "SECx", 2)
    query = parse_qs(urlsplit(twice).query)
    assert query["timestamp"] == ["2"]
    assert query["sign"] == [signing.dingtalk_sign("SECx", 2)]
    assert query["access_token"] == ["abc"]


def test_dingtalk_signed_url_without_query() -> None:
    signed = signing.dingtalk_signed_url("https://robot.example/hook", "SECx", 5)
    assert signed.startswith("https://robot.example/hook?timestamp=5&sign=")


@given(secret=st.text(min_size=1, max_size=80), ts=st.integers(0, 10**13))
def test_dingtalk_sign_matches_plain_hmac(secret: str, ts: int) -> None:
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert signing.dingtalk_sign(secret, ts) == base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- Feishu


def test_feishu_sign_known_vector() -> None:
    # printf '' | openssl dgst -sha256 -mac HMAC -macopt key:$'1700000000\ntest-secret'
    assert (
        signing.feishu_sign("test-secret", 1700000000)
        == "mbm4Y4oluIPQ00qlBIhX8vAZ0EKv3nw0LuTb91jPL84="
    )


def test_feishu_sign_is_not_the_dingtalk_scheme() -> None:
    """The string-to-sign is the key, not the message: the classic mix-up."""
    assert signing.feishu_sign("test-secret", 1700000000) != signing.dingtalk_sign(
        "test-secret", 1700000000
    )


@given(secret=st.text(min_size=1, max_size=80), ts=st.integers(0, 10**10))
def test_feishu_sign_matches_plain_hmac(secret: str, ts: int) -> None:
    digest = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
    assert signing.feishu_sign(secret, ts) == base64.b64encode(digest).decode()
