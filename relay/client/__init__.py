"""A trio client for the Obscura relay API, used by applications, the tests and the bench.

::

    async with httpx.AsyncClient(base_url="http://127.0.0.1:3000") as http:
        client = ObscuraClient(http)
        await client.register("alice", "a long password")
        keys = DeviceKeys.generate(one_time_pre_keys=50)
        await client.create_device(keys, name="laptop")
        async with connect_gateway(client) as gateway:
            async for batch in gateway.batches():
                await gateway.ack([envelope.id for envelope in batch])
"""

from relay.client.gateway import Envelope, GatewayConnection, PreKeyStatus, connect_gateway
from relay.client.keys import DeviceKeys
from relay.client.rest import ApiError, Attachment, Backup, ObscuraClient, Outgoing, Session

__all__ = [
    "ApiError",
    "Attachment",
    "Backup",
    "DeviceKeys",
    "Envelope",
    "GatewayConnection",
    "ObscuraClient",
    "Outgoing",
    "PreKeyStatus",
    "Session",
    "connect_gateway",
]
