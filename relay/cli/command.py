"""What every ``relay`` command is: a name, its arguments, and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from relay.config import SETTINGS, Settings


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
    group = parser.add_argument_group("settings (flag, then RELAY_*, then OBSCURA_*)")
    for spec in SETTINGS:
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


def setting_values(args: argparse.Namespace) -> dict[str, str]:
    """The settings given as flags."""
    given = vars(args)
    return {spec.name: given[spec.name] for spec in SETTINGS if spec.name in given}


def required(settings: Settings | None) -> Settings:
    """The settings of a command that takes them."""
    assert settings is not None, "this command takes settings"
    return settings
