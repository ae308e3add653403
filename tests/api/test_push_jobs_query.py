"""``GET /admin/push/jobs`` parameters: every bad value is a PowerAuth error (400), never
a server error."""

from __future__ import annotations

import pytest

from relay.api.powerauth.schemas import jobs_query
from relay.services.powerauth.errors import PowerAuthError


def test_defaults_and_values() -> None:
    assert jobs_query({}) == jobs_query({"limit": "100", "failed": "false"})
    query = jobs_query(
        {"appId": "a", "failed": "TRUE", "since": "2020-01-01T00:00:00+00:00", "limit": "7"}
    )
    assert (query.app, query.failed_only, query.since, query.limit) == (
        "a",
        True,
        1_577_836_800_000_000,
        7,
    )


@pytest.mark.parametrize(
    "args",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "-1"},
        {"limit": "²"},  # a digit to str.isdigit, not to int()
        {"limit": "\u0661\u0660"},  # Arabic-Indic 10: int() reads it, the API does not
        {"failed": "yes"},
        {"since": "yesterday"},
        {"since": "2020-01-01T00:00:00"},  # no time zone
    ],
)
def test_bad_values_are_refused(args: dict[str, str]) -> None:
    with pytest.raises(PowerAuthError):
        jobs_query(args)
