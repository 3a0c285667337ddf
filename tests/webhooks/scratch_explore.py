import pytest
from tests.conftest import post_events
from tests.factories import paid, requested

async def test_explore(client, app):
    r = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "format": "standard"})
    print(r.status_code, r.json())
    events = [paid(f"o{i}", product=f"p{i}") for i in range(10)]
    events += [requested(f"r{i}", f"o{i}") for i in range(6)]
    print(await post_events(client, events))
    r = await client.get("/v1/alerts")
    for a in r.json()["items"]:
        print({k: a[k] for k in a if k not in ("data",)})
    r = await client.get("/v1/webhooks/1/deliveries")
    import json; print(json.dumps(r.json(), indent=1)[:3000])
    for u in ["ftp://example.com/x", "http://169.254.169.254/", "http://[::1]/", "http://10.0.0.1/", "file:///etc/passwd", "http://user:pw@127.0.0.1/"]:
        r = await client.post("/v1/webhooks", json={"url": u})
        print(u, r.status_code, r.headers["content-type"], r.json())
