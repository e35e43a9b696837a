"""Every local mode end to end on generated media, at a quarter of the promised size
(``render_scale=0.25``) and a few seconds, against real ffmpeg, probed with PyAV."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from reelforge.config import Settings
from reelforge.core.options import normalize_options
from reelforge.engines.base import Artifact, JobSpec
from reelforge.engines.local import LocalEngine
from reelforge.engines.local.image_to_video import render_still_video
from reelforge.engines.local.video_to_video import VideoLimits
from reelforge.errors import Invalid, JobCancelled, UnsupportedMode
from reelforge.media import segment
from reelforge.media.audio import SAMPLE_RATE, write_wav
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg
from reelforge.media.motion import CameraMove
from reelforge.media.video import SourceVideo

from .test_local_image_to_video import children, scene, top_level_boxes


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, ffmpeg: FFmpeg) -> dict[str, Path]:
    """Generated inputs shared by the tests of this module."""
    d = tmp_path_factory.mktemp("media")
    out = {}
    for name, colour in (("red", (200, 40, 40)), ("green", (40, 190, 60)),
                         ("blue", (40, 60, 210))):
        img = np.zeros((360, 480, 3), np.uint8)
        img[:] = colour
        cv2.circle(img, (240, 180), 80, (240, 240, 240), 12)
        Image.fromarray(img).save(d / f"{name}.jpg", quality=92)
        out[name] = d / f"{name}.jpg"
    Image.fromarray(scene(960, 640)).save(d / "photo.jpg", quality=92)
    out["photo"] = d / "photo.jpg"
    out["beats"] = save_wav(d / "beats.wav", clicks(4.0, 0.5, 0.3))
    out["click"] = save_wav(d / "click.wav", clicks(1.3, 10.0, 0.75, level=0.9, bed=0.05))
    subprocess.run([ffmpeg.path, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=30:d=2", "-f", "lavfi", "-i", "sine=f=330:d=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(d / "clip.mp4")], check=True)
    out["clip"] = d / "clip.mp4"
    return out


def clicks(seconds: float, period: float, offset: float, *, level: float = 0.6,
           bed: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.normal(0, bed, int(seconds * SAMPLE_RATE)).astype(np.float32)
    n = int(0.06 * SAMPLE_RATE)
    knock = (np.sin(2 * np.pi * 150 * np.arange(n) / SAMPLE_RATE)
             * np.exp(-np.arange(n) / (0.012 * SAMPLE_RATE))).astype(np.float32)
    for t in np.arange(offset, seconds - 0.07, period):
        i = int(t * SAMPLE_RATE)
        x[i:i + n] += level * knock
    return x


def save_wav(path: Path, mono: np.ndarray) -> Path:
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2")
    return write_wav(path, np.stack([pcm, pcm], axis=1))


def engine(tmp_path: Path, **settings: Any) -> LocalEngine:
    return LocalEngine(Settings(data_dir=tmp_path / "data", render_scale=0.25, **settings))


def run(eng: LocalEngine, mode: str, raw: dict[str, Any], inputs: dict[str, Any],
        workdir: Path, progress: Any = None) -> dict[str, Artifact]:
    opts = normalize_options(mode, raw)
    eng.output_seconds(mode, opts)
    arts = eng.run(JobSpec("job", mode, opts, seed=int(opts.get("seed", 0))), inputs, workdir,
                   progress or (lambda stage, f: None))
    return {a.name: a for a in arts}


def video_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def streams(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        facts: dict[str, Any] = {
            "frames": sum(1 for _ in c.decode(video=0)), "rate": float(v.average_rate),
            "size": (v.codec_context.width, v.codec_context.height),
            "pix_fmt": v.codec_context.pix_fmt,
            "colour": (v.codec_context.color_primaries, v.codec_context.color_trc,
                       v.codec_context.colorspace)}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            samples = [f.to_ndarray() for f in c.decode(audio=0)]
            pcm = np.concatenate(samples, axis=1).mean(axis=0)
            facts.update(audio_codec=a.codec_context.name, audio_rate=a.rate, pcm=pcm,
                         audio_seconds=len(pcm) / a.rate)
    return facts


def check_common(arts: dict[str, Artifact], size: tuple[int, int]) -> dict[str, Any]:
    video = arts["video"]
    facts = streams(video.path)
    assert facts["size"] == size and facts["pix_fmt"] == "yuv420p"
    assert facts["colour"] == (1, 1, 1)  # BT.709
    assert facts["frames"] == video.meta["frames"]  # exact to the frame
    assert video.meta["duration"] == pytest.approx(video.meta["frames"] / video.meta["fps"])
    boxes = top_level_boxes(video.path)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    for name in ("poster", "spritesheet"):
        assert arts[name].content_type == "image/jpeg"
        with Image.open(arts[name].path) as im:
            assert im.format == "JPEG"
    with Image.open(arts["poster"].path) as im:
        assert im.size == size
    return facts


# ------------------------------------------------------------------ image_to_video

def shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), window)
    return dx, dy


def log_zoom(a: np.ndarray, b: np.ndarray) -> float:
    """Scale from a to b by phase correlation of log-polar images (about the centre)."""
    h, w = a.shape
    radius = min(h, w) / 2
    pa, pb = (cv2.warpPolar(x.astype(np.float32), (256, 360), (w / 2, h / 2), radius,
                            cv2.WARP_POLAR_LOG) for x in (a, b))
    (dr, _), _ = cv2.phaseCorrelate(pa, pb)
    return dr * np.log(radius) / 256


def gray_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray").astype(np.float32) for f in c.decode(video=0)]


@pytest.mark.parametrize("kind", ["pan_left", "pan_up", "zoom_in", "push_in"])
def test_motion_is_monotonic_and_smooth_in_rendered_frames(kind: str, ffmpeg: FFmpeg,
                                                           tmp_path: Path) -> None:
    image = scene(960, 640)
    result = render_still_video(image, tmp_path, width=320, height=180, fps=24, seconds=1.5,
                                look="minimal", move=CameraMove(kind, 0.8), ffmpeg=ffmpeg,
                                preset="ultrafast", anchor_to_subject=False)
    frames = gray_frames(result.video)
    inner = range(int(len(frames) * 0.15), int(len(frames) * 0.85))  # eased ends are slow
    if kind.startswith("pan"):
        axis = 0 if kind == "pan_left" else 1
        steps = np.array([shift(frames[i], frames[i + 1])[axis] for i in inner])
        # pan left: the view moves left, so the picture moves right (+x); up: down (+y)
        assert np.all(steps > 0.05), steps  # no reversal, no stall
        assert np.abs(np.diff(steps)).max() < 0.5 * steps.max()  # no jumps or jitter
    else:
        steps = np.array([log_zoom(frames[i], frames[i + 1]) for i in inner])
        assert np.all(steps > 0), steps  # always zooming in
        assert np.abs(np.diff(steps)).max() < 0.6 * steps.max()


def test_image_to_video_job_at_render_scale(tmp_path: Path, media: dict[str, Path]) -> None:
    arts = run(engine(tmp_path), "image_to_video",
               {"prompt": "pan right gradually", "style": "vintage", "fps": 30,
                "aspect_ratio": "9:16", "watermark": "reelforge", "seed": 4},
               {"image": media["photo"]}, tmp_path / "out")
    facts = check_common(arts, (180, 320))
    assert facts["frames"] == 150 and facts["rate"] == 30
    meta = arts["video"].meta
    assert meta["camera"] == "pan_right" and meta["style"] == "vintage"
    sheet = arts["spritesheet"].meta
    assert (sheet["count"], sheet["columns"], sheet["rows"]) == (10, 5, 2)
    assert sheet["interval"] == 0.5


# ------------------------------------------------------------------ image_audio_to_video

def test_image_audio_lasts_as_long_as_the_audio_and_stays_in_sync(
        tmp_path: Path, media: dict[str, Path]) -> None:
    transcript = "1\n00:00:00,100 --> 00:00:01,200\nA knock at the door"
    arts = run(engine(tmp_path), "image_audio_to_video",
               {"audio_reactive": "waveform", "transcript": transcript, "style": "minimal"},
               {"image": media["photo"], "audio": media["click"]}, tmp_path / "out")
    facts = check_common(arts, (320, 180))
    assert facts["frames"] == round(1.3 * 24)  # as long as the audio
    assert facts["audio_codec"] == "aac" and facts["audio_rate"] == 48_000
    assert abs(facts["audio_seconds"] - facts["frames"] / 24) < 1 / 24
    # A/V sync: the click is loudest in the audio at the frame where the strip peaks.
    pcm = np.abs(facts["pcm"])
    envelope = np.array([pcm[int(i * 2000):int((i + 1) * 2000)].mean()
                         for i in range(facts["frames"])])
    audio_peak = int(np.argmax(envelope))
    frames = video_frames(arts["video"].path)
    strip = [f[146:170, 48:272].astype(np.float32).mean() for f in frames]  # below captions
    video_peak = int(np.argmax(strip))
    assert abs(audio_peak - round(0.75 * 24)) <= 1
    assert abs(video_peak - audio_peak) <= 1
    # Captions: the transcript is burned in while its cue is on, and sent as WebVTT.
    assert arts["captions"].content_type == "text/vtt"
    assert "A knock at the door" in arts["captions"].path.read_text()
    assert arts["video"].meta["captions"] == 1


def test_image_audio_is_capped_and_pulses(tmp_path: Path, media: dict[str, Path]) -> None:
    eng = engine(tmp_path)
    opts = normalize_options("image_audio_to_video", {"max_duration": 1, "audio_reactive":
                                                      "pulse"})
    assert eng.output_seconds("image_audio_to_video", opts) == 1.0
    assert eng.output_seconds("image_audio_to_video", normalize_options(
        "image_audio_to_video", {"audio_seconds": 12})) == 12.0
    arts = run(eng, "image_audio_to_video", {"max_duration": 1, "audio_reactive": "pulse"},
               {"image": media["photo"], "audio": media["beats"]}, tmp_path / "out")
    facts = check_common(arts, (320, 180))
    assert facts["frames"] == 24 and abs(facts["audio_seconds"] - 1.0) < 1 / 24


# ------------------------------------------------------------------ reel

def dominant(frame: np.ndarray) -> int:
    return int(np.argmax(frame.reshape(-1, 3).mean(axis=0)))  # 0 red, 1 green, 2 blue


def test_reel_cuts_fall_on_beats(tmp_path: Path, media: dict[str, Path]) -> None:
    images = [media["red"], media["green"], media["blue"]]
    arts = run(engine(tmp_path), "reel", {"duration": 4, "transition": "crossfade"},
               {"images": images, "audio": media["beats"]}, tmp_path / "out")
    facts = check_common(arts, (320, 180))
    meta = arts["video"].meta
    assert facts["frames"] == 96 and abs(facts["audio_seconds"] - 4.0) < 1 / 24
    assert meta["beat_synced"] and meta["tempo"] == pytest.approx(120, abs=2)
    beats = np.arange(0.3, 4.0, 0.5)
    assert len(meta["cuts"]) == 2
    for cut in meta["cuts"]:
        assert np.abs(beats - cut).min() <= 1 / 24  # on a beat, within a frame
    frames = video_frames(arts["video"].path)
    colours = [dominant(f) for f in frames]
    for k, cut in enumerate(meta["cuts"]):
        c = round(cut * 24)
        assert colours[c - 8] == k and colours[c + 8] == k + 1  # one image, then the next
    assert meta["moves"][0] != meta["moves"][1] != meta["moves"][2]


def test_reel_even_split_transitions_and_same_bytes(tmp_path: Path,
                                                    media: dict[str, Path]) -> None:
    images = [media["red"], media["green"], media["blue"]]
    eng = engine(tmp_path)
    raw = {"seconds_per_image": 1, "transition": "wipe", "seed": 3, "watermark": "w"}
    assert eng.output_seconds("reel", normalize_options("reel", raw)) == 10.0  # 10 images max
    assert eng.output_seconds("reel", normalize_options("reel", {**raw, "image_count": 3})) == 3
    a = run(eng, "reel", raw, {"images": images}, tmp_path / "a")
    b = run(eng, "reel", raw, {"images": images}, tmp_path / "b")
    assert a["video"].path.read_bytes() == b["video"].path.read_bytes()
    facts = check_common(a, (320, 180))
    assert facts["frames"] == 72 and "audio_codec" not in facts
    assert a["video"].meta["cuts"] == [1.0, 2.0] and a["video"].meta["transitions"] == [
        "wipe", "wipe"]
    frames = video_frames(a["video"].path)
    mid = frames[24][40:140]  # halfway through the wipe: red on the right, green on the left
    assert dominant(mid[:, :60]) == 1 and dominant(mid[:, -60:]) == 0


# ------------------------------------------------------------------ video_to_video

def test_grade_keeps_audio_letterboxes_and_is_fast_path(tmp_path: Path,
                                                        media: dict[str, Path]) -> None:
    eng = engine(tmp_path)
    arts = run(eng, "video_to_video", {"transform_style": "cinematic", "watermark": "wm"},
               {"video": media["clip"]}, tmp_path / "c")
    facts = check_common(arts, (320, 180))  # the source's own shape at 720p, quartered
    assert facts["frames"] == 60  # the 2 s source is shorter than the 5 s asked
    assert facts["audio_codec"] == "aac" and abs(facts["audio_seconds"] - 2.0) < 1 / 30
    frame = video_frames(arts["video"].path)[30]
    assert frame[:2].max() < 30 and frame[-2:].max() < 30  # letterbox bars
    assert arts["video"].meta["look"] == "cinematic"
    vintage = run(eng, "video_to_video", {"transform_style": "color_grade",
                                          "style": "vintage", "quality": "1080p"},
                  {"video": media["clip"]}, tmp_path / "v")
    night = run(eng, "video_to_video", {"transform_style": "relight",
                                        "prompt": "a moonlit night", "quality": "1080p"},
                {"video": media["clip"]}, tmp_path / "n")
    source = video_frames(media["clip"])[30].astype(np.float32)
    v = video_frames(vintage["video"].path)[30].astype(np.float32)
    n = video_frames(night["video"].path)[30].astype(np.float32)
    assert n.shape == (270, 480, 3)
    small = cv2.resize(source, (480, 270))
    assert n.mean() < 0.6 * small.mean()  # night is darker
    assert n[..., 2].mean() > n[..., 0].mean()  # and blue
    chroma = lambda x: (x.max(axis=2) - x.min(axis=2)).mean()  # noqa: E731
    assert chroma(v) < 0.8 * chroma(small)  # vintage: muted colour
    assert night["video"].meta["prompt_words"]["relight"] == "night"


def test_restyle_with_weather_through_the_frame_pipe(tmp_path: Path,
                                                     media: dict[str, Path]) -> None:
    eng = engine(tmp_path)
    raw = {"transform_style": "restyle", "prompt": "pencil sketch in the snow", "seed": 2}
    a = run(eng, "video_to_video", raw, {"video": media["clip"]}, tmp_path / "a")
    b = run(eng, "video_to_video", raw, {"video": media["clip"]}, tmp_path / "b")
    assert a["video"].path.read_bytes() == b["video"].path.read_bytes()  # same seed
    facts = check_common(a, (320, 180))
    assert facts["frames"] == 60 and facts["audio_codec"] == "aac"
    meta = a["video"].meta
    assert meta["restyle"] == "sketch" and meta["weather"] == ["snow"]
    frame = video_frames(a["video"].path)[20].astype(np.float32)
    assert frame.std(axis=2).mean() < 20  # a pencil sketch is nearly grey


def test_add_objects_and_background_refusals(tmp_path: Path, media: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    eng = engine(tmp_path)
    with pytest.raises(Invalid) as err:
        run(eng, "video_to_video", {"transform_style": "add_objects"},
            {"video": media["clip"]}, tmp_path / "x")
    assert "reference_image" in err.value.fix
    monkeypatch.setattr(segment, "PACKAGES", ("no_such_package_here",))
    opts = normalize_options("video_to_video", {"transform_style": "background"})
    with pytest.raises(UnsupportedMode) as err:  # refused at submit, before queueing
        eng.output_seconds("video_to_video", opts)
    assert "pip install" in err.value.fix
    assert eng.output_seconds("video_to_video", normalize_options(
        "video_to_video", {"transform_style": "relight", "duration": 10})) == 10
    arts = run(eng, "video_to_video", {"transform_style": "add_objects",
                                       "prompt": "a small logo in the top left corner"},
               {"video": media["clip"], "reference_image": media["red"]}, tmp_path / "o")
    assert check_common(arts, (320, 180))["frames"] == 60


def test_background_replacement_with_the_model(tmp_path: Path, ffmpeg: FFmpeg) -> None:
    skdata = pytest.importorskip("skimage.data")
    try:
        segment.find_model()
    except UnsupportedMode:
        pytest.skip("no segmentation model installed")
    src = tmp_path / "person.jpg"
    Image.fromarray(skdata.astronaut()).save(src)
    still = render_still_video(np.asarray(Image.open(src)), tmp_path / "src", width=256,
                               height=256, fps=24, seconds=1, look="corporate",
                               move=CameraMove("push_in", 0.3), ffmpeg=ffmpeg,
                               preset="ultrafast")
    arts = run(LocalEngine(Settings(data_dir=tmp_path / "d", render_scale=0.5)),
               "video_to_video", {"transform_style": "background",
                                  "prompt": "a plain green background", "duration": 5},
               {"video": still.video}, tmp_path / "out")
    frame = video_frames(arts["video"].path)[12]  # 180x180: quality 720p x 0.5 x 1:1 -> 360?
    h, w = frame.shape[:2]
    corner = frame[: h // 8, -w // 5:].reshape(-1, 3).mean(axis=0)
    assert corner[1] > 120 and corner[0] < 90  # the backdrop is green now
    person = frame[int(h * 0.55):int(h * 0.75), int(w * 0.3):int(w * 0.5)].reshape(-1, 3)
    assert person.mean(axis=0)[0] > person.mean(axis=0)[1]  # her orange suit is kept


def test_video_limits_are_enforced_with_fixes(tmp_path: Path) -> None:
    limits = VideoLimits(max_seconds=10, max_bytes=1000, max_side=640)
    ok = SourceVideo(tmp_path / "v.mp4", 640, 360, 30, 9.0, True, 900)
    limits.check(ok, "video_to_video")
    for bad in (SourceVideo(ok.path, 640, 360, 30, 11.0, True, 900),
                SourceVideo(ok.path, 1280, 720, 30, 9.0, True, 900),
                SourceVideo(ok.path, 640, 360, 30, 9.0, True, 2000)):
        with pytest.raises(Invalid) as err:
            limits.check(bad, "video_to_video")
        assert err.value.fix


# ------------------------------------------------------------------ extend

def test_extend_carries_the_camera_move_on(tmp_path: Path, ffmpeg: FFmpeg) -> None:
    source = render_still_video(scene(960, 640), tmp_path / "src", width=320, height=180,
                                fps=24, seconds=2, look="minimal",
                                move=CameraMove("pan_left", 0.8, "linear"), ffmpeg=ffmpeg,
                                preset="ultrafast", anchor_to_subject=False)
    eng = LocalEngine(Settings(data_dir=tmp_path / "d"))  # scale 1: the source's own size
    arts = run(eng, "extend", {"duration": 1}, {"video": source.video}, tmp_path / "out")
    facts = check_common(arts, (320, 180))
    assert facts["frames"] == 48 + 24
    assert arts["video"].meta["extended_seconds"] == 1.0
    src_frames, out = gray_frames(source.video), gray_frames(arts["video"].path)
    assert np.abs(out[10] - src_frames[10]).mean() < 3  # the source plays first
    before = [shift(src_frames[i], src_frames[i + 1])[0] for i in range(38, 46)]
    after = [shift(out[i], out[i + 1])[0] for i in range(47, 60)]
    speed = np.median(before)
    assert speed > 0.3  # the source pans (the picture moves right)
    assert all(s > 0 for s in after)  # the extension keeps moving the same way
    assert after[0] == pytest.approx(speed, rel=0.35)  # at the same speed across the join
    assert np.abs(np.diff(after)).max() < 0.5 * speed  # without a jolt
    assert "camera move" in eng.capabilities().options["extend"]["description"]


# ------------------------------------------------------------------ progress and cancel

@pytest.mark.parametrize("mode,raw,needs", [
    ("reel", {"duration": 20}, "images"),
    ("video_to_video", {"transform_style": "restyle"}, "video"),
    ("video_to_video", {"transform_style": "cinematic"}, "video"),
])
def test_progress_counts_frames_and_cancel_stops_fast(
        mode: str, raw: dict[str, Any], needs: str, tmp_path: Path, media: dict[str, Path],
        ffmpeg: FFmpeg) -> None:
    if needs == "video":  # a longer source, so there is time to cancel
        src = tmp_path / "long.mp4"
        subprocess.run([ffmpeg.path, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=s=640x360:r=30:d=11", "-c:v", "libx264", "-preset",
                        "ultrafast", str(src)], check=True)
        inputs: dict[str, Any] = {"video": src}
        # 10 s: a grade runs in one ffmpeg that reports every 0.5 s, and 5 s of it could
        # finish before the second report on a quick machine
        raw = {**raw, "duration": 10}
    else:
        inputs = {"images": [media["red"], media["green"]]}
    before = children()
    seen: list[float] = []
    stopped_at = 0.0

    def progress(stage: str, fraction: float) -> None:
        nonlocal stopped_at
        if stage == "rendering":
            seen.append(fraction)
            if len(seen) == 2:
                stopped_at = time.monotonic()
                raise JobCancelled("cancelled by the test")

    eng = LocalEngine(Settings(data_dir=tmp_path / "d", render_scale=1.0))
    with pytest.raises(JobCancelled):
        run(eng, mode, raw, inputs, tmp_path / "out", progress)
    assert time.monotonic() - stopped_at < 1.0
    assert len(seen) == 2 and 0 <= seen[0] < seen[1] < 0.95  # stopped part way
    deadline = time.monotonic() + 1.0
    while children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not children() - before  # ffmpeg is gone
    assert not list((tmp_path / "out").glob("*.mp4"))
    assert os.path.isdir(tmp_path / "out")
