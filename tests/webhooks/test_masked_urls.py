"""A group robot's URL is its credential: keys without `admin` read it masked."""

from __future__ import annotations

import httpx
import pytest

from app.webhooks.schemas import masked_url
from tests.support import subscribe

DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=6f1c0e9d2b8a4f3e9c7d5b1a0e2f4c6d"
WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
FEISHU = "https://open.feishu.cn/open-apis/bot/v2/hook/0c3a5f8e-1b2d-4e6f-8a9b-7c1d2e3f4a5b"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (DINGTALK, "https://oapi.dingtalk.com/robot/send?access_token=****4c6d"),
        (WECOM, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=****5aaa"),
        (FEISHU, "https://open.feishu.cn/open-apis/bot/v2/hook/****4a5b"),
        (
            "https://open.larksuite.com/open-apis/bot/v2/hook/abcdefabcdefabcdef/",
            "https://open.larksuite.com/open-apis/bot/v2/hook/****cdef/",
        ),
        (
            "https://hooks.example.com/rw?team=ops&token=short",
            "https://hooks.example.com/rw?team=ops&token=****",
        ),
        ("https://hooks.example.com/refundwatch", "https://hooks.example.com/refundwatch"),
    ],
)
def test_the_credential_in_a_url_is_masked(url: str, masked: str) -> None:
    assert masked_url(url) == masked


async def test_a_read_key_sees_robot_urls_masked_and_an_admin_key_whole(
    client: httpx.AsyncClient,
) -> None:
    # The SSRF guard is not the subject here: robots get loopback URLs carrying tokens.
    base = "http://127.0.0.1:9"
    urls = {
        "dingtalk": f"{base}/robot/send?access_token=6f1c0e9d2b8a4f3e9c7d5b1a0e2f4c6d",
        "wecom": f"{base}/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa",
        "feishu": f"{base}/open-apis/bot/v2/hook/0c3a5f8e-1b2d-4e6f-8a9b-7c1d2e3f4a5b",
    }
    ids = {f: (await subscribe(client, url, format=f))["id"] for f, url in urls.items()}
    created = await client.post("/v1/api-keys", json={"name": "viewer", "scopes": ["read"]})
    reader = {"Authorization": f"Bearer {created.json()['key']}"}

    listed = (await client.get("/v1/webhooks", headers=reader)).json()["items"]
    one = (await client.get(f"/v1/webhooks/{ids['wecom']}", headers=reader)).json()
    admin = (await client.get("/v1/webhooks")).json()["items"]

    seen = {w["format"]: w["url"] for w in listed}
    assert seen == {f: masked_url(u) for f, u in urls.items()}
    for fmt, url in urls.items():
        assert url.rsplit("=", 1)[-1].rsplit("/", 1)[-1] not in seen[fmt]
    assert one["url"] == masked_url(urls["wecom"])
    assert {w["format"]: w["url"] for w in admin} == urls
