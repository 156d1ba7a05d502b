"""Forks repeatedly while the export thread collects every millisecond and another thread
records, as gunicorn --preload, multiprocessing and subprocess(preexec_fn=...) do.

Prints one JSON line for tests/telemetry/test_runtime.py: children that hung (a lock held by
another thread at the fork), whether subprocess with preexec_fn worked, and which instance ids
reached the receiver (a multiprocessing child must export under its own and flush at exit).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import threading
import time

FORKS = 150


def query() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def child_work() -> None:
    query()


def main() -> None:
    from tests.telemetry.probes.receiver import InstanceRecorder

    receiver = InstanceRecorder()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.telemetry.probes.export_settings",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_METRIC_EXPORT_INTERVAL="1",
        FLEETSCOPE_NODE="probe",
    )
    import django

    django.setup()
    from telemetry.runtime import get_runtime

    runtime = get_runtime()
    query()  # starts the export thread in this process
    stop = threading.Event()

    def record() -> None:
        while not stop.is_set():
            runtime.instruments.cache_operations.add(("default", "get", "hit"))

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    hung = 0
    for _ in range(FORKS):
        pid = os.fork()
        if pid == 0:
            try:
                runtime.instruments.cache_operations.add(("default", "get", "miss"))
                child_work()
            finally:
                os._exit(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            hung += 1
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break  # one hang is the verdict
    preexec = all(
        subprocess.run(["true"], preexec_fn=lambda: None, timeout=10).returncode == 0
        for _ in range(20)
    )
    context = multiprocessing.get_context("fork")
    process = context.Process(target=child_work)
    process.start()
    process.join(30)
    stop.set()
    print(
        json.dumps(
            {
                "hung": hung,
                "preexec_fn": preexec,
                "mp_exitcode": process.exitcode,
                "mp_child_exported": f"probe/{process.pid}" in receiver.instances,
                "parent_exported": f"probe/{os.getpid()}" in receiver.instances,
            }
        )
    )


if __name__ == "__main__":
    main()
