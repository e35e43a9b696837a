"""Validation of a job's mode, inputs and options, shared by every dialect.

Dialects translate their vendor's field names into these; the rules (KIE's
duration/quality rule, allowed styles, aspect ratios) live here once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ..engines.base import ASPECT_RATIOS, MODES, QUALITIES, STYLES, TRANSFORM_STYLES
from ..errors import Invalid, UnsupportedMode
from ..media.prompt import (BACKGROUNDS, COLOURS, PLACEMENTS, RELIGHTS, RESTYLES, TRANSITIONS,
                            WEATHERS)

# Which named inputs each mode needs (kind of asset for each).
REQUIRED_INPUTS: dict[str, dict[str, str]] = {
    "text_to_video": {},
    "image_to_video": {"image": "image"},
    "video_to_video": {"video": "video"},
    "image_audio_to_video": {"image": "image", "audio": "audio"},
    "reel": {},  # images[] checked separately
    "clips": {"video": "video"},
    "extend": {"video": "video"},
}
OPTIONAL_INPUTS: dict[str, str] = {"reference_image": "image", "audio": "audio"}
# Inputs that take a list of assets: name -> (kind, min count, max count).
LIST_INPUTS: dict[str, dict[str, tuple[str, int, int]]] = {"reel": {"images": ("image", 1, 10)}}
MAX_PROMPT = 2000

ModeOptions = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
_MODE_OPTIONS: dict[str, ModeOptions] = {}


def register_mode_options(mode: str, validator: ModeOptions) -> None:
    """Add a validator for one mode's own options.

    ``validator(raw, common)`` gets the raw options and the already-validated common
    ones, and returns the mode's extra clean options (raising ``Invalid`` with a fix).
    """
    _MODE_OPTIONS[mode] = validator


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UnsupportedMode(f"Unknown mode {mode!r}.",
                              fix=f"Use one of: {', '.join(MODES)}.")
    return mode


def _choice(options: dict[str, Any], name: str, allowed: tuple[str, ...], default: Any) -> Any:
    value = options.get(name, default)
    if value is None:
        return default
    if str(value) not in allowed:
        raise Invalid(f"{name} {value!r} is not supported.",
                      fix=f"Use one of: {', '.join(allowed)}.", field=name)
    return str(value)


def _number(options: dict[str, Any], name: str, default: Any, allowed: tuple[int, ...]) -> int:
    value = options.get(name, default)
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a number, got {value!r}.",
                      fix=f"Use one of: {', '.join(map(str, allowed))}.", field=name) from None
    if number not in allowed or float(value) != number:
        raise Invalid(f"{name} {value!r} is not supported.",
                      fix=f"Use one of: {', '.join(map(str, allowed))}.", field=name)
    return number


# Modes whose duration is KIE's 5 or 10 seconds, with 1080p for 5 s only.
CLIP_MODES = ("text_to_video", "image_to_video")
FIXED_DURATION_MODES = (*CLIP_MODES, "video_to_video")


def normalize_options(mode: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return clean options for ``mode`` or raise ``Invalid`` naming the field and the fix.

    Every mode gets prompt, style, aspect_ratio, quality, fps and the optional seed and
    watermark. ``duration`` is 5 or 10 seconds for the clip modes and video_to_video
    (KIE's rule: 1080p only for 5 s, for the clip modes); the other modes validate their
    own lengths (see the validators registered below).
    """
    out: dict[str, Any] = {}
    prompt = options.get("prompt") or ""
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
        raise Invalid(f"prompt must be text of at most {MAX_PROMPT} characters.",
                      fix="Shorten the prompt.", field="prompt")
    out["prompt"] = prompt
    out["style"] = _choice(options, "style", STYLES, "cinematic")
    out["aspect_ratio"] = _choice(options, "aspect_ratio", ASPECT_RATIOS, "16:9")
    out["quality"] = _choice(options, "quality", QUALITIES, "720p")
    out["fps"] = _number(options, "fps", 24, (24, 30))
    if mode in FIXED_DURATION_MODES:
        out["duration"] = _number(options, "duration", 5, (5, 10))
    if mode in CLIP_MODES and out["quality"] == "1080p" and out["duration"] != 5:
        raise Invalid("1080p is only available for 5-second videos.",
                      fix="Use duration 5 with 1080p, or quality 720p for 10 seconds.",
                      field="quality")
    if mode == "video_to_video":
        out["transform_style"] = _choice(options, "transform_style", TRANSFORM_STYLES,
                                         "color_grade")
    seed = options.get("seed")
    if seed is not None:
        try:
            out["seed"] = int(seed)
        except (TypeError, ValueError):
            raise Invalid(f"seed must be an integer, got {seed!r}.",
                          fix="Pass a whole number, e.g. 42.", field="seed") from None
        if not 0 <= out["seed"] < 2**32:
            raise Invalid("seed must be between 0 and 4294967295.",
                          fix="Pass a smaller whole number.", field="seed")
    watermark = options.get("watermark")
    if watermark not in (None, "", False, "false", "False", "0"):
        if watermark in (True, "true", "True", "1"):
            watermark = "reelforge"
        if not isinstance(watermark, str) or len(watermark) > 60:
            raise Invalid("watermark must be text of at most 60 characters.",
                          fix="Shorten the watermark text.", field="watermark")
        out["watermark"] = watermark
    extra = _MODE_OPTIONS.get(mode)
    if extra is not None:
        out.update(extra(options, out))
    return out


# Inputs an option may stand in for: clips can take a link that the job downloads
# (its `downloading` stage) instead of an uploaded video.
INPUT_FROM_OPTION: dict[str, dict[str, str]] = {"clips": {"video": "source_url"}}


def check_inputs(mode: str, inputs: dict[str, Any], options: dict[str, Any] | None = None) -> None:
    for name, (kind, low, high) in LIST_INPUTS.get(mode, {}).items():
        count = len(inputs.get(name) or [])
        if not low <= count <= high:
            raise Invalid(f"Mode {mode} needs {low} to {high} {kind}s in {name!r}; got {count}.",
                          fix=f"Send between {low} and {high} {name}.", field=name)
    stand_ins = INPUT_FROM_OPTION.get(mode, {})
    for name in REQUIRED_INPUTS[mode]:
        if not inputs.get(name) and not (options or {}).get(stand_ins.get(name, "")):
            raise Invalid(f"Mode {mode} needs an input named {name!r}.",
                          fix=f"Upload the {name} as a file field '{name}', or pass "
                              f"'{name}_url' or '{name}_asset_id'.", field=name)


# ---------------------------------------------------------------- per-mode options
# The built-in modes' own options. Each validator returns only the keys it owns, and
# the values it returns are what engines read (already typed and in range).

MAX_TRANSCRIPT = 20_000
AUDIO_REACTIVE = ("none", "pulse", "waveform")
REEL_TRANSITIONS = ("auto", *TRANSITIONS)
V2V_BACKGROUNDS = BACKGROUNDS
WEATHER_VALUES = ("none", *WEATHERS)
DEFAULT_MAX_AUDIO_SECONDS = 60.0  # the smallest plan's cap
DEFAULT_REEL_SECONDS = 15.0
MAX_EXTEND_SECONDS = 20.0  # OpenAI's extensions go up to 20 s
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _bool(options: dict[str, Any], name: str) -> bool | None:
    value = options.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"{name} must be true or false, got {value!r}.",
                  fix=f"Send {name}=true or {name}=false.", field=name)


def _seconds(options: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = options.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be a number of seconds, got {value!r}.",
                      fix=f"Send {name} between {low:g} and {high:g}.", field=name) from None
    if not low <= number <= high or math.isnan(number):
        raise Invalid(f"{name} {value!r} is out of range.",
                      fix=f"Send {name} between {low:g} and {high:g} seconds.", field=name)
    return number


def _optional_choice(options: dict[str, Any], name: str,
                     allowed: tuple[str, ...]) -> str | None:
    value = options.get(name)
    if value is None or value == "":
        return None
    text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    text = {"colour": "color", "oil": "oil_paint", "golden": "golden_hour",
            "watercolour": "watercolor"}.get(text, text)
    if text not in allowed:
        raise Invalid(f"{name} {value!r} is not supported.",
                      fix=f"Use one of: {', '.join(allowed)}.", field=name)
    return text


def _letterbox(options: dict[str, Any]) -> dict[str, Any]:
    letterbox = _bool(options, "letterbox")
    return {} if letterbox is None else {"letterbox": letterbox}


def _image_to_video_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    return _letterbox(raw)


def _text_to_video_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    if not common["prompt"].strip():
        raise Invalid("text_to_video needs a prompt describing the video.",
                      fix="Send a prompt, e.g. 'a red fox running through snow at dawn'.",
                      field="prompt")
    return {}


def _image_audio_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """The video lasts as long as the audio, up to ``max_duration`` (default 60 s). The
    cost is estimated before the audio is read, so it uses ``max_duration`` or, when a
    client sends it, ``audio_seconds`` (which then also caps the render)."""
    out: dict[str, Any] = {
        "max_duration": _seconds(raw, "max_duration", 1, 600) or DEFAULT_MAX_AUDIO_SECONDS,
        "audio_reactive": _optional_choice(raw, "audio_reactive", AUDIO_REACTIVE) or "none",
        **_letterbox(raw),
    }
    audio_seconds = _seconds(raw, "audio_seconds", 0.1, 600)
    if audio_seconds is not None:
        out["audio_seconds"] = audio_seconds
    transcript = raw.get("transcript")
    if transcript not in (None, ""):
        if isinstance(transcript, list):  # [{"start", "end", "text"}, ...]
            import json

            transcript = json.dumps(transcript)
        if not isinstance(transcript, str) or len(transcript) > MAX_TRANSCRIPT:
            raise Invalid(f"transcript must be text of at most {MAX_TRANSCRIPT} characters.",
                          fix="Send plain text, SRT or WebVTT, shorter.", field="transcript")
        out["transcript"] = transcript
    return out


def _reel_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """Length: ``duration`` (total, 3–60 s), or ``seconds_per_image`` (1–10 s) times the
    number of images, else 15 s; with an audio track shorter than that, the audio's."""
    duration = _seconds(raw, "duration", 3, 60)
    per_image = _seconds(raw, "seconds_per_image", 1, 10)
    if duration is not None and per_image is not None:
        raise Invalid("Send either duration or seconds_per_image, not both.",
                      fix="Drop one of them.", field="duration")
    out: dict[str, Any] = {
        "transition": _optional_choice(raw, "transition", REEL_TRANSITIONS) or "auto",
        "beat_sync": _bool(raw, "beat_sync") is not False,
        **_letterbox(raw),
    }
    if per_image is not None:
        out["seconds_per_image"] = per_image
    else:
        out["duration"] = duration if duration is not None else DEFAULT_REEL_SECONDS
    count = raw.get("image_count")
    if count not in (None, ""):
        out["image_count"] = _number(raw, "image_count", 1, tuple(range(1, 11)))
    return out


def _video_to_video_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {**_letterbox(raw)}
    if raw.get("style") in (None, ""):
        out["style"] = "auto"  # color_grade: a look named in the prompt, else cinematic
    if raw.get("aspect_ratio") in (None, ""):
        out["aspect_ratio"] = "source"  # keep the source's shape unless asked
    if raw.get("fps") in (None, ""):
        out["fps"] = "source"
    for name, allowed in (("restyle", RESTYLES), ("relight", RELIGHTS),
                          ("background", V2V_BACKGROUNDS), ("weather", WEATHER_VALUES)):
        value = _optional_choice(raw, name, allowed)
        if value is not None:
            out[name] = value
    colour = raw.get("background_color") or raw.get("background_colour")
    if colour not in (None, ""):
        out["background_color"] = _colour(colour)
    placement = _optional_choice(raw, "placement", PLACEMENTS)
    if placement is not None:
        out["placement"] = placement
    return out


def _colour(value: Any) -> str:
    text = str(value).strip().lower()
    if text in COLOURS or re.fullmatch(r"#[0-9a-f]{6}", text):
        return text
    raise Invalid(f"background_color {value!r} is not a colour I know.",
                  fix=f"Use #rrggbb or one of: {', '.join(COLOURS)}.",
                  field="background_color")


def _extend_options(raw: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    seconds = _seconds(raw, "duration", 1, MAX_EXTEND_SECONDS)
    if seconds is None:
        seconds = _seconds(raw, "seconds", 1, MAX_EXTEND_SECONDS)
    out: dict[str, Any] = {"duration": seconds if seconds is not None else 5.0}
    if raw.get("aspect_ratio") in (None, ""):
        out["aspect_ratio"] = "source"
    if raw.get("quality") in (None, ""):
        out["quality"] = "source"
    if raw.get("fps") in (None, ""):
        out["fps"] = "source"
    return out


for _mode, _validator in (("text_to_video", _text_to_video_options),
                          ("image_to_video", _image_to_video_options),
                          ("image_audio_to_video", _image_audio_options),
                          ("reel", _reel_options), ("video_to_video", _video_to_video_options),
                          ("extend", _extend_options)):
    register_mode_options(_mode, _validator)
