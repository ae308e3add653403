"""Logging of the ``relay`` commands and of every server worker process."""

from __future__ import annotations

import logging
import sys

from relay.config import Settings


def configure_logging(settings: Settings) -> None:
    """Log to standard error at ``settings.log_level``."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every migration step at INFO; we log one summary line instead.
    logging.getLogger("alembic").setLevel(
        max(logging.WARNING, logging.getLevelName(settings.log_level))
    )
