"""Timed text over a frame pipe: transcripts in, caption overlays out.

``parse_transcript`` reads SRT, WebVTT, a JSON list of ``{"start", "end", "text"}``
or plain text. Plain text has no times, so it is cut into short lines (at sentence and
clause ends, at most ~42 characters) and spread over the span where there is speech,
each line on screen for a time in proportion to its length. ``CaptionTrack`` pre-renders
each cue once with Pillow (white text, dark outline, soft box) and, as a frame hook,
blends the cue that is on at each frame into the Y'CbCr planes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .render import Overlay

MAX_LINE = 42


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


_TIME = r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})|(\d{1,2}):(\d{2})[,.](\d{1,3})"
_CUE_LINE = re.compile(rf"^\s*(?:{_TIME})\s*-->\s*(?:{_TIME})")


def _seconds(groups: Sequence[str | None]) -> float:
    if groups[0] is not None:
        h, m, s, ms = groups[0], groups[1], groups[2], groups[3]
    else:
        h, m, s, ms = "0", groups[4], groups[5], groups[6]
    return int(h) * 3600 + int(m) * 60 + int(s) + int((ms or "0").ljust(3, "0")) / 1000  # type: ignore[arg-type]


def parse_transcript(text: str, duration: float,
                     speech: tuple[float, float] | None = None) -> list[Cue]:
    """Cues from a transcript, clipped to ``duration``. ``speech`` is the (start, end)
    span of speech, used to time plain text."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
            cues = [Cue(float(c["start"]), float(c["end"]), str(c["text"]).strip())
                    for c in items]
            return _clip(cues, duration)
        except (ValueError, KeyError, TypeError):
            pass
    if "-->" in text:
        return _clip(_parse_timed(text), duration)
    return _spread(split_lines(text), *(speech or (0.0, duration)), duration)


def _parse_timed(text: str) -> list[Cue]:
    cues: list[Cue] = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    for block in blocks:
        lines = block.strip().split("\n")
        for k, line in enumerate(lines):
            m = _CUE_LINE.match(line)
            if m:
                g = m.groups()
                body = " ".join(x.strip() for x in lines[k + 1:] if x.strip())
                body = re.sub(r"<[^>]+>", "", body)
                if body:
                    cues.append(Cue(_seconds(g[:7]), _seconds(g[7:]), body))
                break
    return cues


def _clip(cues: list[Cue], duration: float) -> list[Cue]:
    out = []
    for cue in sorted(cues, key=lambda c: c.start):
        start, end = max(0.0, cue.start), min(duration, cue.end)
        if end > start and cue.text:
            out.append(Cue(start, end, cue.text))
    return out


def split_lines(text: str, max_chars: int = MAX_LINE) -> list[str]:
    """Caption-sized lines: clauses, then words packed up to ``max_chars``."""
    clauses = [c.strip() for c in re.split(r"(?<=[.!?;:,])\s+|\n+", text) if c.strip()]
    lines: list[str] = []
    for clause in clauses:
        current = ""
        for word in clause.split():
            if current and len(current) + 1 + len(word) > max_chars:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}".strip()
        if current:
            if lines and len(lines[-1]) + len(current) + 1 <= max_chars // 2:
                lines[-1] = f"{lines[-1]} {current}"  # glue very short clauses
            else:
                lines.append(current)
    return lines


def _spread(lines: list[str], start: float, end: float, duration: float) -> list[Cue]:
    if not lines:
        return []
    start, end = max(0.0, start), min(duration, end)
    if end - start < 0.5 * len(lines) ** 0.5:
        start, end = 0.0, duration
    weights = np.array([len(line) + 8 for line in lines], dtype=np.float64)
    bounds = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [Cue(float(bounds[k]), float(bounds[k + 1]), line) for k, line in enumerate(lines)]


def speech_span(loudness: np.ndarray, fps: float, threshold: float = 0.35
                ) -> tuple[float, float] | None:
    """First and last moment the per-frame loudness (0..1) is above ``threshold``."""
    loud = np.flatnonzero(loudness > threshold)
    if len(loud) == 0:
        return None
    return float(loud[0] / fps), float((loud[-1] + 1) / fps)


def to_webvtt(cues: Sequence[Cue]) -> str:
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    body = "\n".join(f"{k + 1}\n{stamp(c.start)} --> {stamp(c.end)}\n{c.text}\n"
                     for k, c in enumerate(cues))
    return "WEBVTT\n\n" + body


def caption_image(text: str, width: int, height: int) -> np.ndarray:
    """An RGBA caption: white text with a dark outline on a soft translucent box,
    wrapped to two lines at most within 86% of the frame width."""
    from PIL import Image, ImageDraw, ImageFont

    short = min(width, height)
    size = max(10, round(short * 0.05))
    limit = 0.86 * width
    while True:
        font = ImageFont.load_default(size=size)
        lines = _wrap(text.split(), font, limit)
        if len(lines) <= 2 or size <= 8:
            break
        size = max(8, int(size * 0.85))
    stroke = max(1, size // 12)
    line_h = round(size * 1.25)
    pad = max(4, size // 3)
    text_w = int(max(font.getlength(line) for line in lines))
    box = (text_w + 2 * pad + 2 * stroke, line_h * len(lines) + 2 * pad)
    img = Image.new("RGBA", box, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle([0, 0, box[0] - 1, box[1] - 1], radius=pad,
                           fill=(0, 0, 0, 110))
    for k, line in enumerate(lines):
        x = (box[0] - font.getlength(line)) / 2
        draw.text((x, pad + k * line_h), line, font=font, fill=(255, 255, 255, 255),
                  stroke_width=stroke, stroke_fill=(0, 0, 0, 230))
    return np.asarray(img)


def _wrap(words: list[str], font, limit: float) -> list[str]:  # type: ignore[no-untyped-def]
    lines, current = [], ""
    for word in words:
        trial = f"{current} {word}".strip()
        if current and font.getlength(trial) > limit:
            lines.append(current)
            current = word
        else:
            current = trial
    lines.append(current)
    return lines


class CaptionTrack:
    """A frame hook that shows each cue from its start to its end frame."""

    def __init__(self, cues: Sequence[Cue], width: int, height: int, fps: float,
                 bottom_margin: int = 0) -> None:
        self.fps = fps
        self.cues = list(cues)
        self.overlays: list[Overlay] = []
        for cue in self.cues:
            rgba = caption_image(cue.text, width, height)
            h, w = rgba.shape[:2]
            x = (width - w) // 2
            y = height - h - max(bottom_margin, round(height * 0.06))
            self.overlays.append(Overlay.from_rgba(rgba, max(0, x), max(0, y)))
        self.starts = np.array([round(c.start * fps) for c in self.cues], dtype=np.int64)
        self.ends = np.array([round(c.end * fps) for c in self.cues], dtype=np.int64)

    def active(self, index: int) -> int | None:
        on = np.flatnonzero((self.starts <= index) & (index < self.ends))
        return int(on[-1]) if len(on) else None

    def __call__(self, index: int, planes: Sequence[np.ndarray]) -> None:
        k = self.active(index)
        if k is not None:
            self.overlays[k].blend(planes)
