"""Load-balancer stamps: units told apart by magnitude, implausible stamps rejected by reason."""

from __future__ import annotations

import pytest

from telemetry.queue_time import MAX_QUEUE_TIME_S, queue_time, request_start

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z


@pytest.mark.parametrize(
    "raw",
    [
        "t=1700000000.25",  # nginx: t=${msec}
        "1700000000.25",
        "1700000000250",  # Heroku: milliseconds
        "t=1700000000250000",  # HAProxy date(0,us), Apache %t
        "1700000000250000000",  # nanoseconds
    ],
)
def test_every_unit_reads_as_the_same_moment(raw: str) -> None:
    assert request_start(raw) == pytest.approx(NOW, abs=1e-6)


@pytest.mark.parametrize(
    "raw",
    ["", "t=", "t=abc", "nan", "inf", "t=-1700000000", "12345", "946684799", "1e400", "t=1e30"],
)
def test_what_is_not_a_time_after_2000_is_rejected(raw: str) -> None:
    assert request_start(raw) is None


def test_queue_time_is_now_minus_the_stamp() -> None:
    waited, rejected = queue_time("t=1700000000000000", NOW)
    assert rejected is None
    assert waited == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("t=1700000001000000", "future"),
        (f"t={int((NOW - MAX_QUEUE_TIME_S - 1) * 1e6)}", "too_old"),
        ("t=soon", "malformed"),
    ],
)
def test_stamps_no_clock_explains_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    assert queue_time(raw, NOW) == (None, reason)
