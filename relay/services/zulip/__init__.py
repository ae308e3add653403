"""The Zulip face: API keys, end-to-end encrypted push registration (this server is its
own bouncer) and test notifications."""
