"""Push providers: HTTP/2 connection pools and the APNs, FCM and HMS senders, plus local
emulators of those services for tests and benchmarks. Never imports from ``relay``."""
