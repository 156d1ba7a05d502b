"""The `http.route` label of a request: its URL pattern, rendered readably, or a name the app
gives it when the pattern cannot (a catch-all URLconf such as Wagtail's).

Precedence, per request:

1. `request.telemetry_route = "..."`, set by a view, a middleware or an integration (the
   Wagtail hook in `telemetry/wagtail_hooks.py` sets `wagtail:<PageType>`);
2. `TELEMETRY["ROUTE_NAME"]`, a dotted path to `callable(request) -> str | None`;
3. the URL pattern of `request.resolver_match`: `path()` routes as written
   (`/items/<int:pk>/`), `re_path()` regexes rendered like Django's admindocs does
   (`^(?P<slug>[\\w-]+)/$` -> `/<slug>/`, unnamed groups -> `<var>`, no anchors);
4. `unmatched` when no pattern matched.

Named routes are bounded like every label: at most `TELEMETRY["MAX_ROUTE_NAMES"]` distinct
names per process, then `other`; token-like and numeric path segments of a name are folded
(`<token>`, `<int>`), so a name built from a raw path cannot carry ids or credentials.
Patterns are rendered once each and cached; the common request (no name) costs one dict
lookup on the request and one on the cache.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from .instruments import UNMATCHED_ROUTE

logger = logging.getLogger("telemetry")

ROUTE_ATTRIBUTE = "telemetry_route"
OVERFLOW_ROUTE = "other"
MAX_NAME_LENGTH = 128
RouteNamer = Callable[[HttpRequest], "str | None"]

# Characters only a regular expression route contains (path() routes are literal text with
# <converter:name> parts).
_REGEX_MARKERS = re.compile(r"[\^$()\[\]\\|*+?]")
# A name's path segment that looks like a credential or an id (as in requests.scrub_path).
_TOKEN_SEGMENT = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-=.~]{16,}$|^[A-Fa-f0-9\-]{20,}$")
_NUMBER_SEGMENT = re.compile(r"^\d+$")


def render_pattern(pattern: str) -> str:
    """The URL pattern of a match as the `http.route` label, always starting with `/`."""
    if _REGEX_MARKERS.search(pattern):
        pattern = simplify_regex(pattern)
    return "/" + pattern.lstrip("^/")


def simplify_regex(pattern: str) -> str:
    """A regex route as people write URLs: `^blog/(?P<year>[0-9]{4})/((?:[\\w-]+/)*)$` ->
    `blog/<year>/<var>`. Named groups become `<name>`, other capturing groups `<var>`,
    non-capturing groups and quantifiers disappear, escapes are unescaped, anchors dropped."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            following = pattern[i + 1]
            if following in "AZbBzG":  # anchors and word boundaries: no text
                i += 2
                continue
            out.append(following if not following.isalnum() else "")
            i += 2
        elif char == "(":
            end = _group_end(pattern, i)
            group = pattern[i:end]
            named = re.match(r"\(\?P<(\w+)>", group)
            if named:
                out.append(f"<{named.group(1)}>")
            elif not group.startswith("(?"):
                out.append("<var>")
            # (?:...), (?=...) and friends add nothing a reader needs.
            i = end
        elif char == "[":
            i = _class_end(pattern, i)
        elif char == "{":
            close = pattern.find("}", i)
            i = n if close == -1 else close + 1
        elif char in "^$?*+|":
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    """Index just after the character class opening at `start`."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":  # a literal ] first in the class
        i += 1
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i + 1
        i += 1
    return len(pattern)


def _group_end(pattern: str, start: int) -> int:
    """Index just after the group opening at `start`, with its quantifier if any."""
    depth, i = 0, start
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                i += 1
                break
        i += 1
    while i < len(pattern) and pattern[i] in "?*+":
        i += 1
    if i < len(pattern) and pattern[i] == "{":
        close = pattern.find("}", i)
        i = len(pattern) if close == -1 else close + 1
    return i


def fold_name(name: str) -> str:
    """A route name with token-like and numeric segments folded, capped in length."""
    segments = []
    for segment in name.strip().split("/"):
        if _NUMBER_SEGMENT.match(segment):
            segment = "<int>"
        elif _TOKEN_SEGMENT.match(segment):
            segment = "<token>"
        segments.append(segment)
    folded = "/".join(segments)
    return folded[:MAX_NAME_LENGTH]


class RouteCatalog:
    """One process's route labels: rendered patterns, and the bounded set of named routes."""

    def __init__(self, max_names: int = 100, namer: str | None = None) -> None:
        self._patterns: dict[str, str] = {}
        self._names: dict[str, str] = {}  # name as given -> label
        self._labels: set[str] = set()
        self._lock = threading.Lock()
        self.reconfigure(max_names, namer)

    def reconfigure(self, max_names: int, namer: str | None) -> None:
        self.max_names = max(int(max_names), 0)
        self._namer_path = namer or None
        self._namer: RouteNamer | None = None
        self._namer_failed = False

    # -- the hot path ----------------------------------------------------------------

    def of(self, request: HttpRequest) -> str:
        """The `http.route` label of `request` (never raises)."""
        # Both are plain instance attributes (Django's handler sets resolver_match): one
        # dict lookup each, no attribute machinery on the path every request takes.
        attributes = request.__dict__
        name = attributes.get(ROUTE_ATTRIBUTE)
        if name is None and self._namer_path is not None:
            name = self._call_namer(request)
        if name is not None:
            return self.named(name)
        match = attributes.get("resolver_match")
        if match is None:
            return UNMATCHED_ROUTE
        pattern = match.route
        route = self._patterns.get(pattern)
        if route is None:
            route = self._patterns[pattern] = render_pattern(pattern)
        return route

    def named(self, name: Any) -> str:
        """The label for a route name an app gave: folded, and `other` past the cap."""
        label = self._names.get(name) if isinstance(name, str) else None
        if label is not None:
            return label
        if not isinstance(name, str) or not name.strip():
            return OVERFLOW_ROUTE
        folded = fold_name(name)
        with self._lock:
            if folded not in self._labels:
                if len(self._labels) >= self.max_names:
                    return OVERFLOW_ROUTE  # not remembered: memory stays bounded too
                self._labels.add(folded)
            if len(self._names) < 4 * self.max_names:
                self._names[name] = folded
        return folded

    def _call_namer(self, request: HttpRequest) -> str | None:
        namer = self._namer
        if namer is None:
            if self._namer_failed:
                return None
            namer = self._load_namer()
            if namer is None:
                return None
        try:
            return namer(request)
        except Exception:
            self._give_up("TELEMETRY['ROUTE_NAME'] raised; routes come from URL patterns")
            return None

    def _load_namer(self) -> RouteNamer | None:
        try:
            namer = load_namer(self._namer_path)
        except (ImportError, TypeError):
            self._give_up("TELEMETRY['ROUTE_NAME'] cannot be used (see check telemetry.E010)")
            return None
        self._namer = namer
        return namer

    def _give_up(self, message: str) -> None:
        if not self._namer_failed:
            self._namer_failed = True
            self._namer = None
            self._namer_path = None
            logger.exception(message)


def load_namer(path: str | None) -> RouteNamer:
    """The ROUTE_NAME callable; ImportError or TypeError with a message naming the setting."""
    from django.utils.module_loading import import_string

    if not isinstance(path, str) or "." not in path:
        raise TypeError(f"TELEMETRY['ROUTE_NAME'] = {path!r} must be a dotted path to a callable.")
    namer = import_string(path)
    if not callable(namer):
        raise TypeError(f"TELEMETRY['ROUTE_NAME'] = {path!r} is not callable.")
    return namer
