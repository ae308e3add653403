"""The fan-out of events to gateway sessions, behind one :class:`~relay.events.hub.Hub`.

Services publish (messages queued, a device taken over, pre-keys low) and gateway
sessions subscribe; neither imports the other. :class:`~relay.events.hub.LocalHub`
serves one process; :class:`~relay.events.peer_hub.PeerHub` adds the peer worker
processes of one host.
"""
