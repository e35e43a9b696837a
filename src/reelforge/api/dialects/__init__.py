"""Dialects: the seeds' APIs and two official SDKs' APIs, each under its own prefix.

Each module is a thin translation (vendor request → core command, core job → vendor
response) with its own router (tagged with the dialect's name in the OpenAPI
document), its error shape (``api.errors.register_formatter``) and, where the vendor
has webhooks, its payload (``core.webhooks.register_payload``).
"""

from __future__ import annotations

from fastapi import FastAPI

from . import clipora, common, dockora, kie, openai, qamera, runway, vidgen

DIALECTS = (dockora, vidgen, clipora, qamera, kie, runway, openai)


def include_dialects(app: FastAPI) -> None:
    """Add every dialect's routes, and the middleware for their own headers."""
    for module in DIALECTS:
        app.include_router(module.router)
    app.middleware("http")(common.dialect_headers)
