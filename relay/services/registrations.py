"""Sending to the unified push registrations, whichever face created them.

A registration with a push key gets the notification end-to-end encrypted (SecretBox,
Zulip's format), with the face's key handle (Zulip's ``push_account_id``) in the clear so
the client can pick its key.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from providers.message import Environment, Platform, PushMessage
from relay.crypto.sealing import SealingError, Vault
from relay.services.push.queue import Delivery
from relay.services.push.service import PushService
from storage.repos.push_registrations import ZULIP, CampaignTarget, Registration

log = logging.getLogger("relay.push")


class RegistrationSender:
    """Turns registrations into deliveries and sends them through the push core."""

    def __init__(self, push: PushService, vault: Vault) -> None:
        self._push = push
        self._vault = vault

    @property
    def push(self) -> PushService:
        """The push core."""
        return self._push

    def delivery(
        self, registration: Registration | CampaignTarget, message: PushMessage
    ) -> Delivery | None:
        """The delivery of ``message`` to one registration (None if its key is unusable)."""
        push_key = None
        extra: tuple[tuple[str, str], ...] = ()
        if registration.push_key is not None:
            try:
                push_key = self._vault.open(registration.push_key)
            except SealingError:
                log.error(
                    "a registration's push key does not open (token %.8s...)", registration.token
                )
                return None
            if registration.face == ZULIP:
                extra = (("push_account_id", registration.face_ref),)
        return Delivery(
            Platform(registration.platform),
            registration.token,
            message,
            Environment(registration.environment),
            push_key=push_key,
            extra=extra,
        )

    def deliveries(
        self, registrations: Sequence[Registration | CampaignTarget], message: PushMessage
    ) -> list[Delivery]:
        """Deliveries for every usable registration."""
        found = (self.delivery(item, message) for item in registrations)
        return [item for item in found if item is not None]
