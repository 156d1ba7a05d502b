"""Background tasks: Celery task runs traced from the request that queued them, with their
duration, queue wait, failures, retries, queue depth, and their SQL and cache work.

`TasksInstrument` is one entry of `TELEMETRY["INSTRUMENTS"]`. It connects to Celery's
public signals (`before_task_publish`, `task_prerun`, `task_postrun`, `task_retry`,
`task_failure`, `task_revoked`, plus `worker_ready` and `worker_process_shutdown` for the
process life cycle) when Celery is in use: when the project has imported Celery by the
time Django's apps are ready, as Celery's Django setup does (`proj/__init__.py` imports
the Celery app; `celery -A proj worker` imports it first). A project without Celery, or
with Celery installed but never imported, gets nothing: no import, no receiver, no cost.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..registry import Instrument

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from ..conf import Config
    from .recorder import TaskRecorder


class TasksInstrument(Instrument):
    """Celery tasks: spans that continue the publisher's trace, task metrics, queue depth,
    and SQL/cache work attributed to the task (docs/tasks.md)."""

    name = "tasks"

    def install(self) -> None:
        if "celery" not in sys.modules:  # not in use: import nothing
            return
        from .signals import connect

        connect(self.recorder())

    def recorder(self) -> TaskRecorder:
        """This runtime's recorder (built once per runtime, reconfigured in place)."""
        from .recorder import recorder_for

        return recorder_for(self.runtime)

    def uninstall(self) -> None:
        if "telemetry.tasks.signals" in sys.modules:
            from .signals import disconnect

            disconnect()

    @classmethod
    def checks(cls, config: Config) -> list[CheckMessage]:
        from django.core.checks import Error

        value = config["TASK_MAX_QUEUE_WAIT_S"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return [
                Error(
                    f"TELEMETRY['TASK_MAX_QUEUE_WAIT_S'] = {value!r} must be a number of "
                    "seconds > 0.",
                    id="telemetry.E006",
                )
            ]
        return []
