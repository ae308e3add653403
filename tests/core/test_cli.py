"""The ``relay`` command: each command group parses into its own command and typed
options."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from bench.scenarios import SCENARIOS
from relay.cli import COMMANDS, main, parser
from relay.cli.apps import AppsOptions
from relay.cli.command import iso_time
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
    assert names == [
        "serve",
        "migrate",
        "apps",
        "keys",
        "push",
        "backup",
        "restore",
        "bench",
        "emulator",
    ]


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


def _parsers(
    top: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``top`` with the words that reach it."""
    found = [(" ".join(path) or "relay", top)]
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, (*path, name))
    return found


def _assert_helped(words: str, command: argparse.ArgumentParser) -> None:
    for action in command._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        assert action.help, f"relay {words}: {action.dest} has no help"
    text = command.format_help()
    for markup in ("``", ":class:", ":func:", ":mod:", ":meth:"):
        assert markup not in text, f"relay {words} --help shows {markup}"


def test_every_option_has_help_and_no_markup() -> None:
    for words, command in _parsers(parser()):
        _assert_helped(words, command)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_benchmark_option_has_help_and_no_markup(scenario: str) -> None:
    module = importlib.import_module(SCENARIOS[scenario])
    _assert_helped(f"bench {scenario}", module.command_line())


@pytest.mark.parametrize(
    "words", [["apps", "list"], ["apps", "set-fcm"], ["keys", "create"], ["backup"], ["restore"]]
)
def test_admin_commands_take_only_where_the_data_is(words: list[str]) -> None:
    command = dict(_parsers(parser()))[" ".join(words)]
    flags = {flag for action in command._actions for flag in action.option_strings}
    assert {"--data-dir", "--database-url"} <= flags
    assert "--server-port" not in flags
    assert "--rate-limit-burst" not in flags
    serve = dict(_parsers(parser()))["serve"]
    assert "--server-port" in {f for a in serve._actions for f in a.option_strings}


def test_stored_times_print_as_iso_8601() -> None:
    assert iso_time(1_765_000_000_123_456) == "2025-12-06T05:46:40+00:00"


@pytest.mark.parametrize("limit", ["0", "-5", "1001", "many", "²"])
def test_a_job_listing_limit_out_of_range_is_refused(
    limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["push", "jobs", "--limit", limit])
    assert exited.value.code == 2
    assert "expected 1 to 1000" in capsys.readouterr().err
