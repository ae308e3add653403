"""A real S3 server for tests: ``moto_server`` (moto[server], in memory) on a free
loopback port, one per test session; each test gets a bucket of its own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3

from storage.s3.store import S3Config

ACCESS_KEY = "relay-test"
SECRET_KEY = "relay-test-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def moto_server(*, verify_signatures: bool = False, host: str = "127.0.0.1") -> Iterator[str]:
    """Run moto's S3 server; yields its endpoint. ``verify_signatures``: after the first
    three (IAM set-up) calls, every request must carry a valid SigV4 signature."""
    port = _free_port()
    binary = Path(sys.executable).with_name("moto_server")
    env = dict(os.environ)
    if verify_signatures:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    process = subprocess.Popen(
        [str(binary), "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    endpoint = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def new_bucket(
    endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> S3Config:
    """A fresh bucket on the server (made with boto3), and the configuration that
    reaches it."""
    bucket = f"relay-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )
    client.create_bucket(Bucket=bucket)
    return S3Config(
        bucket, "us-east-1", access_key, secret_key, endpoint=endpoint, force_path_style=True
    )


def iam_user_keys(endpoint: str) -> tuple[str, str]:
    """A user allowed everything on S3, and its access key pair (the three calls moto
    takes unauthenticated in signature-verifying mode)."""
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    iam.create_user(UserName="relay")
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",'
    policy += '"Resource":"*"}]}'
    iam.put_user_policy(UserName="relay", PolicyName="s3", PolicyDocument=policy)
    key = iam.create_access_key(UserName="relay")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
