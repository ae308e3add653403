"""``/inbox/messages...``: post, list, count, detail, read and read-all.

Where the document and the reference differ both are accepted: ``detail`` takes
``messageId`` (document) or ``id`` (reference); ``read`` takes the query parameters
``messageId`` (and optionally ``userId``, restricting it to that user's message) or the
reference's body ``{inboxId}``, by PUT or POST; ``read-all`` takes query parameters or a
body ``{userId, appId}``.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from relay.api.powerauth import schemas
from relay.api.powerauth.envelope import ok, query_bool, query_int, read_json
from relay.api.routes import view
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.errors import InvalidRequest, Violation
from relay.services.powerauth.inbox import MAX_PAGE_SIZE, InboxMessage
from storage.ids import format_rfc3339


def summary_body(message: InboxMessage) -> dict[str, Any]:
    """A list entry (no body)."""
    return {
        "id": str(message.id),
        "type": message.type,
        "subject": message.subject,
        "summary": message.summary,
        "read": message.read,
        "timestampCreated": format_rfc3339(message.created_at),
    }


def message_body(message: InboxMessage) -> dict[str, Any]:
    """The full message."""
    return {
        **summary_body(message),
        "userId": message.user_name,
        "body": message.body,
        "applications": list(message.applications),
    }


async def _body_fields() -> dict[str, Any]:
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("requestObject"), dict):
        return dict(body["requestObject"])
    return dict(body) if isinstance(body, dict) else {}


def _required(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest((Violation(name, value, "must not be blank"),))
    return value


def register(bp: Blueprint, powerauth: PowerAuth) -> None:
    """Add the inbox routes."""
    inbox = powerauth.inbox

    @view(bp)
    async def inbox_post() -> Response:
        draft = schemas.inbox_draft(await _body_fields())
        return ok(message_body(await inbox.post(draft)))

    @view(bp)
    async def inbox_listing() -> Response:
        user = _required(dict(request.args), "userId")
        apps = [item for item in (request.args.get("applications") or "").split(",") if item]
        if not apps:
            raise InvalidRequest((Violation("applications", None, "must not be empty"),))
        page = query_int(request, "page", 0)
        size = query_int(request, "size", 100, maximum=MAX_PAGE_SIZE) or 100
        found = await inbox.list(
            user, apps, only_unread=query_bool(request, "onlyUnread"), page=page, size=size
        )
        return ok([summary_body(item) for item in found], page=page, size=size)

    @view(bp)
    async def inbox_count() -> Response:
        args = dict(request.args)
        unread = await inbox.count_unread(_required(args, "userId"), _required(args, "appId"))
        return ok({"countUnread": unread})

    @view(bp)
    async def inbox_detail() -> Response:
        ident = request.args.get("messageId") or request.args.get("id")
        if not ident:
            raise InvalidRequest((Violation("messageId", None, "must not be blank"),))
        return ok(message_body(await inbox.detail(ident, user_id=request.args.get("userId"))))

    @view(bp)
    async def inbox_read() -> Response:
        fields = {**(await _body_fields()), **dict(request.args)}
        ident = fields.get("messageId") or fields.get("inboxId")
        if not isinstance(ident, str) or not ident:
            raise InvalidRequest((Violation("messageId", ident, "must not be blank"),))
        user = fields.get("userId")
        message = await inbox.read(ident, user_id=user if isinstance(user, str) else None)
        return ok(message_body(message))

    @view(bp)
    async def inbox_read_all() -> Response:
        fields = {**(await _body_fields()), **dict(request.args)}
        await inbox.read_all(_required(fields, "userId"), _required(fields, "appId"))
        return ok()
