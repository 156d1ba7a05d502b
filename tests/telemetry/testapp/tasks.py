"""Celery tasks of the telemetry test app, each built to cause one task signal (shared tasks:
they bind to whichever Celery app is current, the unit tests' or the integration worker's)."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task
from django.core.cache import cache

from .models import Author, Book


@shared_task
def ok() -> int:
    """One query, success."""
    return Author.objects.count()


@shared_task
def n_plus_one() -> list[str]:
    """Touches book.author for every book: one query per book."""
    return [book.author.name for book in Book.objects.all()]


@shared_task
def fails() -> None:
    raise ValueError("deliberate failure with a secret value 1234")


@shared_task(bind=True, max_retries=3)
def retries_once(self: Any) -> str:
    """Asks for one retry, then succeeds."""
    if self.request.retries < 1:
        raise self.retry(countdown=0)
    return "done"


@shared_task
def slow() -> int:
    """A deliberately slow statement (a recursive count, ~170 ms): the slow-query target."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %s) "
            "SELECT COUNT(*) FROM c",
            [1_000_000],
        )
        (count,) = cursor.fetchone()
    return int(count)


@shared_task
def sleepy(seconds: float) -> float:
    """Holds a pool process for a while, so that a burst spreads over every child."""
    time.sleep(seconds)
    return seconds


@shared_task
def cached(key: str) -> bool:
    """A cache miss, then a hit."""
    if cache.get(key) is None:
        cache.set(key, 1)
    return cache.get(key) == 1


TASKS = {
    task.name.rsplit(".", 1)[-1]: task
    for task in (ok, n_plus_one, fails, retries_once, slow, sleepy, cached)
}
