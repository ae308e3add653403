"""Domain logic with no HTTP in it.

Each public coroutine validates its input in the order the Obscura contract fixes,
then runs one unit of work in one database thread hop, and raises
:mod:`relay.errors` exceptions that every API face translates into its own format.
"""
