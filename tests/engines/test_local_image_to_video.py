"""The local engine's image_to_video, end to end against real ffmpeg, probed with PyAV."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from reelforge.config import Settings
from reelforge.engines.base import Capabilities, Engine, JobSpec
from reelforge.engines.local import LocalEngine
from reelforge.engines.local.image_to_video import (ImageToVideoOptions, RenderResult,
                                                    load_image, plan_still,
                                                    render_still_video)
from reelforge.engines.registry import build_engines, engine_for
from reelforge.errors import Invalid, JobCancelled, JobTimedOut, MediaError
from reelforge.media import framing, render
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg
from reelforge.media.looks import LOOKS, grade
from reelforge.media.motion import CameraMove

W, H, FPS = 320, 180, 24


def scene(width: int = 640, height: int = 427, seed: int = 1) -> np.ndarray:
    """A photo-like picture: graded sky, hills, a bright figure off-centre."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    img = np.array([60, 110, 190], np.float32) * (1 - y) + np.array([245, 185, 140]) * y
    img = np.repeat(img, width, axis=1)
    xs = np.arange(width)
    for k, colour in enumerate([(95, 105, 130), (55, 85, 60), (35, 55, 40)]):
        ridge = (0.55 + 0.12 * k + 0.05 * np.sin(xs / width * 6.3 * (k + 1.3) + k)) * height
        img[np.arange(height)[:, None] > ridge[None, :]] = colour
    cx, cy = int(width * 0.3), int(height * 0.55)
    cv2.ellipse(img, (cx, cy + height // 7), (width // 22, height // 8), 0, 0, 360,
                (200, 40, 40), -1)
    cv2.circle(img, (cx, cy), height // 20, (235, 180, 150), -1)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return scene()


def children() -> set[int]:
    me, found = os.getpid(), set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry))
    return found


@pytest.fixture
def before() -> set[int]:
    """Child processes that existed before the test (other fixtures may own some)."""
    return children()


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, pos = path.read_bytes(), [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        pos += size if size else len(data)
    return boxes


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        cc = stream.codec_context
        decoded = sum(1 for _ in container.decode(video=0))
        return {"codec": cc.name, "pix_fmt": cc.pix_fmt, "width": cc.width, "height": cc.height,
                "frames": decoded, "rate": float(stream.average_rate),
                "colour": (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range)}


def render_small(image: np.ndarray, out: Path, ffmpeg: FFmpeg, **kw) -> RenderResult:
    opts = dict(width=W, height=H, fps=FPS, seconds=1.0, look="cinematic",
                move=CameraMove("push_in", 0.5), seed=7)
    opts.update(kw)
    return render_still_video(image, out, ffmpeg=ffmpeg, preset="ultrafast", **opts)


# --------------------------------------------------------------------- sizes and framing

@pytest.mark.parametrize("quality,aspect,size", [
    ("720p", "16:9", (1280, 720)), ("1080p", "16:9", (1920, 1080)),
    ("720p", "9:16", (720, 1280)), ("1080p", "1:1", (1080, 1080)),
    ("720p", "4:3", (960, 720)), ("1080p", "3:4", (1080, 1440)),
    ("1080p", "4:5", (1080, 1350)), ("720p", "21:9", (1680, 720)),
])
def test_output_sizes(quality: str, aspect: str, size: tuple[int, int]) -> None:
    assert render.output_size(quality, aspect) == size


def test_unknown_size_is_invalid() -> None:
    with pytest.raises(Invalid):
        render.output_size("4k", "16:9")


def test_subject_is_found_off_centre() -> None:
    img = np.full((400, 600, 3), 40, np.uint8)
    cv2.circle(img, (450, 120), 40, (250, 240, 200), -1)
    subject = framing.find_subject(img)
    assert subject.kind in ("face", "saliency")
    assert subject.x > 0.6 and subject.y < 0.45


def test_framing_crops_near_aspects_and_fits_far_ones(image: np.ndarray) -> None:
    subject = framing.find_subject(image)
    h, w = image.shape[:2]
    crop = framing.plan_framing(w, h, 16 / 9, subject)
    assert crop.mode == "crop" and crop.w == w and crop.h == pytest.approx(w * 9 / 16)
    fit = framing.plan_framing(w, h, 9 / 16, subject)
    assert fit.mode == "fit"
    canvas = framing.compose_canvas(image, fit, 180, 320)
    assert canvas.shape == (320, 180, 3)
    assert canvas[:40].mean() < image.mean()  # blurred, darkened fill above the image


# --------------------------------------------------------------------- looks

def test_each_look_is_measurably_different(image: np.ndarray) -> None:
    stats = {}
    for name, look in LOOKS.items():
        out = grade(image, look)
        assert out.dtype == np.uint8 and out.shape == image.shape
        flat = out.reshape(-1, 3).astype(np.float32)
        luma = flat @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        sat = flat.max(axis=1) - flat.min(axis=1)
        stats[name] = np.array([*flat.mean(axis=0), luma.std(), sat.mean()])
    names = list(stats)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(stats[a] - stats[b]).max() > 3.0, (a, b)


def test_frame_effects(image: np.ndarray, ffmpeg: FFmpeg, tmp_path: Path) -> None:
    plain = render_small(image, tmp_path / "a", ffmpeg, look="corporate").poster
    styled = render_small(image, tmp_path / "b", ffmpeg, look="vintage", watermark="reelforge")
    a = np.asarray(Image.open(plain)).astype(np.float32)
    b = np.asarray(Image.open(styled.poster)).astype(np.float32)
    corners = lambda x: np.concatenate([x[:20, :20], x[-20:, :20]]).mean()  # noqa: E731
    centre = lambda x: x[80:100, 150:170].mean()  # noqa: E731
    assert corners(b) / centre(b) < corners(a) / centre(a)  # vignette
    assert b[-30:, -110:].max() > 200 > a[-30:, -110:].max()  # white watermark text


def test_static_shot_holds_its_view_and_keeps_its_grain(image: np.ndarray) -> None:
    still = CameraMove(kind="static")
    clean = plan_still(image, width=W, height=H, fps=FPS, seconds=1, look="corporate",
                       move=still).animator
    first = clean.frame(0).copy()
    assert clean._held is not None  # the view is kept, not resampled, for what follows
    assert all(np.array_equal(clean.frame(i), first) for i in range(1, len(clean)))
    grainy = plan_still(image, width=W, height=H, fps=FPS, seconds=1, look="vintage",
                        move=still).animator
    a, b = grainy.frame(0).copy(), grainy.frame(1).copy()
    assert grainy._held is not None
    y = slice(0, W * H)
    assert not np.array_equal(a[y], b[y])  # grain changes every frame
    assert np.abs(a[y].astype(int) - b[y].astype(int)).mean() < 12  # over the same view


def test_cinematic_letterboxes_landscape_only(image: np.ndarray, ffmpeg: FFmpeg,
                                              tmp_path: Path) -> None:
    wide = np.asarray(Image.open(render_small(image, tmp_path / "w", ffmpeg).poster))
    assert wide[:15].max() < 30 and wide[-15:].max() < 30  # black bars
    assert wide[H // 2].mean() > 60
    tall = render_small(image, tmp_path / "t", ffmpeg, width=180, height=320)
    assert np.asarray(Image.open(tall.poster))[:10].mean() > 30
    off = render_small(image, tmp_path / "o", ffmpeg, letterbox=False)
    assert np.asarray(Image.open(off.poster))[:10].mean() > 30


# --------------------------------------------------------------------- the video

def test_video_format(image: np.ndarray, ffmpeg: FFmpeg, tmp_path: Path) -> None:
    result = render_small(image, tmp_path, ffmpeg, seconds=2.0, look="energetic",
                          move=CameraMove("pan_left", 0.7))
    info = probe(result.video)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (W, H)
    assert info["frames"] == result.frames == 2 * FPS
    assert info["rate"] == FPS
    assert info["colour"] == (1, 1, 1, 1)  # BT.709 primaries, transfer, matrix; tv range
    boxes = top_level_boxes(result.video)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    with Image.open(result.poster) as poster:
        assert poster.format == "JPEG" and poster.size == (W, H)
    assert not list(tmp_path.glob("*.part"))


def test_same_seed_same_bytes(image: np.ndarray, ffmpeg: FFmpeg, tmp_path: Path) -> None:
    kw = dict(look="vintage", move=CameraMove("drift", 0.5, angle=1.0))  # grain is seeded
    first = render_small(image, tmp_path / "1", ffmpeg, **kw).video.read_bytes()
    second = render_small(image, tmp_path / "2", ffmpeg, **kw).video.read_bytes()
    other = render_small(image, tmp_path / "3", ffmpeg, seed=8, **kw).video.read_bytes()
    assert first == second
    assert first != other


def test_camera_moves_between_frames(image: np.ndarray, ffmpeg: FFmpeg, tmp_path: Path) -> None:
    result = render_small(image, tmp_path, ffmpeg, look="minimal",
                          move=CameraMove("zoom_in", 0.8))
    with av.open(str(result.video)) as container:
        frames = [f.to_ndarray(format="gray").astype(np.float32)
                  for f in container.decode(video=0)]
    diffs = [np.abs(b - a).mean() for a, b in zip(frames, frames[1:])]
    assert min(diffs) > 0  # every frame moves: no held frames
    assert max(diffs) < 6 * np.mean(diffs)  # and no jumps


def test_cancel_kills_ffmpeg_and_leaves_no_file(before: set[int], image: np.ndarray,
                                                ffmpeg: FFmpeg, tmp_path: Path) -> None:
    seen: list[float] = []

    def progress(stage: str, fraction: float) -> None:
        if stage == "rendering":
            seen.append(fraction)
            if len(seen) == 2:
                raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        render_small(image, tmp_path, ffmpeg, seconds=4.0, progress=progress)
    assert len(seen) == 2 and seen[1] < 0.5
    assert children() <= before
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob("*.part"))


def test_deadline_times_out(before: set[int], image: np.ndarray, ffmpeg: FFmpeg,
                            tmp_path: Path) -> None:
    with pytest.raises(JobTimedOut):
        render_small(image, tmp_path, ffmpeg, deadline=time.monotonic() - 1)
    assert children() <= before


# --------------------------------------------------------------------- engine

def test_options_are_validated() -> None:
    opts = ImageToVideoOptions.parse({"style": "luxury", "duration": "10"}, seed=4)
    assert (opts.style, opts.duration, opts.seed, opts.fps) == ("luxury", 10, 4, 24)
    for bad in ({"style": "neon"}, {"duration": 7}, {"quality": "4k"}, {"fps": 60},
                {"aspect_ratio": "2:1"}, {"duration": "long"}):
        with pytest.raises(Invalid):
            ImageToVideoOptions.parse(bad)


@pytest.mark.parametrize("size,needed", [((1001, 667), None), ((1001, 667), (240, 120)),
                                         ((2400, 1600), (640, 360)), ((1600, 2400), (200, 90))])
def test_colour_jpegs_decode_as_pillow_decodes_them(tmp_path: Path, size: tuple[int, int],
                                                    needed: tuple[int, int] | None) -> None:
    # Upright colour JPEGs go through OpenCV (faster); they must come out as Pillow
    # makes them, at the same reduced scale.
    path = tmp_path / "photo.jpg"
    Image.fromarray(scene(*size)).save(path, quality=88)
    ours = load_image(path, needed=needed)
    with Image.open(path) as img:
        if needed:
            img.draft("RGB", needed)
        assert np.array_equal(ours, np.asarray(img.convert("RGB")))


def test_a_truncated_jpeg_is_refused_not_half_decoded(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    Image.fromarray(scene(640, 427)).save(whole, quality=90)
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    with pytest.raises(MediaError, match="could not decode"):
        load_image(cut, needed=(320, 180))


def test_exif_orientation_grey_and_cmyk_jpegs_come_out_upright_rgb(tmp_path: Path) -> None:
    picture = scene(90, 60)
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: shown turned 90 degrees clockwise
    Image.fromarray(picture).save(rotated, quality=95, exif=exif)
    assert load_image(rotated).shape == (90, 60, 3)
    for mode in ("L", "CMYK"):
        path = tmp_path / f"{mode}.jpg"
        stored = Image.fromarray(picture).convert(mode)
        stored.save(path, quality=95)
        rgb = load_image(path)
        assert rgb.shape == (60, 90, 3) and rgb.dtype == np.uint8
        assert np.abs(rgb.astype(int) - np.asarray(stored.convert("RGB"))).mean() < 3


@pytest.mark.parametrize("size", [(600, 338), (480, 270), (360, 202), (200, 112)])
def test_a_shrunk_canvas_is_close_to_an_area_average(size: tuple[int, int]) -> None:
    from skimage import data

    photo = cv2.resize(data.astronaut(), (640, 360), interpolation=cv2.INTER_CUBIC)
    fit = framing.Framing("crop", 0, 0, 640, 360, (0.5, 0.5))
    canvas = framing.compose_canvas(photo, fit, *size)
    area = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    assert canvas.shape == (size[1], size[0], 3)
    mse = np.mean((canvas.astype(float) - area) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 38  # dB: the same picture


def test_unreadable_image(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaError):
        load_image(bad)


def test_registry_builds_local_and_routes(tmp_path: Path) -> None:
    engines = build_engines(Settings(data_dir=tmp_path))
    assert isinstance(engines["local"], LocalEngine)
    assert engine_for("image_to_video", engines) is engines["local"]

    class Fancy(Engine):
        name = "fancy"

        def capabilities(self) -> Capabilities:
            return Capabilities("fancy", ("image_to_video", "text_to_video"), "test")

        def run(self, spec, inputs, workdir, progress):  # type: ignore[no-untyped-def]
            return []

    both = {"fancy": Fancy(), "local": engines["local"]}
    assert engine_for("image_to_video", both) is both["fancy"]
    assert engine_for("image_to_video", both, prefer="local") is both["local"]
    assert engine_for("text_to_video", {"local": engines["local"]}) is None
    assert engine_for("text_to_video", both) is both["fancy"]


def test_engine_end_to_end_720p_5s(image: np.ndarray, tmp_path: Path) -> None:
    src = tmp_path / "in.jpg"
    Image.fromarray(scene(1600, 1067)).save(src, quality=92)
    engine = LocalEngine(Settings(data_dir=tmp_path))
    caps = engine.capabilities()
    assert {"image_to_video", "image_audio_to_video", "reel", "video_to_video",
            "extend"} <= set(caps.modes)
    assert "motion" in caps.options["image_to_video"]["prompt"]
    spec = JobSpec("job1", "image_to_video", {"prompt": "slow zoom in", "style": "dramatic",
                                              "duration": 5, "quality": "720p",
                                              "aspect_ratio": "16:9", "fps": 24,
                                              "watermark": "reelforge"}, seed=3)
    assert engine.output_seconds("image_to_video", spec.options) == 5
    reports: list[tuple[str, float]] = []
    artifacts = engine.run(spec, {"image": src}, tmp_path / "out",
                           lambda stage, f: reports.append((stage, f)))
    video, poster, sheet = (next(a for a in artifacts if a.name == n)
                            for n in ("video", "poster", "spritesheet"))
    assert video.content_type == "video/mp4" and poster.content_type == "image/jpeg"
    assert sheet.content_type == "image/jpeg"
    with Image.open(sheet.path) as im:
        assert im.size == (sheet.meta["columns"] * sheet.meta["tile_width"],
                           sheet.meta["rows"] * sheet.meta["tile_height"])
        assert sheet.meta["count"] == 10 and sheet.meta["interval"] == 0.5
    assert video.meta == {**video.meta, "width": 1280, "height": 720, "duration": 5.0,
                          "fps": 24, "frames": 120}
    info = probe(video.path)
    assert (info["width"], info["height"], info["frames"]) == (1280, 720, 120)
    rendering = [f for stage, f in reports if stage == "rendering"]
    assert rendering == sorted(rendering) and rendering[-1] == 1.0 and len(rendering) >= 10
    with Image.open(poster.path) as im:
        assert im.size == (1280, 720)
