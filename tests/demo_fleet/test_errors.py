"""The /flaky/ view's deliberate failures stay out of the logs; real errors do not."""

from __future__ import annotations

import logging
import sys

from fleetscope.demo.shop.errors import DeliberateFailure, DropDeliberateFailures


def record_for(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        exc_info = sys.exc_info()
    return logging.LogRecord("django.request", logging.ERROR, __file__, 1, "boom", (), exc_info)


def test_deliberate_failures_are_dropped():
    assert not DropDeliberateFailures().filter(record_for(DeliberateFailure("on purpose")))


def test_other_errors_are_kept():
    assert DropDeliberateFailures().filter(record_for(ZeroDivisionError("real bug")))


def test_plain_records_are_kept():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "msg", (), None)

    assert DropDeliberateFailures().filter(record)
