"""Captions without libass: the same caption events drawn by Pillow and laid over the
clip in its one ffmpeg pass. They show only while their events are up, inside the
safe area, light up word by word, and look like what libass draws (compared frame by
frame with a libass render of the same track, on a flat background)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reelforge.media.caption_overlay import (POP_STEPS, CaptionOverlay, caption_spans,
                                              precise_timing, render_overlay, rgba)
from reelforge.media.captions import KARAOKE_LIT, SAFE_AREAS, CaptionTrack, write_ass
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg
from reelforge.media.reframe import WHOLE, CameraPath, Segment, render_clip
from reelforge.media.transcript import parse_transcript

SIZE = (360, 640)  # 9:16
FPS = 25
SECONDS = 2.6
BG = (48, 64, 96)
# a provided transcript (JSON words); times off the 25 fps frame grid
TRANSCRIPT = json.dumps([
    {"word": "Overlays", "start": 0.22, "end": 0.55},
    {"word": "look", "start": 0.62, "end": 0.93},
    {"word": "like", "start": 1.02, "end": 1.33},
    {"word": "libass.", "start": 1.42, "end": 1.73},
])


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


@pytest.fixture(scope="module")
def flat_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat-coloured 9:16 source: any pixel off its colour is caption."""
    path = tmp_path_factory.mktemp("overlay_src") / "flat.mp4"
    colour = "0x{:02x}{:02x}{:02x}".format(*BG)
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"color=c={colour}:size={SIZE[0]}x{SIZE[1]}:rate={FPS}:"
                    f"duration={SECONDS}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "10", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def still_camera(seconds: float = SECONDS) -> CameraPath:
    """The camera path of a source already in the output's shape: shown whole."""
    n = int(round(seconds * FPS))
    w, h = SIZE
    return CameraPath(FPS, n, w, h, w, h, np.zeros(n), np.zeros(n),
                      np.tile([w / 2, h / 2], (n, 1)), (Segment(0.0, n / FPS, WHOLE),), (), ())


def track_for(preset: str, folder: Path) -> CaptionTrack:
    words = parse_transcript(TRANSCRIPT).words
    return write_ass(words, preset, SIZE[0], SIZE[1], folder / f"{preset}.ass")


def render(ffmpeg: FFmpeg, src: Path, out: Path,
           captions: CaptionTrack | CaptionOverlay | None) -> tuple[np.ndarray, np.ndarray]:
    """Render a clip through ``render_clip``; its frames (RGB) and their times."""
    render_clip(ffmpeg, src, out, start=0.0, duration=SECONDS, path=still_camera(),
                out_w=SIZE[0], out_h=SIZE[1], captions=captions, has_audio=False,
                src_fps=FPS, workdir=out.parent, preset="ultrafast", crf=12)
    with av.open(str(out)) as c:
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    return np.stack([f for _, f in frames]), np.array([t for t, _ in frames])


def ink(frame: np.ndarray) -> np.ndarray:
    """Caption pixels: those off the flat background."""
    return np.abs(frame.astype(np.int16) - np.array(BG, np.int16)).max(axis=2) > 40


@pytest.fixture(scope="module")
def karaoke(ffmpeg: FFmpeg, flat_video: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("karaoke")
    track = track_for("karaoke", folder)
    overlay = render_overlay(track, folder / "overlay")
    assert overlay is not None
    frames, times = render(ffmpeg, flat_video, folder / "overlay.mp4", overlay)
    return track, overlay, frames, times


def test_spans_follow_the_events_and_the_list_keeps_their_times(karaoke) -> None:
    track, overlay, _, _ = karaoke
    (event,) = track.events  # one karaoke line: four words, one sentence
    spans = caption_spans(track)
    assert spans[0] == (0.0, 0.22, ())  # nothing before the first word
    up = [s for s in spans if s[2]]
    assert [s[0] for s in up] == [0.22, 0.62, 1.02, 1.42]  # a new image per word lit
    assert [key[0][1] for _, _, key in up] == [1, 2, 3, 4]  # words lit: one more each
    assert up[-1][1] == pytest.approx(round(event.end, 2))
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # no gaps, no overlaps
    # the ffconcat list: the images in order, their durations adding up to the spans
    lines = overlay.script.read_text().splitlines()
    files = [ln.split()[1] for ln in lines if ln.startswith("file ")]
    durations = [float(ln.split()[1]) for ln in lines if ln.startswith("duration ")]
    assert len(files) == len(durations) + 1 == overlay.spans == len(spans) + 1
    assert np.allclose(np.cumsum(durations), [s[1] for s in spans], atol=1e-6)
    assert files[0] == files[-1] == "blank.png" and overlay.images == 4
    sizes = {Image.open(overlay.script.parent / f).size for f in set(files)}
    assert sizes == {(overlay.width, overlay.height)}  # one size: one overlay, no reinit


def test_overlay_captions_show_only_during_their_events_inside_the_safe_area(karaoke) -> None:
    track, _, frames, times = karaoke
    (event,) = track.events
    start, end = round(event.start, 2), round(event.end, 2)
    shown = np.array([ink(f).sum() > 50 for f in frames])
    expected = (times >= start - 1e-6) & (times < end - 1e-6)
    assert expected.any() and (~expected).any()
    assert np.array_equal(shown, expected), (times[shown != expected])
    safe = SAFE_AREAS["9:16"]
    w, h = SIZE
    ys, xs = np.nonzero(np.any([ink(f) for f in frames[expected]], axis=0))
    assert xs.min() >= safe.left * w and xs.max() <= safe.right * w, (xs.min(), xs.max())
    assert ys.min() >= safe.top * h and ys.max() <= safe.bottom * h, (ys.min(), ys.max())


def lit_right_edge(frame: np.ndarray) -> int:
    """The x of the rightmost pixel in the karaoke light-up colour (-1: none)."""
    r, g, b, _ = rgba(KARAOKE_LIT)
    px = frame.astype(int)
    near = (np.abs(px[..., 0] - r) < 40) & (np.abs(px[..., 1] - g) < 40) & \
        (np.abs(px[..., 2] - b) < 60)
    xs = np.nonzero(near.any(axis=0))[0]
    return int(xs.max()) if xs.size else -1


def test_karaoke_overlay_lights_up_word_by_word(karaoke) -> None:
    track, _, frames, times = karaoke
    words = parse_transcript(TRANSCRIPT).words
    edges = []
    for w in words:  # the middle of each spoken word
        i = int(np.argmin(np.abs(times - (w.start + w.end) / 2)))
        edges.append(lit_right_edge(frames[i]))
    assert all(e > 0 for e in edges)
    assert all(b > a + 10 for a, b in zip(edges, edges[1:])), edges
    # the unlit rest of the line stays white meanwhile
    i = int(np.argmin(np.abs(times - 0.4)))
    white = (frames[i].astype(int).min(axis=2) > 200).sum()
    assert white > 100


def caption_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("preset", ["beasty", "mozi", "karaoke"])
def test_overlay_looks_like_libass(ffmpeg: FFmpeg, flat_video: Path, tmp_path: Path,
                                   preset: str) -> None:
    track = track_for(preset, tmp_path)
    overlay = render_overlay(track, tmp_path / "overlay")
    assert overlay is not None
    by_libass, times = render(ffmpeg, flat_video, tmp_path / "libass.mp4", track)
    by_overlay, times2 = render(ffmpeg, flat_video, tmp_path / "overlay.mp4", overlay)
    assert np.allclose(times, times2)
    compared = 0
    for i in range(0, len(times), 3):
        a, b = ink(by_libass[i]), ink(by_overlay[i])
        assert a.any() == b.any(), f"captions on in one render only at {times[i]:.2f} s"
        if not a.any():
            continue
        # the same pixels: inked in both, and the caption box within 2 px
        region = a | b
        iou = (a & b).sum() / region.sum()
        assert iou > 0.85, (times[i], iou)
        assert np.abs(np.subtract(caption_box(a), caption_box(b))).max() <= 2, \
            (times[i], caption_box(a), caption_box(b))
        # the same picture: small differences, pixel by pixel (sub-pixel edges) ...
        diff = np.abs(by_libass[i].astype(int) - by_overlay[i].astype(int)).max(axis=2)
        assert diff[region].mean() < 30, (times[i], diff[region].mean())
        # ... and the same colours overall
        mean_a, mean_b = by_libass[i][region].mean(axis=0), by_overlay[i][region].mean(axis=0)
        assert np.abs(mean_a - mean_b).max() < 8, (times[i], mean_a, mean_b)
        compared += 1
    assert compared >= 8


def test_overlay_draws_mozi_pill_with_round_corners(tmp_path: Path) -> None:
    track = track_for("mozi", tmp_path)
    overlay = render_overlay(track, tmp_path / "overlay")
    assert overlay is not None
    # the one-word caption (no neighbour's outline over the pill's edges), settled
    index, box = next((i, e) for i, e in enumerate(track.events)
                      if e.pill is not None and e.words == ("LIBASS.",))
    pill = box.pill
    assert pill is not None and pill.radius >= 0.25 * pill.height
    spans = caption_spans(track)
    span_no = next(n for n, (_, _, key) in enumerate(spans)
                   if key and key[0] == (index, 0, POP_STEPS))
    files = [ln.split()[1] for ln in overlay.script.read_text().splitlines()
             if ln.startswith("file ")]
    img = np.asarray(Image.open(overlay.script.parent / files[span_no]).convert("RGBA"))
    green = np.array(rgba(track.look.pill)[:3])

    def at(x: float, y: float) -> np.ndarray:
        return img[int(y) - overlay.y, int(x) - overlay.x]

    def is_green(x: float, y: float) -> bool:
        px = at(x, y)
        return bool(px[3] == 255 and np.abs(px[:3].astype(int) - green).max() <= 2)

    mid_x, mid_y = (pill.left + pill.right) / 2, (pill.top + pill.bottom) / 2
    # just inside each edge's midpoint: pill; each square corner: cut off by the arc
    assert is_green(pill.left + 1.5, mid_y) and is_green(pill.right - 2, mid_y)
    assert is_green(mid_x, pill.top + 1.5) and is_green(mid_x, pill.bottom - 2)
    for cx, cy in ((pill.left + 1, pill.top + 1), (pill.right - 1.5, pill.top + 1),
                   (pill.left + 1, pill.bottom - 1.5), (pill.right - 1.5, pill.bottom - 1.5)):
        assert at(cx, cy)[3] == 0, (cx, cy, at(cx, cy))
    assert at(pill.left + pill.radius, pill.top + 1)[3] > 200  # the top edge past the arc


def test_an_ffmpeg_before_5_gets_the_list_without_option_lines(tmp_path: Path) -> None:
    assert precise_timing("7.1") and precise_timing("n6.0") and precise_timing("N-1134-gab")
    assert not precise_timing("4.4.2-0ubuntu0.22.04.1")
    overlay = render_overlay(track_for("karaoke", tmp_path), tmp_path / "old", precise=False)
    assert overlay is not None
    text = overlay.script.read_text()
    assert "option" not in text and text.count("file ") == overlay.spans
