"""The UUID spellings accepted in paths and headers."""

from __future__ import annotations

import uuid

import pytest

from relay.services.parsing import parse_uuid

VALUE = uuid.UUID("67e55044-10b1-426f-9247-bb680e5fe0c8")


@pytest.mark.parametrize(
    "text",
    [
        "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "67E55044-10B1-426F-9247-BB680E5FE0C8",
        "67e5504410b1426f9247bb680e5fe0c8",
        "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
    ],
)
def test_accepted_spellings(text: str) -> None:
    assert parse_uuid(text) == VALUE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-uuid",
        "67e55044-10b1-426f-9247-bb680e5fe0c",
        "67e55044-10b1-426f-9247-bb680e5fe0c8a",
        "67e5504410b1-426f-9247-bb680e5fe0c8-",
        "67e55044_10b1_426f_9247_bb680e5fe0c8",
        "67e55044-10b1-426f-9247-bb680e5fe0cg",
        "{67e5504410b1426f9247bb680e5fe0c8}",
        " 67e55044-10b1-426f-9247-bb680e5fe0c8",
    ],
)
def test_rejected_spellings(text: str) -> None:
    assert parse_uuid(text) is None
