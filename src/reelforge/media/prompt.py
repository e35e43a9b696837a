"""Prompt to parameters: a small, deterministic reader of camera, speed and look words.

The local engine cannot understand language; it looks for the phrases listed in
``VOCABULARY`` (published at ``GET /v1/engines``) and nothing else. The rules:

* Matching is case-insensitive, on whole words ("rainy" matches, "brain" does not).
* **camera**: the earliest move named wins ("zoom in, then pan left" zooms in). Speed
  words anywhere scale how far the camera travels (the smallest factor when a slowing
  word is present, else the largest); a factor above 1.4 also sharpens the easing.
  With no move named, the style's habit and the seed choose one.
* **relight**, **restyle**, **background**, **transition**: when several entries match,
  the one listed first in ``PRIORITY`` wins (the more specific before the generic:
  "watercolor painting" is watercolor, not oil paint).
* **weather**: every effect named is applied (rain and fog together is fine).
* **colour**: the first colour word names a background colour; **placement** and
  **size** say where and how large an added object goes.

Options sent explicitly (``restyle=sketch``) always win over words in the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .motion import MOTION_VOCABULARY, CameraMove, find_phrase, parse_motion

RGB = tuple[int, int, int]

RELIGHTS = ("warm", "cool", "golden_hour", "night", "moody")
RESTYLES = ("cartoon", "sketch", "watercolor", "oil_paint", "noir", "comic")
WEATHERS = ("rain", "snow", "fog")
BACKGROUNDS = ("blur", "color", "gradient", "image")
TRANSITIONS = ("crossfade", "slide", "zoom", "wipe", "cut")
PLACEMENTS = ("top_left", "top", "top_right", "left", "center", "right", "bottom_left",
              "bottom", "bottom_right")

_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "relight": {
        "golden_hour": ("golden hour", "golden light", "magic hour", "sunset", "sunrise",
                        "dusk", "dawn", "golden"),
        "night": ("night", "nighttime", "night time", "midnight", "moonlight", "moonlit",
                  "after dark"),
        "moody": ("moody", "low key", "low-key", "gloomy", "shadowy", "dramatic lighting",
                  "dramatic light", "overcast", "stormy light"),
        "cool": ("cool", "cooler", "cold", "icy", "blue light", "bluish", "winter light",
                 "clinical"),
        "warm": ("warm", "warmer", "cozy", "cosy", "candlelight", "candle light",
                 "tungsten", "sunny", "sunlit", "firelight"),
    },
    "restyle": {
        "comic": ("comic", "comic book", "comics", "pop art", "halftone", "graphic novel",
                  "manga"),
        "watercolor": ("watercolor", "watercolour", "water color", "aquarelle"),
        "sketch": ("sketch", "sketched", "pencil", "pencil drawing", "charcoal",
                   "line art", "drawing", "hand drawn", "hand-drawn"),
        "noir": ("noir", "film noir", "black and white", "black-and-white", "monochrome",
                 "b&w", "grayscale", "greyscale"),
        "cartoon": ("cartoon", "cartoonish", "animated", "animation", "anime", "ghibli",
                    "pixar", "toon", "cel shaded", "cel-shaded", "cel shading"),
        "oil_paint": ("oil paint", "oil painting", "oil-painted", "painterly", "impasto",
                      "van gogh", "impressionist", "painting", "painted"),
    },
    "weather": {
        "rain": ("rain", "rainy", "raining", "rainfall", "drizzle", "downpour", "storm",
                 "stormy", "showers"),
        "snow": ("snow", "snowy", "snowing", "snowfall", "snowflakes", "blizzard",
                 "flurries"),
        "fog": ("fog", "foggy", "mist", "misty", "haze", "hazy", "smoke", "smoky"),
    },
    "background": {
        "image": ("reference image", "reference picture", "the image", "this image",
                  "the photo", "this photo", "my image", "my photo"),
        "gradient": ("gradient", "gradient background"),
        "color": ("solid background", "plain background", "solid color", "solid colour",
                  "studio background", "backdrop"),
        "blur": ("blur", "blurred", "blurry", "bokeh", "out of focus", "defocus",
                 "defocused", "depth of field", "portrait mode"),
    },
    "transition": {
        "cut": ("hard cut", "hard cuts", "straight cut", "no transition"),
        "wipe": ("wipe", "wipes"),
        "slide": ("slide", "slides", "swipe", "swipes"),
        "zoom": ("zoom transition", "zoom transitions", "zoom through"),
        "crossfade": ("crossfade", "cross fade", "cross-fade", "dissolve", "dissolves",
                      "fade", "fades"),
    },
    "placement": {
        "top_left": ("top left", "upper left", "top-left", "upper-left"),
        "top_right": ("top right", "upper right", "top-right", "upper-right"),
        "bottom_left": ("bottom left", "lower left", "bottom-left", "lower-left"),
        "bottom_right": ("bottom right", "lower right", "bottom-right", "lower-right",
                         "in the corner", "corner"),
        "top": ("at the top", "in the sky", "above", "overhead", "top"),
        "bottom": ("at the bottom", "on the ground", "on the floor", "on the table",
                   "below", "bottom", "foreground"),
        "left": ("on the left", "left side", "to the left", "left"),
        "right": ("on the right", "right side", "to the right", "right"),
        "center": ("in the center", "in the centre", "in the middle", "center", "centre",
                   "middle"),
    },
}
# Which entry wins when several match (first listed first).
PRIORITY = {kind: tuple(entries) for kind, entries in _WORDS.items()}

COLOURS: dict[str, RGB] = {
    "white": (245, 245, 245), "black": (12, 12, 12), "grey": (128, 128, 128),
    "gray": (128, 128, 128), "red": (200, 40, 45), "green": (40, 170, 70),
    "blue": (40, 90, 200), "yellow": (240, 205, 50), "orange": (240, 140, 40),
    "purple": (120, 60, 170), "pink": (240, 150, 190), "teal": (30, 140, 140),
    "beige": (225, 210, 180), "navy": (20, 35, 80), "studio": (200, 200, 205),
}
SIZES: dict[str, float] = {  # an added object's height, as a fraction of the frame's
    "tiny": 0.12, "small": 0.18, "little": 0.18, "medium": 0.3, "large": 0.45,
    "big": 0.45, "huge": 0.6, "giant": 0.6,
}
DEFAULT_SIZE = 0.3

VOCABULARY: dict[str, Any] = {
    "camera": MOTION_VOCABULARY["moves"],
    "speed": MOTION_VOCABULARY["speeds"],
    **_WORDS,
    "colour": {name: list(rgb) for name, rgb in COLOURS.items()},
    "size": SIZES,
    "rules": [
        "Case-insensitive, whole words only.",
        "camera: the earliest move named wins; with none, the style and seed choose.",
        "speed: slowing words scale the move down, fast words up.",
        "relight, restyle, background, transition, placement: the first listed wins.",
        "weather: every effect named is applied.",
        "Explicit options (restyle, relight, weather, background, transition) override "
        "prompt words.",
    ],
}


def names_move(prompt: str) -> bool:
    """Whether ``prompt`` names a camera move (else the style chooses one)."""
    text = (prompt or "").lower()
    return any(find_phrase(text, phrases) >= 0
               for phrases in MOTION_VOCABULARY["moves"].values())  # type: ignore[union-attr]


def first_match(kind: str, text: str) -> str | None:
    """The highest-priority entry of ``kind`` whose phrases occur in ``text``."""
    for name, phrases in _WORDS[kind].items():
        if find_phrase(text, phrases) >= 0:
            return name
    return None


@dataclass(frozen=True)
class PromptParams:
    """What a prompt asks for, as far as the local engine can tell."""

    move: CameraMove
    relight: str | None = None
    restyle: str | None = None
    weather: tuple[str, ...] = ()
    background: str | None = None
    colour: RGB | None = None
    placement: str | None = None
    size: float = DEFAULT_SIZE
    transition: str | None = None
    words: dict[str, Any] = field(default_factory=dict)  # what matched, for job meta


def parse_prompt(prompt: str, style: str = "cinematic", seed: int = 0) -> PromptParams:
    """Read every parameter out of ``prompt``. Deterministic for (prompt, style, seed)."""
    text = (prompt or "").lower()
    move = parse_motion(text, style, seed)
    weather = tuple(name for name, phrases in _WORDS["weather"].items()
                    if find_phrase(text, phrases) >= 0)
    colour_pos = [(pos, name) for name, _ in COLOURS.items()
                  if (pos := find_phrase(text, (name,))) >= 0]
    colour = COLOURS[min(colour_pos)[1]] if colour_pos else None
    sizes = [(pos, name) for name in SIZES if (pos := find_phrase(text, (name,))) >= 0]
    background = first_match("background", text)
    if background is None and colour is not None and find_phrase(
            text, ("background", "backdrop")) >= 0:
        background = "color"
    params = PromptParams(
        move=move, relight=first_match("relight", text), restyle=first_match("restyle", text),
        weather=weather, background=background, colour=colour,
        placement=first_match("placement", text),
        size=SIZES[min(sizes)[1]] if sizes else DEFAULT_SIZE,
        transition=first_match("transition", text))
    words = {"camera": move.kind, "intensity": move.intensity}
    for key in ("relight", "restyle", "background", "placement", "transition"):
        if getattr(params, key):
            words[key] = getattr(params, key)
    if weather:
        words["weather"] = list(weather)
    return PromptParams(**{**params.__dict__, "words": words})
