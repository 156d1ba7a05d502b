"""What Silk stores, masked like everything else Fleetscope lets leave a node.

Silk writes, for each request it records, the raw path, the query string as JSON, every ORM
statement with its parameters rendered into the text, and the response headers. Those rows
live in the database every node shares, so they get the same treatment as spans and labels:

* the path: the values of sensitive URL parameters and token-like segments folded, as
  `url.path` is on spans (`telemetry.requests.scrub_path`): ``/reset/<uidb64>/<token>/``;
* the query string: every value masked, the names kept (``{"q": "********************"}``);
* each statement: replaced by its normalized text (values folded to ``?``), matched through
  the text Silk rendered for it, which the query observer computes the same way while the
  request runs (`note_statement`); a statement not matched keeps only its operation;
* each EXPLAIN: condition and filter lines folded (PostgreSQL prints values there).

Request headers and bodies are masked by Silk itself (``SILKY_SENSITIVE_KEYS``); Silk stores
no response cookie (they are not among the response's headers when it reads them).

The hooks are Django signals on Silk's models, connected with the links on the first
request `should_profile` accepts. Masking is on the profiled request's own path only, and a
failure is logged on the `telemetry` logger and never breaks Silk or the request.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest

from ..fingerprint import Statement
from ..requests import scrub_path, scrub_segments
from ..sqllex import dialect_for, fold_literals
from ..state import current_request
from . import profiled_request

logger = logging.getLogger("telemetry")

MASK = "********************"  # Silk's own substitute for what it masks
_REQUEST_ATTR = "_fleetscope_http_request"  # set by telemetry.silk.links on the Request row
# EXPLAIN lines that print the values a statement compares against (PostgreSQL:
# "Index Cond: ((username)::text = 'alice'::text)", "Filter: (id = 42)").
_CONDITION_LINE = re.compile(r"^(\s*(?:->\s*)?(?:[\w-]+ )*(?:Cond|Filter|Key):)(.*)$")
_connected = False


def note_statement(notes: dict[str, str], sql: str, params: Any, statement: Statement) -> None:
    """Remember the normalized text of the statement Silk will store as `sql % params`.

    Silk renders ``q % tuple(force_str(p) for p in params)`` (silk/sql.py); the same
    expression here gives the same key. Statements that do not render are not Silk's.
    """
    from django.utils.encoding import force_str

    if params is None:
        rendered = sql
    else:
        try:
            rendered = sql % tuple(force_str(param) for param in params)
        except Exception:  # not a statement Silk can render either
            return
    notes[rendered] = statement.text


def mask_query_params(encoded: str) -> str:
    """Silk's JSON of the query string with every value masked (the names stay)."""
    if not encoded:
        return encoded
    try:
        decoded = json.loads(encoded)
    except ValueError:
        return MASK
    if not isinstance(decoded, dict):
        return MASK
    return json.dumps(dict.fromkeys(decoded, MASK))


def mask_analysis(analysis: str | None, vendor: str | None = None) -> str | None:
    """An EXPLAIN output with the values of its condition and filter lines folded."""
    if not analysis:
        return analysis
    dialect = dialect_for(vendor)
    lines = []
    for line in analysis.splitlines():
        match = _CONDITION_LINE.match(line)
        if match is not None:
            line = match.group(1) + fold_literals(match.group(2), dialect)
        lines.append(line)
    return "\n".join(lines)


def _withheld(rendered: str) -> str:
    """The stored text of a statement the observer did not see: its leading keyword only."""
    word = rendered.lstrip().split(" ", 1)[0].upper()
    return f"{word} … (not matched to a normalized statement; text withheld)"


def _http_request(instance: Any) -> HttpRequest | None:
    request = getattr(instance, _REQUEST_ATTR, None)
    return request if request is not None else profiled_request.get()


def _on_request_saving(sender: type, instance: Any, **kwargs: Any) -> None:
    """pre_save of Silk's Request: path and query string, every time it is written."""
    try:
        request = _http_request(instance)
        if request is not None:
            instance.path = scrub_path(request)
        else:
            instance.path = scrub_segments(instance.path or "")
        instance.query_params = mask_query_params(instance.query_params)
    except Exception:
        logger.exception("Fleetscope could not mask a Silk request row")
        instance.path, instance.query_params = "/", ""


def _on_request_saved(
    sender: type, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """post_save of Silk's Request: its final save (after Silk wrote the request's SQL rows, in
    the same transaction) replaces each stored statement by its normalized text."""
    if created or update_fields is not None or instance.end_time is None:
        return
    state = current_request.get()
    notes = state.silk if state is not None and state.silk is not None else {}
    try:
        mask_statements(instance.pk, notes)
    except Exception:
        logger.exception("Fleetscope could not mask the SQL of Silk profile %s", instance.pk)


def mask_statements(silk_request_id: Any, notes: dict[str, str]) -> int:
    """Replace the SQL rows of one Silk request; returns how many were rewritten."""
    from django.db import router
    from silk.models import SQLQuery

    rows = list(SQLQuery.objects.filter(request_id=silk_request_id).only("id", "query", "analysis"))
    vendor = _vendor(router.db_for_write(SQLQuery))
    changed = []
    for row in rows:
        text = notes.get(row.query)
        masked_query = text if text is not None else _withheld(row.query)
        masked_analysis = mask_analysis(row.analysis, vendor)
        if (masked_query, masked_analysis) != (row.query, row.analysis):
            row.query, row.analysis = masked_query, masked_analysis
            changed.append(row)
    if changed:
        SQLQuery.objects.bulk_update(changed, ["query", "analysis"])
    return len(changed)


def _vendor(alias: str) -> str | None:
    from django.db import connections

    try:
        return str(connections[alias].vendor)
    except Exception:
        return None


def connect() -> None:
    """Connect the masking hooks (once); Silk's models must be importable."""
    global _connected
    if _connected:
        return
    _connected = True
    from silk.models import Request

    pre_save.connect(_on_request_saving, sender=Request, dispatch_uid="fleetscope-silk-mask-req")
    post_save.connect(_on_request_saved, sender=Request, dispatch_uid="fleetscope-silk-mask-sql")


def start(request: HttpRequest) -> None:
    """A request Silk is about to record: its statements are noted from now on."""
    state = current_request.get()
    if state is not None and state.silk is None:
        state.silk = {}
