"""Validation of a job's mode, inputs and options, shared by every dialect.

Dialects translate their vendor's field names into these; the rules (KIE's
duration/quality rule, allowed styles, aspect ratios) live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engines.base import ASPECT_RATIOS, MODES, QUALITIES, STYLES, TRANSFORM_STYLES
from ..errors import Invalid, UnsupportedMode

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


def normalize_options(mode: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return clean options for ``mode`` or raise ``Invalid`` naming the field and the fix."""
    out: dict[str, Any] = {}
    prompt = options.get("prompt") or ""
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
        raise Invalid(f"prompt must be text of at most {MAX_PROMPT} characters.",
                      fix="Shorten the prompt.", field="prompt")
    out["prompt"] = prompt
    out["style"] = _choice(options, "style", STYLES, "cinematic")
    out["aspect_ratio"] = _choice(options, "aspect_ratio", ASPECT_RATIOS, "16:9")
    out["quality"] = _choice(options, "quality", QUALITIES, "720p")
    out["duration"] = _number(options, "duration", 5, (5, 10))
    out["fps"] = _number(options, "fps", 24, (24, 30))
    if out["quality"] == "1080p" and out["duration"] != 5:
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
    if watermark not in (None, "", False):
        if watermark is True:
            watermark = "reelforge"
        if not isinstance(watermark, str) or len(watermark) > 60:
            raise Invalid("watermark must be text of at most 60 characters.",
                          fix="Shorten the watermark text.", field="watermark")
        out["watermark"] = watermark
    extra = _MODE_OPTIONS.get(mode)
    if extra is not None:
        out.update(extra(options, out))
    return out


def check_inputs(mode: str, inputs: dict[str, Any]) -> None:
    for name, (kind, low, high) in LIST_INPUTS.get(mode, {}).items():
        count = len(inputs.get(name) or [])
        if not low <= count <= high:
            raise Invalid(f"Mode {mode} needs {low} to {high} {kind}s in {name!r}; got {count}.",
                          fix=f"Send between {low} and {high} {name}.", field=name)
    for name in REQUIRED_INPUTS[mode]:
        if not inputs.get(name):
            raise Invalid(f"Mode {mode} needs an input named {name!r}.",
                          fix=f"Upload the {name} as a file field '{name}', or pass "
                              f"'{name}_url' or '{name}_asset_id'.", field=name)
