"""The ``diffusers`` engine: text_to_video with a local Hugging Face diffusers pipeline.

Off until ``diffusers_model`` names a folder holding a saved text-to-video pipeline
(``model_index.json`` plus each component's weights). torch and diffusers are imported
only once a model is named, so this module always imports and the engine always
registers (its ``enabled_by`` is how a refusal of text_to_video names the fix). The
pipeline is loaded on the first job, once, with ``local_files_only=True``: nothing is
ever downloaded.

One pass of the model makes a short clip (at most ``diffusers_max_frames`` frames, at the
model's native size reshaped to the requested aspect ratio); the clip is stretched to
``duration`` seconds at ``fps`` by blending neighbouring frames, resized to the promised
size with OpenCV and encoded like every local render (``local/context.encode``).

The pipeline runs on a thread of its own, one job at a time (pipelines keep per-call
state), while the job's thread alone calls ``progress``: per denoising step, and every
``KEEPALIVE_S`` seconds while the model loads or the VAE decodes, so the lease stays
renewed. When ``progress`` raises, the pipeline stops at its next step and the exception
propagates.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import Settings
from ..errors import EngineError, UnsupportedMode
from ..media import render
from ..media.ffmpeg import FFmpeg, ffmpeg_for
from .base import (ASPECT_RATIOS, QUALITIES, STYLES, Artifact, Capabilities, Engine, JobSpec,
                   Progress)
from .local import context
from .local.context import RenderContext, deadline_after
from .registry import register

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")
DURATIONS = (5, 10)
FPS_VALUES = (24, 30)
KEEPALIVE_S = 1.0  # progress is called at least this often while the model works
STOP_WAIT_S = 30.0  # how long a stopped job waits for the pipeline to let go
SETTING = "REELFORGE_DIFFUSERS_MODEL"
INSTALL = ("pip install 'reelforge[diffusers]' plus torch for your hardware "
           "(https://pytorch.org/get-started/locally/)")
# Each style becomes a phrase after the prompt (the prompt comes first, so a long prompt
# keeps its own words when the text encoder truncates).
STYLE_PHRASES = {
    "cinematic": "cinematic lighting, shallow depth of field, film grain",
    "dramatic": "dramatic lighting, high contrast, moody atmosphere",
    "dreamy": "dreamy soft focus, pastel colours, gentle glow",
    "energetic": "dynamic motion, vivid saturated colours",
    "minimal": "minimalist composition, clean background, soft light",
    "vintage": "vintage film look, warm faded colours, grain",
    "corporate": "clean professional look, bright even lighting",
    "luxury": "luxurious and elegant, rich golden tones",
}
NEGATIVE_PROMPT = "blurry, low quality, distorted, deformed, watermark, text, jpeg artifacts"


class _Stopped(Exception):
    """Raised inside the pipeline's step callback when the job must stop."""


@dataclass(frozen=True)
class Loaded:
    """A loaded pipeline and what reelforge needs to know to call it."""

    pipe: Any
    device: str
    params: frozenset[str]  # keyword arguments its __call__ accepts
    native: tuple[int, int]  # (width, height) the model was trained for
    multiple: int  # generated sides are multiples of this
    temporal: int  # frame counts are k * temporal + 1 (1: any count)
    default_frames: int | None  # the pipeline's own num_frames default


@register
class DiffusersEngine(Engine):
    name = "diffusers"
    priority = 60  # a configured generative model is preferred over the local fallback
    offers = ("text_to_video",)
    enabled_by = (f"set {SETTING} to a local folder holding a diffusers text-to-video "
                  "pipeline (pip install 'reelforge[diffusers]' and torch for your hardware)")

    def __init__(self, settings: Settings, folder: Path, pipeline_class: str) -> None:
        self.settings = settings
        self.folder = folder
        self.pipeline_class = pipeline_class
        self._lock = threading.Lock()  # guards _future
        self._gpu = threading.Lock()  # one pipeline call at a time
        self._future: Future[Loaded] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_settings(cls, settings: Settings) -> DiffusersEngine | None:
        """None when ``diffusers_model`` is empty; a ``ValueError`` naming the setting and
        the fix when it is set but cannot work (as the runtime does for a bad storage or
        broker URL), so a misconfiguration stops the server at start, not at the first job.
        """
        configured = str(getattr(settings, "diffusers_model", "") or "").strip()
        if not configured:
            return None
        folder = Path(configured).expanduser()
        index = folder / "model_index.json"
        if not index.is_file():
            what = "is not a folder" if not folder.is_dir() else "holds no model_index.json"
            raise ValueError(
                f"{SETTING}={configured!r} {what}: it must name a local folder holding a "
                "diffusers text-to-video pipeline saved with save_pretrained (model_index.json "
                "plus one folder per component). Download one beforehand, e.g. `hf download "
                "<repo> --local-dir <folder>`, or unset the setting to turn the engine off.")
        try:
            pipeline_class = str(json.loads(index.read_text()).get("_class_name") or "")
        except (OSError, ValueError, AttributeError) as exc:
            raise ValueError(f"{SETTING}: {index} is not a readable JSON object ({exc}); "
                             "save the pipeline again with save_pretrained.") from exc
        missing = [name for name in ("torch", "diffusers") if not _installed(name)]
        if missing:
            raise ValueError(f"{SETTING} is set but {' and '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL}, "
                             "or unset the setting to turn the engine off.")
        device = str(getattr(settings, "diffusers_device", "auto") or "auto").lower()
        if device not in DEVICES:
            raise ValueError(f"REELFORGE_DIFFUSERS_DEVICE={device!r} is not one of "
                             f"{', '.join(DEVICES)}.")
        if settings.diffusers_steps < 1 or settings.diffusers_max_frames < 1:
            raise ValueError("REELFORGE_DIFFUSERS_STEPS and REELFORGE_DIFFUSERS_MAX_FRAMES "
                             "must be at least 1.")
        return cls(settings, folder, pipeline_class or "unknown pipeline")

    @property
    def ffmpeg(self) -> FFmpeg:
        return ffmpeg_for(self.settings.ffmpeg_path)

    def load(self) -> Loaded:
        """The pipeline, loaded on first use (blocking). Jobs wait through ``_loaded``."""
        return self._load_future().result()

    def _load_future(self) -> Future[Loaded]:
        with self._lock:
            failed = (self._future is not None and self._future.done()
                      and self._future.exception() is not None)
            if self._future is None or failed:  # a failed load is tried again next job
                self._future = _in_thread(self._load, "reelforge-diffusers-load")
            return self._future

    def _load(self) -> Loaded:
        import torch
        from diffusers import DiffusionPipeline

        device = _pick_device(str(self.settings.diffusers_device or "auto").lower(), torch)
        dtype = _dtype_for(device, torch)
        log.info("loading diffusers pipeline %s from %s on %s (%s)", self.pipeline_class,
                 self.folder, device, dtype)
        try:
            pipe = DiffusionPipeline.from_pretrained(
                str(self.folder), local_files_only=True, **{_dtype_kwarg(): dtype})
            pipe = pipe.to(device)
        except Exception as exc:  # the details (paths included) go to the server log only
            log.exception("could not load the diffusers pipeline from %s", self.folder)
            raise _fatal(f"The diffusers model '{self.folder.name}' could not be loaded "
                         f"({type(exc).__name__}); the server log has the details.",
                         fix=f"Operators: check that {SETTING} holds a complete pipeline "
                             "(model_index.json and every component's weights, downloaded "
                             "beforehand: reelforge never downloads), and that its libraries "
                             f"are installed: {INSTALL}.") from exc
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return _describe(pipe, device, self.folder)

    # ------------------------------------------------------------------ the interface

    def capabilities(self) -> Capabilities:
        steps, frames = self.settings.diffusers_steps, self.settings.diffusers_max_frames
        description = (
            f"Generative text_to_video with the local diffusers pipeline {self.pipeline_class} "
            f"from the folder '{self.folder.name}' ({steps} denoising steps). One pass makes "
            f"a short clip of up to {frames} frames at the model's native size; it is "
            "stretched to the requested duration by blending neighbouring frames (simple "
            "frame blending, not motion interpolation), upscaled to the output size with "
            "OpenCV, and encoded to H.264 MP4 with a poster and a spritesheet.")
        return Capabilities(
            engine=self.name, modes=self.offers, description=description,
            options={"text_to_video": {
                "description": description,
                "inputs": {},
                "prompt": {"type": "string", "required": True,
                           "description": "What the video shows."},
                "style": {"values": list(STYLES), "default": "cinematic",
                          "descriptions": dict(STYLE_PHRASES),
                          "description": "Added to the prompt as the phrase listed."},
                "duration": {"values": list(DURATIONS), "default": 5, "unit": "s"},
                "quality": {"values": list(QUALITIES), "default": "720p",
                            "rule": "1080p only with duration 5"},
                "aspect_ratio": {"values": list(ASPECT_RATIOS), "default": "16:9"},
                "fps": {"values": list(FPS_VALUES), "default": 24},
                "seed": {"type": "integer", "default": None,
                         "description": "Same seed and prompt give the same video on the "
                                        "same hardware; without one each job picks its own, "
                                        "reported as the video's seed."},
                "watermark": {"type": "string", "default": None,
                              "description": "Text drawn in the bottom-right corner."},
                "generation": {"max_frames_per_pass": frames, "steps": steps,
                               "interpolation": "frame blending"},
                "outputs": ["video", "poster", "spritesheet"],
            }})

    def output_seconds(self, mode: str, options: dict[str, Any]) -> float:
        self._check_mode(mode)
        return float(options.get("duration") or 5)

    def run(self, spec: JobSpec, inputs: dict[str, Any], workdir: Path,
            progress: Progress) -> list[Artifact]:
        self._check_mode(spec.mode)
        opts = spec.options
        fps, duration = int(opts.get("fps") or 24), int(opts.get("duration") or 5)
        total = fps * duration
        ctx = RenderContext(self.settings, self.ffmpeg, workdir, progress,
                            deadline_after(self.settings.job_timeout_s))
        width, height = ctx.output_size(str(opts.get("quality") or "720p"),
                                        str(opts.get("aspect_ratio") or "16:9"))
        seed = _seed(opts.get("seed"), spec.job_id)
        watermark = str(opts["watermark"]) if opts.get("watermark") else None
        mark = render.watermark_rgba(watermark, width, height) if watermark else None

        loaded = self._loaded(progress)
        gen_w, gen_h = generation_size(loaded.native, width / height, loaded.multiple)
        count = frames_per_pass(total, self.settings.diffusers_max_frames,
                                loaded.default_frames, loaded.temporal)
        steps = int(self.settings.diffusers_steps)
        prompt = str(opts.get("prompt") or "").strip()
        phrase = STYLE_PHRASES.get(str(opts.get("style") or ""), "")
        clip = watch(lambda on_step: self._generate(loaded, on_step, prompt=(
                         f"{prompt}, {phrase}" if phrase else prompt), frames=count,
                         width=gen_w, height=gen_h, steps=steps, seed=seed),
                     progress, "generating", steps, name=f"reelforge-diffusers-{spec.job_id}")
        progress("generating", 1.0)

        meta = {"engine": self.name, "model": self.folder.name,
                "pipeline": self.pipeline_class, "seed": seed, "steps": steps,
                "generated_frames": int(clip.shape[0]),
                "generated_size": [int(clip.shape[2]), int(clip.shape[1])],
                "interpolation": "frame blending" if clip.shape[0] < total else "none",
                "device": loaded.device}
        frames = stretch(clip, total, width, height, mark=mark)
        rendered = context.encode(ctx, frames, width=width, height=height, fps=fps,
                                  total=total, pix_fmt="rgb24", meta=meta)
        return rendered.artifacts()

    # ------------------------------------------------------------------ the work

    def _check_mode(self, mode: str) -> None:
        if mode not in self.offers:
            raise UnsupportedMode(f"The diffusers engine cannot do {mode}.",
                                  fix="It does text_to_video only; GET /v1/engines lists "
                                      "the engines for the other modes.")

    def _loaded(self, progress: Progress) -> Loaded:
        """Wait for the pipeline, calling progress meanwhile (which may raise to stop;
        the load itself carries on for the next job)."""
        future = self._load_future()
        while True:
            try:
                return future.result(timeout=KEEPALIVE_S)
            except FutureTimeout:
                progress("loading", 0.0)

    def _generate(self, loaded: Loaded, on_step: Callable[[int], None], *, prompt: str,
                  frames: int, width: int, height: int, steps: int, seed: int) -> np.ndarray:
        """Runs on the pipeline's thread: wait for the pipeline, call it, return uint8
        frames (n, h, w, 3). ``on_step(i)`` raises ``_Stopped`` when the job is gone."""
        while not self._gpu.acquire(timeout=0.2):
            on_step(0)
        try:
            import torch

            generator = torch.Generator(
                device="cuda" if loaded.device.startswith("cuda") else "cpu").manual_seed(seed)
            kwargs = call_arguments(loaded.params, on_step, prompt=prompt, frames=frames,
                                    width=width, height=height, steps=steps,
                                    generator=generator)
            try:
                output = loaded.pipe(**kwargs)
            except _Stopped:
                raise
            except Exception as exc:
                raise _engine_failure(exc, torch) from exc
            return video_array(getattr(output, "frames", output))
        finally:
            self._gpu.release()


# ---------------------------------------------------------------------- helpers

def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _in_thread(work: Callable[[], Any], name: str) -> Future[Any]:
    """Run ``work`` on a daemon thread (a load that hangs never blocks the exit)."""
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
            future.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


def _fatal(message: str, *, fix: str) -> EngineError:
    """An engine error that retrying cannot help (the job fails at once)."""
    error = EngineError(message, fix=fix)
    error.retryable = False
    return error


def _engine_failure(exc: Exception, torch: Any) -> EngineError:
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return _fatal("The model ran out of GPU memory.",
                      fix="Lower REELFORGE_DIFFUSERS_MAX_FRAMES, use a smaller model, or run "
                          "fewer workers on this GPU.")
    return EngineError(f"The diffusers pipeline failed: {type(exc).__name__}: {exc}",
                       fix="Retry; if it keeps failing, check the model folder and the "
                           "versions of torch, diffusers and transformers.")


def _pick_device(wanted: str, torch: Any) -> str:
    cuda = torch.cuda.is_available()
    backends = getattr(torch, "backends", None)
    mps = bool(getattr(getattr(backends, "mps", None), "is_available", lambda: False)())
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (wanted == "cuda" and not cuda) or (wanted == "mps" and not mps):
        raise _fatal(f"REELFORGE_DIFFUSERS_DEVICE is {wanted}, but torch sees no {wanted} "
                     "device on this machine.",
                     fix="Install the torch build for your GPU, or set "
                         "REELFORGE_DIFFUSERS_DEVICE=auto (or cpu).")
    return wanted


def _dtype_for(device: str, torch: Any) -> Any:
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def _dtype_kwarg() -> str:
    """diffusers 0.42 renamed from_pretrained's ``torch_dtype`` to ``dtype``."""
    import diffusers
    from packaging.version import InvalidVersion, Version

    try:
        return "dtype" if Version(diffusers.__version__).release >= (0, 42) else "torch_dtype"
    except InvalidVersion:
        return "torch_dtype"


def _seed(value: Any, job_id: str) -> int:
    """The job's seed, or one derived from its id (so each job differs, and the seed is
    reported for reproducing it)."""
    if value is not None:
        return int(value)
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:4], "big")


def _describe(pipe: Any, device: str, folder: Path) -> Loaded:
    params = inspect.signature(pipe.__call__).parameters
    required = [p.name for p in params.values()
                if p.default is p.empty and p.name not in ("self", "prompt")
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if "prompt" not in params or "num_frames" not in params or required:
        raise _fatal(f"{type(pipe).__name__} in '{folder.name}' is not a text-to-video pipeline "
                     f"(it {'needs ' + ', '.join(required) if required else 'makes no frames'}).",
                     fix=f"Point {SETTING} at a text-to-video pipeline, e.g. a saved "
                         "TextToVideoSDPipeline, CogVideoXPipeline, LTXPipeline or "
                         "WanPipeline.")
    default_frames = params["num_frames"].default
    return Loaded(pipe=pipe, device=device, params=frozenset(params),
                  native=native_size(pipe, params), multiple=size_multiple(pipe),
                  temporal=temporal_factor(pipe),
                  default_frames=default_frames if isinstance(default_frames, int) else None)


def _config(module: Any) -> Any:
    return getattr(module, "config", None)


def _spatial_factor(pipe: Any) -> int:
    for attr in ("vae_scale_factor_spatial", "vae_spatial_compression_ratio", "vae_scale_factor"):
        value = getattr(pipe, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return 8


def native_size(pipe: Any, params: Any) -> tuple[int, int]:
    """(width, height) the pipeline makes by default."""
    h, w = (getattr(params.get(name), "default", None) for name in ("height", "width"))
    if isinstance(h, int) and isinstance(w, int):
        return w, h
    dh, dw = getattr(pipe, "default_height", None), getattr(pipe, "default_width", None)
    if isinstance(dh, int) and isinstance(dw, int):
        return dw, dh
    factor = _spatial_factor(pipe)
    unet = _config(getattr(pipe, "unet", None))
    if unet is not None and getattr(unet, "sample_size", None):
        size = unet.sample_size
        sh, sw = (size, size) if isinstance(size, int) else (size[0], size[1])
        return sw * factor, sh * factor
    transformer = _config(getattr(pipe, "transformer", None))
    sh = getattr(transformer, "sample_height", None)
    sw = getattr(transformer, "sample_width", None)
    if isinstance(sh, int) and isinstance(sw, int):
        return sw * factor, sh * factor
    return 512, 512


def size_multiple(pipe: Any) -> int:
    """Generated sides must divide by the VAE's factor times the denoiser's own
    downsampling (a UNet halves per block; a transformer groups pixels in patches)."""
    factor = _spatial_factor(pipe)
    unet = _config(getattr(pipe, "unet", None))
    if unet is not None and getattr(unet, "block_out_channels", None):
        factor *= 2 ** (len(unet.block_out_channels) - 1)
    transformer = _config(getattr(pipe, "transformer", None))
    patch = getattr(transformer, "patch_size", None)
    if isinstance(patch, (list, tuple)) and patch:
        patch = patch[-1]
    if isinstance(patch, int) and patch > 0:
        factor *= patch
    return max(8, factor)


def temporal_factor(pipe: Any) -> int:
    for attr in ("vae_scale_factor_temporal", "vae_temporal_compression_ratio"):
        value = getattr(pipe, attr, None)
        if isinstance(value, int) and value > 1:
            return value
    return 1


def generation_size(native: tuple[int, int], aspect: float, multiple: int) -> tuple[int, int]:
    """The native area reshaped to ``aspect`` (width / height), sides rounded to
    ``multiple``."""
    area = native[0] * native[1]
    height = math.sqrt(area / aspect)
    width = height * aspect
    return (max(multiple, int(round(width / multiple)) * multiple),
            max(multiple, int(round(height / multiple)) * multiple))


def frames_per_pass(total: int, max_frames: int, default: int | None, temporal: int) -> int:
    """Frames to ask of one pass: no more than the output needs, ``max_frames`` or what
    the pipeline makes by default, and a count the model's VAE accepts."""
    count = max(1, min(total, max_frames, default or max_frames))
    if temporal > 1:
        count = max(1, (count - 1) // temporal * temporal + 1)
    return count


def call_arguments(params: frozenset[str], on_step: Callable[[int], None], *, prompt: str,
                   frames: int, width: int, height: int, steps: int,
                   generator: Any) -> dict[str, Any]:
    """Keyword arguments for the pipeline, only those its __call__ accepts."""
    wanted: dict[str, Any] = {
        "prompt": prompt, "negative_prompt": NEGATIVE_PROMPT, "num_frames": frames,
        "height": height, "width": width, "num_inference_steps": steps,
        "generator": generator, "output_type": "np"}
    kwargs = {k: v for k, v in wanted.items() if k in params}
    if "callback_on_step_end" in params:
        def on_step_end(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1)
            return tensors
        kwargs["callback_on_step_end"] = on_step_end
    elif "callback" in params:
        kwargs["callback"] = lambda i, t, latents: on_step(i + 1)
        if "callback_steps" in params:
            kwargs["callback_steps"] = 1
    return kwargs


def video_array(frames: Any) -> np.ndarray:
    """A pipeline's ``frames`` (a list of PIL images or arrays, nested per prompt; a
    numpy array (batch, n, h, w, c) in 0..1; or a torch tensor, channels last or
    (batch, n, c, h, w)) as uint8 RGB (n, h, w, 3), first video of the batch."""
    if hasattr(frames, "detach"):  # a torch tensor
        frames = frames.detach().float().cpu().numpy()
        if frames.ndim == 5 and frames.shape[2] in (1, 3, 4) and frames.shape[-1] not in (1, 3, 4):
            frames = frames.transpose(0, 1, 3, 4, 2)
    if isinstance(frames, (list, tuple)):
        if frames and isinstance(frames[0], (list, tuple)):
            frames = frames[0]
        frames = np.stack([np.asarray(f) for f in frames])
    array = np.asarray(frames)
    if array.ndim == 5:
        array = array[0]
    if array.ndim == 3:  # grey frames
        array = array[..., None]
    if array.ndim != 4 or array.shape[0] == 0:
        raise EngineError(f"The pipeline returned frames of shape {array.shape}, not a video.",
                          fix=f"Point {SETTING} at a text-to-video pipeline.")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array[..., :3])


def fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``frame`` to cover width x height (bicubic up, area down), centre-cropped."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    rw, rh = max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale))
    resized = cv2.resize(frame, (rw, rh),
                         interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    x, y = (rw - width) // 2, (rh - height) // 2
    return np.ascontiguousarray(resized[y:y + height, x:x + width])


def stretch(clip: np.ndarray, total: int, width: int, height: int, *,
            mark: tuple[np.ndarray, int, int] | None = None) -> Iterator[np.ndarray]:
    """``total`` frames at width x height from the generated ``clip``: frame i sits at
    i * (n - 1) / (total - 1) in the clip and blends its two neighbours (a clip at
    least as long is sampled instead). Resizes each generated frame once, lazily, and
    draws ``mark`` (``render.watermark_rgba``'s image and place) on every frame."""
    n = clip.shape[0]
    cache: dict[int, np.ndarray] = {}

    def at(k: int) -> np.ndarray:
        if k not in cache:
            for old in [key for key in cache if key < k - 1]:
                del cache[old]
            cache[k] = fit(clip[k], width, height)
        return cache[k]

    for i in range(total):
        pos = i * (n - 1) / (total - 1) if total > 1 else 0.0
        lo = min(int(pos), n - 1)
        weight = pos - lo
        if n >= total or weight < 1e-6 or lo + 1 >= n:
            frame = at(round(pos) if n >= total else lo).copy()
        else:
            frame = cv2.addWeighted(at(lo), 1.0 - weight, at(lo + 1), weight, 0.0)
        if mark is not None:
            render.blend_rgba(frame, *mark)
        yield frame


def watch(work: Callable[[Callable[[int], None]], Any], progress: Progress, stage: str,
          steps: int, *, name: str) -> Any:
    """Run ``work(on_step)`` on a thread of its own and report it from this one.

    ``work`` calls ``on_step(i)`` after its i-th step (0 while it waits to start); this
    thread calls ``progress(stage, i / steps)`` for each, and again every
    ``KEEPALIVE_S`` seconds without news. When ``progress`` raises, ``on_step`` raises
    ``_Stopped`` in ``work`` at its next call, this thread waits (briefly) for it to end,
    and the exception propagates. ``work``'s own exception is raised here.
    """
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def on_step(i: int) -> None:
        if stop.is_set():
            raise _Stopped()
        if i:
            events.put(("step", i))

    def target() -> None:
        try:
            events.put(("done", work(on_step)))
        except BaseException as exc:  # noqa: BLE001 - handed to the job's thread
            events.put(("error", exc))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    fraction = 0.0
    try:
        while True:
            try:
                kind, value = events.get(timeout=KEEPALIVE_S)
            except queue.Empty:
                progress(stage, fraction)
                continue
            if kind == "step":
                fraction = max(fraction, min(1.0, value / steps))
                progress(stage, fraction)
            elif kind == "done":
                return value
            else:
                raise value
    except BaseException:
        stop.set()
        thread.join(STOP_WAIT_S)
        raise
