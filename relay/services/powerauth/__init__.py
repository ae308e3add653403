"""The PowerAuth Push Server face's services: devices, messages, campaigns, inbox and
application administration, on the unified registration model."""

from __future__ import annotations

from dataclasses import dataclass

from relay.services.api_keys import ApiKeyService
from relay.services.powerauth.admin import AdminService
from relay.services.powerauth.campaigns import CampaignService
from relay.services.powerauth.devices import PowerAuthDevices
from relay.services.powerauth.inbox import InboxService
from relay.services.powerauth.messages import PowerAuthMessages


@dataclass(frozen=True)
class PowerAuth:
    """The PowerAuth face's services."""

    devices: PowerAuthDevices
    messages: PowerAuthMessages
    campaigns: CampaignService
    inbox: InboxService
    admin: AdminService
    api_keys: ApiKeyService
    open: bool
