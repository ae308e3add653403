"""Redis, spoken directly on trio streams: the RESP2 codec (:mod:`.resp`, sans-IO) and
connections (:mod:`.client`). The event bus and the shared rate limits use it."""
