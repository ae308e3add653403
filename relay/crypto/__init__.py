"""Cryptographic building blocks, all sans-IO: key encodings, XEd25519, JWTs, secrets."""
