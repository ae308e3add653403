"""Campaigns: a message body for a set of users, sent to each of their devices once.

``send/live`` marks the campaign sending and returns; :meth:`CampaignService.run` (in the
root nursery) streams its devices in pages of distinct tokens, ordered by token. Each
page's jobs and the campaign's cursor (the last token queued) are written in one
transaction, the cursor moved compare-and-set: a restart resumes after the last queued
page, and of several processes reading the same page only one queues it, so no device
is queued twice. When no page is left the campaign is ``sent`` with ``timestamp_completed``, as in
the reference ("completed" means queued, not delivered; the detail shows delivery
progress from the queue).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import trio
from sqlalchemy.engine import Connection

from relay.services.powerauth.devices import PowerAuthDevices
from relay.services.powerauth.errors import PowerAuthError
from relay.services.powerauth.messages import PowerAuthMessages
from relay.services.powerauth.payload import (
    Attributes,
    OutgoingMessage,
    to_push_message,
)
from relay.services.registrations import RegistrationSender
from storage.db import Database
from storage.errors import StorageError
from storage.ids import MICROS_PER_SECOND, now_us
from storage.repos import powerauth, push_jobs, push_registrations
from storage.repos.powerauth import Campaign as Campaign  # returned to the API

log = logging.getLogger("relay.powerauth")

MAX_USERS_PER_REQUEST = 10_000


@dataclass(frozen=True)
class CampaignDraft:
    """A validated ``campaign/create``: the app and the message body as stored JSON."""

    app: str
    message_json: str


@dataclass(frozen=True)
class CampaignProgress:
    """A campaign with how far its delivery got."""

    campaign: Campaign
    jobs: dict[str, int]


class CampaignService:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        devices: PowerAuthDevices,
        messages: PowerAuthMessages,
        sender: RegistrationSender,
        *,
        page_size: int,
    ) -> None:
        self._db = db
        self._devices = devices
        self._messages = messages
        self._sender = sender
        self._page_size = page_size
        self._wake = trio.Event()

    async def create(self, draft: CampaignDraft) -> int:
        """A new campaign; returns its id."""
        app_id = await self._devices.app(draft.app)
        message = draft.message_json
        return await self._db.write(
            lambda conn: powerauth.create_campaign(conn, app_id, message, now=now_us())
        )

    async def get(self, campaign_id: int) -> CampaignProgress:
        """One campaign and its delivery counts."""

        def work(conn: Connection) -> CampaignProgress | None:
            found = powerauth.campaign(conn, campaign_id)
            if found is None:
                return None
            return CampaignProgress(found, push_jobs.campaign_counts(conn, campaign_id))

        progress = await self._db.read(work)
        if progress is None:
            raise PowerAuthError("Campaign with entered ID does not exist")
        return progress

    async def all(self, *, everything: bool) -> list[Campaign]:
        """Every campaign, or (``all=false``, the documented meaning) only sent ones."""
        return await self._db.read(lambda conn: powerauth.campaigns(conn, only_sent=not everything))

    async def delete(self, campaign_id: int) -> bool:
        """Delete a campaign and its users."""
        return await self._db.write(lambda conn: powerauth.delete_campaign(conn, campaign_id))

    async def add_users(self, campaign_id: int, users: list[str]) -> None:
        """Associate users (duplicates skipped)."""
        await self.get(campaign_id)
        await self._db.write(
            lambda conn: powerauth.add_campaign_users(conn, campaign_id, users, now=now_us())
        )

    async def delete_users(self, campaign_id: int, users: list[str]) -> None:
        """Remove users from the campaign."""
        await self.get(campaign_id)
        await self._db.write(lambda conn: powerauth.delete_campaign_users(conn, campaign_id, users))

    async def users(self, campaign_id: int, *, page: int, size: int) -> list[str]:
        """A page of the campaign's users."""
        await self.get(campaign_id)
        return await self._db.read(
            lambda conn: powerauth.campaign_users(conn, campaign_id, page=page, size=size)
        )

    async def send_test(self, campaign_id: int, user_id: str) -> None:
        """The campaign's message to one user, SYNCHRONOUS, through the message path."""
        progress = await self.get(campaign_id)
        message = OutgoingMessage(
            user_id, None, "HIGH", Attributes(), json.loads(progress.campaign.message)
        )
        await self._messages.deliver(progress.campaign.app_id, [message], "SYNCHRONOUS")

    async def send_live(self, campaign_id: int) -> None:
        """Start sending; the pages are queued in the background."""
        await self.get(campaign_id)
        started = await self._db.write(
            lambda conn: powerauth.start_campaign(conn, campaign_id, now=now_us())
        )
        if not started:
            raise PowerAuthError("Campaign is already being sent")
        self._wake.set()

    async def run(self, stopping: trio.Event, *, poll_interval: float = 5.0) -> None:
        """Queue the pages of sending campaigns until ``stopping``."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._wake_on, stopping)
            while not stopping.is_set():
                try:
                    pending = await self._db.read(powerauth.sending_campaigns)
                    for campaign_id in pending:
                        while not stopping.is_set() and await self.queue_page(campaign_id):
                            await trio.lowlevel.checkpoint()
                except StorageError as error:
                    log.warning("campaign sending paused: %s", error)
                with trio.move_on_after(poll_interval):
                    await self._wake.wait()
                self._wake = trio.Event()
            nursery.cancel_scope.cancel()

    async def _wake_on(self, stopping: trio.Event) -> None:
        # Shutdown must not wait for the poll interval.
        await stopping.wait()
        self._wake.set()

    async def queue_page(self, campaign_id: int) -> bool:
        """Queue one page of the campaign; False once it is complete."""
        campaign = await self._db.read(lambda conn: powerauth.campaign(conn, campaign_id))
        if campaign is None or campaign.state != "sending":
            return False
        body = json.loads(campaign.message)
        message = to_push_message(body)
        page = await self._db.read(
            lambda conn: push_registrations.campaign_page(
                conn, campaign_id, campaign.app_id, after=campaign.cursor, limit=self._page_size
            )
        )
        if not page:
            await self._db.write(
                lambda conn: powerauth.finish_campaign(
                    conn, campaign_id, expected=campaign.cursor, now=now_us()
                )
            )
            log.info("campaign %d queued for %d devices", campaign_id, campaign.devices)
            return False
        deliveries = self._sender.deliveries(page, message)
        push = self._sender.push
        expires_at = None if message.expires_at is None else message.expires_at * MICROS_PER_SECOND
        jobs = push.queue.jobs_for(
            campaign.app_id, deliveries, expires_at=expires_at, campaign_id=campaign_id
        )

        def work(conn: Connection) -> None:
            # The cursor moves first, compare-and-set: of two workers reading the same
            # page, only the one that moves it queues the jobs.
            if powerauth.advance_campaign(
                conn, campaign_id, expected=campaign.cursor, cursor=page[-1].token, queued=len(jobs)
            ):
                push_jobs.enqueue(conn, jobs, now=now_us(), max_attempts=push.queue.max_attempts)

        await self._db.write(work)
        push.queue.wake()
        return True
