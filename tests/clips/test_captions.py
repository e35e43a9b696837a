"""Caption tracks: events follow the word timings, karaoke moves word by word, and
libass draws every caption inside the platform's safe area."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from reelforge.media.captions import SAFE_AREAS, ass_filter, group_words, write_ass
from reelforge.media.transcript import Word, parse_transcript

TEXT = ("Here is the thing nobody tells you about internationalization. "
        "Why? Because people remember how you made them feel, always.").split()


def words_at(step: float = 0.4, gap_after: int = 8) -> list[Word]:
    out, t = [], 0.3
    for i, text in enumerate(TEXT):
        out.append(Word(round(t, 3), round(t + step * 0.8, 3), text))
        t += step + (1.0 if i == gap_after else 0.0)  # a long pause after the 9th word
    return out


def parse_ass(path: Path) -> list[tuple[float, float, int, str, str]]:
    events = []
    for line in path.read_text().splitlines():
        if line.startswith("Dialogue:"):
            layer, start, end, style, _, _, _, _, _, text = line[10:].split(",", 9)
            events.append((_secs(start), _secs(end), int(layer), style, text))
    return events


def _secs(ts: str) -> float:
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def plain(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "", text).replace(r"\N", " ")


@pytest.mark.parametrize("preset", ["beasty", "mozi"])
def test_three_word_presets_follow_each_word(tmp_path: Path, preset: str) -> None:
    words = words_at()
    track = write_ass(words, preset, 360, 640, tmp_path / "c.ass")
    events = [e for e in parse_ass(track.path) if e[3] == "Text"]
    assert len(events) == len(words)  # one event per spoken word
    groups = group_words(words, 3)
    assert all(len(g) <= 3 for g in groups)
    # no group spans a sentence end
    for g in groups:
        assert not any(words[i].text.endswith((".", "?")) for i in g[:-1])
    order = [i for g in groups for i in g]
    for (start, end, _, _, text), i in zip(events, order):
        assert start == pytest.approx(words[i].start, abs=0.006)
        assert end >= words[i].end - 0.006 or end == pytest.approx(words[i + 1].start, abs=0.006)
        shown = plain(text).split()
        assert shown == [w.upper() for w in shown]  # uppercase
        assert 1 <= len(shown) <= 3
    for (_s0, e0, *_), (s1, *_rest) in zip(events, events[1:]):
        assert e0 <= s1 + 0.006  # never two at once
    if preset == "beasty":
        # the active word (and only it) is red; the rest yellow
        first = events[0][4]
        assert re.search(r"\\c&H000000FF&\}HERE\{\\c&H0000FFFF&\}", first)
    else:
        boxes = [e for e in parse_ass(track.path) if e[3] == "Box"]
        assert [(b[0], b[1]) for b in boxes] == [(e[0], e[1]) for e in events]
        assert all(b[2] < e[2] for b, e in zip(boxes, events))  # the pill under the text
        # each box event is one pill, a vector drawing: four sides, four bezier corners
        pills = [e.pill for e in track.events if e.style == "Box"]
        for (_, _, _, _, text), pill in zip(boxes, pills):
            assert pill is not None
            x0, y0, x1, y1 = drawing_box(text)
            assert (x0, y0) == pytest.approx((pill.left, pill.top), abs=0.11)
            assert (x1, y1) == pytest.approx((pill.right, pill.bottom), abs=0.2)
        # within a group the pill moves to the next word, left to right
        group = [e for e in track.events if e.style == "Box" and e.words == track.events[0].words]
        assert [e.active for e in group] == list(range(len(group))) and len(group) == 3
        lefts = [e.pill.left for e in group if e.pill]
        assert lefts == sorted(lefts) and lefts[-1] > lefts[0] + 20


def drawing_box(text: str) -> tuple[float, float, float, float]:
    """The frame box of an ``\\an7\\pos(x,y)\\p1`` (or ``\\move``) drawing event, its
    corners checked to be cubic bezier arcs: (left, top, right, bottom)."""
    place = re.search(r"\\(?:pos|move)\(([-\d.]+),([-\d.]+)(?:,([-\d.]+),([-\d.]+))?", text)
    assert place and r"\an7" in text and r"\p1}" in text and text.endswith(r"{\p0}")
    x, y = (float(place[3]), float(place[4])) if place[3] else (float(place[1]),
                                                                 float(place[2]))
    path = re.sub(r"\{[^}]*\}", "", text).split()
    assert path[0] == "m" and path.count("b") == 4 and path.count("l") == 4
    values = [float(v) for v in path if v not in ("m", "l", "b")]
    xs, ys = values[0::2], values[1::2]
    w, h = max(xs), max(ys)
    assert min(xs) == 0 and min(ys) == 0
    # no point sits on a square corner: the corners are cut by the arcs
    assert not any((px in (0, w)) and (py in (0, h)) for px, py in zip(xs, ys))
    return x, y, x + w, y + h


def test_karaoke_highlight_moves_word_by_word(tmp_path: Path) -> None:
    words = words_at()
    track = write_ass(words, "karaoke", 360, 640, tmp_path / "k.ass")
    events = parse_ass(track.path)
    seen = 0
    for start, _end, _, _, text in events:
        ks = re.findall(r"\{\\k(\d+)\}([^{\\]+)", text)
        assert ks and all(w.strip() for _, w in ks)  # one \k per word
        t = start
        for cs, word in ks:
            assert word.strip().rstrip(" ") == words[seen].text
            assert t == pytest.approx(words[seen].start, abs=0.011)  # lights up on time
            t += int(cs) / 100
            seen += 1
    assert seen == len(words)


def test_captions_from_an_srt_transcript_keep_its_cue_times(tmp_path: Path) -> None:
    srt = "1\n00:00:00,500 --> 00:00:02,000\nOne two three four\n"
    words = parse_transcript(srt).words
    events = parse_ass(write_ass(words, "beasty", 360, 640, tmp_path / "s.ass").path)
    assert events[0][0] == pytest.approx(0.5, abs=0.006)
    assert events[-1][1] >= 2.0 - 0.006


def frame_at(ffmpeg, ass: Path, t: float, size: tuple[int, int], track) -> np.ndarray:
    out = ass.with_suffix(f".{int(t * 1000)}.png")
    ffmpeg.run(["-f", "lavfi", "-i", f"color=c=black:size={size[0]}x{size[1]}:rate=25:"
                f"duration={t + 0.2:.2f}", "-vf", f"{ass_filter(track)}",
                "-ss", f"{t:.3f}", "-frames:v", "1", "-update", "1", str(out)])
    with av.open(str(out)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


@pytest.mark.parametrize("preset, aspect, size", [
    ("beasty", "9:16", (360, 640)), ("mozi", "9:16", (360, 640)),
    ("karaoke", "9:16", (360, 640)), ("beasty", "16:9", (640, 360))])
def test_libass_draws_captions_inside_the_safe_area(tmp_path: Path, ffmpeg, preset: str,
                                                    aspect: str, size: tuple[int, int]) -> None:
    long_words = [Word(0.1, 0.5, "Extraordinarily"), Word(0.6, 1.0, "uncharacteristically"),
                  Word(1.1, 1.5, "internationalization"), Word(1.6, 2.0, "Go!")]
    track = write_ass(long_words, preset, size[0], size[1], tmp_path / "safe.ass",
                      aspect_ratio=aspect)
    assert track.fonts_dir is not None, "font-lato is a dependency"
    safe = SAFE_AREAS[aspect]
    w, h = size
    for t in (0.3, 1.3, 1.8):
        img = frame_at(ffmpeg, track.path, t, size, track)
        ys, xs = np.nonzero(img.max(axis=2) > 40)
        assert xs.size, f"nothing drawn at {t}"
        assert xs.min() >= safe.left * w - 1 and xs.max() <= safe.right * w + 1, \
            (t, xs.min(), xs.max())
        assert ys.min() >= safe.top * h and ys.max() <= safe.bottom * h, (t, ys.min(), ys.max())


def test_mozi_pill_has_round_corners(tmp_path: Path, ffmpeg) -> None:
    size = (720, 1280)
    words = [Word(0.1, 0.6, "Round."), Word(0.7, 1.2, "Pills."), Word(1.5, 1.8, "Yes")]
    track = write_ass(words, "mozi", size[0], size[1], tmp_path / "pill.ass")
    box = next(e for e in track.events if e.style == "Box" and e.words == ("PILLS.",))
    pill = box.pill  # a one-word caption: no neighbour's outline over the pill's edges
    assert pill is not None and pill.radius >= 0.25 * pill.height
    img = frame_at(ffmpeg, track.path, 0.9, size, track).astype(int)
    green = np.array([0x22, 0xC5, 0x5E])

    def is_green(x: float, y: float) -> bool:
        return bool(np.abs(img[int(y), int(x)] - green).max() < 30)

    mid_x, mid_y = (pill.left + pill.right) / 2, (pill.top + pill.bottom) / 2
    # just inside each edge's midpoint: pill
    assert is_green(pill.left + 2, mid_y) and is_green(pill.right - 3, mid_y)
    assert is_green(mid_x, pill.top + 2) and is_green(mid_x, pill.bottom - 3)
    assert is_green(pill.left + pill.radius + 2, pill.top + 2)  # the top edge, past the arc
    for cx, cy in ((pill.left + 1, pill.top + 1), (pill.right - 2, pill.top + 1),
                   (pill.left + 1, pill.bottom - 2), (pill.right - 2, pill.bottom - 2)):
        assert img[int(cy), int(cx)].max() < 30, (cx, cy)  # each corner: background
