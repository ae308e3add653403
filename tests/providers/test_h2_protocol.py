"""The sans-IO HTTP/2 client protocol against h2's server side as an independent peer.

Bytes move between the two in memory; every exchange is checked from both ends: what the
h2 server decoded from our frames and what our protocol made of the server's.
"""

from __future__ import annotations

import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes

from providers.errors import NotProcessed, PeerProtocolError
from providers.h2pool import protocol
from providers.h2pool.protocol import ClientProtocol, ErrorCode

AUTHORITY = b"api.push.example:443"


class Peer:
    """An h2 server connection wired to one :class:`ClientProtocol`."""

    def __init__(self) -> None:
        self.client = ClientProtocol(scheme=b"https", authority=AUTHORITY)
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.server.initiate_connection()
        self.client.initiate()
        self.events: list[protocol.Event] = []
        self.server_events: list[h2.events.Event] = []
        self.pump()

    def pump(self) -> None:
        """Move bytes both ways until neither side has anything to send."""
        while True:
            out = self.client.data_to_send()
            if out:
                self.server_events += self.server.receive_data(out)
            back = self.server.data_to_send()
            if back:
                self.events += self.client.receive_data(back)
            if not out and not back:
                return

    def settle(self, setting: h2.settings.SettingCodes, value: int) -> None:
        """Change one of the server's settings and let both sides apply it."""
        self.server.update_settings({setting: value})
        self.pump()

    def take(self) -> list[protocol.Event]:
        events, self.events = self.events, []
        return events

    def requests(self) -> dict[int, dict[bytes, bytes]]:
        return {
            e.stream_id: dict(e.headers)
            for e in self.server_events
            if isinstance(e, h2.events.RequestReceived)
        }

    def body(self, stream_id: int) -> bytes:
        return b"".join(
            e.data
            for e in self.server_events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def respond(self, stream_id: int, status: bytes = b"200", body: bytes = b"") -> None:
        self.server.send_headers(
            stream_id, [(b":status", status), (b"apns-id", b"id-%d" % stream_id)], not body
        )
        if body:
            self.server.send_data(stream_id, body, end_stream=True)
        self.pump()


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of each frame in ``data``."""
    found = []
    while data:
        high, low, kind, flags, stream_id = struct.unpack_from(">HBBBL", data)
        length = high << 8 | low
        found.append((kind, flags, stream_id, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


def raw_frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    length = len(payload)
    return struct.pack(">HBBBL", length >> 8, length & 0xFF, kind, flags, stream_id) + payload


def test_the_handshake_exchanges_settings_both_ways() -> None:
    peer = Peer()
    assert peer.client.settings_received
    assert [type(e) for e in peer.take()] == [protocol.SettingsChanged]
    changed = [e for e in peer.server_events if isinstance(e, h2.events.RemoteSettingsChanged)]
    values = {code: setting.new_value for code, setting in changed[0].changed_settings.items()}
    assert values[h2.settings.SettingCodes.ENABLE_PUSH] == 0
    assert values[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 1 << 20
    assert peer.server.outbound_flow_control_window == 65_535 + (1 << 24)


def test_a_request_and_its_response() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(
        b"/3/device/abc", [(b"apns-topic", b"com.example"), (b"x-n", b"1")], b'{"aps":{}}'
    )
    peer.pump()
    assert peer.requests()[stream_id] == {
        b":method": b"POST",
        b":scheme": b"https",
        b":authority": AUTHORITY,
        b":path": b"/3/device/abc",
        b"apns-topic": b"com.example",
        b"x-n": b"1",
    }
    assert peer.body(stream_id) == b'{"aps":{}}'
    assert peer.client.open_streams == 1
    peer.respond(stream_id)
    assert peer.take() == [
        protocol.ResponseReceived(
            stream_id, 200, [(b":status", b"200"), (b"apns-id", b"id-1")], ended=True
        )
    ]
    assert peer.client.open_streams == 0


def test_hundreds_of_requests_keep_both_hpack_tables_in_step() -> None:
    peer = Peer()
    peer.settle(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS, 1000)
    peer.take()
    ids = [
        peer.client.send_request(b"/3/device/%064x" % n, [(b"apns-topic", b"t")], b"{}")
        for n in range(300)
    ]
    peer.pump()
    assert sorted(peer.requests()) == ids
    assert peer.requests()[ids[-1]][b":path"] == b"/3/device/%064x" % 299
    assert len(peer.server.decoder.header_table.dynamic_entries) == 0
    for stream_id in ids:
        peer.server.send_headers(stream_id, [(b":status", b"410"), (b"apns-id", b"same")], True)
    peer.pump()
    events = peer.take()
    assert [e.stream_id for e in events] == ids  # type: ignore[union-attr]
    assert {(e.status, dict(e.headers)[b"apns-id"]) for e in events} == {(410, b"same")}  # type: ignore[union-attr]


def test_a_body_larger_than_every_window_leaves_as_windows_open() -> None:
    peer = Peer()
    peer.settle(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE, 1000)
    body = bytes(range(256)) * 800  # 204,800 bytes: over the stream and connection windows
    stream_id = peer.client.send_request(b"/big", [], body)
    peer.pump()
    assert len(peer.body(stream_id)) == 1000  # the stream window, nothing more
    acknowledged = 0
    for _ in range(400):
        received = sum(
            e.flow_controlled_length
            for e in peer.server_events
            if isinstance(e, h2.events.DataReceived)
        )
        if received == len(body):
            break
        peer.server.acknowledge_received_data(received - acknowledged, stream_id)
        acknowledged = received
        peer.pump()
    assert peer.body(stream_id) == body
    assert any(isinstance(e, h2.events.StreamEnded) for e in peer.server_events)


def test_a_raised_initial_window_applies_to_streams_already_open() -> None:
    peer = Peer()
    peer.settle(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE, 10)
    stream_id = peer.client.send_request(b"/p", [], b"x" * 50)
    peer.pump()
    assert len(peer.body(stream_id)) == 10
    peer.settle(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE, 60)
    assert peer.body(stream_id) == b"x" * 50


def test_a_header_block_over_the_frame_size_goes_out_in_continuations() -> None:
    peer = Peer()
    value = b"v" * 40_000
    stream_id = peer.client.send_request(b"/h", [(b"x-large", value)], b"")
    sent = peer.client.data_to_send()
    kinds = [kind for kind, _, _, _ in frames(sent)]
    assert kinds == [1, 9, 9]  # HEADERS, CONTINUATION, CONTINUATION
    peer.server.local_settings.max_header_list_size = 1 << 20
    peer.server_events += peer.server.receive_data(sent)
    assert peer.requests()[stream_id][b"x-large"] == value


def test_a_padded_multi_frame_body_and_trailers() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(b"/p", [], b"")
    peer.pump()
    peer.server.send_headers(stream_id, [(b":status", b"400")])
    peer.server.send_data(stream_id, b"first ", pad_length=17)
    peer.server.send_data(stream_id, b"second")
    peer.server.send_headers(stream_id, [(b"x-trailer", b"1")], end_stream=True)
    peer.pump()
    events = peer.take()
    assert events[0] == protocol.ResponseReceived(
        stream_id, 400, [(b":status", b"400")], ended=False
    )
    assert events[1:] == [
        protocol.DataReceived(stream_id, b"first ", ended=False),
        protocol.DataReceived(stream_id, b"second", ended=False),
        protocol.StreamEnded(stream_id),
    ]
    assert peer.client.open_streams == 0


def test_an_informational_response_is_skipped() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(b"/p", [], b"")
    peer.pump()
    peer.server.send_headers(stream_id, [(b":status", b"100")])
    peer.respond(stream_id)
    assert [(type(e), e.status) for e in peer.take()] == [(protocol.ResponseReceived, 200)]  # type: ignore[union-attr]


def test_a_long_response_body_is_given_window_back() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(b"/p", [], b"")
    peer.pump()
    body = b"z" * (3 << 20)  # three times our stream window
    peer.server.send_headers(stream_id, [(b":status", b"200")])
    sent = 0
    for _ in range(1000):
        if sent == len(body):
            break
        room = min(peer.server.local_flow_control_window(stream_id), 16_384, len(body) - sent)
        assert room > 0, "our protocol stopped giving the window back"
        peer.server.send_data(stream_id, body[sent : sent + room], sent + room == len(body))
        sent += room
        peer.pump()
    received = b"".join(e.data for e in peer.take() if isinstance(e, protocol.DataReceived))
    assert received == body


def test_the_peers_stream_limit_is_reported() -> None:
    peer = Peer()
    peer.take()
    peer.settle(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS, 1)
    assert peer.client.peer_max_concurrent_streams == 1
    assert peer.take() == [protocol.SettingsChanged()]


def test_pings_both_ways() -> None:
    peer = Peer()
    peer.take()
    peer.server.ping(b"87654321")
    peer.pump()
    assert any(isinstance(e, h2.events.PingAckReceived) for e in peer.server_events)
    peer.client.ping(b"relay-pg")
    peer.pump()
    assert peer.take() == [protocol.PingAcknowledged(b"relay-pg")]


def test_goaway_stops_new_streams() -> None:
    peer = Peer()
    peer.take()
    first = peer.client.send_request(b"/a", [], b"")
    peer.client.send_request(b"/b", [], b"")
    peer.pump()
    peer.server.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=first)
    peer.pump()
    assert peer.take() == [protocol.GoAwayReceived(first, 0, b"")]
    assert not peer.client.can_open
    with pytest.raises(NotProcessed):
        peer.client.send_request(b"/c", [], b"")


def test_a_refused_stream_is_reported_and_closed() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(b"/a", [], b"")
    peer.pump()
    peer.server.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
    peer.pump()
    assert peer.take() == [protocol.StreamReset(stream_id, ErrorCode.REFUSED_STREAM)]
    assert peer.client.open_streams == 0


def test_a_late_response_to_an_abandoned_stream_still_updates_the_hpack_table() -> None:
    peer = Peer()
    peer.take()
    first = peer.client.send_request(b"/a", [], b"")
    second = peer.client.send_request(b"/b", [], b"")
    peer.pump()
    custom = [(b":status", b"200"), (b"x-session", b"a-value-the-server-indexes")]
    peer.server.send_headers(first, custom, end_stream=True)
    in_flight = peer.server.data_to_send()
    peer.client.reset_stream(first)  # we give up before the response arrives
    [(kind, _, reset_id, payload)] = frames(peer.client.data_to_send())
    assert (kind, reset_id, payload) == (3, first, b"\0\0\0\x08")  # RST_STREAM CANCEL
    assert peer.client.receive_data(in_flight) == []
    peer.server.send_headers(second, custom, end_stream=True)  # refers to the dynamic table
    peer.pump()
    assert peer.take() == [protocol.ResponseReceived(second, 200, custom, ended=True)]


def test_an_early_response_stops_the_rest_of_the_body() -> None:
    peer = Peer()
    peer.settle(h2.settings.SettingCodes.INITIAL_WINDOW_SIZE, 100)
    stream_id = peer.client.send_request(b"/upload", [], b"y" * 10_000)
    peer.pump()
    peer.take()
    peer.respond(stream_id, b"413")
    assert [type(e) for e in peer.take()] == [protocol.ResponseReceived]
    assert peer.client.open_streams == 0
    resets = [e for e in peer.server_events if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(stream_id, ErrorCodes.NO_ERROR)]
    assert len(peer.body(stream_id)) == 100


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (raw_frame(5, 0x4, 1, b"\0\0\0\2\x88"), ErrorCode.PROTOCOL_ERROR),  # PUSH_PROMISE
        (raw_frame(0, 0, 0, b"data"), ErrorCode.PROTOCOL_ERROR),  # DATA on stream 0
        (raw_frame(0, 0, 1, b"x" * 20_000), ErrorCode.FRAME_SIZE_ERROR),
        (raw_frame(4, 0, 0, b"\0\5\0\0\0\1"), ErrorCode.PROTOCOL_ERROR),  # MAX_FRAME_SIZE 1
        (raw_frame(8, 0, 0, b"\0\0\0\0"), ErrorCode.PROTOCOL_ERROR),  # zero increment
        (raw_frame(1, 0, 1, b"\x88") + raw_frame(6, 0, 0, b"\0" * 8), ErrorCode.PROTOCOL_ERROR),
        (raw_frame(1, 0x5, 1, b"\xff\xff\xff"), ErrorCode.COMPRESSION_ERROR),
        (raw_frame(1, 0x5, 9, b"\x88"), ErrorCode.PROTOCOL_ERROR),  # HEADERS on an idle stream
    ],
    ids=[
        "push-promise",
        "data-on-stream-0",
        "oversized-frame",
        "bad-max-frame-size",
        "zero-window-increment",
        "interrupted-header-block",
        "bad-hpack",
        "idle-stream",
    ],
)
def test_protocol_violations_end_the_connection_with_goaway(data: bytes, code: ErrorCode) -> None:
    client = ClientProtocol(scheme=b"https", authority=AUTHORITY)
    client.initiate()
    client.send_request(b"/a", [], b"")
    client.data_to_send()
    with pytest.raises(PeerProtocolError):
        client.receive_data(data)
    [(kind, _, stream_id, payload)] = frames(client.data_to_send())
    assert (kind, stream_id) == (7, 0)  # GOAWAY
    assert struct.unpack(">L", payload[4:8])[0] == code


def test_a_response_without_status_resets_only_its_stream() -> None:
    peer = Peer()
    peer.take()
    stream_id = peer.client.send_request(b"/a", [], b"")
    peer.pump()
    block = peer.server.encoder.encode([(b"x-no-status", b"1")])
    events = peer.client.receive_data(raw_frame(1, 0x5, stream_id, block))
    assert events == [protocol.StreamReset(stream_id, ErrorCode.PROTOCOL_ERROR)]
    [(kind, _, reset_id, payload)] = frames(peer.client.data_to_send())
    assert (kind, reset_id, payload) == (3, stream_id, b"\0\0\0\1")
    assert peer.client.can_open
