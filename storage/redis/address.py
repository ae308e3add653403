"""Where Redis is, from a ``redis://`` URL (no I/O: the settings check it at start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is: ``redis://[[user]:password@]host[:port][/db]``."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """The address in a ``redis://`` URL (ValueError if it is not one)."""
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError("expected redis://host[:port][/db]")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError("the database must be a number")
        return cls(
            parts.hostname,
            parts.port or 6379,
            int(path or 0),
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        # Never the password: this goes into logs.
        return f"redis://{self.host}:{self.port}/{self.db}"
