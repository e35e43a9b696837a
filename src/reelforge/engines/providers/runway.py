"""The ``runway`` engine: the Runway API (``api.dev.runwayml.com``, as the ``runwayml``
SDK speaks it) on the hosted loop of :mod:`reelforge.engines.providers.hosted`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from reelforge.config import Settings
from reelforge.engines.base import JobSpec, Progress
from reelforge.engines.providers.hosted import (CANCEL_TIMEOUT_S, HostedEngine, Task,
                                                image_bytes, is_portrait, provider_error)
from reelforge.engines.registry import register
from reelforge.errors import Invalid

# Runway (models and their values as in the runwayml SDK 5.24). Every model takes
# 1280:720 and 720:1280 (veo models 1920:1080 and 1080:1920 too); gen4 models animate an
# image in six shapes (4:5 asks for 3:4). Other shapes are cropped from what comes back.
RUNWAY_GEN4_RATIOS = {"16:9": "1280:720", "9:16": "720:1280", "1:1": "960:960",
                      "4:3": "1104:832", "3:4": "832:1104", "4:5": "832:1104",
                      "21:9": "1584:672"}
RUNWAY_VEO_SECONDS = (4, 6, 8)
RUNWAY_VERSION = "2024-11-06"
RUNWAY_PROMPT_MAX = 1000
RUNWAY_IMAGE_MAX = 5 * 1024 * 1024  # a promptImage data URI


def runway_ratio(model: str, mode: str, options: dict[str, Any]) -> str:
    aspect = options.get("aspect_ratio") or "16:9"
    portrait = is_portrait(aspect)
    if options.get("quality") == "1080p":
        return "1080:1920" if portrait else "1920:1080"
    if mode == "image_to_video" and model.startswith("gen4"):
        return RUNWAY_GEN4_RATIOS[aspect]
    return "720:1280" if portrait else "1280:720"


def runway_seconds(model: str, duration: float) -> int:
    """veo models make 4, 6 or 8 s (the shortest that covers it, trimmed in conform)."""
    if model.startswith("veo"):
        return next((s for s in RUNWAY_VEO_SECONDS if s >= duration), RUNWAY_VEO_SECONDS[-1])
    return int(duration)


@register
class RunwayEngine(HostedEngine):
    """The Runway API (``api.dev.runwayml.com``): ``/v1/text_to_video``,
    ``/v1/image_to_video``, ``/v1/tasks/{id}``."""

    name = "runway"
    provider = "Runway"
    key_env = "REELFORGE_RUNWAY_API_KEY"
    model_env = "REELFORGE_RUNWAY_MODEL"
    enabled_by = ("set REELFORGE_RUNWAY_API_KEY (Runway API), with the mode listed in "
                  "REELFORGE_RUNWAY_MODES (text_to_video by default)")

    @classmethod
    def from_settings(cls, settings: Settings) -> RunwayEngine | None:
        if not settings.runway_api_key:
            return None
        return cls(settings, api_key=settings.runway_api_key,
                   base_url=settings.runway_base_url, model=settings.runway_model,
                   modes=settings.runway_modes)

    def headers(self) -> dict[str, str]:
        return {"X-Runway-Version": RUNWAY_VERSION}

    @property
    def makes_1080p(self) -> bool:
        return self.model.startswith("veo")

    def check_options(self, mode: str, options: dict[str, Any]) -> None:
        super().check_options(mode, options)
        prompt = str(options.get("prompt") or "")
        if len(prompt) > RUNWAY_PROMPT_MAX:
            raise Invalid(f"Runway takes prompts of at most {RUNWAY_PROMPT_MAX} characters; "
                          f"this one has {len(prompt)}.", field="prompt",
                          fix="Shorten the prompt.")
        duration = float(options.get("duration") or 5)
        if runway_seconds(self.model, duration) < duration:
            raise Invalid(f"Runway's {self.model} makes at most {RUNWAY_VEO_SECONDS[-1]} s.",
                          field="duration", fix=f"Ask for 5 s, or set {self.model_env} to a "
                                                "model that makes 10 s (gen4.5).")

    def create(self, http: httpx.Client, spec: JobSpec, inputs: dict[str, Any],
               progress: Progress) -> str:
        opts = spec.options
        body: dict[str, Any] = {
            "model": self.model, "ratio": runway_ratio(self.model, spec.mode, opts),
            "duration": runway_seconds(self.model, float(opts.get("duration") or 5))}
        if opts.get("prompt"):
            body["promptText"] = opts["prompt"]
        if "seed" in opts:
            body["seed"] = int(opts["seed"])
        path = "/v1/text_to_video"
        if spec.mode == "image_to_video":
            data, content_type = image_bytes(Path(inputs["image"]),
                                             max_bytes=RUNWAY_IMAGE_MAX * 3 // 4 - 1024)
            body["promptImage"] = (f"data:{content_type};base64,"
                                   + base64.b64encode(data).decode("ascii"))
            path = "/v1/image_to_video"
        answer = self.json_of(self.call(http, "POST", path, progress, create=True, json=body))
        if not answer.get("id"):
            raise provider_error(f"Runway accepted the task but gave no id: {answer}",
                                 "Submit the job again.", "provider_unavailable")
        return str(answer["id"])

    def poll(self, http: httpx.Client, task_id: str, progress: Progress) -> Task:
        data = self.json_of(self.call(http, "GET", f"/v1/tasks/{task_id}", progress))
        status = str(data.get("status") or "").upper()
        if status == "SUCCEEDED":
            output = data.get("output") or []
            return Task(task_id, "succeeded", 1.0,
                        output=str(output[0]) if output else None)
        if status == "FAILED":
            return Task(task_id, "failed", failure=str(data.get("failure") or ""),
                        code=str(data.get("failureCode") or ""))
        if status == "CANCELLED":
            return Task(task_id, "cancelled")
        fraction = data.get("progress")  # PENDING, THROTTLED, RUNNING
        return Task(task_id, "running",
                    float(fraction) if isinstance(fraction, (int, float)) else None)

    def cancel(self, http: httpx.Client, task_id: str) -> None:
        http.delete(f"/v1/tasks/{task_id}", timeout=CANCEL_TIMEOUT_S).raise_for_status()
