"""What every ``relay`` command is: a name, its arguments, and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relay.config import SETTINGS, Settings, SettingSpec


@dataclass(frozen=True)
class Command:
    """One sub-command. ``run`` gets the parsed arguments and, when ``takes_settings``,
    the settings loaded from the flags and the environment (else None)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings | None], int]
    takes_settings: bool = True


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """Every setting as a flag (``relay serve --help`` lists them with their variables)."""
    _add_flags(parser, SETTINGS)


def _add_flags(parser: argparse.ArgumentParser, specs: Sequence[SettingSpec]) -> None:
    group = parser.add_argument_group("settings (flag, then RELAY_*, then OBSCURA_*)")
    for spec in specs:
        default = "hidden" if spec.secret else spec.default
        if isinstance(default, tuple):
            default = ",".join(str(item) for item in default)
        help_text = f"{spec.help} [env {spec.env_names[0]}; default: {default}]"
        is_bool = spec.default is True or spec.default is False
        group.add_argument(
            *spec.flags,
            dest=spec.name,
            metavar="VALUE",
            help=help_text.replace("%", "%%"),
            default=argparse.SUPPRESS,
            nargs="?" if is_bool else None,
            const="true" if is_bool else None,
        )


# What the admin commands need of the settings as flags: where the data is. The rest
# (the push-credentials key, say) they read from the environment like the server.
STORE_SETTINGS = ("data_dir", "database_url", "blob_store")


def add_store_flags(parser: argparse.ArgumentParser) -> None:
    """Only the settings that say where the data is (``--data-dir``, ``--database-url``,
    ``--blob-store``): the admin commands do not serve."""
    _add_flags(parser, [spec for spec in SETTINGS if spec.name in STORE_SETTINGS])


def add_apns_environment(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--environment``: the APNs environment, production unless given."""
    parser.add_argument(
        "--environment",
        default="production",
        choices=("production", "development"),
        help=help_text,
    )


def setting_values(args: argparse.Namespace) -> dict[str, str]:
    """The settings given as flags."""
    given = vars(args)
    return {spec.name: given[spec.name] for spec in SETTINGS if spec.name in given}


def required(settings: Settings | None) -> Settings:
    """The settings of a command that takes them."""
    assert settings is not None, "this command takes settings"
    return settings


def iso_time(timestamp_us: int) -> str:
    """A stored timestamp (µs since the epoch) as ISO 8601 in UTC."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp_us / 1_000_000, UTC).isoformat(timespec="seconds")
