"""The HTTP/2 pool against real trio + h2 servers over TLS (and h2c where asked for)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio

from providers.emulators import server
from providers.emulators.certs import server_ssl_context
from providers.emulators.faults import Fault, FaultKind
from providers.errors import ConnectFailed, ConnectionLost, ResponseTimeout
from providers.h2pool import H2Pool, Origin, PoolConfig, open_pool
from tests.pushkit import APNS_TOKEN, Keys
from tests.waiting import until_true


class Echo:
    """Answers every request with the size of its body; can stall or GOAWAY."""

    def __init__(self) -> None:
        self.stall = 0.0
        self.goaway_once = False
        self.paths: list[str] = []

    def handle(self, request: server.Request) -> server.Reply:
        self.paths.append(request.path)
        if self.goaway_once:
            self.goaway_once = False
            return server.Reply(goaway=True)
        return server.Reply(200, (), str(len(request.body)).encode(), stall=self.stall)


@asynccontextmanager
async def serving(
    handler: server.Handler,
    ssl_context: ssl.SSLContext | None,
    options: server.ServerOptions,
) -> AsyncIterator[int]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(server.serve, handler, ssl_context=ssl_context, options=options)
        )
        yield port
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def echo_pool(
    keys: Keys, options: server.ServerOptions, config: PoolConfig, echo: Echo | None = None
) -> AsyncIterator[tuple[H2Pool, Echo]]:
    echo = echo or Echo()
    async with (
        serving(echo, server_ssl_context(keys.certificate), options) as port,
        open_pool(
            f"https://localhost:{port}", config=config, ssl_context=keys.client_ssl()
        ) as pool,
    ):
        yield pool, echo


async def test_requests_share_one_tls_connection(keys: Keys) -> None:
    options = server.ServerOptions()
    async with echo_pool(keys, options, PoolConfig(connections=1)) as (pool, _):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(pool.request, b"/x", [], b"hello")
        response = await pool.request(b"/x", [], b"hello")
    assert response.status == 200
    assert response.body == b"5"
    assert options.connections == 1
    assert pool.connections_opened == 1


async def test_streams_in_flight_follow_the_peers_limit(keys: Keys) -> None:
    options = server.ServerOptions(max_concurrent_streams=3)
    echo = Echo()
    echo.stall = 0.05
    async with (
        echo_pool(keys, options, PoolConfig(connections=1), echo) as (pool, _),
        trio.open_nursery() as nursery,
    ):
        for _ in range(20):
            nursery.start_soon(pool.request, b"/x", [], b"")
    assert options.peak_streams == 3
    assert len(echo.paths) == 20


async def test_callers_wait_when_every_stream_of_every_connection_is_busy(keys: Keys) -> None:
    options = server.ServerOptions()
    echo = Echo()
    echo.stall = 0.05
    config = PoolConfig(connections=2, max_streams_per_connection=2)
    async with echo_pool(keys, options, config, echo) as (pool, _), trio.open_nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(pool.request, b"/x", [], b"")
    assert options.connections == 2
    assert options.peak_streams == 2  # per connection
    assert len(echo.paths) == 16


async def test_a_body_larger_than_the_flow_control_window_is_sent_whole(keys: Keys) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB, four times h2's default window
    async with echo_pool(keys, server.ServerOptions(), PoolConfig()) as (pool, _):
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(pool.request, b"/big", [], body)
        response = await pool.request(b"/big", [], body)
    assert response.body == str(len(body)).encode()


async def test_goaway_finishes_accepted_streams_and_retries_the_rest(keys: Keys) -> None:
    echo = Echo()
    async with echo_pool(keys, server.ServerOptions(), PoolConfig(connections=1), echo) as (
        pool,
        _,
    ):
        await pool.request(b"/first", [], b"")
        echo.goaway_once = True
        results: list[int] = []

        async def one() -> None:
            results.append((await pool.request(b"/after", [], b"")).status)

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one)
    assert results == [200] * 10
    assert pool.connections_opened == 2


async def test_apns_dropping_its_stream_limit_to_one_is_honoured(
    keys: Keys,
) -> None:
    from providers.emulators.apns import ApnsEmulator, ApnsKey
    from tests.pushkit import BUNDLE_ID, KEY_ID, TEAM_ID

    emulator = ApnsEmulator([ApnsKey(KEY_ID, TEAM_ID, keys.apns_key.public_key())])
    options = server.ServerOptions(max_concurrent_streams=100, drop_streams_on_reject=True)
    from providers.apns import ProviderTokenCache, build_request
    from providers.message import PushMessage

    tokens = ProviderTokenCache()
    credentials = keys.apns_credentials()

    def request(device: str) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        return build_request(
            PushMessage(data={"a": "b"}),
            device,
            topic=BUNDLE_ID,
            provider_token=tokens.token(credentials),
        )

    async with (
        serving(emulator, server_ssl_context(keys.certificate), options) as port,
        open_pool(
            f"https://localhost:{port}",
            config=PoolConfig(connections=1),
            ssl_context=keys.client_ssl(),
        ) as pool,
    ):
        rejected = await pool.request(*request("bad"))
        assert rejected.status == 400
        [connection] = pool._connections
        await until_true(lambda: connection.available == 1)
        emulator.faults.per_token[APNS_TOKEN] = Fault(FaultKind.STALL, seconds=0.05, times=1)
        accepted = await pool.request(*request(APNS_TOKEN))
        assert accepted.status == 200
        await until_true(lambda: connection.available == 100)


async def test_a_stalled_response_times_out_and_the_connection_stays_usable(keys: Keys) -> None:
    echo = Echo()
    async with echo_pool(keys, server.ServerOptions(), PoolConfig(connections=1), echo) as (
        pool,
        _,
    ):
        echo.stall = 2.0
        with pytest.raises(ResponseTimeout):
            await pool.request(b"/slow", [], b"", response_timeout=0.2)
        echo.stall = 0.0
        assert (await pool.request(b"/fast", [], b"")).status == 200
    assert pool.connections_opened == 1


async def test_an_idle_connection_is_pinged(keys: Keys) -> None:
    options = server.ServerOptions()
    config = PoolConfig(connections=1, idle_ping_interval=0.1, ping_timeout=1.0)
    async with echo_pool(keys, options, config) as (pool, _):
        await pool.request(b"/x", [], b"")
        await until_true(lambda: options.pings >= 2)
        assert (await pool.request(b"/x", [], b"")).status == 200
    assert pool.connections_opened == 1


async def test_a_server_without_h2_alpn_is_refused(keys: Keys) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(keys.certificate.cert, keys.certificate.key)
    context.set_alpn_protocols(["http/1.1"])
    async with (
        serving(Echo(), context, server.ServerOptions()) as port,
        open_pool(f"https://localhost:{port}", ssl_context=keys.client_ssl()) as pool,
    ):
        with pytest.raises(ConnectFailed):
            await pool.request(b"/x", [], b"")


async def test_an_untrusted_certificate_is_refused(keys: Keys) -> None:
    async with (
        serving(Echo(), server_ssl_context(keys.certificate), server.ServerOptions()) as port,
        open_pool(f"https://localhost:{port}") as pool,
    ):
        with pytest.raises(ConnectFailed, match="TLS certificate verification failed"):
            await pool.request(b"/x", [], b"")


async def test_a_closed_port_fails_to_connect() -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    async with open_pool(f"https://127.0.0.1:{port}") as pool:
        with pytest.raises(ConnectFailed, match="failed: connection refused"):
            await pool.request(b"/x", [], b"")


async def test_an_unknown_host_fails_naming_the_dns_lookup() -> None:
    async with open_pool("https://no-such-host.invalid") as pool:
        with pytest.raises(ConnectFailed, match="DNS lookup failed"):
            await pool.request(b"/x", [], b"")


async def test_cleartext_h2c_when_asked_for() -> None:
    async with (
        serving(Echo(), None, server.ServerOptions()) as port,
        open_pool(f"http://127.0.0.1:{port}") as pool,
    ):
        response = await pool.request(b"/x", [], b"abc")
    assert response.body == b"3"


def test_origins_parse_urls() -> None:
    assert Origin.from_url("https://api.push.apple.com") == Origin(
        "https", "api.push.apple.com", 443
    )
    assert Origin.from_url("https://h:8443/token").authority == b"h:8443"
    with pytest.raises(ValueError, match="not an http"):
        Origin.from_url("ftp://x")


class _SilentAfterHandshake:
    """A TLS + h2 peer that completes the handshake, then never reads or answers again."""

    def __init__(self) -> None:
        self.connections = 0

    async def serve(self, stream: trio.abc.Stream) -> None:
        import h2.config
        import h2.connection

        self.connections += 1
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        connection.initiate_connection()
        await stream.send_all(connection.data_to_send())
        await trio.sleep_forever()


async def test_a_peer_that_stops_answering_pings_is_dropped(keys: Keys) -> None:
    peer = _SilentAfterHandshake()
    context = server_ssl_context(keys.certificate)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, peer.serve, 0, context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        config = PoolConfig(connections=1, idle_ping_interval=0.2, ping_timeout=0.3)
        async with open_pool(
            f"https://localhost:{port}", config=config, ssl_context=keys.client_ssl()
        ) as pool:
            with trio.fail_after(5), pytest.raises(ConnectionLost, match="PING"):
                await pool.request(b"/x", [], b"", response_timeout=30)
        nursery.cancel_scope.cancel()
