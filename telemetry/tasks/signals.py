"""Celery's public signals wired to the task recorder (imported only when Celery is in use).

Every receiver is guarded: nothing Fleetscope does may fail a publish or a task. A failure
is logged once per receiver through the `telemetry` logger.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import signals

from .recorder import TaskRecorder

logger = logging.getLogger("telemetry")

_recorder: TaskRecorder | None = None
_reported: set[str] = set()


def _guarded(receiver: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(receiver)
    def guarded(*args: Any, **kwargs: Any) -> None:
        recorder = _recorder
        if recorder is None:
            return
        try:
            receiver(recorder, *args, **kwargs)
        except Exception:
            if receiver.__name__ not in _reported:
                _reported.add(receiver.__name__)
                logger.exception(
                    "Fleetscope's %s receiver failed; the task is not affected (reported once).",
                    receiver.__name__,
                )

    return guarded


@_guarded
def on_before_task_publish(
    recorder: TaskRecorder,
    sender: Any = None,
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    declare: Any = None,
    **kwargs: Any,
) -> None:
    if headers is None:  # task protocol 1 (Celery 3) keeps its headers in the body
        return
    queue = _declared_queue(declare) or routing_key
    recorder.published(str(headers.get("task") or sender), queue, headers)
    if recorder.depth.app is None:
        from celery import current_app

        recorder.depth.watch(current_app._get_current_object())


def _declared_queue(declare: Any) -> str | None:
    for entity in declare or ():
        name = getattr(entity, "name", None)
        if name:
            return str(name)
    return None


@_guarded
def on_task_prerun(
    recorder: TaskRecorder, task_id: str | None = None, task: Any = None, **kwargs: Any
) -> None:
    if task is None:
        return
    recorder.begin(task_id, str(task.name), task.request)
    if recorder.depth.app is None:
        recorder.depth.watch(task.app)


@_guarded
def on_task_postrun(
    recorder: TaskRecorder, task_id: str | None = None, state: str | None = None, **kwargs: Any
) -> None:
    handle = recorder.current(task_id)
    if handle is not None:
        recorder.end(handle, state)


@_guarded
def on_task_failure(
    recorder: TaskRecorder,
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **kwargs: Any,
) -> None:
    recorder.failed(task_id, _task_name(sender), exception)


@_guarded
def on_task_retry(recorder: TaskRecorder, sender: Any = None, **kwargs: Any) -> None:
    recorder.retried(_task_name(sender))


@_guarded
def on_task_revoked(
    recorder: TaskRecorder, sender: Any = None, request: Any = None, **kwargs: Any
) -> None:
    name = _task_name(sender)
    if name == "unknown" and request is not None:
        name = str(getattr(request, "task", None) or name)
    recorder.revoked(name, getattr(request, "time_start", None) if request is not None else None)


@_guarded
def on_worker_ready(recorder: TaskRecorder, sender: Any = None, **kwargs: Any) -> None:
    """The worker's main process: it exports (revocations, queue depth) and, consuming the
    queues, is the node's queue-depth reader unless another process already is."""
    recorder.runtime.ensure_started()
    queues: list[str] = []
    with contextlib.suppress(AttributeError):
        queues = [queue.name for queue in sender.task_consumer.queues]
    recorder.depth.watch(sender.app, queues)


@_guarded
def on_worker_process_shutdown(recorder: TaskRecorder, **kwargs: Any) -> None:
    """A pool child about to exit (through os._exit, which skips atexit): flush, bounded."""
    recorder.runtime.flush()


def _task_name(sender: Any) -> str:
    name = getattr(sender, "name", None) if sender is not None else None
    return str(name) if name else "unknown"


RECEIVERS: dict[str, Callable[..., None]] = {
    "before_task_publish": on_before_task_publish,
    "task_prerun": on_task_prerun,
    "task_postrun": on_task_postrun,
    "task_failure": on_task_failure,
    "task_retry": on_task_retry,
    "task_revoked": on_task_revoked,
    "worker_ready": on_worker_ready,
    "worker_process_shutdown": on_worker_process_shutdown,
}


def connect(recorder: TaskRecorder) -> None:
    """Record into `recorder` from now on (idempotent: one receiver per signal)."""
    global _recorder
    _recorder = recorder
    for signal_name, receiver in RECEIVERS.items():
        getattr(signals, signal_name).connect(
            receiver, weak=False, dispatch_uid=f"fleetscope-{signal_name}"
        )


def disconnect() -> None:
    global _recorder
    _recorder = None
    for signal_name in RECEIVERS:
        getattr(signals, signal_name).disconnect(dispatch_uid=f"fleetscope-{signal_name}")


def connected() -> bool:
    return _recorder is not None
