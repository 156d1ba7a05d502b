"""The deliberate failure raised by the /flaky/ view, and the log filter that keeps it quiet."""

import logging


class DeliberateFailure(RuntimeError):
    """Raised on purpose by /flaky/ so the error-rate signals have something to count."""


class DropDeliberateFailures(logging.Filter):
    """Drops log records caused by DeliberateFailure; every other error is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DeliberateFailure)
