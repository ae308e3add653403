"""Push providers: an HTTP/2 client pool on trio and h2, APNs / FCM / HMS senders and
local emulators of the three services. Nothing here imports from :mod:`relay`."""
