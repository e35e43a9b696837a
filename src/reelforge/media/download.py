"""Sources given by URL: direct media links through the address guard, site links
(YouTube and ~1000 others) through yt-dlp, an optional extra.

Direct links go through :func:`reelforge.core.fetch.fetch_to_file`: every hop checked
by the guard, the size capped, nothing left behind on failure.

yt-dlp runs as a subprocess of the same Python, with a fixed, safe command line:
``--ignore-config`` and ``--no-plugin-dirs`` (no config or plugin from the machine),
``--no-exec`` and no ``--exec`` (it runs nothing), no cookies or netrc, no playlists,
one download, a duration filter and ``--max-filesize``, a fixed output template in a
folder of its own, and an environment with nothing but ``PATH``. The page URL is
checked by the guard first; yt-dlp's own requests (the media URLs it finds) are not,
which is why the route can be turned off (``ytdlp_enabled``). A watchdog kills it when
the download outgrows the cap (a stream may not declare its size) or the deadline.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import Invalid, SourceUnavailable, TooLarge, UnsupportedMedia
from .ffmpeg import find_ffmpeg

DIRECT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")
OUTPUT_STEM = "source"
Progress = Callable[[float], None]


def ytdlp_available() -> bool:
    try:
        import yt_dlp  # noqa: F401
    except ImportError:
        return False
    return True


def is_direct(url: str) -> bool:
    """A link to a media file itself (judged by its path), not to a page."""
    return urlsplit(url).path.lower().endswith(DIRECT_SUFFIXES)


def check_source_url(url: object) -> str:
    """Submit-time check of ``source_url`` (form only; the guard runs at download)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise Invalid("source_url must be a URL of at most 2048 characters.",
                      fix="Send the video's public http(s) URL.", field="source_url")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"source_url {url[:80]!r} is not an http(s) URL.",
                      fix="Send a public https:// link to the video or its page.",
                      field="source_url")
    return url.strip()


def download(url: str, folder: Path, *, settings: object, progress: Progress,
             deadline: float) -> Path:
    """Fetch ``url`` into ``folder``; returns the file. Raises a user-facing error."""
    from ..core.fetch import check_url

    limits = settings.limits  # type: ignore[attr-defined]
    trusted = list(getattr(settings, "trusted_networks", []))
    folder.mkdir(parents=True, exist_ok=True)
    check_url(url, allow_http=True, trusted=trusted)
    if not is_direct(url) and getattr(settings, "ytdlp_enabled", True) and ytdlp_available():
        return download_with_ytdlp(url, folder, max_bytes=limits.max_upload_bytes,
                                   max_seconds=float(getattr(settings, "ytdlp_max_seconds",
                                                             limits.max_media_seconds)),
                                   ffmpeg_path=find_ffmpeg(getattr(settings, "ffmpeg_path", "")),
                                   progress=progress, deadline=deadline)
    try:
        return _direct(url, folder, limits, trusted, progress, deadline)
    except UnsupportedMedia as exc:
        if is_direct(url) or "HTML page" not in exc.message:
            raise
        hint = ("install yt-dlp on the server (`pip install 'reelforge[sites]'`) to fetch "
                "site links, or send the direct link to the video file"
                if not ytdlp_available() else
                "site links are turned off here (ytdlp_enabled = false); send the direct "
                "link to the video file")
        raise UnsupportedMedia(f"{url[:80]} is a web page, not a video file.",
                               fix=hint[0].upper() + hint[1:] + ".") from exc


def _direct(url: str, folder: Path, limits: object, trusted: list[str], progress: Progress,
            deadline: float) -> Path:
    """fetch_to_file in a thread, so the job's heartbeat keeps going meanwhile."""
    from ..core.fetch import fetch_to_file
    from .sniff import sniff_file

    dest = folder / "source.bin"
    part = dest.with_name(dest.name + ".part")
    result: dict[str, object] = {}
    stop = threading.Event()

    def work() -> None:
        try:
            result["ok"] = fetch_to_file(
                url, dest, max_bytes=limits.max_upload_bytes,  # type: ignore[attr-defined]
                timeout_s=max(5.0, deadline - time.monotonic()),
                max_redirects=getattr(limits, "fetch_max_redirects", 5), trusted=trusted,
                stopped=stop.is_set)
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=work, name="clips-download", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.25)
            size = part.stat().st_size if part.exists() else 0
            progress(1.0 - 2.0 ** (-size / 50e6))  # unknown total: creeps towards 1
    except BaseException:  # cancelled, timed out or lost the lease: stop downloading
        stop.set()
        thread.join(5.0)
        raise
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    kind = sniff_file(dest)
    final = dest.with_name(f"{OUTPUT_STEM}.{kind.format}")
    dest.replace(final)
    return final


def ytdlp_command(url: str, folder: Path, *, max_bytes: int, max_seconds: float,
                  ffmpeg_path: str) -> list[str]:
    """The fixed yt-dlp command line (see the module docstring)."""
    fmt = ("bv*[height<=1080][ext=mp4]+ba[ext=m4a]/b[height<=1080][ext=mp4]/"
           "bv*[height<=1080]+ba/b[height<=1080]/b")
    return [sys.executable, "-m", "yt_dlp", "--ignore-config", "--no-plugin-dirs",
            "--no-exec", "--no-batch-file", "--no-cookies", "--no-cookies-from-browser",
            "--no-playlist", "--max-downloads", "1", "--no-cache-dir", "--no-mtime",
            "--restrict-filenames", "--no-write-info-json", "--no-write-comments",
            "--no-write-thumbnail", "--no-write-subs",
            "--max-filesize", str(max_bytes),
            "--match-filters", f"!is_live & duration <=? {int(max_seconds)}",
            "-f", fmt, "--merge-output-format", "mp4", "--ffmpeg-location", ffmpeg_path,
            "-P", str(folder), "-o", f"{OUTPUT_STEM}.%(ext)s",
            "--newline", "--progress-template", "download:PROGRESS %(progress.downloaded_bytes)s "
            "%(progress.total_bytes)s %(progress.total_bytes_estimate)s",
            "--socket-timeout", "30", "--retries", "3", "--no-color", "--", url]


def download_with_ytdlp(url: str, folder: Path, *, max_bytes: int, max_seconds: float,
                        ffmpeg_path: str, progress: Progress, deadline: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = ytdlp_command(url, folder, max_bytes=max_bytes, max_seconds=max_seconds,
                        ffmpeg_path=ffmpeg_path)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
           "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=folder, env=env,
                            start_new_session=True)
    tail: list[str] = []
    stop: list[BaseException] = []

    def watch() -> None:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                stop.append(SourceUnavailable(
                    "Downloading the video took too long and was stopped.",
                    fix="Send a shorter video, or upload the file instead."))
                _kill(proc)
                return
            if _folder_bytes(folder) > max_bytes:
                stop.append(TooLarge(f"The video at the link is larger than "
                                     f"{max_bytes / 2**20:.0f} MiB.",
                                     fix="Send a shorter or lower-resolution video."))
                _kill(proc)
                return
            time.sleep(0.5)

    watchdog = threading.Thread(target=watch, daemon=True)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("PROGRESS "):
                progress(_fraction(line))
            elif line:
                tail = (tail + [line])[-12:]
        proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        watchdog.join(timeout=2)
    if stop:
        raise stop[0]
    files = [p for p in folder.glob(f"{OUTPUT_STEM}.*")
             if p.suffix.lower() in (".mp4", ".mkv", ".webm", ".mov") and p.is_file()]
    if proc.returncode not in (0, 101) or not files:  # 101: --max-downloads reached
        raise _ytdlp_error(tail, max_seconds, max_bytes)
    path = max(files, key=lambda p: p.stat().st_size)
    _check_duration(path, max_seconds)  # the site may not have said how long it was
    return path


def _check_duration(path: Path, max_seconds: float) -> None:
    from .probe import probe_av
    from .sniff import sniff_file

    info = probe_av(path, sniff_file(path).demuxer)
    if info.duration > max_seconds:
        path.unlink(missing_ok=True)
        raise Invalid(f"The video is {_span(info.duration)} long, longer than the "
                      f"{_span(max_seconds)} allowed for links.",
                      fix="Send a shorter video, or trim it and upload it.")


def _fraction(line: str) -> float:
    parts = line.split()
    try:
        done = float(parts[1])
        total = next((float(p) for p in parts[2:] if p not in ("NA", "None")), 0.0)
    except (IndexError, ValueError):
        return 0.0
    return min(1.0, done / total) if total > 0 else 0.0


def _ytdlp_error(tail: list[str], max_seconds: float, max_bytes: int) -> Exception:
    text = "\n".join(tail)
    if "does not pass filter" in text:
        return Invalid(f"The video is longer than {_span(max_seconds)}, or is a live stream.",
                       fix="Send a shorter video, or trim it and upload it.")
    if "larger than max-filesize" in text or "File is larger" in text:
        return TooLarge(f"The video at the link is larger than {max_bytes / 2**20:.0f} MiB.",
                        fix="Send a shorter or lower-resolution video.")
    if re.search(r"Unsupported URL|is not a valid URL", text):
        return UnsupportedMedia("No video was found at that link.",
                                fix="Send a link to a video page or to the video file itself.")
    last = next((ln for ln in reversed(tail) if "ERROR" in ln), tail[-1] if tail else "")
    return SourceUnavailable(f"The video could not be downloaded: {last[:300]}",
                             fix="Check that the link is public and plays without signing "
                                 "in, or upload the file instead.")


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _folder_bytes(folder: Path) -> int:
    total = 0
    for p in folder.iterdir():
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def _kill(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
