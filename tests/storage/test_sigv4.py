"""SigV4 signing, checked against the example in Amazon's S3 documentation ("Example:
GET Object", Authenticating Requests: Using the Authorization Header)."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.s3.sigv4 import EMPTY_SHA256, Credentials, sign

EXAMPLE = Credentials(
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1"
)
NOW = datetime(2013, 5, 24, tzinfo=UTC)


def test_the_documented_get_object_example() -> None:
    headers = sign(
        "GET",
        "https://examplebucket.s3.amazonaws.com/test.txt",
        {"Range": "bytes=0-9"},
        EXAMPLE,
        NOW,
        payload_hash=EMPTY_SHA256,
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_query_parameters_are_signed_sorted() -> None:
    first = sign("GET", "https://h/b?prefix=a&list-type=2", {}, EXAMPLE, NOW)
    second = sign("GET", "https://h/b?list-type=2&prefix=a", {}, EXAMPLE, NOW)
    assert first["authorization"] == second["authorization"]
    other = sign("GET", "https://h/b?list-type=2&prefix=b", {}, EXAMPLE, NOW)
    assert other["authorization"] != first["authorization"]
