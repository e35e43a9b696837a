"""The engine interface: what an engine can do, what it costs, and how it runs.

An engine never touches the database, the queue or HTTP. The worker hands it a
``JobSpec`` (mode + validated options), local input files, a scratch directory and a
``Progress`` callback, and gets back ``Artifact`` files to store.

Cancellation and timeouts reach the engine through ``Progress``: calling it raises
``JobCancelled``/``JobTimedOut``/``LeaseLost`` when the job must stop, and the engine
lets that exception propagate (the ffmpeg runner kills its process group on the way).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

MODES = ("text_to_video", "image_to_video", "video_to_video", "image_audio_to_video",
         "reel", "clips", "extend")
STYLES = ("cinematic", "dramatic", "dreamy", "energetic", "minimal", "vintage",
          "corporate", "luxury")
TRANSFORM_STYLES = ("restyle", "background", "relight", "add_objects", "color_grade",
                    "cinematic")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "4:5", "21:9")
QUALITIES = ("720p", "1080p")


class Progress(Protocol):
    def __call__(self, stage: str, fraction: float) -> None:
        """Report ``fraction`` (0..1) of ``stage`` done. Raises if the job must stop."""


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    mode: str
    options: dict[str, Any]
    seed: int = 0


@dataclass(frozen=True)
class Artifact:
    name: str  # "video", "poster", ...
    path: Path
    content_type: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    engine: str
    modes: tuple[str, ...]
    description: str
    options: dict[str, Any] = field(default_factory=dict)


class Engine(abc.ABC):
    """Subclasses set ``name`` and register themselves by it (see ``registry.py``)."""

    name: ClassVar[str]
    # For an engine that is off until configured (``from_settings`` returns None): the
    # modes it would add and the setting that turns it on, so that a refusal of such a
    # mode can name the fix, e.g. "set REELFORGE_DIFFUSERS_MODEL to …".
    offers: ClassVar[tuple[str, ...]] = ()
    enabled_by: ClassVar[str] = ""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    def supports(self, mode: str) -> bool:
        return mode in self.capabilities().modes

    @abc.abstractmethod
    def run(self, spec: JobSpec, inputs: dict[str, Any], workdir: Path,
            progress: Progress) -> list[Artifact]:
        """Render the job. ``inputs`` maps input names (image, audio, video) to files,
        and list inputs (reel ``images``) to a list of files, in order."""

    def output_seconds(self, mode: str, options: dict[str, Any]) -> float:
        """Seconds of output the job will make, for the cost estimate."""
        return float(options.get("duration") or 5)
