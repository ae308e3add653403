"""What every emulator shares: the fault plan, the record of what it received, and the
``/_emulator/*`` control endpoints for emulators run as separate processes."""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from providers.emulators.faults import Fault, FaultKind, FaultPlan
from providers.emulators.server import Reply, Request

CONTROL_PREFIX = "/_emulator/"


@dataclass(frozen=True)
class Received:
    """One notification the emulator accepted for delivery."""

    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    peer: str = ""


def json_reply(status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """A JSON reply; anything but 2xx counts as a rejection."""
    return Reply(
        status,
        (("content-type", "application/json"), *headers),
        json.dumps(body).encode(),
        accepted=200 <= status < 300,
    )


def retry_after(fault: Fault) -> tuple[tuple[str, str], ...]:
    """The ``Retry-After`` header of a fault, if it has one."""
    return (("retry-after", str(fault.retry_after)),) if fault.retry_after is not None else ()


class EmulatorBase(abc.ABC):
    """Records accepted notifications and answers the control endpoints."""

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = faults or FaultPlan()
        self.received: list[Received] = []
        self.requests = 0
        self.record = True

    def handle(self, request: Request) -> Reply:
        """Answer ``request`` (control endpoints first)."""
        self.requests += 1
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        return self.answer(request)

    @abc.abstractmethod
    def answer(self, request: Request) -> Reply:
        """The provider-specific answer."""

    def inject(
        self, token: str, accepted: Callable[[], Reply], refused: Callable[[Fault], Reply]
    ) -> Reply:
        """``accepted()`` unless a fault is planned for ``token``: GOAWAY and stalls are
        carried out by the HTTP/2 server (a stalled notification is accepted, late), the
        rest become the provider's refusal ``refused(fault)``."""
        fault = self.faults.pick(token)
        if fault is None:
            return accepted()
        if fault.kind is FaultKind.GOAWAY:
            return Reply(goaway=True)
        if fault.kind is FaultKind.STALL:
            return dataclasses.replace(accepted(), stall=fault.seconds)
        return refused(fault)

    def _control(self, request: Request) -> Reply:
        action = request.path[len(CONTROL_PREFIX) :]
        if action == "received" and request.method == "GET":
            return json_reply(200, [asdict(item) for item in self.received])
        if action == "reset" and request.method == "POST":
            self.received.clear()
            self.faults.clear()
            return json_reply(200, {})
        if action == "faults" and request.method == "POST":
            try:
                spec = json.loads(request.body)
                for token, fault in spec.get("per_token", {}).items():
                    self.faults.per_token[token] = _fault(fault)
                for share, fault in spec.get("by_rate", []):
                    self.faults.by_rate.append((float(share), _fault(fault)))
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                return json_reply(400, {"error": str(error)})
            return json_reply(200, {})
        return json_reply(404, {"error": "unknown control endpoint"})


def _fault(spec: dict[str, Any]) -> Fault:
    return Fault(
        FaultKind(spec["kind"]),
        retry_after=spec.get("retry_after"),
        seconds=float(spec.get("seconds", 0.0)),
        timestamp_ms=spec.get("timestamp_ms"),
        times=spec.get("times"),
    )
