"""PowerAuth message inbox: validation, paging, unread counts, read and read-all in the
document's and the reference's forms, and per-user isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from relay.registry import Services
from tests.faces.conftest import APP, call, error_of

pytestmark = pytest.mark.usefixtures("relay")


def inbox_message(user: str = "user-001", **overrides: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "type": "text",
        "subject": "Example subject",
        "summary": "Example summary",
        "body": "Example message body",
        "applications": [APP],
        **overrides,
    }


async def post(pa: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    status, body = await call(pa, "/inbox/messages", inbox_message(**overrides))
    assert status == 200, body
    return dict(body["responseObject"])


async def test_post_returns_the_stored_message(pa: httpx.AsyncClient, app: str) -> None:
    message = await post(pa)
    assert message["read"] is False
    assert message["userId"] == "user-001"
    assert message["applications"] == [APP]
    status, body = await call(
        pa, "/inbox/messages/detail", method="GET", params={"messageId": message["id"]}
    )
    assert status == 200
    assert body["responseObject"] == message
    _, body = await call(pa, "/inbox/messages/detail", method="GET", params={"id": message["id"]})
    assert body["responseObject"]["id"] == message["id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"userId": ""}, "userId"),
        ({"type": "markdown"}, "type"),
        ({"subject": "short"}, "subject"),
        ({"summary": "x" * 256}, "summary"),
        ({"body": "tiny"}, "body"),
        ({"applications": []}, "applications"),
        ({"applications": ["ab"]}, "applications[0]"),
    ],
)
async def test_post_validates_like_the_reference(
    pa: httpx.AsyncClient, app: str, change: dict[str, Any], field: str
) -> None:
    status, body = await call(pa, "/inbox/messages", inbox_message(**change))
    assert status == 400
    assert error_of(body) == ("ERROR_REQUEST", "Invalid method parameter value")
    assert [item["fieldName"] for item in body["responseObject"]["violations"]] == [field]
    _, listed = await call(
        pa, "/inbox/messages/list", method="GET", params={"userId": "user-001", "applications": APP}
    )
    assert listed["responseObject"] == []


async def test_post_to_an_unknown_app_fails(pa: httpx.AsyncClient, app: str) -> None:
    status, body = await call(pa, "/inbox/messages", inbox_message(applications=["ghost-app"]))
    assert status == 400
    assert error_of(body)[0] == "ERROR_APP_NOT_FOUND"


async def test_list_pages_newest_first_and_counts_unread(
    pa: httpx.AsyncClient, app: str, services: Services
) -> None:
    await services.push_apps.create("other-app")
    ids = [(await post(pa, subject=f"Subject {index:03d}"))["id"] for index in range(5)]
    await post(pa, applications=["other-app"])
    await post(pa, user="someone-else")
    params = {"userId": "user-001", "applications": APP, "page": "0", "size": "2"}
    _, first = await call(pa, "/inbox/messages/list", method="GET", params=params)
    assert (first["page"], first["size"]) == (0, 2)
    assert [item["id"] for item in first["responseObject"]] == [ids[4], ids[3]]
    assert "body" not in first["responseObject"][0]
    _, both = await call(
        pa,
        "/inbox/messages/list",
        method="GET",
        params={"userId": "user-001", "applications": f"{APP},other-app"},
    )
    assert len(both["responseObject"]) == 6
    _, count = await call(
        pa, "/inbox/messages/count", method="GET", params={"userId": "user-001", "appId": APP}
    )
    assert count["responseObject"] == {"countUnread": 5}


async def test_read_marks_one_message_in_either_form(pa: httpx.AsyncClient, app: str) -> None:
    first, second = await post(pa), await post(pa)
    status, body = await call(
        pa,
        "/inbox/messages/read",
        method="PUT",
        params={"userId": "user-001", "messageId": first["id"]},
    )
    assert status == 200
    assert body["responseObject"]["read"] is True
    status, body = await call(pa, "/inbox/messages/read", {"inboxId": second["id"]})
    assert status == 200
    assert body["responseObject"]["read"] is True
    # Already read: a no-op, still OK.
    status, _ = await call(pa, "/inbox/messages/read", {"inboxId": second["id"]})
    assert status == 200
    _, unread = await call(
        pa,
        "/inbox/messages/list",
        method="GET",
        params={"userId": "user-001", "applications": APP, "onlyUnread": "true"},
    )
    assert unread["responseObject"] == []


async def test_read_of_another_users_message_is_not_found(pa: httpx.AsyncClient, app: str) -> None:
    message = await post(pa)
    status, body = await call(
        pa,
        "/inbox/messages/read",
        method="PUT",
        params={"userId": "intruder", "messageId": message["id"]},
    )
    assert status == 400
    assert error_of(body)[0] == "ERROR_MESSAGE_NOT_FOUND"
    _, detail = await call(
        pa, "/inbox/messages/detail", method="GET", params={"messageId": message["id"]}
    )
    assert detail["responseObject"]["read"] is False


async def test_read_all_in_query_and_body_forms(pa: httpx.AsyncClient, app: str) -> None:
    for _ in range(3):
        await post(pa)
    status, body = await call(
        pa, "/inbox/messages/read-all", method="PUT", params={"userId": "user-001", "appId": APP}
    )
    assert (status, body) == (200, {"status": "OK"})
    _, count = await call(
        pa, "/inbox/messages/count", method="GET", params={"userId": "user-001", "appId": APP}
    )
    assert count["responseObject"]["countUnread"] == 0
    await post(pa)
    status, _ = await call(
        pa, "/inbox/messages/read-all", {"userId": "user-001", "appId": APP}, wrap=False
    )
    assert status == 200
    _, count = await call(
        pa, "/inbox/messages/count", method="GET", params={"userId": "user-001", "appId": APP}
    )
    assert count["responseObject"]["countUnread"] == 0


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/inbox/messages/detail", {"messageId": "not-a-uuid"}, "ERROR_MESSAGE_NOT_FOUND"),
        (
            "/inbox/messages/detail",
            {"messageId": "0195d9c0-0000-7000-8000-000000000000"},
            "ERROR_MESSAGE_NOT_FOUND",
        ),
        ("/inbox/messages/detail", {}, "ERROR_REQUEST"),
        ("/inbox/messages/list", {"applications": APP}, "ERROR_REQUEST"),
        ("/inbox/messages/list", {"userId": "u"}, "ERROR_REQUEST"),
        (
            "/inbox/messages/list",
            {"userId": "u", "applications": APP, "size": "x"},
            "ERROR_REQUEST",
        ),
        ("/inbox/messages/list", {"userId": "u", "applications": "ghost"}, "ERROR_APP_NOT_FOUND"),
        ("/inbox/messages/count", {"userId": "u"}, "ERROR_REQUEST"),
    ],
)
async def test_queries_reject_bad_parameters(
    pa: httpx.AsyncClient, app: str, path: str, params: dict[str, str], code: str
) -> None:
    status, body = await call(pa, path, method="GET", params=params)
    assert status == 400
    assert error_of(body)[0] == code
