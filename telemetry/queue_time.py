"""Request queue time: how long a request waited between the load balancer and the worker.

A proxy in front of the nodes stamps each request with the moment it arrived
(`X-Request-Start` or `X-Queue-Start`); the first middleware subtracts that stamp from the
time it starts. The value is `t=<number>` or a bare number, in seconds (nginx `$msec`:
`t=1700000000.123`), milliseconds (Heroku: `1700000000123`) or microseconds (HAProxy,
Apache `%t`: `t=1700000000123456`), told apart by magnitude as the New Relic, Scout and
Datadog agents do (docs/capacity.md cites them): a Unix time after 2000-01-01 has 10
digits in seconds, 13 in milliseconds, 16 in microseconds, 19 in nanoseconds.

Clocks disagree between machines: a stamp in the future, or one older than any proxy
would keep a request waiting, is clock skew or a forged header. It is dropped and counted
by reason, never recorded as a queue time.
"""

from __future__ import annotations

from typing import Final

# META keys of the headers, in the order they are looked at.
REQUEST_START_KEY: Final = "HTTP_X_REQUEST_START"
QUEUE_START_KEY: Final = "HTTP_X_QUEUE_START"

# 2000-01-01T00:00:00Z: every plausible stamp is later, in any unit (New Relic's cutoff).
EPOCH_2000_S: Final = 946_684_800.0
_CUTOFF_MS: Final = EPOCH_2000_S * 1e3
_CUTOFF_US: Final = EPOCH_2000_S * 1e6
_CUTOFF_NS: Final = EPOCH_2000_S * 1e9
# Nanoseconds in the year 2300: anything larger is not a time.
_LARGEST: Final = 1.04e19

# No proxy keeps a request queued this long (HAProxy's `timeout queue` and Heroku's router
# give up within 30 s); an older stamp is a skewed clock.
MAX_QUEUE_TIME_S: Final = 300.0

# Why a stamp was dropped (the `reason` attribute of the rejection counter).
FUTURE: Final = "future"
TOO_OLD: Final = "too_old"
MALFORMED: Final = "malformed"
REASONS: Final = (FUTURE, TOO_OLD, MALFORMED)


def request_start(raw: str) -> float | None:
    """The stamp as seconds since the epoch, or None when it is not a plausible time."""
    text = raw[2:] if raw.startswith("t=") else raw
    try:
        value = float(text)
    except ValueError:
        return None
    if not EPOCH_2000_S < value < _LARGEST:  # also false for NaN and infinities
        return None
    if value > _CUTOFF_NS:
        return value / 1e9
    if value > _CUTOFF_US:
        return value / 1e6
    if value > _CUTOFF_MS:
        return value / 1e3
    return value


def queue_time(raw: str, now: float) -> tuple[float | None, str | None]:
    """(queue time in seconds, None) for a plausible stamp, else (None, rejection reason)."""
    start = request_start(raw)
    if start is None:
        return None, MALFORMED
    waited = now - start
    if waited < 0.0:
        return None, FUTURE
    if waited > MAX_QUEUE_TIME_S:
        return None, TOO_OLD
    return waited, None
