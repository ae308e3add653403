"""The ``relay`` command: each command group parses into its own command and typed
options."""

from __future__ import annotations

import subprocess
import sys

import pytest

from relay.cli import COMMANDS, main, parser
from relay.cli.apps import AppsOptions
from relay.cli.keys import KeysOptions


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["migrate"],
        ["apps", "list"],
        ["keys", "bouncer", "list"],
        ["bench", "push", "--quick"],
        ["emulator", "apns", "--port", "0"],
    ],
)
def test_each_command_group_parses_into_its_command(argv: list[str]) -> None:
    assert parser().parse_args(argv).chosen.name == argv[0]


def test_every_command_is_reachable() -> None:
    names = [command.name for command in COMMANDS]
    assert names == ["serve", "migrate", "apps", "keys", "backup", "restore", "bench", "emulator"]


def test_apps_options_are_typed() -> None:
    args = parser().parse_args(
        [
            *("apps", "set-apns", "chat", "--key-file", "k.p8", "--key-id", "K1"),
            *("--team-id", "T1", "--bundle-id", "com.example"),
        ]
    )
    assert AppsOptions.of(args) == AppsOptions(
        "set-apns", "chat", key_id="K1", team_id="T1", bundle_id="com.example"
    )
    assert AppsOptions.of(parser().parse_args(["apps", "list"])) == AppsOptions("list", "")


def test_keys_options_are_typed() -> None:
    args = parser().parse_args(["keys", "bouncer", "remove", "cHVibGlj"])
    assert KeysOptions.of(args) == KeysOptions("bouncer", None, "remove", "cHVibGlj")


def test_an_unknown_scenario_is_refused_without_loading_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "no-such-scenario"]) == 2
    assert "no scenario 'no-such-scenario'" in capsys.readouterr().err


def test_the_command_line_does_not_load_the_server_stack() -> None:
    # `relay --help` and configuration errors answer at once; the benchmark harness and
    # the emulators load only when their commands run.
    probe = "import sys, relay.cli; print(sorted(m for m in {names} if m in sys.modules))"
    names = ("quart", "trio", "sqlalchemy", "bench", "providers.emulators")
    done = subprocess.run(
        [sys.executable, "-c", probe.format(names=names)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
