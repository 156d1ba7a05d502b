"""With Wagtail installed, a page request's route is its page type, not Wagtail's catch-all
pattern; Wagtail's 404s and plain Django paths keep their URL patterns.

The site (tests/wagtail_site) needs its own settings, so it runs in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys

from telemetry.routes import OVERFLOW_ROUTE


def test_wagtail_pages_are_named_by_page_type() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.wagtail_site.probe"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counted = {(route, status) for route, status in json.loads(done.stdout.splitlines()[-1])}
    assert counted == {
        ("wagtail:HomePage", 200),
        ("wagtail:BlogPage", 200),
        # Wagtail's catch-all `^((?:[\w\-]+/)*)$` when no page matched, rendered readably.
        ("/<var>", 404),
        ("/plain/<int:pk>/", 200),
    }
    assert OVERFLOW_ROUTE not in {route for route, _ in counted}
