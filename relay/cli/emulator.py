"""``relay emulator``: a local APNs, FCM or HMS emulator over TLS (tests, benchmarks).
The emulators are loaded when the command runs."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from relay.cli.command import Command
from relay.config import Settings


@dataclass(frozen=True)
class EmulatorOptions:
    """The arguments of ``relay emulator``."""

    kind: str
    port: int
    host: str
    state_dir: Path
    max_streams: int
    record: bool
    check_headers: bool

    @classmethod
    def of(cls, args: argparse.Namespace) -> EmulatorOptions:
        """The options in parsed arguments."""
        return cls(
            kind=args.kind,
            port=args.port,
            host=args.host,
            state_dir=Path(args.state_dir).expanduser().resolve(),
            max_streams=args.max_streams,
            record=not args.no_record,
            check_headers=not args.no_header_checks,
        )


def _add_arguments(emulator: argparse.ArgumentParser) -> None:
    emulator.add_argument("kind", choices=("apns", "fcm", "hms"), help="the provider to emulate")
    emulator.add_argument("--port", type=int, required=True, help="TCP port (0: pick one)")
    emulator.add_argument(
        "--host", default="127.0.0.1", help="address to bind (loopback, or a test network's)"
    )
    emulator.add_argument(
        "--state-dir",
        default="./emulator-state",
        help="certificate and trusted credentials (created on first use)",
    )
    emulator.add_argument("--max-streams", type=int, default=1000, help="MAX_CONCURRENT_STREAMS")
    emulator.add_argument(
        "--no-record", action="store_true", help="keep no record of accepted notifications"
    )
    emulator.add_argument(
        "--no-header-checks",
        action="store_true",
        help="skip h2's per-request header checks (benchmarks)",
    )


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    del settings  # an emulator is not the relay
    import trio

    from providers.emulators.standalone import serve_emulator

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    options = EmulatorOptions.of(args)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                partial(
                    serve_emulator,
                    options.kind,
                    options.state_dir,
                    host=options.host,
                    port=options.port,
                    max_streams=options.max_streams,
                    record=options.record,
                    check_headers=options.check_headers,
                )
            )
            print(
                f"{options.kind} emulator on https://{options.host}:{port} "
                f"(certificate and credentials in {options.state_dir})",
                flush=True,
            )

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    return 0


EMULATOR = Command(
    "emulator",
    "run a push provider emulator over TLS",
    _add_arguments,
    _run,
    takes_settings=False,
)
