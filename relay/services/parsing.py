"""Parsing of identifiers that arrive as text (paths, headers, JSON fields)."""

from __future__ import annotations

import uuid

_HEX = frozenset("0123456789abcdefABCDEF")
_HYPHENS = (8, 13, 18, 23)


def parse_uuid(text: str) -> uuid.UUID | None:
    """Parse the UUID spellings clients use; None for anything else.

    Accepted: hyphenated (36 characters), simple (32 hex digits), braced
    (``{...}``) and URN (``urn:uuid:...``) forms, in any letter case. Python's own
    ``uuid.UUID`` is looser (it drops hyphens anywhere), which would let malformed
    ids through.
    """
    if len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    if len(text) == 36:
        if any(text[i] != "-" for i in _HYPHENS):
            return None
        digits = text.replace("-", "")
    elif len(text) == 32:
        digits = text
    else:
        return None
    if len(digits) != 32 or not _HEX.issuperset(digits):
        return None
    return uuid.UUID(hex=digits)
