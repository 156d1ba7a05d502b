"""Turn the demo's environment (DATABASE_URL, REDIS_URL, FLEETSCOPE_DEMO_*) into Django settings.

Only the standard library is used so the demo needs no dj-database-url style dependency.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import django
from django.core.exceptions import ImproperlyConfigured

POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "pgsql"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})

# Seconds a SQLite connection waits for a lock: several gunicorn workers (and nodes)
# write orders into one file, and a short wait beats a "database is locked" 500.
SQLITE_TIMEOUT_S = 20
POSTGRES_CONN_MAX_AGE_S = 60


def demo_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Directory holding the demo's files: FLEETSCOPE_DEMO_DIR, else the current directory."""
    return Path(environ.get("FLEETSCOPE_DEMO_DIR") or Path.cwd())


def sqlite_path(environ: Mapping[str, str] = os.environ) -> Path:
    """SQLite file of the demo: FLEETSCOPE_DEMO_DB, else ``<demo dir>/demo.sqlite3``."""
    explicit = environ.get("FLEETSCOPE_DEMO_DB")
    return Path(explicit) if explicit else demo_dir(environ) / "demo.sqlite3"


def sqlite_database(path: Path) -> dict[str, Any]:
    """DATABASES entry for the embedded SQLite default."""
    options: dict[str, Any] = {"timeout": SQLITE_TIMEOUT_S}
    if django.VERSION >= (5, 1):
        # WAL lets readers in other workers go on while an order is written;
        # IMMEDIATE takes the write lock up front instead of failing to upgrade
        # a read lock half way through the order transaction.
        options["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        options["transaction_mode"] = "IMMEDIATE"
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": options}


def database_from_url(url: str) -> dict[str, Any]:
    """DATABASES entry for ``postgres://user:pass@host:port/db?sslmode=...``.

    Percent-escapes in the user, password and database name are decoded; query
    parameters become libpq connection OPTIONS.
    """
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL has scheme {parts.scheme or '(none)'!r}; the demo supports "
            "postgres://user:password@host:port/dbname. Unset DATABASE_URL to use SQLite."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(
            "DATABASE_URL names no database: add it after the host, "
            "e.g. postgres://user:password@127.0.0.1:5432/demo"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL has an invalid port: {exc}") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(port) if port is not None else "",
        "CONN_MAX_AGE": POSTGRES_CONN_MAX_AGE_S,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": dict(parse_qsl(parts.query)),
    }


def cache_from_url(url: str) -> dict[str, Any]:
    """CACHES entry for ``redis://host:port/db`` (also ``rediss://`` and ``unix://``)."""
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise ImproperlyConfigured(
            f"REDIS_URL has scheme {scheme or '(none)'!r}; use redis://host:port/db "
            "(or rediss://, unix://). Unset REDIS_URL to use the local-memory cache."
        )
    return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}


def locmem_cache() -> dict[str, Any]:
    """CACHES entry for the embedded default: a per-process local-memory cache."""
    return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "demo-shop"}


def databases(environ: Mapping[str, str] = os.environ) -> dict[str, dict[str, Any]]:
    """DATABASES for the demo: DATABASE_URL when set, else SQLite."""
    url = environ.get("DATABASE_URL")
    default = database_from_url(url) if url else sqlite_database(sqlite_path(environ))
    return {"default": default}


def caches(environ: Mapping[str, str] = os.environ) -> dict[str, dict[str, Any]]:
    """CACHES for the demo: REDIS_URL when set, else the local-memory cache."""
    url = environ.get("REDIS_URL")
    return {"default": cache_from_url(url) if url else locmem_cache()}
