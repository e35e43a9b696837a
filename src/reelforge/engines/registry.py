"""Engines by name.

Each engine class registers itself with ``@register`` under its ``name``;
``build_engines(settings)`` imports the engine modules, builds every engine that is
configured, and returns them in order of preference; ``engine_for(mode, engines)``
picks the first that can do a mode. No if-chains over engine names anywhere.

An engine class is built with ``cls.from_settings(settings)`` when it defines that
classmethod (returning ``None`` when it is not configured, e.g. a hosted provider
without an API key), else with ``cls(settings)``. Its ``priority`` class attribute
(default 50; the built-in ``local`` engine has 0, the fallback) orders preference.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, TypeVar

from .base import Engine

log = logging.getLogger(__name__)

# Modules that define engines; importing one runs its @register decorators.
ENGINE_MODULES = (
    "reelforge.engines.local.engine",
    "reelforge.engines.diffusers",
    "reelforge.engines.providers",
)
DEFAULT_PRIORITY = 50

_classes: dict[str, type[Engine]] = {}
E = TypeVar("E", bound=type[Engine])


def register(cls: E) -> E:
    """Class decorator: make ``cls`` buildable by its ``name``."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a class attribute `name` to be registered")
    existing = _classes.get(name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"engine name {name!r} is taken by {existing.__qualname__}")
    _classes[name] = cls
    return cls


def _import_engine_modules() -> None:
    for module in ENGINE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                log.debug("engine module %s is not part of this install", module)
            else:  # the module exists but an optional dependency of it is missing
                log.warning("engine module %s not loaded: %s", module, exc)


def engine_classes() -> dict[str, type[Engine]]:
    """Every registered engine class, by name."""
    _import_engine_modules()
    return dict(_classes)


def priority(engine: Engine | type[Engine]) -> int:
    cls = engine if isinstance(engine, type) else type(engine)
    return int(getattr(cls, "priority", DEFAULT_PRIORITY))


def build_engines(settings: Any) -> dict[str, Engine]:
    """The configured engines by name, most preferred first."""
    engines: dict[str, Engine] = {}
    classes = sorted(engine_classes().items(), key=lambda item: -priority(item[1]))
    for name, cls in classes:
        factory = getattr(cls, "from_settings", None)
        make = factory if callable(factory) else cls
        engine = make(settings)  # type: ignore[call-arg]
        if engine is not None:
            engines[name] = engine
    return engines


def how_to_enable(mode: str) -> list[str]:
    """For each registered engine that could do ``mode`` once configured: the engine's
    name and the setting that enables it, most preferred first."""
    classes = sorted(engine_classes().values(), key=lambda cls: -priority(cls))
    return [f"{cls.name}: {cls.enabled_by}" for cls in classes
            if mode in cls.offers and cls.enabled_by]


def engine_for(mode: str, engines: dict[str, Engine],
               prefer: str | None = None) -> Engine | None:
    """The engine to run ``mode``: ``prefer`` when it can, else the most preferred
    engine that supports the mode, else ``None``."""
    if prefer is not None:
        chosen = engines.get(prefer)
        if chosen is not None and chosen.supports(mode):
            return chosen
    candidates = [engine for engine in engines.values() if engine.supports(mode)]
    if not candidates:
        return None
    return max(candidates, key=priority)  # max() keeps the first of equals
