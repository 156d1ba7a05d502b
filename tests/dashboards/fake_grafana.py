"""A local HTTP server enforcing the part of Grafana's HTTP API that `push` uses, as the
Grafana docs describe it (folder and dashboard APIs, Bearer service-account tokens).

It is not Grafana: it checks the requests we send and answers like Grafana does, so push can
be tested without a live instance (Grafana cannot be installed on the build machines).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
FAILURES = {
    401: "invalid API key",
    403: "You'll need additional permissions to perform this action. "
    "Permissions needed: dashboards:create",
    404: "Not found",
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    token: str
    # When set, every /api request is answered with this status (401, 403 or 404).
    fail_with: int | None = None
    folders: dict[str, str] = field(default_factory=dict)  # uid -> title
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> stored
    annotations: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- the contract ----------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<malformed JSON>"
        self.requests.append(Request(method, split.path, dict(handler.headers.items()), body))

        route = (method, split.path)
        known = {
            ("GET", "/api/folders"),
            ("POST", "/api/folders"),
            ("POST", "/api/dashboards/db"),
            ("POST", "/api/annotations"),
        }
        if route not in known:
            return self._reply(handler, 404, {"message": "Not found"})
        if self.fail_with is not None:
            return self._reply(handler, self.fail_with, {"message": FAILURES[self.fail_with]})
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._reply(handler, 401, {"message": FAILURES[401]})
        if route == ("GET", "/api/folders"):
            limit = parse_qs(split.query).get("limit", ["1000"])[0]
            if not limit.isdigit():
                return self._reply(handler, 400, {"message": "limit must be a number"})
            listing = [
                {"id": i + 1, "uid": uid, "title": title}
                for i, (uid, title) in enumerate(self.folders.items())
            ][: int(limit)]
            return self._reply(handler, 200, listing)
        content_type = handler.headers.get("Content-Type", "").split(";")[0]
        if content_type != "application/json" or not isinstance(body, dict):
            return self._reply(handler, 400, {"message": "bad request data"})
        if route == ("POST", "/api/folders"):
            return self._reply(handler, *self._create_folder(body))
        if route == ("POST", "/api/annotations"):
            return self._reply(handler, *self._create_annotation(body))
        return self._reply(handler, *self._save_dashboard(body))

    def _create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            return 400, {"message": "folder title cannot be empty"}
        uid = body.get("uid") or f"generated{len(self.folders) + 1}"
        if not UID.match(uid):
            return 400, {"message": "uid contains illegal characters"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        if title in self.folders.values():
            return 409, {"message": "a folder with the same name already exists"}
        self.folders[uid] = title
        return 200, {
            "id": len(self.folders),
            "uid": uid,
            "title": title,
            "url": f"/dashboards/f/{uid}/",
            "version": 1,
        }

    def _create_annotation(self, body: dict[str, Any]) -> tuple[int, Any]:
        # Grafana's PostAnnotation: text is required; tags are strings; time/timeEnd are epoch
        # milliseconds (0 or absent: now); dashboardUID, when given, must exist.
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return 400, {"message": "Failed to save annotation"}
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return 400, {"message": "bad request data"}
        for key in ("time", "timeEnd"):
            if key in body and not isinstance(body[key], int):
                return 400, {"message": "bad request data"}
        dashboard_uid = body.get("dashboardUID")
        if dashboard_uid and dashboard_uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        annotation_id = len(self.annotations) + 1
        self.annotations.append({**body, "id": annotation_id})
        return 200, {"message": "Annotation added", "id": annotation_id}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        folder_uid = body.get("folderUid")
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        uid = dashboard.get("uid") or f"generated{len(self.dashboards) + 1}"
        if not UID.match(uid):
            return 400, {"message": "uid contains illegal characters"}
        existing = self.dashboards.get(uid)
        if dashboard.get("id") is not None and (
            existing is None or existing["id"] != dashboard["id"]
        ):
            return 404, {"message": "Dashboard not found"}
        stale = existing is not None and dashboard.get("version") != existing["version"]
        if stale and body.get("overwrite") is not True:
            return 412, {"status": "version-mismatch", "message": "version-mismatch"}
        version = existing["version"] + 1 if existing else 1
        dashboard_id = existing["id"] if existing else len(self.dashboards) + 1
        self.dashboards[uid] = {
            "id": dashboard_id,
            "version": version,
            "folderUid": folder_uid or "",
            "dashboard": dashboard,
        }
        slug = re.sub(r"[^a-z0-9]+", "-", str(dashboard["title"]).lower()).strip("-")
        return 200, {
            "id": dashboard_id,
            "uid": uid,
            "url": f"/d/{uid}/{slug}",
            "status": "success",
            "version": version,
            "slug": slug,
        }

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
