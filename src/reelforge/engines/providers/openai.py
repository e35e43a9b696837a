"""The ``openai`` engine: the OpenAI Videos API (Sora, as the ``openai`` SDK's
``client.videos`` speaks it) on the hosted loop of
:mod:`reelforge.engines.providers.hosted`.

This module speaks HTTP through ``httpx`` and never imports the ``openai`` SDK; every
import in this package is absolute, so the module's name cannot shadow the SDK's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from reelforge.config import Settings
from reelforge.engines.base import JobSpec, Progress
from reelforge.engines.providers.hosted import (CANCEL_TIMEOUT_S, HostedEngine, Task,
                                                image_bytes, is_portrait, provider_error)
from reelforge.engines.registry import register
from reelforge.errors import Invalid

# OpenAI ``size`` (landscape, portrait) per quality (1080p: the pro models); other shapes
# are cropped from them.
OPENAI_SIZES = {"720p": ("1280x720", "720x1280"), "1080p": ("1792x1024", "1024x1792")}
OPENAI_SECONDS = (4, 8, 12)


def openai_size(options: dict[str, Any]) -> str:
    landscape, portrait = OPENAI_SIZES[options.get("quality") or "720p"]
    return portrait if is_portrait(options.get("aspect_ratio") or "16:9") else landscape


def openai_seconds(duration: float) -> int:
    """The shortest length Sora makes that covers ``duration`` (trimmed in conform)."""
    return next((s for s in OPENAI_SECONDS if s >= duration), OPENAI_SECONDS[-1])


@register
class OpenAIEngine(HostedEngine):
    """The OpenAI Videos API (Sora): ``POST /videos``, ``GET /videos/{id}``,
    ``GET /videos/{id}/content``."""

    name = "openai"
    provider = "OpenAI"
    key_env = "REELFORGE_OPENAI_API_KEY"
    model_env = "REELFORGE_OPENAI_VIDEO_MODEL"
    enabled_by = ("set REELFORGE_OPENAI_API_KEY (OpenAI Videos API, Sora), with the mode "
                  "listed in REELFORGE_OPENAI_MODES (text_to_video by default)")

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEngine | None:
        if not settings.openai_api_key:
            return None
        return cls(settings, api_key=settings.openai_api_key,
                   base_url=settings.openai_base_url, model=settings.openai_video_model,
                   modes=settings.openai_modes)

    @property
    def makes_1080p(self) -> bool:
        return "pro" in self.model

    def check_options(self, mode: str, options: dict[str, Any]) -> None:
        if not str(options.get("prompt") or "").strip():
            raise Invalid(f"{mode} on OpenAI needs a prompt.", field="prompt",
                          fix="Describe the video (or, with an image, its motion) in prompt.")
        super().check_options(mode, options)

    def create(self, http: httpx.Client, spec: JobSpec, inputs: dict[str, Any],
               progress: Progress) -> str:
        opts = spec.options
        size = openai_size(opts)
        fields = {"model": self.model, "prompt": str(opts.get("prompt") or ""),
                  "seconds": str(openai_seconds(float(opts.get("duration") or 5))),
                  "size": size}
        # Multipart, as the SDK sends it; a reference image must match ``size`` exactly.
        files: list[tuple[str, Any]] = [
            (k, (None, v)) for k, v in fields.items()]
        if spec.mode == "image_to_video":
            w, h = (int(x) for x in size.split("x"))
            data, content_type = image_bytes(Path(inputs["image"]), size=(w, h))
            files.append(("input_reference", ("reference.jpg", data, content_type)))
        answer = self.json_of(self.call(http, "POST", "/videos", progress, create=True,
                                        files=files))
        if not answer.get("id"):
            raise provider_error(f"OpenAI accepted the video but gave no id: {answer}",
                                 "Submit the job again.", "provider_unavailable")
        return str(answer["id"])

    def poll(self, http: httpx.Client, task_id: str, progress: Progress) -> Task:
        data = self.json_of(self.call(http, "GET", f"/videos/{task_id}", progress))
        status = str(data.get("status") or "")
        if status == "completed":
            return Task(task_id, "succeeded", 1.0)
        if status == "failed":
            error = data.get("error") or {}
            if not isinstance(error, dict):
                error = {"message": str(error)}
            return Task(task_id, "failed", failure=str(error.get("message") or ""),
                        code=str(error.get("code") or ""))
        fraction = data.get("progress")  # queued, in_progress
        return Task(task_id, "running",
                    float(fraction) / 100 if isinstance(fraction, (int, float)) else None)

    def cancel(self, http: httpx.Client, task_id: str) -> None:
        http.delete(f"/videos/{task_id}", timeout=CANCEL_TIMEOUT_S).raise_for_status()

    def output_url(self, task: Task) -> str:
        return f"{self.base_url}/videos/{task.id}/content?variant=video"
