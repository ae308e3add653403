"""The WebSocket gateway: per-connection sessions, the fan-out hub and the ack batcher."""
