"""Repositories: one module per aggregate, plain functions over a ``Connection``.

Each function is one or a few statements; services compose them into a unit of work
that :class:`storage.db.Database` runs in one transaction and one thread hop. Functions
that read-then-write take the row locks they need on PostgreSQL (SQLite's
``BEGIN IMMEDIATE`` already serialises writers).
"""
