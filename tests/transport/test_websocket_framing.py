"""The gateway's own binary-frame header against wsproto's encoder: byte for byte, at
every length-encoding boundary of RFC 6455 §5.2."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol

from relay.transport.websocket import binary_frame_head


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 8 * 1024 * 1024 + 3])
def test_the_header_is_wsprotos(length: int) -> None:
    payload = bytes(length)
    theirs = FrameProtocol(client=False, extensions=[]).send_data(payload, fin=True)
    assert binary_frame_head(length) + payload == theirs
