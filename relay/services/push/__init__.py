"""The push core: apps and their credentials, the durable queue and its workers, token
invalidation, end-to-end encrypted payloads and relay wake-ups."""
