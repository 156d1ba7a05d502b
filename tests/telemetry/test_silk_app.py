"""Silk is an opt-in sub-app: no table without it, and upgrades keep their profile links."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The table as Fleetscope 0.1 created it (telemetry 0001) on SQLite.
OLD_TABLE = """
CREATE TABLE "telemetry_profilelink" (
  "silk_request_id" varchar(36) NOT NULL PRIMARY KEY, "trace_id" varchar(32) NOT NULL,
  "node" varchar(255) NOT NULL, "worker" varchar(255) NOT NULL, "route" varchar(255) NOT NULL,
  "fingerprints" text NOT NULL, "created" datetime NOT NULL)
"""


def manage(tmp_path: Path, *args: str, silk: bool) -> str:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.telemetry.probes.minimal_settings",
        "PROBE_DIR": str(tmp_path),
        "PROBE_SILK": "1" if silk else "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def tables(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_without_the_sub_app_there_is_no_silk_table(tmp_path: Path) -> None:
    manage(tmp_path, "migrate", "-v", "0", silk=False)
    assert "telemetry_profilelink" not in tables(tmp_path)
    assert not any(name.startswith("silk_") for name in tables(tmp_path))
    manage(tmp_path, "check", silk=False)


def test_with_the_sub_app_the_table_is_created(tmp_path: Path) -> None:
    manage(tmp_path, "migrate", "-v", "0", silk=True)
    assert "telemetry_profilelink" in tables(tmp_path)


def test_an_upgrade_adopts_the_existing_table_with_its_rows(tmp_path: Path) -> None:
    manage(tmp_path, "migrate", "-v", "0", silk=False)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:  # what 0.1 left behind
        db.execute(OLD_TABLE)
        db.execute(
            "INSERT INTO telemetry_profilelink VALUES "
            "('abc', 'f' || hex(randomblob(15)), 'node-1', 'node-1/1', '/x/', '', "
            "'2026-01-01 00:00:00')"
        )
    manage(tmp_path, "migrate", "-v", "0", silk=True)
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT node, route FROM telemetry_profilelink").fetchall() == [
            ("node-1", "/x/")
        ]
    out = manage(tmp_path, "showmigrations", "telemetry_silk", silk=True)
    assert "[X] 0001_initial" in out
