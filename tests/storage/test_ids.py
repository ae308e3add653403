"""UUIDv7 generation and timestamp formatting."""

from __future__ import annotations

from storage.ids import format_rfc3339, uuid7


def test_uuid7_layout() -> None:
    value = uuid7(timestamp_ms=0x0123456789AB)
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"
    assert value.hex.startswith("0123456789ab7")


def test_uuid7_orders_by_time() -> None:
    values = [uuid7(timestamp_ms=ms) for ms in range(1000, 1100)]
    assert values == sorted(values)
    assert len({uuid7() for _ in range(1000)}) == 1000


def test_rfc3339_fraction_only_when_non_zero() -> None:
    assert format_rfc3339(1_700_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert format_rfc3339(1_700_000_000_120_000) == "2023-11-14T22:13:20.12Z"
    assert format_rfc3339(1_700_000_000_000_001) == "2023-11-14T22:13:20.000001Z"


def test_uuid7_is_monotonic_within_the_process() -> None:
    values = [uuid7() for _ in range(10_000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert all(v.version == 7 and v.variant == "specified in RFC 4122" for v in values)
