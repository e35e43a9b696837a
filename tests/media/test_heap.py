"""The heap tuning takes on glibc and is done once per process."""

from __future__ import annotations

import platform

import pytest

from reelforge.media import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_takes_on_glibc_once() -> None:
    assert heap.keep_freed_memory() is True
    assert heap.keep_freed_memory.cache_info().currsize == 1
