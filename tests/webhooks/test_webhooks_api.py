"""/v1/webhooks over HTTP: subscriptions, secrets, filters, the SSRF guard, rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from app.clock import FrozenClock
from app.config import Settings
from app.main import create_app
from app.webhooks.relay import Relay
from tests.conftest import ADMIN_KEY
from tests.fakes.receiver import Receiver
from tests.support import breach_demotion, deliveries, subscribe, verify_standard, webhook

PROBLEM_JSON = "application/problem+json"
URL = "http://127.0.0.1:9/hook"


def assert_problem(response: httpx.Response, status: int, code: str, field: str) -> str:
    """A problem+json answer with this code, naming this field; returns the field's message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    (error,) = [e for e in body["errors"] if e["field"] == field]
    message: str = error["message"]
    return message


@pytest.fixture
async def strict_client(app_settings: Settings, clock: FrozenClock) -> AsyncIterator[Any]:
    """An app as deployed: no outbound allowlist, so loopback is refused too."""
    strict = create_app(
        app_settings.model_copy(update={"webhook_allowed_networks": ""}), clock=clock
    )
    async with (
        strict.router.lifespan_context(strict),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=strict),
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as http,
    ):
        yield http


# --------------------------------------------------------------------------- create, read


async def test_a_standard_webhook_gets_a_whsec_secret_shown_only_once(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    response = await client.post("/v1/webhooks", json={"url": URL, "description": "ops"})

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["format"] == "standard"
    assert created["secret"].startswith("whsec_")
    assert created["has_secret"] is True
    assert created["enabled"] is True and created["disabled_reason"] is None
    assert created["store_ids"] is None and created["tiers"] is None
    assert created["created_at"] == "2026-11-26T04:00:00Z"

    one = await webhook(client, created["id"])
    listed = (await client.get("/v1/webhooks")).json()["items"]
    for shown in (one, *listed):
        assert "secret" not in shown
        assert created["secret"] not in str(shown)
    assert one == {k: v for k, v in created.items() if k != "secret"}
    assert [w["id"] for w in listed] == [created["id"]]


async def test_each_standard_webhook_gets_its_own_secret(client: httpx.AsyncClient) -> None:
    first = await subscribe(client, URL)
    second = await subscribe(client, URL)
    assert first["secret"] != second["secret"]


async def test_a_standard_webhook_keeps_a_valid_secret_of_its_own(
    client: httpx.AsyncClient,
) -> None:
    own = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert (await subscribe(client, URL, secret=own))["secret"] == own

    bad = await client.post("/v1/webhooks", json={"url": URL, "secret": "not-a-whsec"})
    short = await client.post("/v1/webhooks", json={"url": URL, "secret": "whsec_c2hvcnQ="})

    assert "whsec_" in assert_problem(bad, 422, "invalid_secret", "body.secret")
    assert_problem(short, 422, "invalid_secret", "body.secret")


@pytest.mark.parametrize("format", ["dingtalk", "feishu"])
async def test_a_signing_robot_keeps_its_own_secret(client: httpx.AsyncClient, format: str) -> None:
    created = await subscribe(client, URL, format=format, secret="SECrobot-secret")

    assert created["format"] == format
    assert created["secret"] == "SECrobot-secret"
    assert "secret" not in await webhook(client, created["id"])


async def test_a_robot_without_signing_has_no_secret(client: httpx.AsyncClient) -> None:
    created = await subscribe(client, URL, format="dingtalk")
    assert created["secret"] is None and created["has_secret"] is False


async def test_wecom_refuses_a_secret(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/webhooks", json={"url": URL, "format": "wecom", "secret": "anything"}
    )
    assert_problem(response, 422, "invalid_secret", "body.secret")

    created = await subscribe(client, URL, format="wecom")
    assert created["secret"] is None


async def test_filters_are_stored_and_validated(client: httpx.AsyncClient) -> None:
    created = await subscribe(
        client,
        URL,
        store_ids=["s1", "s2"],
        tiers=["demotion", "delisting"],
        alert_types=["alert.breached", "alert.resolved"],
    )
    assert created["store_ids"] == ["s1", "s2"]
    assert created["tiers"] == ["demotion", "delisting"]
    assert created["alert_types"] == ["alert.breached", "alert.resolved"]

    bad_tier = await client.post("/v1/webhooks", json={"url": URL, "tiers": ["suspension"]})
    bad_type = await client.post("/v1/webhooks", json={"url": URL, "alert_types": ["alert.x"]})
    bad_format = await client.post("/v1/webhooks", json={"url": URL, "format": "slack"})
    unknown_field = await client.post("/v1/webhooks", json={"url": URL, "color": "red"})
    assert_problem(bad_tier, 422, "validation_error", "body.tiers.0")
    assert_problem(bad_type, 422, "validation_error", "body.alert_types.0")
    assert_problem(bad_format, 422, "validation_error", "body.format")
    assert_problem(unknown_field, 422, "validation_error", "body.color")


async def test_the_list_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    ids = [(await subscribe(client, URL))["id"] for _ in range(3)]

    first = (await client.get("/v1/webhooks", params={"limit": 2})).json()
    rest = (
        await client.get("/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()

    assert [w["id"] for w in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None


async def test_a_read_only_key_cannot_subscribe(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/api-keys", json={"name": "reader", "scopes": ["read"]})
    assert response.status_code == 201, response.text
    reader = {"Authorization": f"Bearer {response.json()['key']}"}

    denied = await client.post("/v1/webhooks", json={"url": URL}, headers=reader)
    allowed = await client.get("/v1/webhooks", headers=reader)

    assert denied.status_code == 403
    assert allowed.status_code == 200


# --------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link_local_address"),
        ("http://10.0.0.1/hook", "private_address"),
        ("http://192.168.1.10:8080/hook", "private_address"),
        ("http://[::1]/hook", "loopback_address"),  # the allowlist is 127.0.0.0/8 only
        ("http://[fd00::1]/hook", "private_address"),
        ("http://user:pw@127.0.0.1/hook", "credentials_in_url"),
    ],
)
async def test_internal_urls_are_refused_naming_body_url(
    client: httpx.AsyncClient, url: str, reason: str
) -> None:
    response = await client.post("/v1/webhooks", json={"url": url})

    assert assert_problem(response, 422, "url_refused", "body.url").startswith(reason)
    assert (await client.get("/v1/webhooks")).json()["items"] == []


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "file:///etc/passwd", "gopher://x/"])
async def test_a_non_http_scheme_is_refused_naming_body_url(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.post("/v1/webhooks", json={"url": url})

    # Refused by the schema (HttpUrl) before the SSRF guard runs, so the
    # problem's code is the generic one and the field's code says why.
    assert_problem(response, 422, "validation_error", "body.url")
    assert response.json()["errors"][0]["code"] == "url_scheme"


async def test_loopback_is_refused_without_the_allowlist(strict_client: httpx.AsyncClient) -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:8080/hook", "http://[::1]/"):
        response = await strict_client.post("/v1/webhooks", json={"url": url})
        message = assert_problem(response, 422, "url_refused", "body.url")
        assert message.startswith("loopback_address"), message


async def test_patching_the_url_is_vetted_too(client: httpx.AsyncClient) -> None:
    sub = await subscribe(client, URL)

    response = await client.patch(
        f"/v1/webhooks/{sub['id']}", json={"url": "http://169.254.169.254/"}
    )

    assert_problem(response, 422, "url_refused", "body.url")
    assert (await webhook(client, sub["id"]))["url"] == URL


# --------------------------------------------------------------------------- patch, delete


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    sub = await subscribe(client, URL, description="before", store_ids=["s1"], tiers=["demotion"])
    clock.advance(timedelta(minutes=1))

    response = await client.patch(
        f"/v1/webhooks/{sub['id']}",
        json={"description": "after", "store_ids": ["s2", "s3"], "url": URL + "?v=2"},
    )

    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["description"] == "after"
    assert patched["store_ids"] == ["s2", "s3"]
    assert patched["url"] == URL + "?v=2"
    assert patched["tiers"] == ["demotion"]
    assert patched["updated_at"] == "2026-11-26T04:01:00Z"
    assert patched["created_at"] == sub["created_at"]
    assert "secret" not in patched

    cleared = (await client.patch(f"/v1/webhooks/{sub['id']}", json={"store_ids": None})).json()
    assert cleared["store_ids"] is None


async def test_patch_secrets_per_format(client: httpx.AsyncClient) -> None:
    standard = await subscribe(client, URL)
    wecom = await subscribe(client, URL, format="wecom")
    dingtalk = await subscribe(client, URL, format="dingtalk", secret="SECold")

    standard_answer = await client.patch(
        f"/v1/webhooks/{standard['id']}", json={"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )
    wecom_answer = await client.patch(f"/v1/webhooks/{wecom['id']}", json={"secret": "x"})
    dingtalk_answer = await client.patch(
        f"/v1/webhooks/{dingtalk['id']}", json={"secret": "SECnew"}
    )

    assert_problem(standard_answer, 422, "use_rotate_secret", "body.secret")
    assert_problem(wecom_answer, 422, "invalid_secret", "body.secret")
    assert dingtalk_answer.status_code == 200 and dingtalk_answer.json()["has_secret"] is True


async def test_patch_and_get_of_an_unknown_webhook_are_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/v1/webhooks/424242"),
        await client.patch("/v1/webhooks/424242", json={"description": "x"}),
        await client.post("/v1/webhooks/424242/rotate-secret"),
        await client.post("/v1/webhooks/424242/test"),
        await client.get("/v1/webhooks/424242/deliveries"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "webhook_not_found"


async def test_delete_removes_the_webhook_and_its_deliveries(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    doomed = await subscribe(client, receiver.url)
    kept = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    await relay.run_once()

    response = await client.delete(f"/v1/webhooks/{doomed['id']}")

    assert response.status_code == 204 and response.content == b""
    assert (await client.get(f"/v1/webhooks/{doomed['id']}")).status_code == 404
    assert (await client.get(f"/v1/webhooks/{doomed['id']}/deliveries")).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{doomed['id']}")).status_code == 404
    assert len(await deliveries(client, kept["id"])) == 1
    await breach_demotion(client, "s2")
    assert len(await deliveries(client, kept["id"])) == 2


async def test_deliveries_can_be_filtered_by_status_and_paged(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.fail_next(1, 400)
    await breach_demotion(client, "s1", "s2", "s3")
    await relay.run_once()

    failed = await deliveries(client, sub["id"], status="failed")
    delivered = await deliveries(client, sub["id"], status="delivered")
    page = (await client.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"limit": 2})).json()
    rest = await deliveries(client, sub["id"], limit=2, cursor=page["next_cursor"])
    bad = await client.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "lost"})

    assert len(failed) == 1 and len(delivered) == 2
    ids = [d["id"] for d in page["items"] + rest]
    assert ids == sorted(ids, reverse=True) and len(ids) == 3  # newest first
    assert bad.status_code == 422


# --------------------------------------------------------------------------- rotation


async def test_rotation_signs_with_both_secrets_for_24_hours_then_only_the_new_one(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    old = sub["secret"]

    response = await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")

    assert response.status_code == 200, response.text
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert "secret" not in await webhook(client, sub["id"])

    await breach_demotion(client, "s1")
    await relay.run_once()
    during = receiver.requests[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify_standard(old, during, clock.now())["data"]["store_id"] == "s1"
    assert verify_standard(new, during, clock.now())["data"]["store_id"] == "s1"

    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    await breach_demotion(client, "s2")
    await relay.run_once()
    last_overlap = receiver.requests[-1]
    verify_standard(old, last_overlap, clock.now())
    verify_standard(new, last_overlap, clock.now())

    clock.advance(timedelta(seconds=1))
    await breach_demotion(client, "s3")
    await relay.run_once()
    after = receiver.requests[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify_standard(new, after, clock.now())["data"]["store_id"] == "s3"
    with pytest.raises(WebhookVerificationError):
        verify_standard(old, after, clock.now())


async def test_a_retry_after_rotation_is_signed_with_the_new_secret(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.fail_next(1, 503)
    await breach_demotion(client, "s1")
    await relay.run_once()
    new = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]

    clock.advance(timedelta(seconds=10))
    await relay.run_once()

    first, retry = receiver.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    verify_standard(new, retry, clock.now())
    with pytest.raises(WebhookVerificationError):
        verify_standard(new, first, clock.now())


async def test_rotating_twice_drops_the_first_secret_at_once(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    first = sub["secret"]
    second = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]
    third = (await client.post(f"/v1/webhooks/{sub['id']}/rotate-secret")).json()["secret"]

    await breach_demotion(client, "s1")
    await relay.run_once()

    request = receiver.requests[-1]
    verify_standard(second, request, clock.now())
    verify_standard(third, request, clock.now())
    with pytest.raises(WebhookVerificationError):
        verify_standard(first, request, clock.now())


async def test_only_standard_webhooks_rotate(client: httpx.AsyncClient) -> None:
    robot = await subscribe(client, URL, format="dingtalk", secret="SECx")

    response = await client.post(f"/v1/webhooks/{robot['id']}/rotate-secret")

    assert_problem(response, 422, "not_standard", "path.webhook_id")
