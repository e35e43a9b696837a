"""The ffmpeg runner against the real ffmpeg: features, progress, failures, and that
cancelling or timing out leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from reelforge.errors import JobCancelled, JobTimedOut, MediaError
from reelforge.media.ffmpeg import FFmpeg, Tick, find_ffmpeg


def children() -> set[int]:
    """Live child processes of this test process, read from /proc (no psutil)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry))
    return found


@pytest.fixture
def before() -> set[int]:
    """Child processes that existed before the test (other fixtures may own some)."""
    return children()


def assert_group_gone(pgid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


LONG_SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=600",
               "-c:v", "libx264", "-preset", "veryslow", "-f", "null", "-"]


def test_find_ffmpeg_default_and_bad_configured_path() -> None:
    path = find_ffmpeg()
    assert os.access(path, os.X_OK)
    with pytest.raises(MediaError) as err:
        find_ffmpeg("/nonexistent/ffmpeg")
    assert "REELFORGE_FFMPEG_PATH" in err.value.fix


def test_features_report_what_the_engines_need(ffmpeg: FFmpeg) -> None:
    feats = ffmpeg.features()
    assert feats is ffmpeg.features()  # cached
    assert feats.version and feats.path == ffmpeg.path
    assert feats.has_libx264 and feats.ok
    assert {"scale", "noise", "xfade"} <= feats.filters
    assert not (feats.filters & feats.missing)
    assert feats.describe()["libx264"] is True


def test_run_reports_progress(ffmpeg: FFmpeg, tmp_path: Path) -> None:
    ticks: list[Tick] = []
    out = tmp_path / "t.mp4"
    ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=24:duration=1",
                "-c:v", "libx264", "-preset", "ultrafast", str(out)], on_progress=ticks.append)
    assert out.stat().st_size > 0
    assert ticks and ticks[-1].done and ticks[-1].frame == 24
    assert ticks[-1].seconds == pytest.approx(1.0, abs=0.1)


def test_failure_raises_media_error_with_stderr(
        before: set[int], ffmpeg: FFmpeg, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as err:
        ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=duration=1", "-c:v", "no_such_codec",
                    str(tmp_path / "x.mp4")])
    assert "no_such_codec" in err.value.message
    assert isinstance(err.value.__cause__, subprocess.CalledProcessError)
    assert children() <= before


def test_cancel_from_progress_kills_the_process_group(before: set[int],
                                                      ffmpeg: FFmpeg) -> None:
    calls = 0

    def on_progress(tick: Tick) -> None:
        nonlocal calls
        calls += 1
        raise JobCancelled("cancelled by the test")

    start = time.monotonic()
    with pytest.raises(JobCancelled):
        ffmpeg.run(LONG_SOURCE, on_progress=on_progress)
    assert calls == 1
    assert time.monotonic() - start < 10
    assert children() <= before


def test_deadline_raises_timed_out_and_kills(before: set[int], ffmpeg: FFmpeg) -> None:
    start = time.monotonic()
    with pytest.raises(JobTimedOut):
        ffmpeg.run(LONG_SOURCE, deadline=time.monotonic() + 0.6)
    assert time.monotonic() - start < 5
    assert children() <= before


def raw_args(out: Path, size: str = "64x32") -> list[str]:
    return ["-f", "rawvideo", "-pix_fmt", "gray", "-s:v", size, "-framerate", "24",
            "-i", "pipe:0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            str(out)]


def test_pipe_writes_frames(ffmpeg: FFmpeg, tmp_path: Path) -> None:
    out = tmp_path / "pipe.mp4"
    with ffmpeg.pipe(raw_args(out)) as proc:
        for i in range(12):
            proc.write(bytes([i * 20]) * (64 * 32))
        proc.finish()
    assert out.stat().st_size > 0
    assert_group_gone(proc.pid)


def test_pipe_exception_kills_the_group(before: set[int], ffmpeg: FFmpeg,
                                        tmp_path: Path) -> None:
    with pytest.raises(JobCancelled):
        with ffmpeg.pipe(raw_args(tmp_path / "c.mp4")) as proc:
            proc.write(bytes(64 * 32))
            raise JobCancelled("stop")
    assert_group_gone(proc.pid)
    assert children() <= before


def test_pipe_deadline(ffmpeg: FFmpeg, tmp_path: Path) -> None:
    with pytest.raises(JobTimedOut):
        with ffmpeg.pipe(raw_args(tmp_path / "d.mp4"), deadline=time.monotonic() + 0.3) as proc:
            while True:
                proc.write(bytes(64 * 32))
                time.sleep(0.01)
    assert_group_gone(proc.pid)


def test_pipe_failure_is_media_error(before: set[int], ffmpeg: FFmpeg,
                                     tmp_path: Path) -> None:
    args = raw_args(tmp_path / "bad.mp4")
    args[args.index("libx264")] = "no_such_codec"
    with pytest.raises(MediaError):
        with ffmpeg.pipe(args) as proc:
            for _ in range(200):  # ffmpeg exits early: a write or finish() notices
                proc.write(bytes(64 * 32))
            proc.finish()
    assert children() <= before
