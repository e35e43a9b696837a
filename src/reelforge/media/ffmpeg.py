"""ffmpeg: find it, ask what it can do, and run it under control.

Every ffmpeg we start runs in its own process group (``start_new_session=True``) so
that cancelling a job kills it and anything it spawned with one ``killpg``. Two ways
to run it:

``FFmpeg.run(args, on_progress=..., deadline=...)``
    a whole command; ffmpeg reports ``-progress`` on stdout and ``on_progress`` gets a
    ``Tick`` about twice a second. If the callback raises (job cancelled, lease lost)
    the process group is killed and the exception propagates.

``with FFmpeg.pipe(args, deadline=...) as proc: proc.write(frame); proc.finish()``
    raw frames fed into stdin (the frame pipe); the caller checks progress and
    cancellation between writes. Leaving the block by an exception kills ffmpeg.

``with FFmpeg.read(args, deadline=...) as proc: while proc.read_into(buf): ...``
    raw output read from stdout (``pipe:1`` in args), e.g. decoded frames; the
    caller checks progress and cancellation between reads.

``deadline`` is a ``time.monotonic()`` instant: past it, a watchdog kills the process
group and the call raises ``JobTimedOut``. A non-zero exit raises ``MediaError`` with
the last lines ffmpeg wrote to stderr.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..errors import JobTimedOut, MediaError

BASE_ARGS = ("-hide_banner", "-nostdin", "-y", "-loglevel", "error")
# Filters and encoders the engines use; `reelforge doctor` reports the missing ones.
WANTED_FILTERS = (
    "scale", "format", "setparams", "crop", "pad", "overlay", "fps", "trim", "setpts",
    "fade", "xfade", "concat", "noise", "gblur", "boxblur", "lut3d", "eq", "drawtext",
    "subtitles", "ass", "split", "amix", "afade", "atrim", "aresample", "ebur128",
    "ametadata",
)
WANTED_ENCODERS = ("libx264", "aac")
_STDERR_LINES = 40

OnProgress = Callable[["Tick"], None]


def find_ffmpeg(configured: str = "") -> str:
    """The ffmpeg to use: ``configured`` (a path or a name on PATH), else the one
    imageio-ffmpeg ships, else ``ffmpeg`` on PATH."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        found = shutil.which(configured)
        if found:
            return found
        raise MediaError(f"ffmpeg_path {configured!r} is not an executable file",
                         fix="Point REELFORGE_FFMPEG_PATH at an ffmpeg binary, or unset it "
                             "to use the one imageio-ffmpeg ships.")
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or no binary for this platform
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise MediaError("no ffmpeg found: imageio-ffmpeg has no binary here and none is on PATH",
                     fix="pip install imageio-ffmpeg, or install ffmpeg and set "
                         "REELFORGE_FFMPEG_PATH.")


@dataclass(frozen=True)
class FFmpegFeatures:
    """What an ffmpeg binary can do, as far as reelforge cares."""

    path: str
    version: str
    has_libx264: bool
    has_libass: bool
    has_drawtext: bool
    filters: frozenset[str]  # the WANTED_FILTERS this build has
    missing: frozenset[str]  # WANTED_FILTERS and WANTED_ENCODERS it lacks
    encoders: frozenset[str]  # the WANTED_ENCODERS it has

    @property
    def ok(self) -> bool:
        """Enough for the built-in engine to work."""
        return self.has_libx264

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "version": self.version, "libx264": self.has_libx264,
                "libass": self.has_libass, "drawtext": self.has_drawtext,
                "missing": sorted(self.missing)}


@dataclass(frozen=True)
class Tick:
    """One ``-progress`` report: frames written and seconds of output so far."""

    frame: int
    seconds: float
    speed: float | None
    done: bool


class FFmpeg:
    """One ffmpeg binary. Cheap to build; ``features()`` runs ffmpeg once and is cached."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._features: FFmpegFeatures | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> FFmpeg:
        return cls(find_ffmpeg(getattr(settings, "ffmpeg_path", "")))

    def __repr__(self) -> str:
        return f"FFmpeg({self.path!r})"

    def features(self) -> FFmpegFeatures:
        with self._lock:
            if self._features is None:
                self._features = self._probe_features()
            return self._features

    def _probe_features(self) -> FFmpegFeatures:
        version_text = self._query("-version")
        filter_text = self._query("-filters")
        encoder_text = self._query("-encoders")
        first = version_text.splitlines()[0] if version_text else ""
        match = re.match(r"ffmpeg version (\S+)", first)
        filters = {m.group(1) for m in
                   re.finditer(r"^\s*[A-Z.|]{2,3}\s+(\S+)\s+\S+->\S+", filter_text, re.M)}
        encoders = {m.group(1) for m in
                    re.finditer(r"^\s*[VASD][A-Z.]{5}\s+(\S+)", encoder_text, re.M)}
        have_filters = frozenset(f for f in WANTED_FILTERS if f in filters)
        have_encoders = frozenset(e for e in WANTED_ENCODERS if e in encoders)
        missing = (frozenset(WANTED_FILTERS) - have_filters) | (
            frozenset(WANTED_ENCODERS) - have_encoders)
        return FFmpegFeatures(
            path=self.path, version=match.group(1) if match else first,
            has_libx264="libx264" in encoders,
            has_libass="ass" in filters or "--enable-libass" in version_text,
            has_drawtext="drawtext" in filters, filters=have_filters,
            missing=missing, encoders=have_encoders)

    def _query(self, flag: str) -> str:
        try:
            done = subprocess.run([self.path, "-hide_banner", flag], capture_output=True,
                                  text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MediaError(f"could not run {self.path} {flag}: {exc}",
                             fix="Check that ffmpeg_path is a working ffmpeg binary.") from exc
        return done.stdout

    def argv(self, args: Sequence[str], *, progress: bool) -> list[str]:
        extra = ["-progress", "pipe:1", "-stats_period", "0.5"] if progress else []
        return [self.path, *BASE_ARGS, *extra, *map(str, args)]

    def run(self, args: Sequence[str], *, on_progress: OnProgress | None = None,
            deadline: float | None = None) -> None:
        """Run ``ffmpeg <args>`` to the end. See the module docstring."""
        with FFmpegProcess(self.argv(args, progress=True), stdin=False,
                           deadline=deadline) as proc:
            for tick in proc.ticks():
                if on_progress is not None:
                    on_progress(tick)
            proc.finish()

    def pipe(self, args: Sequence[str], *, deadline: float | None = None) -> FFmpegProcess:
        """Start ``ffmpeg <args>`` reading raw input from stdin (``-i pipe:0`` in args)."""
        return FFmpegProcess(self.argv(args, progress=False), stdin=True, deadline=deadline)

    def read(self, args: Sequence[str], *, deadline: float | None = None) -> FFmpegProcess:
        """Start ``ffmpeg <args>`` writing raw output to stdout (``pipe:1`` in args);
        read it with ``FFmpegProcess.read_into``."""
        return FFmpegProcess(self.argv(args, progress=False), stdin=False, deadline=deadline)


@functools.lru_cache(maxsize=4)
def ffmpeg_for(configured: str = "") -> FFmpeg:
    """The process's ``FFmpeg`` for a configured path (see ``find_ffmpeg``), found on
    first use, so building an engine never fails for want of ffmpeg."""
    return FFmpeg(find_ffmpeg(configured))


def filter_path(path: Any) -> str:
    """``path`` as an unquoted filter option value inside a filter graph: escaped for
    the option (``\\ ' :``), then for the graph (``\\ ' [ ] , ;``)."""
    value = str(path)
    for ch in "\\':":
        value = value.replace(ch, "\\" + ch)
    for ch in "\\'[],;":
        value = value.replace(ch, "\\" + ch)
    return value


PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size; the default 64 KiB pipe makes a
# 1080p frame (3 MB) cross in ~50 pieces, each a wake-up of writer and reader


def _widen(stream: IO[bytes] | None) -> None:
    """Grow the pipe behind ``stream`` to ``PIPE_BYTES`` where the OS allows it."""
    import fcntl

    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if stream is None or setpipe is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), setpipe, PIPE_BYTES)
    except OSError:  # capped lower by /proc/sys/fs/pipe-max-size: keep the default
        pass


class FFmpegProcess:
    """A running ffmpeg in its own process group. Use it as a context manager."""

    def __init__(self, argv: list[str], *, stdin: bool, deadline: float | None) -> None:
        self.argv = argv
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._timed_out = False
        self._finished = False
        self._deadline = deadline
        try:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if stdin else subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, bufsize=0)
        except OSError as exc:
            raise MediaError(f"could not start ffmpeg ({argv[0]}): {exc}",
                             fix="Check ffmpeg_path, or reinstall imageio-ffmpeg.") from exc
        _widen(self._proc.stdin if stdin else self._proc.stdout)
        self._stderr_thread = threading.Thread(
            target=self._drain_stderr, name=f"ffmpeg-stderr-{self.pid}", daemon=True)
        self._stderr_thread.start()
        self._watchdog: threading.Timer | None = None
        if deadline is not None:
            self._watchdog = threading.Timer(max(0.0, deadline - time.monotonic()),
                                             self._expire)
            self._watchdog.daemon = True
            self._watchdog.start()

    @property
    def pid(self) -> int:
        """Process id, which is also the process group id."""
        return self._proc.pid

    def __enter__(self) -> FFmpegProcess:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.kill()
        elif not self._finished:
            if self._proc.stdin is None:  # a reader left before the end: stop ffmpeg
                self.kill()
            else:
                self.finish()

    def _drain_stderr(self) -> None:
        stream = self._proc.stderr
        assert stream is not None
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)

    def _expire(self) -> None:
        self._timed_out = True
        self._killpg()

    def _killpg(self) -> None:
        # Only before the leader is reaped: until then its pid (= the group id) cannot
        # be reused, so this never signals an unrelated process group.
        if self._proc.returncode is not None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _check_deadline(self) -> None:
        if self._timed_out or (self._deadline is not None
                               and time.monotonic() >= self._deadline):
            self._timed_out = True
            self.kill()
            raise JobTimedOut("ffmpeg ran past the job's deadline and was stopped")

    def stderr_tail(self, lines: int = 10) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    def kill(self) -> None:
        """Kill the whole process group and reap it. Safe to call twice."""
        self._cancel_watchdog()
        self._killpg()
        self._proc.wait()
        self._close_pipes()
        self._finished = True

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    def _close_pipes(self) -> None:
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except OSError:
                    pass
        self._stderr_thread.join(timeout=5)

    def write(self, data: Any) -> None:
        """Write raw bytes (or a contiguous numpy array) to ffmpeg's stdin."""
        self._check_deadline()
        stdin = self._proc.stdin
        assert stdin is not None, "write() needs a process started by FFmpeg.pipe()"
        view = memoryview(data).cast("B")
        try:
            while view:
                written = os.write(stdin.fileno(), view)
                view = view[written:]
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:
            self._check_deadline()
            self._proc.wait()
            self._raise_failed(exc)

    def read_into(self, buffer: Any) -> bool:
        """Fill ``buffer`` (a writable bytes-like object, e.g. a numpy array) from
        ffmpeg's stdout. True when it was filled; False at the end of the output (a
        partial last piece is dropped). Raises like ``finish`` if ffmpeg failed."""
        self._check_deadline()
        stdout = self._proc.stdout
        assert stdout is not None, "read_into() needs a process started by FFmpeg.read()"
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view):
            n = stdout.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        if got == len(view):
            return True
        self._check_deadline()
        self.finish()
        return False

    def ticks(self) -> Iterator[Tick]:
        """The ``-progress`` reports, until ffmpeg closes stdout."""
        stdout: IO[bytes] | None = self._proc.stdout
        assert stdout is not None, "ticks() needs a process started by FFmpeg.run()"
        fields: dict[str, str] = {}
        for raw in iter(stdout.readline, b""):
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key != "progress":
                fields[key] = value
                continue
            yield _tick(fields, done=value == "end")
            fields = {}
        self._check_deadline()

    def end_input(self) -> None:
        """Close stdin: ffmpeg sees the end of its input and finishes in its own time
        (``finish`` waits for it)."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass

    def finish(self) -> None:
        """Close stdin, wait for ffmpeg to end, and raise if it failed."""
        self.end_input()
        # No timeout here: the watchdog kills ffmpeg at the deadline (and a timed wait
        # polls, finishing up to 50 ms late).
        self._proc.wait()
        if self._timed_out:
            self.kill()
            raise JobTimedOut("ffmpeg ran past the job's deadline and was stopped")
        self._cancel_watchdog()
        self._close_pipes()
        self._finished = True
        if self._proc.returncode != 0:
            self._raise_failed(None)

    def _raise_failed(self, cause: BaseException | None) -> None:
        self._cancel_watchdog()
        self._close_pipes()
        self._finished = True
        rc = self._proc.returncode
        tail = self.stderr_tail() or "(no error output)"
        error = subprocess.CalledProcessError(rc if rc is not None else -1, self.argv,
                                              stderr=tail)
        if cause is not None:
            error.__cause__ = cause
        raise MediaError(f"ffmpeg failed (exit {rc}): {tail}") from error


def _tick(fields: dict[str, str], *, done: bool) -> Tick:
    def number(key: str) -> float | None:
        try:
            return float(fields.get(key, "").rstrip("x"))
        except ValueError:
            return None

    frame = number("frame")
    out_us = number("out_time_us")
    return Tick(frame=int(frame or 0), seconds=max(0.0, (out_us or 0.0) / 1e6),
                speed=number("speed"), done=done)
