"""Environment parsing of the demo settings: DATABASE_URL, REDIS_URL and the SQLite location."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from fleetscope.demo import env


def test_database_url_gives_a_postgres_entry_with_every_part():
    entry = env.database_from_url("postgres://shop:s3cret@db.internal:6543/demo")

    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"]) == ("demo", "shop", "s3cret")
    assert (entry["HOST"], entry["PORT"]) == ("db.internal", "6543")
    assert entry["CONN_MAX_AGE"] == 60


def test_database_url_decodes_escapes_and_keeps_query_options():
    entry = env.database_from_url(
        "postgresql://us%40er:p%2Fss%3A@127.0.0.1/my%20db?sslmode=disable"
    )

    assert (entry["USER"], entry["PASSWORD"], entry["NAME"]) == ("us@er", "p/ss:", "my db")
    assert entry["PORT"] == ""
    assert entry["OPTIONS"] == {"sslmode": "disable"}


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("mysql://u:p@h/db", "postgres://"),
        ("postgres://u:p@h:5432/", "names no database"),
        ("postgres://u:p@h:notaport/db", "port"),
    ],
)
def test_unusable_database_url_names_what_to_change(url, hint):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL") as excinfo:
        env.database_from_url(url)

    assert hint in str(excinfo.value)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/1", "rediss://h:6380/0", "unix:///tmp/r.sock"]
)
def test_redis_url_gives_a_redis_cache(url):
    entry = env.cache_from_url(url)

    assert entry == {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}


def test_unusable_redis_url_names_what_to_change():
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        env.cache_from_url("memcached://127.0.0.1:11211")


def test_without_urls_the_demo_uses_sqlite_in_the_demo_dir_and_locmem(tmp_path):
    environ = {"FLEETSCOPE_DEMO_DIR": str(tmp_path)}

    database = env.databases(environ)["default"]

    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(tmp_path / "demo.sqlite3")
    assert database["OPTIONS"]["timeout"] >= 5
    assert env.caches(environ)["default"]["BACKEND"].endswith("LocMemCache")


def test_sqlite_file_can_be_named_explicitly(tmp_path):
    target = tmp_path / "elsewhere.db"
    environ = {"FLEETSCOPE_DEMO_DIR": "/ignored", "FLEETSCOPE_DEMO_DB": str(target)}

    assert env.databases(environ)["default"]["NAME"] == str(target)


def test_sqlite_defaults_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert env.sqlite_path({}) == Path(tmp_path) / "demo.sqlite3"


def test_settings_module_reads_the_environment(monkeypatch):
    import fleetscope.demo.settings as demo_settings

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@127.0.0.1:5433/shop")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("FLEETSCOPE_SLOW_QUERY_MS", "250")
    try:
        reloaded = importlib.reload(demo_settings)

        assert reloaded.DATABASES["default"]["NAME"] == "shop"
        assert reloaded.DATABASES["default"]["PORT"] == "5433"
        assert reloaded.CACHES["default"]["LOCATION"] == "redis://127.0.0.1:6390/2"
        assert reloaded.TELEMETRY["SLOW_QUERY_MS"] == 250
        assert reloaded.MIDDLEWARE[0] == "telemetry.middleware.TelemetryMiddleware"
        assert "telemetry" in reloaded.INSTALLED_APPS
    finally:
        monkeypatch.undo()
        importlib.reload(demo_settings)
