"""Serves a few requests of the test Wagtail site in this process and prints the `http.route`
label of each as JSON: `python -m tests.wagtail_site.probe` (needs its own settings, so
tests/telemetry/test_wagtail_hooks.py runs it in a subprocess)."""

from __future__ import annotations

import json
import os

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.wagtail_site.settings"

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from wagtail.models import Page, Site  # noqa: E402

from telemetry.runtime import active_runtime  # noqa: E402
from tests.wagtail_site.models import BlogPage, HomePage  # noqa: E402

PATHS = ("/", "/first-post/", "/no-such-page/", "/plain/7/")


def build_site() -> None:
    call_command("migrate", verbosity=0)
    Site.objects.all().delete()
    Page.objects.filter(depth__gt=1).delete()
    # Read after the delete: the root's child count changed (treebeard, as in Wagtail 7).
    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Home", slug="home"))
    home.add_child(instance=BlogPage(title="First post", slug="first-post"))
    Site.objects.create(hostname="testserver", root_page=home, is_default_site=True)


def main() -> None:
    build_site()
    runtime = active_runtime()
    assert runtime is not None
    client = Client()
    for path in PATHS:
        client.get(path)
    # (route, status) of every request counted, as the request-duration metric holds them.
    counted = sorted(
        [str(route), int(status)]
        for _, route, status in runtime.instruments.request_duration.attribute_sets()
    )
    print(json.dumps(counted))


if __name__ == "__main__":
    main()
