"""Burned-in caption tracks: ASS files written here, rendered by libass in ffmpeg (or,
where the ffmpeg build has no libass, drawn as overlays by ``caption_overlay`` from the
same events).

Presets (``CAPTION_PRESETS``):

beasty
    bold uppercase, yellow text with the word being spoken in red, a heavy black
    stroke, three words at a time.
karaoke
    a line of a few words in white; each word turns yellow as it is spoken (ASS ``\\k``
    karaoke timing, one tag per word).
mozi
    uppercase white text, three words at a time, the word being spoken on a green
    rounded pill (two layers: the pill, an ASS vector drawing with bezier corners, below;
    the text above; the pill placed from the font's own metrics, as the text is laid out).

Every caption is kept inside the platform's safe area for the output's aspect ratio
(``SAFE_AREAS``: clear of the like/share buttons on the right and the description
at the bottom of a 9:16 feed). Lines are broken and fonts shrunk here, from the
font's own metrics, so libass never has to wrap or let a long word run off the frame
(the track asks libass to kern, as those measurements do).

Each ``CaptionEvent`` carries its layout as data as well as ASS text (anchor, font
size, line breaks, karaoke timings, pop, pill), so a renderer without libass draws the
very same captions.

Fonts come from the ``font-lato`` package (SIL Open Font License); ffmpeg is pointed
at that folder with the ``ass`` filter's ``fontsdir``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .ffmpeg import filter_path
from .transcript import SENTENCE_END, Word

CAPTION_PRESETS = ("none", "beasty", "karaoke", "mozi")
PRESET_DESCRIPTIONS = {
    "none": "No captions.",
    "beasty": "Bold uppercase, yellow with the spoken word in red, heavy stroke, "
              "3 words at a time.",
    "karaoke": "A short line; each word lights up as it is spoken.",
    "mozi": "Uppercase, 3 words at a time, the spoken word on a green pill.",
}
GROUP_WORDS = 3
KARAOKE_WORDS = 6
MAX_GAP_S = 0.7  # a pause this long starts a new caption group
HOLD_S = 0.35  # a group stays up this long after its last word if nothing follows
POP = 1.08  # a group's first word pops in at this scale ...
POP_MS = 90  # ... and settles to 100 % over this long
PILL_ROUNDING = 0.3  # corner radius of mozi's pill, as a fraction of its height
BEZIER_ARC = 0.5523  # control-point distance of a cubic bezier quarter circle (of r)


@dataclass(frozen=True)
class SafeArea:
    """Where captions may go, as fractions of the frame."""

    left: float
    right: float
    top: float
    bottom: float  # the lowest a caption's bottom edge may sit (from the top)
    anchor: float  # where the bottom of the caption block sits (from the top)


SAFE_AREAS = {
    # 9:16 feeds (TikTok, Reels, Shorts): buttons on the right, caption UI below.
    "9:16": SafeArea(left=0.10, right=0.90, top=0.14, bottom=0.76, anchor=0.70),
    "4:5": SafeArea(left=0.08, right=0.92, top=0.10, bottom=0.86, anchor=0.82),
    "1:1": SafeArea(left=0.08, right=0.92, top=0.10, bottom=0.88, anchor=0.84),
    "16:9": SafeArea(left=0.10, right=0.90, top=0.10, bottom=0.90, anchor=0.87),
}


@dataclass(frozen=True)
class Look:
    font: str  # font-lato file key
    family: str  # the name libass matches
    size: float  # font size as a fraction of the frame's short side
    upper: bool
    primary: str  # ASS &HAABBGGRR
    secondary: str
    outline: str
    outline_w: float  # as a fraction of the short side
    shadow: float
    active: str = ""  # the spoken word's colour, when it has its own
    pill: str = ""  # the colour of the pill behind the spoken word, when there is one


YELLOW, RED, WHITE, BLACK = "&H0000FFFF", "&H000000FF", "&H00FFFFFF", "&H00000000"
GREEN = "&H005EC522"  # #22C55E
KARAOKE_LIT = "&H0000E6FF"  # #FFE600
SHADOW = "&H80000000"  # black, half transparent

LOOKS = {
    "beasty": Look("LatoBlack", "Lato Black", 0.085, True, YELLOW, YELLOW, BLACK, 0.011, 0.004,
                   active=RED),
    "karaoke": Look("LatoBold", "Lato Bold", 0.062, False, KARAOKE_LIT, WHITE, BLACK, 0.007,
                    0.003),
    "mozi": Look("LatoBlack", "Lato Black", 0.072, True, WHITE, WHITE, BLACK, 0.005, 0.0,
                 pill=GREEN),
}


@dataclass(frozen=True)
class Pill:
    """A rounded box (frame pixels) behind the spoken word."""

    left: float
    top: float
    right: float
    bottom: float
    radius: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class CaptionEvent:
    """One ASS event, and its layout as data (for renderers without libass)."""

    start: float
    end: float
    layer: int
    style: str
    text: str  # the ASS text, override tags included
    words: tuple[str, ...]  # the words shown
    active: int | None  # index into words of the highlighted word (None: karaoke line)
    x: float = 0.0  # the block's anchor (ASS \an2): its bottom centre, frame pixels
    y: float = 0.0
    fs: int = 0  # ASS font size (ascent + descent, pixels)
    lines: tuple[tuple[int, int], ...] = ()  # word ranges [a, b) per line, top first
    lit: tuple[float, ...] = ()  # karaoke: when each word lights up (s after start)
    pop: bool = False  # scales from POP to 100 % over POP_MS from its start
    pill: Pill | None = None  # the box layer's pill (style "Box"): no text, only this


@dataclass(frozen=True)
class CaptionTrack:
    path: Path
    preset: str
    events: tuple[CaptionEvent, ...]
    width: int
    height: int
    fonts_dir: Path | None

    @property
    def look(self) -> Look:
        return LOOKS[self.preset]

    @property
    def outline(self) -> float:
        """Outline (stroke) width in pixels."""
        return _outline(self.look, min(self.width, self.height))

    @property
    def shadow(self) -> float:
        """Shadow offset in pixels (0: none)."""
        return _shadow(self.look, min(self.width, self.height))


def fonts_dir() -> Path | None:
    """The folder of the caption fonts, or None when font-lato is not installed
    (libass then falls back to a system font)."""
    try:
        import font_lato
    except ImportError:
        return None
    return Path(font_lato.font_directory)


@functools.lru_cache(maxsize=32)
def _font(key: str, px: float):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    folder = fonts_dir()
    if folder is not None and (folder / f"{key.replace('Lato', 'Lato-')}.ttf").is_file():
        return ImageFont.truetype(str(folder / f"{key.replace('Lato', 'Lato-')}.ttf"), px)
    return ImageFont.load_default(size=px)


def text_width(text: str, font_key: str, fs: float) -> float:
    """Width in pixels of ``text`` set by libass at ASS font size ``fs``.

    libass (like VSFilter) scales a font so that its ascent + descent equals the font
    size; Pillow's size is the em. Measured at 200 px and scaled.
    """
    font = _font(font_key, 200)
    ascent, descent = font.getmetrics()
    return font.getlength(text) * fs / (ascent + descent)


def font_for(font_key: str, fs: float):  # type: ignore[no-untyped-def]
    """The Pillow font that sets text as libass does at ASS font size ``fs``, and the
    baseline's height above the bottom of a line (libass' descent at ``fs``)."""
    ascent, descent = _font(font_key, 200).getmetrics()
    return _font(font_key, round(fs * 200 / (ascent + descent), 2)), fs * descent / (
        ascent + descent)


def _outline(look: Look, short: int) -> float:
    return max(1.0, round(look.outline_w * short, 1))


def _shadow(look: Look, short: int) -> float:
    return round(look.shadow * short, 1)


def group_words(words: Sequence[Word], size: int) -> list[list[int]]:
    """Indices of words in caption groups of at most ``size``: a sentence end or a
    pause closes a group early, so a caption never spans two sentences."""
    groups: list[list[int]] = []
    current: list[int] = []
    for i, word in enumerate(words):
        if current and (len(current) >= size or word.start - words[current[-1]].end > MAX_GAP_S):
            groups.append(current)
            current = []
        current.append(i)
        if SENTENCE_END.search(word.text):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def write_ass(words: Sequence[Word], preset: str, width: int, height: int, path: Path,
              *, aspect_ratio: str = "9:16") -> CaptionTrack:
    """Write the caption track for ``words`` (times relative to the clip's start)."""
    if preset not in LOOKS:
        raise ValueError(f"no caption look for preset {preset!r}")
    look = LOOKS[preset]
    safe = SAFE_AREAS.get(aspect_ratio, SAFE_AREAS["9:16"])
    short = min(width, height)
    fs = round(look.size * short)
    outline = _outline(look, short)
    words = [w for w in words if "".join(c for c in w.text if c.isprintable()).strip()]
    pad = max(outline, _box_pad(fs)) if preset == "mozi" else outline
    layout = _Layout(width, height, safe, look, fs, pad)
    if preset == "karaoke":
        events = _karaoke_events(words, layout)
    else:
        events = _group_events(words, layout, boxed=preset == "mozi")
    path.write_text(_header(width, height, look, fs, outline, safe) + "".join(
        _dialogue(e) for e in events), encoding="utf-8")
    return CaptionTrack(path, preset, tuple(events), width, height, fonts_dir())


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    safe: SafeArea
    look: Look
    fs: int
    pad: float  # stroke (or box) around the glyphs

    @property
    def room(self) -> float:
        """Widest a caption line may be, its stroke (or box) included."""
        return (self.safe.right - self.safe.left) * self.width - 2 * self.pad - 2

    @property
    def x(self) -> int:
        return round((self.safe.left + self.safe.right) / 2 * self.width)

    @property
    def y(self) -> int:
        return round(self.safe.anchor * self.height)

    def fit(self, lines: Sequence[str]) -> int:
        """The font size for ``lines``: the preset's, or smaller so the widest fits."""
        widest = max((text_width(ln, self.look.font, self.fs) for ln in lines), default=0.0)
        if widest <= self.room:
            return self.fs
        return max(8, int(self.fs * self.room / widest))


def _show(word: Word, look: Look) -> str:
    text = "".join(c for c in word.text.strip() if c.isprintable())
    text = text.replace("{", "(").replace("}", ")").replace("\\", "/")
    return text.upper() if look.upper else text


def _group_events(words: Sequence[Word], layout: _Layout, *, boxed: bool) -> list[CaptionEvent]:
    events: list[CaptionEvent] = []
    groups = group_words(words, GROUP_WORDS)
    look = layout.look
    for g, idx in enumerate(groups):
        shown = [_show(words[i], look) for i in idx]
        fs = layout.fit([" ".join(shown)])
        next_start = words[groups[g + 1][0]].start if g + 1 < len(groups) else None
        group_end = words[idx[-1]].end + HOLD_S
        if next_start is not None:
            group_end = min(group_end, next_start) if next_start - words[idx[-1]].end \
                <= MAX_GAP_S else words[idx[-1]].end + HOLD_S
        for k, i in enumerate(idx):
            start = words[i].start
            end = words[idx[k + 1]].start if k + 1 < len(idx) else max(group_end, words[i].end)
            if end <= start:
                continue
            pop = rf"\fscx{POP * 100:g}\fscy{POP * 100:g}\t(0,{POP_MS},\fscx100\fscy100)" \
                if k == 0 else ""
            head = rf"{{\an2\pos({layout.x},{layout.y})\fs{fs}{pop}}}"
            event = functools.partial(CaptionEvent, start, end, words=tuple(shown), active=k,
                                      x=layout.x, y=layout.y, fs=fs,
                                      lines=((0, len(shown)),), pop=k == 0)
            if boxed:
                pill = _pill(shown, k, fs, layout)
                events.append(event(layer=0, style="Box", pill=pill,
                                    text=_pill_text(pill, layout, pop=k == 0)))
                events.append(event(layer=1, style="Text", text=head + " ".join(shown)))
            else:
                events.append(event(layer=0, style="Text",
                                    text=head + _active_text(shown, k, look)))
    return events


def _active_text(shown: Sequence[str], active: int, look: Look) -> str:
    parts = []
    for k, text in enumerate(shown):
        parts.append(rf"{{\c{look.active}&}}{text}{{\c{look.primary}&}}" if k == active
                     else text)
    return " ".join(parts)


def _pill(shown: Sequence[str], active: int, fs: int, layout: _Layout) -> Pill:
    """The pill behind word ``active`` of the one-line caption ``shown`` at size ``fs``:
    the word's advance box (the line's full height), padded, with rounded corners."""
    font = layout.look.font
    line = text_width(" ".join(shown), font, fs)
    before = text_width(" ".join(shown[:active]) + " ", font, fs) if active else 0.0
    pad = _box_pad(fs)
    left = layout.x - line / 2 + before - pad
    right = left + text_width(shown[active], font, fs) + 2 * pad
    top, bottom = layout.y - fs - pad, layout.y + pad
    radius = min(PILL_ROUNDING * (bottom - top), (right - left) / 2)
    return Pill(left, top, right, bottom, radius)


def _pill_text(pill: Pill, layout: _Layout, *, pop: bool) -> str:
    """The pill as an ASS vector drawing (``\\p1``): straight edges and cubic bezier
    corners, drawn from the pill's top-left corner (``\\an7``: the drawing's origin sits
    at ``\\pos``). When the text pops, the pill pops with it: scaled about the text's
    anchor, which moves its corner from the scaled place back to its own."""
    x0, y0 = round(pill.left, 1), round(pill.top, 1)
    place = rf"\pos({x0:g},{y0:g})"
    if pop:
        sx = round(layout.x + POP * (pill.left - layout.x), 1)
        sy = round(layout.y + POP * (pill.top - layout.y), 1)
        place = (rf"\move({sx:g},{sy:g},{x0:g},{y0:g},0,{POP_MS})"
                 rf"\fscx{POP * 100:g}\fscy{POP * 100:g}\t(0,{POP_MS},\fscx100\fscy100)")
    return rf"{{\an7{place}\p1}}{pill_path(pill.width, pill.height, pill.radius)}{{\p0}}"


def pill_path(w: float, h: float, r: float) -> str:
    """ASS drawing commands for a ``w`` x ``h`` box with corners of radius ``r``."""
    c = r * (1 - BEZIER_ARC)

    def f(*values: float) -> str:
        return " ".join(f"{round(v, 1):g}" for v in values)

    return (f"m {f(r, 0)} l {f(w - r, 0)} b {f(w - c, 0, w, c, w, r)} "
            f"l {f(w, h - r)} b {f(w, h - c, w - c, h, w - r, h)} "
            f"l {f(r, h)} b {f(c, h, 0, h - c, 0, h - r)} "
            f"l {f(0, r)} b {f(0, c, c, 0, r, 0)}")


def _karaoke_events(words: Sequence[Word], layout: _Layout) -> list[CaptionEvent]:
    events: list[CaptionEvent] = []
    groups = group_words(words, KARAOKE_WORDS)
    look = layout.look
    for g, idx in enumerate(groups):
        shown = [_show(words[i], look) for i in idx]
        lines = _two_lines(shown, layout)
        fs = layout.fit([" ".join(shown[a:b]) for a, b in lines])
        start = words[idx[0]].start
        next_start = words[groups[g + 1][0]].start if g + 1 < len(groups) else None
        end = words[idx[-1]].end + HOLD_S
        if next_start is not None and next_start - words[idx[-1]].end <= MAX_GAP_S:
            end = next_start
        # \k durations in centiseconds, from rounded cumulative times (no drift)
        marks = [round((words[i].start - start) * 100) for i in idx]
        marks.append(max(marks[-1], round((words[idx[-1]].end - start) * 100)))
        parts: list[str] = []
        breaks = {a for a, _ in lines[1:]}
        for k, text in enumerate(shown):
            sep = r"\N" if k in breaks else (" " if k else "")
            parts.append(f"{sep}{{\\k{marks[k + 1] - marks[k]}}}{text}")
        head = rf"{{\an2\pos({layout.x},{layout.y})\fs{fs}}}"
        events.append(CaptionEvent(start, max(end, start + 0.01), 0, "Text",
                                   head + "".join(parts), tuple(shown), None, x=layout.x,
                                   y=layout.y, fs=fs, lines=tuple(lines),
                                   lit=tuple(m / 100 for m in marks[:-1])))
    return events


def _two_lines(shown: Sequence[str], layout: _Layout) -> list[tuple[int, int]]:
    """Split a karaoke line in two (balanced) when it is too wide for one."""
    if text_width(" ".join(shown), layout.look.font, layout.fs) <= layout.room or len(shown) < 2:
        return [(0, len(shown))]
    best = min(range(1, len(shown)), key=lambda k: max(
        text_width(" ".join(shown[:k]), layout.look.font, layout.fs),
        text_width(" ".join(shown[k:]), layout.look.font, layout.fs)))
    return [(0, best), (best, len(shown))]


def _box_pad(fs: int) -> float:
    return round(fs * 0.16, 1)


def _ts(seconds: float) -> str:
    cs = max(0, round(seconds * 100))
    h, rem = divmod(cs, 360000)
    m, rem = divmod(rem, 6000)
    s, cs = divmod(rem, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _dialogue(e: CaptionEvent) -> str:
    return f"Dialogue: {e.layer},{_ts(e.start)},{_ts(e.end)},{e.style},,0,0,0,,{e.text}\n"


def _header(width: int, height: int, look: Look, fs: int, outline: float,
            safe: SafeArea) -> str:
    ml = round(safe.left * width)
    mr = round((1 - safe.right) * width)
    mv = round((1 - safe.anchor) * height)
    shadow = _shadow(look, min(width, height))
    fields = "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, " \
             "OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, " \
             "ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, " \
             "MarginR, MarginV, Encoding"

    def style(name: str, primary: str, secondary: str, border: int, out_c: str,
              out_w: float, back: str, shadow_w: float) -> str:
        return (f"Style: {name},{look.family},{fs},{primary},{secondary},{out_c},{back},"
                f"0,0,0,0,100,100,0,0,{border},{out_w},{shadow_w},2,{ml},{mr},{mv},1\n")

    styles = style("Text", look.primary, look.secondary, 1, look.outline, outline,
                   SHADOW, shadow)
    styles += style("Box", look.pill or GREEN, look.pill or GREEN, 1, look.pill or GREEN, 0,
                    "&HFF000000", 0)
    return ("[Script Info]\n; written by reelforge\nScriptType: v4.00+\n"
            f"PlayResX: {width}\nPlayResY: {height}\nWrapStyle: 2\n"
            "ScaledBorderAndShadow: yes\nKerning: yes\nYCbCr Matrix: TV.709\n\n"
            f"[V4+ Styles]\n{fields}\n{styles}\n"
            "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, "
            "Effect, Text\n")


def ass_filter(track: CaptionTrack) -> str:
    """The ffmpeg filter that burns ``track`` in (paths escaped for the filtergraph)."""
    arg = f"ass=filename={filter_path(track.path)}"
    if track.fonts_dir is not None:
        arg += f":fontsdir={filter_path(track.fonts_dir)}"
    return arg

