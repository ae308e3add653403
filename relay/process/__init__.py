"""The server process: wiring and running it, nothing the API or services depend on.

:mod:`~relay.process.runtime` opens the database and wires the services,
:mod:`~relay.process.server` runs one server in one root nursery (listeners, background
work, graceful shutdown), :mod:`~relay.process.supervisor` runs several worker processes
on one port, :mod:`~relay.process.workers` holds the periodic background work and
:mod:`~relay.process.logs` the logging set-up.
"""
