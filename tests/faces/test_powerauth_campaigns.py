"""PowerAuth campaigns: create, list (documented ``all`` meaning), detail with progress,
users and their paging, delete, a test send, and a live send to a few thousand devices
across platforms through the queue, each device once."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from sqlalchemy import insert

from relay.registry import Services
from storage.db import Database
from storage.ids import now_us, uuid7
from storage.schema import push_registrations
from tests.faces.conftest import APP, call, error_of
from tests.faces.test_powerauth_messages import BODY, FCM_TOKEN, register
from tests.pushkit import APNS_TOKEN, Emulators
from tests.waiting import until, until_true

pytestmark = pytest.mark.usefixtures("relay")


async def create(pa: httpx.AsyncClient, body: dict[str, Any] = BODY) -> str:
    status, answer = await call(pa, "/push/campaign/create", {"appId": APP, "message": body})
    assert status == 200, answer
    return str(answer["responseObject"]["id"])


async def test_create_detail_list_and_delete(pa: httpx.AsyncClient, app: str) -> None:
    ident = await create(pa)
    status, answer = await call(pa, f"/push/campaign/{ident}/detail", method="GET")
    assert status == 200
    detail = answer["responseObject"]
    assert (detail["id"], detail["appId"], detail["sent"], detail["message"]) == (
        ident,
        APP,
        False,
        BODY,
    )
    assert detail["timestampSent"] is None
    assert detail["progress"]["devices"] == 0
    # The documented meaning: all=false lists only sent campaigns.
    _, listed = await call(pa, "/push/campaign/list", method="GET", params={"all": "false"})
    assert listed["responseObject"] == []
    _, listed = await call(pa, "/push/campaign/list", method="GET", params={"all": "true"})
    assert [item["id"] for item in listed["responseObject"]] == [ident]
    for method in ("DELETE", "POST"):
        status, answer = await call(pa, f"/push/campaign/{ident}/delete", method=method)
        assert status == 200
    assert answer["responseObject"] == {"deleted": False}
    status, answer = await call(pa, f"/push/campaign/{ident}/detail", method="GET")
    assert status == 400
    assert error_of(answer)[1] == "Campaign with entered ID does not exist"


@pytest.mark.parametrize(
    ("request_object", "text"),
    [
        ({"message": BODY}, "App ID must not be null."),
        ({"appId": "nope", "message": BODY}, "Application with given ID does not exist"),
        ({"appId": APP}, "Push message payload (body) must not be null."),
        (
            {"appId": APP, "message": {**BODY, "extras": {"x": "y" * 4000}}},
            "Campaign message must not exceed 4000 characters.",
        ),
    ],
)
async def test_create_rejects_bad_requests(
    pa: httpx.AsyncClient, app: str, request_object: Any, text: str
) -> None:
    status, answer = await call(pa, "/push/campaign/create", request_object)
    assert status == 400
    assert error_of(answer)[1] == text


async def test_users_add_list_page_and_delete(pa: httpx.AsyncClient, app: str) -> None:
    ident = await create(pa)
    users = [f"u{index:02d}" for index in range(25)]
    for method in ("PUT", "POST"):  # adding twice skips the duplicates
        status, answer = await call(pa, f"/push/campaign/{ident}/user/add", users, method=method)
        assert (status, answer) == (200, {"status": "OK"})
    _, page = await call(
        pa, f"/push/campaign/{ident}/user/list", method="GET", params={"page": "1", "size": "10"}
    )
    assert (page["page"], page["size"]) == (1, 10)
    assert page["responseObject"] == {"campaignId": ident, "users": users[10:20]}
    status, _ = await call(pa, f"/push/campaign/{ident}/user/delete", users[:20], method="DELETE")
    assert status == 200
    _, page = await call(pa, f"/push/campaign/{ident}/user/list", method="GET")
    assert page["responseObject"]["users"] == users[20:]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/push/campaign/999/user/add", ["a"]),
        ("/push/campaign/abc/user/add", ["a"]),
        ("/push/campaign/{id}/user/add", {"not": "a list"}),
        ("/push/campaign/{id}/user/add", [1, 2]),
    ],
)
async def test_users_reject_bad_requests(
    pa: httpx.AsyncClient, app: str, path: str, body: Any
) -> None:
    ident = await create(pa)
    status, answer = await call(pa, path.replace("{id}", ident), body)
    assert status == 400
    assert error_of(answer)[0] == "ERROR_GENERIC"
    _, page = await call(pa, f"/push/campaign/{ident}/user/list", method="GET")
    assert page["responseObject"]["users"] == []


async def test_user_list_rejects_bad_paging(pa: httpx.AsyncClient, app: str) -> None:
    ident = await create(pa)
    status, answer = await call(
        pa, f"/push/campaign/{ident}/user/list", method="GET", params={"page": "-1"}
    )
    assert status == 400
    assert error_of(answer)[0] == "ERROR_REQUEST"


async def test_test_send_reaches_only_the_test_user(
    pa: httpx.AsyncClient, app: str, emulators: Emulators
) -> None:
    await register(pa, "tester", "t-1", "fcm", FCM_TOKEN)
    await register(pa, "other", "o-1", "apns", APNS_TOKEN)
    ident = await create(pa)
    status, answer = await call(
        pa, f"/push/campaign/send/test/{ident}", {"userId": "tester"}, wrap=True
    )
    assert (status, answer) == (200, {"status": "OK"})
    assert [item.token for item in emulators.fcm.received] == [FCM_TOKEN]
    assert emulators.apns.received == []
    status, answer = await call(pa, f"/push/campaign/send/test/{ident}", {})
    assert status == 400
    assert error_of(answer)[1] == "Push message must contain a user ID."


async def _bulk_registrations(db: Database, app_id: object, count: int) -> list[str]:
    """``count`` users with one device each, a third per platform, plus one device
    shared by two users (a campaign sends to it once)."""
    now = now_us()
    rows = []
    users = []
    for index in range(count):
        platform = ("apns", "fcm", "hms")[index % 3]
        token = f"{index:064x}" if platform == "apns" else f"{platform}-{index:06d}"
        user = f"bulk{index:05d}"
        users.append(user)
        rows.append(
            {
                "id": uuid7(),
                "app_id": app_id,
                "user_name": user,
                "face": "powerauth",
                "face_ref": f"act-{index}",
                "platform": platform,
                "environment": "production",
                "token": token,
                "push_key": None,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    shared = dict(rows[1], id=uuid7(), user_name="bulk-shared", face_ref="act-shared")
    rows.append(shared)
    users.append("bulk-shared")
    await db.write(lambda conn: conn.execute(insert(push_registrations), rows))
    return users


@pytest.mark.settings(powerauth_campaign_page_size=500, notifications_worker_concurrency=200)
async def test_live_campaign_sends_each_device_once_across_platforms(
    pa: httpx.AsyncClient, app: str, emulators: Emulators, services: Services, db: Database
) -> None:
    app_id = await services.push_apps.app_id(APP)
    users = await _bulk_registrations(db, app_id, 3000)
    ident = await create(pa)
    for start in range(0, len(users), 1000):
        status, _ = await call(pa, f"/push/campaign/{ident}/user/add", users[start : start + 1000])
        assert status == 200
    status, answer = await call(pa, f"/push/campaign/send/live/{ident}")
    assert (status, answer) == (200, {"status": "OK"})

    async def sent() -> bool:
        _, detail = await call(pa, f"/push/campaign/{ident}/detail", method="GET")
        return bool(detail["responseObject"]["sent"])

    await until(sent, seconds=60)
    delivered = lambda: (  # noqa: E731
        len(emulators.apns.received) + len(emulators.fcm.received) + len(emulators.hms.received)
    )
    await until_true(lambda: delivered() == 3000, seconds=120)
    assert (
        len(emulators.apns.received),
        len(emulators.fcm.received),
        len(emulators.hms.received),
    ) == (
        1000,
        1000,
        1000,
    )
    tokens = [item.token for item in emulators.fcm.received]
    assert len(set(tokens)) == len(tokens)

    async def recorded() -> bool:
        # Outcomes are recorded in batches just after the providers answered.
        _, detail = await call(pa, f"/push/campaign/{ident}/detail", method="GET")
        return bool(detail["responseObject"]["progress"]["pending"] == 0)

    await until(recorded, seconds=30)
    _, detail = await call(pa, f"/push/campaign/{ident}/detail", method="GET")
    progress = detail["responseObject"]["progress"]
    assert progress == {"state": "sent", "devices": 3000, "sent": 3000, "failed": 0, "pending": 0}
    assert detail["responseObject"]["timestampCompleted"] is not None
    payload = json.dumps(emulators.apns.received[0].payload)
    assert "Balance update" in payload
    # Sent campaigns are what all=false lists.
    _, listed = await call(pa, "/push/campaign/list", method="GET", params={"all": "false"})
    assert [item["id"] for item in listed["responseObject"]] == [ident]


async def test_live_send_of_an_unknown_campaign_fails(pa: httpx.AsyncClient, app: str) -> None:
    status, answer = await call(pa, "/push/campaign/send/live/12345")
    assert status == 400
    assert error_of(answer)[1] == "Campaign with entered ID does not exist"


@pytest.mark.settings(powerauth_campaign_page_size=2)
async def test_pages_resume_from_the_stored_cursor(
    pa: httpx.AsyncClient, app: str, services: Services, db: Database
) -> None:
    """Each page's jobs and cursor are one transaction: whoever queues the next page (this
    process, one restarted, or two at once) continues after the last token queued, and
    no device is queued twice."""
    from storage.repos import powerauth, push_jobs
    from storage.schema import push_jobs as jobs_table

    app_id = await services.push_apps.app_id(APP)
    users = await _bulk_registrations(db, app_id, 5)
    ident = await create(pa)
    await call(pa, f"/push/campaign/{ident}/user/add", users)
    campaigns = services.powerauth.campaigns
    # Started directly: the server's runner is asleep (it wakes on send/live).

    await db.write(lambda conn: powerauth.start_campaign(conn, int(ident), now=now_us()))
    assert await campaigns.queue_page(int(ident)) is True
    progress = (await campaigns.get(int(ident))).campaign
    assert (progress.state, progress.devices) == ("sending", 2)

    async def worker() -> None:
        while await campaigns.queue_page(int(ident)):
            pass

    # Two workers (as two processes would) race for the remaining pages.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        nursery.start_soon(worker)
    done = (await campaigns.get(int(ident))).campaign
    assert (done.state, done.sent, done.devices) == ("sent", True, 5)
    tokens = await db.read(lambda conn: [row.token for row in conn.execute(jobs_table.select())])
    assert len(tokens) == 5
    assert len(set(tokens)) == 5
    counts = await db.read(lambda conn: push_jobs.campaign_counts(conn, int(ident)))
    assert sum(counts.values()) == 5
