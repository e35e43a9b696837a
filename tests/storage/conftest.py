from __future__ import annotations

from collections.abc import Iterator

import pytest

from .s3server import MotoServer


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer.start_or_skip()
    yield server
    server.close()
