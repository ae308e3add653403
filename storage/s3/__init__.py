"""The S3 blob store (any S3-compatible object storage): SigV4 signing, sans-IO
(:mod:`.sigv4`), and the store on httpx (:mod:`.store`)."""
