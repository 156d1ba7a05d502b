"""Instruments as a registry: each signal source is one small class, listed by dotted path in
`TELEMETRY["INSTRUMENTS"]` and switched on or off one by one.

An instrument installs its hooks (`install`), removes them (`uninstall`), and says what is
wrong with its configuration (`checks`, run by Django's system checks even before it is
installed). `AppConfig.ready()` applies the list: new entries are installed, entries no
longer listed are uninstalled, the others are told the configuration may have changed
(`reconfigure`, which by default installs again: every `install` is idempotent). Adding a
signal source means one class and one line in `DEFAULT_INSTRUMENTS`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from .conf import Config
    from .runtime import Runtime

logger = logging.getLogger("telemetry")

DEFAULT_INSTRUMENTS: tuple[str, ...] = (
    "telemetry.requests.RequestsInstrument",
    "telemetry.db.DatabaseInstrument",
    "telemetry.cache.CacheInstrument",
    "telemetry.process.ProcessInstrument",
    "telemetry.silk.SilkInstrument",
    "telemetry.tasks.TasksInstrument",
)


class Instrument:
    """One signal source of the telemetry app (the documented base of every instrument)."""

    #: Short name for logs and docs ("requests", "db", "cache", ...).
    name: ClassVar[str] = ""

    def __init__(self, runtime: Runtime, config: Config) -> None:
        self.runtime = runtime
        self.config = config

    def install(self) -> None:
        """Start recording. Idempotent: may run again after a reload."""
        raise NotImplementedError

    def uninstall(self) -> None:
        """Stop recording and give back whatever was hooked."""
        raise NotImplementedError

    def reconfigure(self, runtime: Runtime, config: Config) -> None:
        """The settings may have changed (an app reload, override_settings)."""
        self.runtime = runtime
        self.config = config
        self.install()

    @classmethod
    def checks(cls, config: Config) -> list[CheckMessage]:
        """System-check messages for this instrument's part of the configuration."""
        return []


class InstrumentError(ValueError):
    """An entry of TELEMETRY["INSTRUMENTS"] that cannot be used; the message names it."""


def load(path: str) -> type[Instrument]:
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InstrumentError(
            f"TELEMETRY['INSTRUMENTS'] lists {path!r}, which cannot be imported ({exc}); "
            "fix the dotted path or remove the entry."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Instrument)):
        raise InstrumentError(
            f"TELEMETRY['INSTRUMENTS'] lists {path!r}, which is not a subclass of "
            "telemetry.registry.Instrument."
        )
    return cls


def listed(config: Config) -> list[str]:
    paths = config["INSTRUMENTS"]
    if isinstance(paths, str):
        paths = [paths]
    return [str(path) for path in paths]


_installed: dict[str, Instrument] = {}


def apply(runtime: Runtime, config: Config) -> None:
    """Make the installed instruments exactly the listed ones (idempotent)."""
    wanted = listed(config)
    for path in [p for p in _installed if p not in wanted]:
        _installed.pop(path).uninstall()
    for path in wanted:
        instrument = _installed.get(path)
        try:
            if instrument is None:
                instrument = load(path)(runtime, config)
                instrument.install()
                _installed[path] = instrument
            else:
                instrument.reconfigure(runtime, config)
        except InstrumentError as exc:
            # Never fail the start of the user's app: check telemetry.E009 reports it.
            logger.error("%s", exc)


def installed() -> dict[str, Instrument]:
    """The installed instruments by dotted path (a copy)."""
    return dict(_installed)


def uninstall_all() -> None:
    for path in list(_installed):
        _installed.pop(path).uninstall()
