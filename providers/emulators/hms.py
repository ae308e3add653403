"""An HMS Push Kit emulator: the OAuth2 client-credentials endpoint and
``/v1/{appId}/messages:send`` (also ``v2``/``v3`` with a project id).

Answers carry HMS's string result codes: ``80000000`` success, ``80100000`` partial
success with the illegal tokens listed in ``msg``, ``80300007`` all tokens invalid,
``80300010`` bad token count, ``80100003`` bad payload, ``80200003`` expired access
token (HTTP 401); flow control is HTTP 503.
"""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from dataclasses import dataclass

from providers.emulators.base import EmulatorBase, Received, json_reply, retry_after
from providers.emulators.faults import FaultKind, FaultPlan
from providers.emulators.oauth import TokenIssuer, form
from providers.emulators.server import Reply, Request

TOKEN_PATH = "/oauth2/v3/token"  # noqa: S105 (a path)
_SEND_PATH = re.compile(r"^/v[123]/([^/]+)/messages:send$")
_MAX_TOKENS = 1000


@dataclass(frozen=True)
class HmsClient:
    """An app's OAuth2 client the token endpoint knows."""

    client_id: str
    client_secret: str


def _result(status: int, code: str, msg: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return json_reply(status, {"code": code, "msg": msg, "requestId": uuid.uuid4().hex}, headers)


class HmsEmulator(EmulatorBase):
    """See the module docstring."""

    def __init__(
        self,
        clients: list[HmsClient],
        *,
        faults: FaultPlan | None = None,
        token_lifetime_secs: int = 3600,
    ) -> None:
        super().__init__(faults)
        self._clients = {client.client_id: client for client in clients}
        self.tokens = TokenIssuer(token_lifetime_secs)

    def answer(self, request: Request) -> Reply:
        """The token endpoint or ``messages:send``."""
        if request.path == TOKEN_PATH and request.method == "POST":
            return self._token(request)
        match = _SEND_PATH.match(request.path)
        if match is None or request.method != "POST":
            return _result(404, "80100002", "Not found")
        return self._send(match.group(1), request)

    def _token(self, request: Request) -> Reply:
        fields = form(request)
        client = self._clients.get(fields.get("client_id", ""))
        if fields.get("grant_type") != "client_credentials":
            return json_reply(400, {"error": 1102, "error_description": "unsupported grant_type"})
        if client is None or fields.get("client_secret") != client.client_secret:
            return json_reply(400, {"error": 1101, "error_description": "invalid client"})
        token, lifetime = self.tokens.issue(client.client_id)
        return json_reply(
            200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        )

    def _send(self, app_id: str, request: Request) -> Reply:
        subject = self.tokens.subject(request.headers.get("authorization"))
        if subject is None:
            return _result(401, "80200003", "OAuth token expired.")
        if subject != app_id:
            return _result(401, "80200001", "Oauth authentication error.")
        try:
            message = json.loads(request.body)["message"]
            tokens = message["token"]
            data = message.get("data", "")
        except (ValueError, KeyError, TypeError):
            return _result(400, "80100003", "Illegal payload")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return _result(400, "80100003", "Illegal payload")
        if not 1 <= len(tokens) <= _MAX_TOKENS:
            return _result(400, "80300010", "The number of tokens is not in the range [1, 1000]")
        if not isinstance(data, str):
            return _result(400, "80100003", "Illegal payload, data must be a string")
        illegal: list[str] = []
        stall = 0.0
        for token in tokens:
            fault = self.faults.pick(token)
            if fault is None:
                continue
            kind = fault.kind
            if kind is FaultKind.GOAWAY:
                return Reply(goaway=True)
            if kind in (FaultKind.UNREGISTERED, FaultKind.BAD_TOKEN, FaultKind.SENDER_MISMATCH):
                illegal.append(token)
            elif kind is FaultKind.STALL:
                stall = max(stall, fault.seconds)
            elif kind is FaultKind.AUTH_EXPIRED:
                self.tokens.expire_all()
                return _result(401, "80200003", "OAuth token expired.")
            elif kind is FaultKind.SERVER_ERROR:
                return _result(502, "81000001", "System inner error")
            else:
                return _result(503, "80100017", "Flow control", retry_after(fault))
        delivered = [token for token in tokens if token not in illegal]
        if self.record:
            for token in delivered:
                self.received.append(Received(token, dict(request.headers), message, request.peer))
        if not delivered:
            reply = _result(200, "80300007", "All the tokens are invalid")
        elif illegal:
            detail = {"success": len(delivered), "failure": len(illegal), "illegal_tokens": illegal}
            reply = _result(200, "80100000", json.dumps(detail))
        else:
            reply = _result(200, "80000000", "Success")
        return dataclasses.replace(reply, stall=stall)
