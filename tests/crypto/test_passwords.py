"""argon2id password hashing with the production parameters."""

from __future__ import annotations

from relay.crypto.passwords import DEFAULT_ITERATIONS, DEFAULT_MEMORY_KIB, PasswordHashing

production = PasswordHashing()


def test_default_parameters_are_owasps() -> None:
    assert (DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS) == (19456, 2)
    stored = production.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_verify() -> None:
    stored = production.hash("correct horse battery")
    assert production.verify(stored, "correct horse battery")
    assert not production.verify(stored, "correct horse batterY")
    assert not production.verify("not a hash", "correct horse battery")


def test_unknown_user_never_verifies() -> None:
    assert not production.verify(None, "relay-timing-equaliser")


def test_salts_differ() -> None:
    assert production.hash("same password") != production.hash("same password")


def test_weaker_hashes_need_rehash() -> None:
    weak = PasswordHashing(memory_kib=64, iterations=1).hash("correct horse battery")
    assert production.needs_rehash(weak)
    assert production.verify(weak, "correct horse battery")
    assert not production.needs_rehash(production.hash("correct horse battery"))
