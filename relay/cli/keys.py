"""``relay keys``: integrator keys of the PowerAuth API; Zulip bouncer key pairs."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from relay.cli.admin import open_store, run_admin
from relay.cli.command import Command, add_store_flags, iso_time, required
from relay.config import Settings


@dataclass(frozen=True)
class KeysOptions:
    """The arguments of one ``relay keys`` action."""

    action: str
    name: str | None = None
    bouncer_action: str | None = None
    public_key: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> KeysOptions:
        """The options in parsed arguments."""
        given = vars(args)
        return cls(**{key: given[key] for key in cls.__dataclass_fields__ if key in given})


def _add_arguments(keys: argparse.ArgumentParser) -> None:
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an integrator key (printed once)")
    create.add_argument("--name", required=True, help="what the key is for (shown in lists)")
    listing = actions.add_parser("list", help="list integrator keys by name")
    revoke = actions.add_parser("revoke", help="revoke an integrator key")
    revoke.add_argument("--name", required=True, help="the key's name")
    bouncer = actions.add_parser("bouncer", help="Zulip bouncer registration-encryption keys")
    pairs = bouncer.add_subparsers(dest="bouncer_action", required=True)
    add = pairs.add_parser("add", help="generate a key pair; prints its public key")
    pair_list = pairs.add_parser("list", help="list the stored public keys")
    remove = pairs.add_parser("remove", help="retire a key pair")
    remove.add_argument("public_key", help="the public key, as listed")
    for action in (create, listing, revoke, add, pair_list, remove):
        add_store_flags(action)


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    from relay.crypto.sealing import Vault
    from relay.services.api_keys import ApiKeyService
    from relay.services.zulip.keys import BouncerKeys

    options = KeysOptions.of(args)
    db, push_key = open_store(required(settings))
    integrators = ApiKeyService(db)
    bouncer = BouncerKeys(db, Vault(push_key), {})

    async def run() -> None:
        if options.action == "create":
            key = await integrators.create(str(options.name))
            print(key)
            print("(shown once: only its digest is stored)", file=sys.stderr)
        elif options.action == "list":
            for item in await integrators.all():
                print(f"{item.name}\t{iso_time(item.created_at)}")
        elif options.action == "revoke":
            await integrators.revoke(str(options.name))
            print(f"revoked integrator key {options.name!r}")
        elif options.bouncer_action == "add":
            print(await bouncer.add())
        elif options.bouncer_action == "list":
            for public in await bouncer.stored():
                print(public)
        else:
            await bouncer.remove(str(options.public_key))
            print(f"retired bouncer key {options.public_key}")

    return run_admin(db, run)


KEYS = Command(
    "keys", "integrator keys of the PowerAuth API; Zulip bouncer key pairs", _add_arguments, _run
)
