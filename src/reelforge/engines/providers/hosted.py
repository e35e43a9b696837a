"""The shared half of the hosted-provider engines: ``HostedEngine`` (the submit → poll
→ download → conform loop), the ``Task`` a subclass reports, the provider error helpers
and the input-image helper. The overview (the loop, shapes and lengths, trust, errors)
is the package's docstring, in ``reelforge/engines/providers/__init__.py``.
"""

from __future__ import annotations

import abc
import email.utils
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
from PIL import Image, ImageOps

from reelforge.config import Settings
from reelforge.core.fetch import fetch_to_file
from reelforge.engines.base import (ASPECT_RATIOS, QUALITIES, Artifact, Capabilities,
                                    Engine, JobSpec, Progress)
from reelforge.engines.local.context import RenderContext, deadline_after, encode
from reelforge.errors import (EngineError, Invalid, ReelforgeError, UnsafeUrl,
                              UnsupportedMode)
from reelforge.media import render
from reelforge.media.ffmpeg import FFmpeg, ffmpeg_for
from reelforge.media.probe import MediaInfo, inspect_file
from reelforge.media.render import AudioTrack, planes_of
from reelforge.media.sniff import sniff_file
from reelforge.media.video import SourceVideo, decode, frame_count

log = logging.getLogger(__name__)

DURATIONS = (5, 10)  # what our clip modes ask for (core/options.py)
FPS_VALUES = (24, 30)
MAX_RETRIES = 5  # waits for 429/503 (and, when polling, 5xx or network errors)
MAX_WAIT_S = 60.0  # the longest single wait a Retry-After may ask for
CANCEL_TIMEOUT_S = 10.0
TEXT_LIMIT = 1000  # characters of a provider's message quoted in an error


@dataclass(frozen=True)
class Task:
    """A provider task's state, in the loop's words."""

    id: str
    state: str  # running | succeeded | failed | cancelled
    progress: float | None = None  # 0..1 when the provider says
    output: str | None = None  # the video's URL once succeeded (None: the subclass knows)
    failure: str = ""
    code: str = ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def provider_text(response: httpx.Response) -> str:
    """What the provider said, from Runway's ``{"error", "issues"}`` (plus our dialect's
    ``fix``) or OpenAI's ``{"error": {"message", "code"}}``, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or ""))
        elif error:
            parts.append(str(error))
        for issue in body.get("issues") or []:
            if isinstance(issue, dict) and issue.get("message"):
                where = ".".join(str(p) for p in issue.get("path") or [])
                parts.append(f"{where}: {issue['message']}" if where else str(issue["message"]))
        if body.get("fix"):
            parts.append(str(body["fix"]))
    text = " ".join(p.strip() for p in parts if p and p.strip()) or response.text.strip()
    text = text or response.reason_phrase or "no details"
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def provider_error(message: str, fix: str, code: str, *,
                   retryable: bool = False) -> EngineError:
    """A provider failure; ``retryable`` ones are run again by the worker (a new task)."""
    err = EngineError(message, fix=fix, code=code)
    err.retryable = retryable
    return err


class HostedEngine(Engine):
    """The submit → poll → download → conform loop around a provider's task API."""

    priority: ClassVar[int] = 40
    offers: ClassVar[tuple[str, ...]] = ("text_to_video", "image_to_video")
    provider: ClassVar[str] = ""  # the vendor's name, in messages
    key_env: ClassVar[str] = ""  # the setting that holds the key, as an env var
    model_env: ClassVar[str] = ""

    def __init__(self, settings: Settings, *, api_key: str, base_url: str, model: str,
                 modes: list[str] | tuple[str, ...]) -> None:
        self.settings, self.api_key, self.model = settings, api_key, model
        self.base_url = base_url.rstrip("/")
        self.modes = tuple(m for m in self.offers if m in modes)

    # ------------------------------------------------------------ what subclasses say

    def headers(self) -> dict[str, str]:
        """Headers every call carries (the key goes as ``Authorization: Bearer``)."""
        return {}

    @abc.abstractmethod
    def create(self, http: httpx.Client, spec: JobSpec, inputs: dict[str, Any],
               progress: Progress) -> str:
        """Create the provider's task; return its id."""

    @abc.abstractmethod
    def poll(self, http: httpx.Client, task_id: str, progress: Progress) -> Task: ...

    @abc.abstractmethod
    def cancel(self, http: httpx.Client, task_id: str) -> None: ...

    def output_url(self, task: Task) -> str:
        """Where the finished video is (absolute, or relative to the base URL)."""
        if not task.output:
            raise provider_error(
                f"{self.provider} reported task {task.id} done without an output.",
                "Submit the job again.", "provider_failed", retryable=True)
        return task.output

    @property
    def makes_1080p(self) -> bool:
        """Whether the configured model makes 1080p (else 1080p is refused, not faked)."""
        return False

    def check_options(self, mode: str, options: dict[str, Any]) -> None:
        """Refuse at submit what the provider would refuse, or could only fake."""
        if mode == "text_to_video" and not str(options.get("prompt") or "").strip():
            raise Invalid("text_to_video needs a prompt.", field="prompt",
                          fix="Describe the video to generate in prompt.")
        if options.get("quality") == "1080p" and not self.makes_1080p:
            raise Invalid(f"{self.provider}'s model {self.model} makes 720p videos.",
                          field="quality", fix=f"Ask for 720p, or set {self.model_env} to a "
                                               f"model that makes 1080p.")

    # ------------------------------------------------------------ the Engine interface

    def capabilities(self) -> Capabilities:
        where = f"{self.provider} ({self.base_url}, model {self.model})"
        return Capabilities(
            engine=self.name, modes=self.modes,
            description=f"Hosted generation by {where}: a new video from the prompt (and "
                        "the first frame for image_to_video), re-encoded to this "
                        "server's output format. Needs the network and a paid key.",
            options={mode: self._mode_options(mode) for mode in self.modes})

    def _mode_options(self, mode: str) -> dict[str, Any]:
        return {
            "description": f"{mode} by {self.provider} ({self.model}).",
            "inputs": {"image": "required"} if mode == "image_to_video" else {},
            "prompt": {"type": "string", "required": mode == "text_to_video"},
            "duration": {"values": list(DURATIONS), "default": 5, "unit": "s"},
            "quality": {"values": list(QUALITIES) if self.makes_1080p else ["720p"],
                        "default": "720p", "rule": "1080p only with duration 5"},
            "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9"},
            "fps": {"values": list(FPS_VALUES), "default": 24},
            "seed": {"type": "integer", "description": "Passed on where the provider "
                                                       "takes one."},
            "watermark": {"type": "string", "default": None},
            "outputs": ["video", "poster", "spritesheet"],
        }

    def output_seconds(self, mode: str, options: dict[str, Any]) -> float:
        self._check_mode(mode)
        self.check_options(mode, options)
        return float(options.get("duration") or 5)

    def _check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            raise UnsupportedMode(f"The {self.name} engine is not set to do {mode}.",
                                  fix=f"Add {mode} to REELFORGE_{self.name.upper()}_MODES "
                                      f"(it offers {', '.join(self.offers)}).")

    def run(self, spec: JobSpec, inputs: dict[str, Any], workdir: Path,
            progress: Progress) -> list[Artifact]:
        self._check_mode(spec.mode)
        workdir.mkdir(parents=True, exist_ok=True)
        progress("generating", 0.0)
        with self._client() as http:
            task_id = self.create(http, spec, inputs, progress)
            log.info("job %s: %s task %s created", spec.job_id, self.provider, task_id)
            try:
                task = self._wait(http, task_id, progress)
            except BaseException:  # cancelled, timed out, lease lost, provider gone
                self._cancel_quietly(http, task_id)
                raise
            if task.state != "succeeded":
                raise self._task_error(task)
            video = self._download(http, self.output_url(task), workdir / "provider.mp4",
                                   progress)
        return self._conform(spec, video, workdir, progress, task)

    # ------------------------------------------------------------ HTTP

    def _client(self) -> httpx.Client:
        # trust_env=False: settings are the only configuration (no proxy from the env).
        return httpx.Client(
            base_url=self.base_url, trust_env=False, follow_redirects=False,
            timeout=httpx.Timeout(self.settings.provider_timeout_s),
            headers={"Authorization": f"Bearer {self.api_key}", **self.headers()})

    def call(self, http: httpx.Client, method: str, path: str, progress: Progress, *,
             create: bool = False, **kwargs: Any) -> httpx.Response:
        """One API call; 429 and 503 are waited out, and (except when creating, where
        a retry could start a second paid task) other 5xx and network errors too."""
        for attempt in range(MAX_RETRIES + 1):
            last = attempt == MAX_RETRIES
            try:
                response = http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if create or last:
                    raise self._unreachable(exc) from exc
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status < 400:
                    return response
                transient = status in (429, 503) or (status >= 500 and not create)
                if not transient or last:
                    raise self.refusal(response)
                wait = min(MAX_WAIT_S, _retry_after(response) or self._backoff(attempt))
                log.info("%s answered %d to %s %s; retrying in %.1f s", self.provider, status,
                         method, path, wait)
            self._sleep(wait, progress, "generating", 0.0)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(MAX_WAIT_S, max(self.settings.provider_poll_s, 0.25) * 2 ** attempt)

    def json_of(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise provider_error(
                f"{self.provider} answered {response.request.method} "
                f"{response.request.url.path} with something other than a JSON "
                f"object: {response.text[:200]!r}",
                f"Check that {self.base_env} points at the {self.provider} API.",
                "provider_unavailable")
        return body

    def refusal(self, response: httpx.Response) -> EngineError:
        """The error for a provider's 4xx/5xx answer."""
        status, text = response.status_code, provider_text(response)
        said = f"(HTTP {status}): {text}"
        if status == 401:
            return provider_error(
                f"{self.provider} refused the API key {said}",
                f"Set {self.key_env} to a valid {self.provider} API key (and "
                f"{self.base_env} to the endpoint it belongs to).", "provider_auth")
        if status == 403:
            return provider_error(
                f"{self.provider} refused access {said}",
                f"Check that the key in {self.key_env} may use model {self.model} "
                f"({self.model_env}) and that its account is in good standing.",
                "provider_auth")
        if status == 429:
            return provider_error(
                f"{self.provider} kept refusing for rate or quota limits {said}",
                f"Wait, send fewer jobs to {self.provider} at once, or raise the "
                "account's tier or credits with the provider.",
                "provider_rate_limited")
        if status >= 500:
            return provider_error(f"{self.provider} is failing {said}",
                                  f"Retry later; check {self.provider}'s status page.",
                                  "provider_unavailable", retryable=True)
        return provider_error(
            f"{self.provider} refused the request {said}",
            "Change what its message names (prompt, image, duration, aspect_ratio, "
            f"quality), or the model ({self.model_env}={self.model}).",
            "provider_refused")

    @property
    def base_env(self) -> str:
        return f"REELFORGE_{self.name.upper()}_BASE_URL"

    def _unreachable(self, exc: httpx.HTTPError) -> EngineError:
        what = "did not answer in time" if isinstance(exc, httpx.TimeoutException) \
            else f"could not be reached ({type(exc).__name__}: {exc})"
        return provider_error(
            f"{self.provider} at {self.base_url} {what}.",
            f"Check the network and {self.base_env}; raise "
            "REELFORGE_PROVIDER_TIMEOUT_S for a slow link.", "provider_unavailable",
            retryable=True)

    def _sleep(self, seconds: float, progress: Progress, stage: str, fraction: float) -> None:
        """Wait, telling ``progress`` at least every second (so a cancel stops it)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 1.0))
            progress(stage, fraction)

    # ------------------------------------------------------------ the loop

    def _wait(self, http: httpx.Client, task_id: str, progress: Progress) -> Task:
        """Poll until the task ends; returns it (succeeded, failed or cancelled)."""
        fraction = 0.0
        while True:
            task = self.poll(http, task_id, progress)
            if task.state != "running":
                return task
            if task.progress is not None:
                fraction = max(fraction, min(1.0, task.progress))
            progress("generating", fraction)
            self._sleep(self.settings.provider_poll_s, progress, "generating", fraction)

    def _cancel_quietly(self, http: httpx.Client, task_id: str) -> None:
        try:
            self.cancel(http, task_id)
            log.info("%s task %s cancelled", self.provider, task_id)
        except Exception as exc:  # best effort: the job stops whatever the answer
            log.warning("could not cancel %s task %s: %s", self.provider, task_id, exc)

    def _task_error(self, task: Task) -> EngineError:
        if task.state == "cancelled":
            return provider_error(f"The {self.provider} task {task.id} was cancelled on "
                                  f"{self.provider}'s side.", "Submit the job again.",
                                  "provider_cancelled")
        code = f" ({task.code})" if task.code else ""
        safety = any(w in task.code.lower() for w in ("safety", "moderation"))
        return provider_error(
            f"{self.provider} could not make the video{code}: "
            f"{task.failure or 'no reason given'}",
            "Change the prompt or image: the provider's moderation refused them."
            if safety else "Change the prompt or image if the message points at "
                           "them; otherwise submit the job again.",
            "provider_failed")

    # ------------------------------------------------------------ download

    def _download(self, http: httpx.Client, url: str, dest: Path,
                  progress: Progress) -> Path:
        target = httpx.URL(self.base_url + "/").join(url)
        home = _origin(httpx.URL(self.base_url))
        limits = self.settings.limits
        for _ in range(limits.fetch_max_redirects + 1):
            if _origin(target) != home:
                return self._fetch_elsewhere(str(target), dest)
            location = self._stream(http, target, dest, progress)
            if location is None:
                return dest
            target = target.join(location)
        raise provider_error(
            f"{self.provider}'s output URL redirected more than "
            f"{limits.fetch_max_redirects} times.", "Submit the job again.",
            "provider_output")

    def _stream(self, http: httpx.Client, url: httpx.URL, dest: Path,
                progress: Progress) -> str | None:
        """GET ``url`` (on the provider's own origin) into ``dest``; the Location of a
        redirect instead, if it answers one."""
        cap = self.settings.limits.max_upload_bytes
        part = dest.with_name(dest.name + ".part")
        try:
            with http.stream("GET", url) as response:
                if response.is_redirect:
                    return response.headers["location"]
                if response.status_code >= 400:
                    response.read()
                    raise self.refusal(response)
                declared = response.headers.get("content-length", "")
                total = int(declared) if declared.isdigit() else 0
                if total > cap:
                    raise self._too_big(total, cap)
                size = 0
                with open(part, "wb") as f:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > cap:
                            raise self._too_big(size, cap)
                        f.write(chunk)
                        progress("downloading", size / total if total else 0.0)
            part.replace(dest)
            return None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        finally:
            part.unlink(missing_ok=True)

    def _fetch_elsewhere(self, url: str, dest: Path) -> Path:
        """An output URL on another host (a CDN): through the address guard."""
        limits = self.settings.limits
        try:
            fetch_to_file(url, dest, max_bytes=limits.max_upload_bytes,
                          timeout_s=limits.fetch_timeout_s,
                          max_redirects=limits.fetch_max_redirects, allow_http=True,
                          trusted=list(self.settings.trusted_networks))
        except ReelforgeError as exc:
            fix = exc.fix
            if isinstance(exc, UnsafeUrl):
                fix = ("Operators: if the provider's CDN really is on a private network, "
                       "list it in REELFORGE_TRUSTED_NETWORKS.")
            raise provider_error(f"The video {self.provider} made could not be downloaded: "
                                 f"{exc.message}", fix, "provider_output",
                                 retryable=exc.code == "source_unavailable") from exc
        return dest

    def _too_big(self, size: int, cap: int) -> EngineError:
        return provider_error(
            f"{self.provider}'s video is over {size / 2**20:.1f} MiB, beyond the "
            f"{cap / 2**20:.0f} MiB limit.", "Raise REELFORGE_LIMITS__MAX_UPLOAD_BYTES,"
            " or ask for a shorter or smaller video.", "provider_output")

    # ------------------------------------------------------------ conform

    @property
    def ffmpeg(self) -> FFmpeg:
        return ffmpeg_for(self.settings.ffmpeg_path)

    def _source(self, path: Path) -> SourceVideo:
        """The downloaded file, checked as strictly as an upload."""
        try:
            facts = inspect_file(path, self.settings.limits, expect={"video"})
        except ReelforgeError as exc:
            raise provider_error(
                f"{self.provider} returned a video this server will not use: "
                f"{exc.message}", exc.fix, "provider_output") from exc
        info = facts.info
        assert isinstance(info, MediaInfo) and info.width and info.height
        return SourceVideo(path, info.width, info.height, float(info.fps or 24.0),
                           info.duration, info.has_audio, facts.size_bytes)

    def _conform(self, spec: JobSpec, video: Path, workdir: Path, progress: Progress,
                 task: Task) -> list[Artifact]:
        opts = spec.options
        src = self._source(video)
        ctx = RenderContext(self.settings, self.ffmpeg, workdir, progress,
                            deadline_after(self.settings.job_timeout_s))
        width, height = ctx.output_size(opts.get("quality") or "720p",
                                        opts.get("aspect_ratio") or "16:9")
        fps = float(opts.get("fps") or 24)
        seconds = float(opts.get("duration") or 5)
        total = max(1, round(seconds * fps))
        have = min(total, frame_count(src, fps, seconds))
        frames = decode(ctx.ffmpeg, src, width, height, fps, have, pix_fmt="yuv420p",
                        deadline=ctx.deadline)
        watermark = opts.get("watermark")
        overlay = render.text_overlay(watermark, width, height) if watermark else None
        audio = AudioTrack(src.path, seconds=seconds, optional=True) if src.has_audio else None
        meta = {"provider": self.name, "provider_task": task.id, "model": self.model,
                "provider_size": f"{src.width}x{src.height}",
                "provider_seconds": round(src.duration, 3)}
        progress("rendering", 0.0)
        rendered = encode(ctx, _held(frames, total, width, height, overlay), width=width,
                          height=height, fps=fps, total=total, audio=audio, meta=meta)
        return rendered.artifacts()


def _held(frames: Iterator[np.ndarray], total: int, width: int, height: int,
          overlay: render.Overlay | None) -> Iterator[np.ndarray]:
    """Exactly ``total`` frames: the decoded ones (watermarked), then the last held."""
    count, held = 0, np.empty(width * height * 3 // 2, np.uint8)
    for frame in frames:  # decode reuses its buffer: the last frame is kept in ``held``
        if overlay is not None:
            overlay.blend(planes_of(frame, width, height))
        np.copyto(held, frame)
        count += 1
        yield frame
        if count == total:
            return
    for _ in range(total - count):  # decode raises when nothing decodes
        yield held


def image_bytes(path: Path, *, size: tuple[int, int] | None = None,
                max_bytes: int | None = None, max_side: int = 2048) -> tuple[bytes, str]:
    """An input image as (bytes, content type): as it is when it fits ``max_bytes``, else
    (or when ``size`` is given: cropped and scaled to exactly that) a JPEG."""
    media = sniff_file(path)
    if size is None and (max_bytes is None or path.stat().st_size <= max_bytes):
        return path.read_bytes(), media.content_type
    with Image.open(path, formats=[media.demuxer]) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if size is not None:
            im = ImageOps.fit(im, size, Image.Resampling.LANCZOS)
        else:
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        im.save(out, "JPEG", quality=90)
    return out.getvalue(), "image/jpeg"


def is_portrait(aspect_ratio: str) -> bool:
    a, b = (int(x) for x in aspect_ratio.split(":"))
    return a < b
