"""Camera moves over a still image, as value types.

A ``CameraMove`` says what the camera does over the whole clip (zoom in, pan left,
...). ``viewport_at(move, i, n)`` turns it into the ``Viewport`` of frame ``i`` of
``n``: a zoom factor and the centre of the view, in coordinates of the base framing
(0..1 across its width and height). Values are eased and never rounded, so the
renderer can sample the source with sub-pixel precision and motion stays smooth.
Every viewport stays inside the base framing: the view is ``1/scale`` of it wide and
its centre never moves more than the slack that leaves.

``parse_motion(prompt, style, seed)`` reads a move out of a prompt ("slow zoom in",
"pan left quickly"); when the prompt names none, the style and the seed choose one.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace

from ..errors import Invalid

MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down",
         "push_in", "drift", "static")
EASINGS = ("linear", "smoothstep", "ease_in_out_cubic", "ease_in_out_sine", "gentle")

# Published at GET /v1/engines: what a prompt may say to steer the camera.
MOTION_VOCABULARY: dict[str, dict[str, tuple[str, ...]] | dict[str, float]] = {
    "moves": {
        "zoom_in": ("zoom in", "zooming in", "zooms in", "zoom into", "close in",
                    "closing in"),
        "zoom_out": ("zoom out", "zooming out", "zooms out", "pull back", "pulls back",
                     "pulling back", "pull out", "pulls out"),
        "pan_left": ("pan left", "pans left", "panning left", "track left", "truck left"),
        "pan_right": ("pan right", "pans right", "panning right", "track right",
                      "truck right"),
        "pan_up": ("pan up", "pans up", "panning up", "tilt up", "tilts up", "tilting up",
                   "crane up", "camera rises"),
        "pan_down": ("pan down", "pans down", "panning down", "tilt down", "tilts down",
                     "tilting down", "crane down", "camera descends"),
        "push_in": ("push in", "pushes in", "pushing in", "dolly in", "dolly",
                    "camera moves closer", "moving closer"),
        "drift": ("drift", "drifting camera", "camera drifts", "handheld", "floating camera"),
        "static": ("static", "static shot", "locked off", "locked-off", "camera still",
                   "still camera", "no camera movement", "no camera motion", "tripod"),
    },
    "speeds": {
        "very slowly": 0.45, "slowly": 0.6, "slow": 0.6, "gently": 0.6, "gentle": 0.6,
        "subtle": 0.5, "subtly": 0.5, "gradually": 0.7, "gradual": 0.7,
        "quickly": 1.5, "quick": 1.5, "fast": 1.6, "rapid": 1.6, "rapidly": 1.6,
        "suddenly": 1.8, "sudden": 1.8, "dramatic": 1.3, "dramatically": 1.3,
    },
}

# When the prompt names no move: (kinds the seed picks from, intensity, easing).
_STYLE_DEFAULTS: dict[str, tuple[tuple[str, ...], float, str]] = {
    "cinematic": (("push_in",), 0.45, "smoothstep"),
    "dramatic": (("push_in", "zoom_in"), 0.55, "ease_in_out_cubic"),
    "dreamy": (("drift", "zoom_out"), 0.4, "ease_in_out_sine"),
    "energetic": (("zoom_in", "pan_left", "pan_right", "push_in"), 0.9, "ease_in_out_cubic"),
    "minimal": (("drift", "pan_left", "pan_right"), 0.3, "gentle"),
    "vintage": (("pan_left", "pan_right", "zoom_out"), 0.45, "gentle"),
    "corporate": (("push_in", "pan_right"), 0.35, "gentle"),
    "luxury": (("zoom_out", "push_in"), 0.3, "smoothstep"),
}


@dataclass(frozen=True)
class CameraMove:
    kind: str = "push_in"
    intensity: float = 0.5  # 0..1: how far the camera travels over the clip
    easing: str = "smoothstep"
    anchor: tuple[float, float] = (0.5, 0.5)  # where zooms converge: the subject
    angle: float = 0.0  # direction of a drift, radians (0 = to the right, y down)

    def __post_init__(self) -> None:
        if self.kind not in MOVES:
            raise Invalid(f"unknown camera move {self.kind!r}",
                          fix=f"Use one of: {', '.join(MOVES)}.")
        if self.easing not in EASINGS:
            raise Invalid(f"unknown easing {self.easing!r}",
                          fix=f"Use one of: {', '.join(EASINGS)}.")
        if not 0.0 <= self.intensity <= 1.0:
            raise Invalid(f"camera intensity {self.intensity} is outside 0..1",
                          fix="Give an intensity between 0 and 1.")

    def with_anchor(self, x: float, y: float) -> CameraMove:
        return replace(self, anchor=(min(1.0, max(0.0, x)), min(1.0, max(0.0, y))))


@dataclass(frozen=True)
class Viewport:
    """The view at one frame: ``scale`` >= 1 zooms into the base framing; ``cx``,
    ``cy`` is the view's centre, 0..1 across the base framing."""

    scale: float
    cx: float
    cy: float


def ease(name: str, t: float) -> float:
    """Map 0..1 to 0..1 with zero (or, for ``gentle``, reduced) speed at both ends."""
    t = min(1.0, max(0.0, t))
    if name == "linear":
        return t
    if name == "smoothstep":
        return t * t * (3.0 - 2.0 * t)
    if name == "ease_in_out_cubic":
        return 4.0 * t ** 3 if t < 0.5 else 1.0 - (-2.0 * t + 2.0) ** 3 / 2.0
    if name == "ease_in_out_sine":
        return 0.5 - 0.5 * math.cos(math.pi * t)
    if name == "gentle":  # never quite stops: reads as a slow, continuous camera
        return 0.6 * (t * t * (3.0 - 2.0 * t)) + 0.4 * t
    raise Invalid(f"unknown easing {name!r}", fix=f"Use one of: {', '.join(EASINGS)}.")


def _slack(scale: float) -> float:
    """How far the centre may move from 0.5 at this zoom and stay inside the frame."""
    return 0.5 - 0.5 / scale


def _zoom_range(move: CameraMove) -> tuple[float, float]:
    i = move.intensity
    if move.kind in ("zoom_in", "zoom_out"):
        return 1.0, 1.1 + 0.35 * i
    if move.kind == "push_in":
        return 1.0, 1.05 + 0.2 * i
    if move.kind == "drift":
        return 1.06, 1.06 + 0.08 * i
    if move.kind == "static":
        return 1.0, 1.0
    return 1.08 + 0.2 * i, 1.08 + 0.2 * i  # pans hold a zoom that leaves room to travel


def viewport_at(move: CameraMove, i: int, n: int) -> Viewport:
    """The view at frame ``i`` (0-based) of ``n``; the last frame ends the move."""
    t = ease(move.easing, i / (n - 1) if n > 1 else 1.0)
    lo, hi = _zoom_range(move)
    kind = move.kind
    if kind == "zoom_out":
        t = 1.0 - t
    scale = lo * (hi / lo) ** t  # geometric: the zoom feels steady, not decelerating
    if kind in ("zoom_in", "zoom_out", "push_in", "static"):
        ax, ay = move.anchor
        keep = 1.0 - 1.0 / scale  # the anchor point stays put on screen
        return Viewport(scale, 0.5 + (ax - 0.5) * keep, 0.5 + (ay - 0.5) * keep)
    if kind == "drift":
        reach = 0.8 * _slack(lo)
        dx, dy = math.cos(move.angle), math.sin(move.angle)
        norm = max(abs(dx), abs(dy))
        offset = (2.0 * t - 1.0) * reach / norm
        return Viewport(scale, 0.5 + dx * offset, 0.5 + dy * offset)
    travel = 0.95 * _slack(scale) * (2.0 * t - 1.0)  # -slack .. +slack
    if kind == "pan_left":  # the camera turns left: the view slides from right to left
        return Viewport(scale, 0.5 - travel, 0.5)
    if kind == "pan_right":
        return Viewport(scale, 0.5 + travel, 0.5)
    if kind == "pan_up":
        return Viewport(scale, 0.5, 0.5 - travel)
    return Viewport(scale, 0.5, 0.5 + travel)  # pan_down


def camera_path(move: CameraMove, n: int) -> tuple[Viewport, ...]:
    return tuple(viewport_at(move, i, n) for i in range(n))


def shake_offsets(n: int, fps: float, seed: int, amplitude: float) -> list[tuple[float, float]]:
    """A smooth handheld wobble: ``n`` (dx, dy) offsets within ±``amplitude``, made of a
    few incommensurate sines with seeded phases (deterministic, sub-pixel)."""
    if amplitude <= 0:
        return [(0.0, 0.0)] * n
    rng = random.Random(f"shake:{seed}")
    waves = [(rng.uniform(0.7, 4.5), rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 1.0))
             for _ in range(6)]
    x_waves, y_waves = waves[:3], waves[3:]

    def wobble(ws: list[tuple[float, float, float]], t: float) -> float:
        total = sum(w for _, _, w in ws)
        return amplitude * sum(w * math.sin(2 * math.pi * f * t + p) for f, p, w in ws) / total

    return [(wobble(x_waves, k / fps), wobble(y_waves, k / fps)) for k in range(n)]


def find_phrase(text: str, phrases: tuple[str, ...] | list[str]) -> int:
    """Position of the earliest of ``phrases`` in ``text`` as whole words, or -1."""
    best = -1
    for phrase in phrases:
        m = re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", text)
        if m and (best < 0 or m.start() < best):
            best = m.start()
    return best


def parse_motion(prompt: str, style: str, seed: int) -> CameraMove:
    """The camera move a prompt asks for; the style's habit when it names none.

    The earliest move named wins ("zoom in, then pan left" zooms in); speed words
    anywhere scale the intensity. Deterministic for a given (prompt, style, seed).
    """
    text = (prompt or "").lower()
    moves = MOTION_VOCABULARY["moves"]
    found = [(pos, kind) for kind, phrases in moves.items()
             if (pos := find_phrase(text, phrases)) >= 0]  # type: ignore[arg-type]
    kinds, intensity, easing = _STYLE_DEFAULTS.get(style, _STYLE_DEFAULTS["cinematic"])
    rng = random.Random(f"motion:{style}:{seed}")
    if found:
        kind = min(found)[1]
    else:
        kind = kinds[rng.randrange(len(kinds))]
    speeds: dict[str, float] = MOTION_VOCABULARY["speeds"]  # type: ignore[assignment]
    factors = [factor for word, factor in speeds.items() if find_phrase(text, (word,)) >= 0]
    if factors:
        intensity *= min(factors) if min(factors) < 1 else max(factors)
        if max(factors) > 1.4:
            easing = "ease_in_out_cubic"
    angle = rng.uniform(0, 2 * math.pi)
    return CameraMove(kind=kind, intensity=round(min(1.0, max(0.1, intensity)), 4),
                      easing=easing, angle=angle)
