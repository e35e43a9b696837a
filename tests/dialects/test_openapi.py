"""Every dialect route is in /openapi.json under a tag named after its dialect, and
unknown paths under a prefix answer in that dialect's error shape."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute

from reelforge.api.dialects import DIALECTS


def test_every_dialect_route_is_documented_under_its_tag(idle):
    spec = httpx.get(f"{idle.url}/openapi.json").json()
    checked = 0
    for module in DIALECTS:
        name = module.DIALECT
        routes = [r for r in module.router.routes if isinstance(r, APIRoute)]
        assert routes, name
        for route in routes:
            for method in route.methods - {"HEAD"}:
                assert route.path.startswith(module.PREFIX + "/")
                op = spec["paths"][route.path][method.lower()]
                assert op["tags"] == [name], (route.path, op["tags"])
                assert op.get("summary"), route.path
                checked += 1
    assert checked >= 50
    tags = {t for ops in spec["paths"].values() for op in ops.values() for t in op["tags"]}
    assert {m.DIALECT for m in DIALECTS} <= tags


@pytest.mark.parametrize("path,check", [
    ("/dockora/nope", lambda b: b["code"] == 404 and b["fix"]),
    ("/vidgen/api/nope", lambda b: isinstance(b["error"], str)),
    ("/clipora/api/nope", lambda b: isinstance(b["error"], str)),
    ("/qamera/api/external/nope", lambda b: b["correlationId"]),
    ("/kie/api/v1/nope", lambda b: b["code"] == 404 and b["data"] is None),
    ("/runway/v1/nope", lambda b: isinstance(b["error"], str)),
    ("/openai/v1/nope", lambda b: b["error"]["type"] == "invalid_request_error"),
])
def test_unknown_paths_answer_in_the_dialect_shape(idle, path, check):
    r = httpx.get(idle.url + path)
    assert r.status_code == 404 and check(r.json()), r.text
