"""Captions without libass: the caption track's own events, drawn by Pillow and laid
over the clip by ffmpeg's ``overlay`` filter in the clip's single render pass.

The events are those ``captions.write_ass`` writes to the ``.ass`` file (kept either
way); each carries its layout as data (anchor, font size, line breaks, karaoke
timings, pop, pill), and this module draws it as libass would: the same Lato files
at the size libass gives them (ascent + descent = the ASS font size), the same
colours, outline, shadow, uppercase, anchor and safe margins, the karaoke
light-up word by word, beasty's red spoken word, mozi's rounded green pill, and the
first word's pop (in ``POP_STEPS`` steps).

**States.** The track is cut at every event's start and end, every karaoke light-up
and every pop step (at the centiseconds the ``.ass`` file says). Between two cuts the
picture does not change: it is one *state*, keyed by which events are up and in
which sub-state. Each distinct state is drawn once, as an RGBA PNG cropped to the
union of every state's ink (so all images have one size and one place on the frame),
plus one transparent image for the gaps. Glyphs are set ``SUPERSAMPLE`` times larger
and scaled down, once per caption line: the states that show a line share its masks
and only colour them (karaoke's light-up, the spoken word's colour) or scale them (a
pop step), so a state costs a few small composites and a PNG.

**Timeline.** The states go to ffmpeg as an ``ffconcat`` list: one ``file`` line per
span with its ``duration``, so the images become one variable-frame-rate stream, a
second input to the render, laid over the picture by a single ``overlay``; each
output frame takes the latest image at or before its time (the same rule libass
applies to an event's start and end). A 90 s clip with ~200 events is a list of a few
hundred short lines and a few hundred small PNGs: the filtergraph and the command
line stay the same size however many events there are, where one ``overlay`` filter
(or ``enable`` expression) per event would grow the graph with the track. Each file
is opened with ``option framerate 1000`` so its timestamps are kept to the
millisecond (image demuxers otherwise count in 1/25 s); the ``option`` directive
needs ffmpeg 5.0 or later (``precise_timing``: an older ffmpeg gets the list without
it, and captions that may come and go up to 40 ms off), and the concat demuxer's
unsafe mode (``-safe 0``; the list and its files are ours, named by us).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .captions import POP, POP_MS, SHADOW, CaptionEvent, CaptionTrack, Pill, font_for

POP_STEPS = 3  # the pop's 90 ms, drawn as this many still scales
SUPERSAMPLE = 4  # text and pill are drawn this much larger, then scaled down: area
# anti-aliasing like libass', and the font's hinting (which Pillow cannot turn off, and
# libass does not apply) snaps edges to a quarter pixel rather than a whole one
BLANK = "blank.png"

# (event index, karaoke words lit, pop step) for each event up, by layer
_Key = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class CaptionOverlay:
    """Caption images on a timeline, ready to be a second ffmpeg input."""

    script: Path  # the ffconcat list
    x: int  # where the images' top-left corner goes on the frame
    y: int
    width: int  # the images' size
    height: int
    images: int  # distinct caption images (the blank one not counted)
    spans: int  # entries in the list

    def input_args(self) -> list[str]:
        """ffmpeg input options and ``-i`` for the caption stream."""
        return ["-f", "concat", "-safe", "0", "-i", str(self.script)]

    def overlay(self, base: str, captions: str) -> str:
        """The filter laying stream ``captions`` on ``base`` (both labels, e.g.
        ``[base]`` and ``[1:v]``); its output is left for the caller to label."""
        return f"{base}{captions}overlay=x={self.x}:y={self.y}:eof_action=pass:format=yuv420"


def precise_timing(ffmpeg_version: str) -> bool:
    """Whether an ffmpeg of this version reads the list's ``option`` lines (5.0 on;
    a version that is not a release number, such as a git build's, is taken as new)."""
    match = re.match(r"n?(\d+)\.", ffmpeg_version)
    return match is None or int(match.group(1)) >= 5


def render_overlay(track: CaptionTrack, folder: Path, *,
                   precise: bool = True) -> CaptionOverlay | None:
    """Draw ``track``'s states into ``folder`` and write their list; None when the
    track shows nothing. ``precise``: times to the millisecond (ffmpeg 5.0 on; see
    ``precise_timing``)."""
    spans = caption_spans(track)
    keys = list(dict.fromkeys(k for _, _, k in spans if k))
    painter = _Painter(track)
    layers = {key: painter.layers(key) for key in keys}
    box = _union_box([layer[0] for ls in layers.values() for layer in ls],
                     track.width, track.height)
    if box is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[_Key, str] = {}
    for n, (key, ls) in enumerate(layers.items()):
        names[key] = f"cap_{n:04d}.png"
        painter.compose(ls, box).save(folder / names[key], compress_level=1)
    left, top, right, bottom = box
    Image.new("RGBA", (right - left, bottom - top)).save(folder / BLANK)
    option = ["option framerate 1000"] if precise else []
    lines = ["ffconcat version 1.0"]
    for start, end, key in spans:
        lines += [f"file {names[key] if key else BLANK}", *option,
                  f"duration {(round(end * 1000) - round(start * 1000)) / 1000:.3f}"]
    lines += [f"file {BLANK}", *option]
    script = folder / "captions.ffconcat"
    script.write_text("\n".join(lines) + "\n")
    return CaptionOverlay(script, left, top, right - left, bottom - top, len(names),
                          len(spans) + 1)


# --- the timeline ------------------------------------------------------------------------

def _cs(t: float) -> float:
    """A time as the .ass file writes it (centiseconds)."""
    return max(0, round(t * 100)) / 100


def caption_spans(track: CaptionTrack) -> list[tuple[float, float, _Key]]:
    """The track as consecutive spans ``(start, end, key)`` from 0 to its last event's
    end; an empty key is a span with no caption up."""
    events = track.events
    step = POP_MS / 1000 / POP_STEPS
    starts = np.array([_cs(e.start) for e in events])
    ends = np.array([_cs(e.end) for e in events])
    cuts = {0.0, *starts.tolist(), *ends.tolist()}
    for e, start in zip(events, starts.tolist()):
        cuts |= {round(start + lit, 2) for lit in e.lit}
        if e.pop:
            cuts |= {round(start + k * step, 3) for k in range(1, POP_STEPS + 1)}
    times = sorted(cuts)
    spans: list[tuple[float, float, _Key]] = []
    for a, b in zip(times, times[1:]):
        t = (a + b) / 2
        up = np.flatnonzero((starts <= t) & (t < ends)).tolist()
        key = _state(events, up, starts, t, step)
        if spans and spans[-1][2] == key:
            spans[-1] = (spans[-1][0], b, key)
        else:
            spans.append((a, b, key))
    return spans


def _state(events: Sequence[CaptionEvent], up: list[int], starts: np.ndarray, t: float,
           step: float) -> _Key:
    """The key of the moment ``t``, when events ``up`` are up."""
    state = []
    for i in up:
        e, start = events[i], float(starts[i])
        lit = sum(1 for x in e.lit if round(start + x, 2) <= t)
        pop = min(int((t - start) / step), POP_STEPS) if e.pop else POP_STEPS
        state.append((e.layer, i, lit, pop))
    return tuple((i, lit, pop) for _, i, lit, pop in sorted(state))


# --- drawing -----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _Piece:
    """Coverage (an "L" image) of a part of a caption, placed on the frame. Hashed by
    identity: the painter's caches are keyed by the pieces themselves."""

    mask: Image.Image
    x: int  # top-left corner on the frame
    y: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.x + self.mask.width, self.y + self.mask.height


# a piece and its colour (ASS &HAABBGGRR, alpha included), in painting order
_Layer = tuple[_Piece, str]


class _Painter:
    """The layers of each state. A line's glyph masks (outline, and each word's fill)
    are drawn once and shared by every state that shows the line: karaoke's light-up
    only recolours words, a 3-word caption's states differ in one word's colour, and
    a pop step is the settled masks scaled about the anchor."""

    def __init__(self, track: CaptionTrack) -> None:
        self.track = track
        self._lines: dict[tuple[object, ...], tuple[list[_Piece], list[_Piece]]] = {}
        self._pills: dict[tuple[int, float], _Piece] = {}
        self._moved: dict[tuple[str, _Piece, float], _Piece] = {}
        self._paint: dict[tuple[_Piece, str], Image.Image] = {}

    def layers(self, key: _Key) -> list[_Layer]:
        out: list[_Layer] = []
        track = self.track
        for index, lit, pop in key:
            e = track.events[index]
            # libass scales linearly from POP to 1 over POP_MS: each step takes its middle
            scale = POP - (POP - 1) * (pop + 0.5) / POP_STEPS if pop < POP_STEPS else 1.0
            if e.pill is not None:
                if (index, scale) not in self._pills:
                    self._pills[index, scale] = _pill_piece(_scaled(e.pill, e, scale))
                out.append((self._pills[index, scale], track.look.pill))
                continue
            bodies, fills = self._glyphs(e)
            if scale != 1.0:
                bodies = [self._scale(p, scale, e) for p in bodies]
                fills = [self._scale(p, scale, e) for p in fills]
            if track.shadow > 0:
                shift = round(track.shadow)
                out += [(self._shifted(p, shift), SHADOW) for p in bodies]
            out += [(p, track.look.outline) for p in bodies]
            out += [(p, _word_colour(track, e, i, lit)) for i, p in enumerate(fills)]
        return out

    def _shifted(self, piece: _Piece, shift: int) -> _Piece:
        key = ("shift", piece, float(shift))
        if key not in self._moved:
            self._moved[key] = _Piece(piece.mask, piece.x + shift, piece.y + shift)
        return self._moved[key]

    def _scale(self, piece: _Piece, s: float, e: CaptionEvent) -> _Piece:
        key = ("scale", piece, s)
        if key not in self._moved:
            self._moved[key] = _scale(piece, s, e.x, e.y)
        return self._moved[key]

    def compose(self, layers: Sequence[_Layer], box: tuple[int, int, int, int]) -> Image.Image:
        """The layers painted in order, each over the ones before, on a transparent
        ``box`` of the frame (straight alpha, as PNG wants). A piece in a colour is
        made once; each is laid over only where it is."""
        left, top, right, bottom = box
        canvas = Image.new("RGBA", (right - left, bottom - top))
        for piece, colour in layers:
            key = (piece, colour)
            if key not in self._paint:
                r, g, b, a = rgba(colour)
                paint = Image.new("RGBA", piece.mask.size, (r, g, b, 0))
                paint.putalpha(piece.mask if a == 255 else
                               piece.mask.point(lambda v: v * a // 255))
                self._paint[key] = paint
            paint = self._paint[key]
            x0, y0, x1, y1 = piece.box
            cut = (max(0, left - x0), max(0, top - y0), min(paint.width, right - x0),
                   min(paint.height, bottom - y0))
            if cut[0] < cut[2] and cut[1] < cut[3]:
                canvas.alpha_composite(paint, (x0 + cut[0] - left, y0 + cut[1] - top), cut)
        return canvas

    def _glyphs(self, e: CaptionEvent) -> tuple[list[_Piece], list[_Piece]]:
        """Each line's glyphs with their outline, and each word's fill."""
        key = (e.words, e.fs, e.x, e.y, e.lines)
        if key not in self._lines:
            self._lines[key] = _draw_lines(self.track, e)
        return self._lines[key]


def _draw_lines(track: CaptionTrack, e: CaptionEvent) -> tuple[list[_Piece], list[_Piece]]:
    """Set the event's lines as libass does: centred on the anchor, the last line's
    box bottom on it, lines ``fs`` apart; drawn SUPERSAMPLE times larger."""
    k = SUPERSAMPLE
    font, descent = font_for(track.look.font, e.fs * k)
    stroke = round(track.outline * k)  # whole pixels at k times: any Pillow takes it
    bodies: list[_Piece] = []
    fills: list[_Piece] = []
    n = len(e.lines)
    for row, (a, b) in enumerate(e.lines):
        line = " ".join(e.words[a:b])
        left = e.x * k - font.getlength(line) / 2
        baseline = (e.y - (n - 1 - row) * e.fs) * k - descent
        bodies.append(_glyph_piece(font, line, left, baseline, stroke))
        for i in range(a, b):
            before = font.getlength(" ".join(e.words[a:i]) + " ") if i > a else 0.0
            fills.append(_glyph_piece(font, e.words[i], left + before, baseline, 0))
    return bodies, fills


def _glyph_piece(font, text: str, x: float, y: float,  # type: ignore[no-untyped-def]
                 stroke: int) -> _Piece:
    """``text`` with its baseline's left end at (x, y) of the SUPERSAMPLE-times frame,
    drawn there and scaled down to a piece of the frame."""
    k = SUPERSAMPLE
    ink = font.getbbox(text, anchor="ls", stroke_width=stroke)
    x0, y0 = math.floor((x + ink[0]) / k) - 1, math.floor((y + ink[1]) / k) - 1
    x1, y1 = math.ceil((x + ink[2]) / k) + 1, math.ceil((y + ink[3]) / k) + 1
    big = Image.new("L", ((x1 - x0) * k, (y1 - y0) * k))
    ImageDraw.Draw(big).text((x - x0 * k, y - y0 * k), text, font=font, anchor="ls",
                             fill=255, stroke_width=stroke, stroke_fill=255)
    return _Piece(big.resize((x1 - x0, y1 - y0), Image.Resampling.BOX), x0, y0)


def _scale(piece: _Piece, s: float, ax: float, ay: float) -> _Piece:
    """``piece`` scaled by ``s`` about the frame point (ax, ay)."""
    x0, y0, x1, y1 = piece.box
    nx0, ny0 = math.floor(ax + s * (x0 - ax)), math.floor(ay + s * (y0 - ay))
    nx1, ny1 = math.ceil(ax + s * (x1 - ax)), math.ceil(ay + s * (y1 - ay))
    # output pixel (u, v) is frame point (nx0 + u, ny0 + v): where it was before scaling
    coeffs = (1 / s, 0.0, ax + (nx0 - ax) / s - x0, 0.0, 1 / s, ay + (ny0 - ay) / s - y0)
    img = piece.mask.transform((nx1 - nx0, ny1 - ny0), Image.Transform.AFFINE, coeffs,
                               resample=Image.Resampling.BILINEAR)
    return _Piece(img, nx0, ny0)


def _scaled(pill: Pill, e: CaptionEvent, s: float) -> Pill:
    """The pill scaled by ``s`` about the text's anchor (as the text pops)."""
    return Pill(e.x + s * (pill.left - e.x), e.y + s * (pill.top - e.y),
                e.x + s * (pill.right - e.x), e.y + s * (pill.bottom - e.y), pill.radius * s)


def _pill_piece(pill: Pill) -> _Piece:
    """Coverage of the rounded pill, anti-aliased by supersampling."""
    k = SUPERSAMPLE
    x0, y0 = math.floor(pill.left), math.floor(pill.top)
    w, h = math.ceil(pill.right) - x0, math.ceil(pill.bottom) - y0
    big = Image.new("L", (w * k, h * k))
    ImageDraw.Draw(big).rounded_rectangle(
        ((pill.left - x0) * k, (pill.top - y0) * k, (pill.right - x0) * k - 1,
         (pill.bottom - y0) * k - 1), radius=pill.radius * k, fill=255)
    return _Piece(big.resize((w, h), Image.Resampling.BOX), x0, y0)


def _word_colour(track: CaptionTrack, e: CaptionEvent, k: int, lit: int) -> str:
    look = track.look
    if e.lit:  # karaoke: secondary until the word's time, then primary
        return look.primary if k < lit else look.secondary
    if look.active and k == e.active:
        return look.active
    return look.primary


def _union_box(pieces: Sequence[_Piece], width: int,
               height: int) -> tuple[int, int, int, int] | None:
    """The even-aligned frame box holding every piece's ink."""
    boxes = []
    for p in set(pieces):
        ink = p.mask.getbbox()
        if ink:
            boxes.append((p.x + ink[0], p.y + ink[1], p.x + ink[2], p.y + ink[3]))
    if not boxes:
        return None
    left = max(0, min(b[0] for b in boxes)) // 2 * 2
    top = max(0, min(b[1] for b in boxes)) // 2 * 2
    right = min(width // 2 * 2, (max(b[2] for b in boxes) + 1) // 2 * 2)
    bottom = min(height // 2 * 2, (max(b[3] for b in boxes) + 1) // 2 * 2)
    return int(left), int(top), int(right), int(bottom)


def rgba(colour: str) -> tuple[int, int, int, int]:
    """An ASS colour (``&HAABBGGRR``, alpha 0 = opaque) as RGBA (alpha 255 = opaque)."""
    value = int(colour.strip("&Hh"), 16)
    return (value & 0xFF, value >> 8 & 0xFF, value >> 16 & 0xFF, 255 - (value >> 24 & 0xFF))
