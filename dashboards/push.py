"""Creates or updates the dashboards in a running Grafana over its HTTP API
(`fleetscope dashboards push`); running it twice leaves one folder and one copy of each."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fleetscope.errors import FleetscopeError

from .build import dashboard_models

DEFAULT_FOLDER = "Fleetscope"


class PushError(FleetscopeError):
    """Grafana refused or could not be reached; the message says what to change."""


@dataclass(frozen=True)
class PushResult:
    uid: str
    title: str
    url: str
    version: int


def folder_uid_for(title: str) -> str:
    """A stable folder uid derived from its title (Grafana allows 40 of [A-Za-z0-9_-])."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")
    return (slug or "fleetscope")[:40]


class GrafanaClient:
    """The three calls push needs, with Grafana's failures turned into one-line errors."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise PushError(f"--url {url!r} must start with http:// or https://.")
        if not token:
            raise PushError("--token is empty: pass a Grafana service account token.")
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def folders(self) -> list[dict[str, Any]]:
        answer = self._call("GET", "/api/folders", "listing folders", params={"limit": "1000"})
        return list(answer) if isinstance(answer, list) else []

    def create_folder(self, title: str, uid: str) -> dict[str, Any]:
        answer = self._call(
            "POST", "/api/folders", f"creating folder {title!r}", json={"uid": uid, "title": title}
        )
        return dict(answer)

    def save_dashboard(self, model: Mapping[str, Any], folder_uid: str) -> dict[str, Any]:
        # No numeric id: it is per Grafana install; the uid identifies the dashboard.
        dashboard = {key: value for key, value in model.items() if key not in ("id", "version")}
        body = {
            "dashboard": dashboard,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "fleetscope dashboards push",
        }
        return dict(
            self._call(
                "POST", "/api/dashboards/db", f"saving dashboard {model.get('uid')!r}", json=body
            )
        )

    def create_annotation(
        self, text: str, tags: list[str], time_ms: int | None = None
    ) -> dict[str, Any]:
        """An organization-wide annotation (no dashboard uid): every dashboard whose
        annotation query asks for one of its tags shows it."""
        body: dict[str, Any] = {"text": text, "tags": tags}
        if time_ms is not None:
            body["time"] = time_ms
        return dict(self._call("POST", "/api/annotations", "posting an annotation", json=body))

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PushError(
                f"Cannot connect to Grafana at {self.url} ({_reason(exc)}): is Grafana running "
                "and is --url right?"
            ) from exc
        if response.status_code >= 400:
            raise PushError(self._explain(response, path, action))
        try:
            return response.json()
        except ValueError as exc:
            raise PushError(
                f"{self.url}{path} answered {response.status_code} without JSON while {action}: "
                "does --url point at Grafana?"
            ) from exc

    def _explain(self, response: httpx.Response, path: str, action: str) -> str:
        status = response.status_code
        detail = _message(response)
        if status == 401:
            return (
                f"Grafana rejected the token (401 Unauthorized) while {action}: pass a valid "
                "service account token with --token."
            )
        if status == 403:
            return (
                f"The token is not allowed to do this (403 Forbidden) while {action}: give its "
                "service account the Editor role in Grafana (or folders:create, "
                "dashboards:write and annotations:create)."
            )
        if status == 404:
            return (
                f"{self.url}{path} does not exist (404 Not Found) while {action}: --url must "
                "be Grafana's root URL (with its sub-path, if it is served under one)."
            )
        return f"Grafana answered {status} while {action}: {detail or response.reason_phrase}."


def _message(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return ""
    return str(payload.get("message", "")) if isinstance(payload, dict) else ""


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else str(exc) or "no answer"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__


def ensure_folder(client: GrafanaClient, title: str) -> str:
    """The uid of the folder titled `title`, created if no folder has that title."""
    for folder in client.folders():
        if folder.get("title") == title:
            return str(folder["uid"])
    return str(client.create_folder(title, folder_uid_for(title))["uid"])


def push_dashboards(
    url: str,
    token: str,
    folder: str = DEFAULT_FOLDER,
    dashboards: Iterable[Mapping[str, Any]] | None = None,
    *,
    timeout: float = 10.0,
) -> list[PushResult]:
    """Creates or overwrites every dashboard (by uid) inside `folder`."""
    models = list(dashboards) if dashboards is not None else dashboard_models()
    with GrafanaClient(url, token, timeout=timeout) as client:
        folder_uid = ensure_folder(client, folder)
        results = []
        for model in models:
            saved = client.save_dashboard(model, folder_uid)
            results.append(
                PushResult(
                    uid=str(saved.get("uid", model.get("uid"))),
                    title=str(model.get("title", "")),
                    url=f"{client.url}{saved.get('url', '')}",
                    version=int(saved.get("version", 0)),
                )
            )
    return results
