"""Render wall time of every local mode next to the encoder alone, in one run.

For each case this times, on this machine, in the same run:

  render    the whole job through the engine's mode runner (planning, frames, encode,
            poster and spritesheet, audio where the mode has it)
  baseline  the encoder alone: the very frames the render made (kept on disk by an
            untimed first render, read back through the page cache), piped into the
            same libx264 command with the same preset; for video_to_video, a plain
            decode + encode of the same source (ffmpeg, no filters)

and prints render / baseline. Then the peak RSS of a 1080p image_to_video render from a
24-megapixel photo, in a child process. Run: ``python bench/bench_modes.py [--quick]``;
``--looks --only look`` renders each of the eight looks at 720p30 and 1080p30 instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import synthetic_photo  # noqa: E402

from reelforge.config import Settings  # noqa: E402
from reelforge.core.options import normalize_options  # noqa: E402
from reelforge.engines.base import JobSpec  # noqa: E402
from reelforge.engines.local import LocalEngine  # noqa: E402
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg  # noqa: E402
from reelforge.media import fused  # noqa: E402
from reelforge.media.looks import LOOKS  # noqa: E402
from reelforge.media import render as render_module  # noqa: E402
from reelforge.media.render import encode_frames  # noqa: E402

def capture_frames(engine: LocalEngine, mode: str, raw: dict[str, Any],
                   inputs: dict[str, Any], workdir: Path, raw_path: Path) -> str:
    """Render once, untimed, keeping every raw frame the engine pipes to x264 in
    ``raw_path`` (renders are deterministic, so the timed run makes the same frames).
    Returns the frames' pixel format."""
    original = render_module.encode_frames
    seen = {"pix_fmt": "yuv420p"}

    def keeping(ffmpeg: FFmpeg, frames: Any, out_path: Path, **kw: Any) -> Path:
        seen["pix_fmt"] = kw.get("pix_fmt", "yuv420p")
        with open(raw_path, "wb") as sink:
            def tee() -> Any:
                for frame in frames:
                    sink.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
                    yield frame
            return original(ffmpeg, tee(), out_path, **kw)

    render_module.encode_frames = keeping
    try:
        render(engine, mode, raw, inputs, workdir)
    finally:
        render_module.encode_frames = original
    return seen["pix_fmt"]


def baseline(ffmpeg: FFmpeg, raw_path: Path, meta: dict[str, Any], pix_fmt: str,
             preset: str, tmp: Path) -> float:
    """x264 alone: the very frames the render made, pre-made on disk (mapped, so the
    page cache serves them), piped into the same libx264 command with the same preset."""
    width, height, fps = meta["width"], meta["height"], meta["fps"]
    frame_bytes = width * height * 3 // (1 if pix_fmt == "rgb24" else 2)
    frames = np.memmap(raw_path, dtype=np.uint8, mode="r").reshape(-1, frame_bytes)
    np.asarray(frames).sum(dtype=np.uint64)  # read it all once: into the page cache
    start = time.perf_counter()
    encode_frames(ffmpeg, iter(frames), tmp / "bare.mp4", width=width, height=height,
                  fps=fps, total=len(frames), preset=preset, pix_fmt=pix_fmt)
    return time.perf_counter() - start


def decode_encode(ffmpeg: FFmpeg, src: Path, seconds: float, width: int, height: int,
                  preset: str, tmp: Path) -> float:
    start = time.perf_counter()
    ffmpeg.run(["-t", f"{seconds}", "-i", str(src), "-vf", f"scale={width}:{height}",
                "-c:v", "libx264", "-preset", preset, "-crf", "20", "-pix_fmt", "yuv420p",
                "-c:a", "aac", str(tmp / "plain.mp4")])
    return time.perf_counter() - start


def render(engine: LocalEngine, mode: str, raw: dict[str, Any], inputs: dict[str, Any],
           workdir: Path) -> tuple[float, dict[str, Any]]:
    opts = normalize_options(mode, raw)
    start = time.perf_counter()
    arts = engine.run(JobSpec("bench", mode, opts), inputs, workdir, lambda s, f: None)
    return time.perf_counter() - start, {a.name: a for a in arts}["video"].meta


def moviepy_zoom(photo: Path, width: int, height: int, fps: int, seconds: float,
                 preset: str, tmp: Path) -> float | None:
    """The same zoom clip made with MoviePy 2 (when it is importable), in seconds."""
    try:
        from moviepy import CompositeVideoClip, ImageClip
    except ImportError:
        return None
    start = time.perf_counter()
    base = ImageClip(str(photo)).resized(width=width)
    zoom = (base.resized(lambda t: 1.0 + 0.3 * t / seconds).with_duration(seconds)
            .with_position("center"))
    final = CompositeVideoClip([zoom], size=(width, height)).with_duration(seconds)
    final.write_videofile(str(tmp / "moviepy.mp4"), fps=fps, codec="libx264", preset=preset,
                          audio=False, logger=None)
    return time.perf_counter() - start


def peak_rss_1080p(photo: Path) -> tuple[float, float]:
    """Peak RSS (MB) of a fresh process rendering 5 s at 1080p30 from ``photo``, and
    its RSS before the render (the interpreter and libraries)."""
    code = (
        "import re, sys, tempfile; from pathlib import Path;"
        # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork + exec.
        "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', "
        "Path('/proc/self/status').read_text()).group(1));"
        "from reelforge.config import Settings; from reelforge.engines.local import LocalEngine;"
        "from reelforge.engines.base import JobSpec;"
        "from reelforge.core.options import normalize_options;"
        "import cv2, numpy, PIL.Image;"
        "base = hwm();"
        "d = Path(tempfile.mkdtemp()); e = LocalEngine(Settings(data_dir=d));"
        "o = normalize_options('image_to_video', {'quality': '1080p', 'fps': 30});"
        f"e.run(JobSpec('m', 'image_to_video', o), {{'image': Path({str(photo)!r})}}, "
        "d / 'o', lambda s, f: None);"
        "print(hwm() / 1024, base / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    peak, base = (float(x) for x in out.stdout.split())
    return peak, base


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of render + baseline per case (median reported)")
    parser.add_argument("--looks", action="store_true", help="also render image_to_video "
                        "in each of the eight looks (its own camera move) at 720p30 and "
                        "1080p30: the 'any look' target")
    parser.add_argument("--only", default="", help="run only the cases whose label has "
                        "this text (e.g. 'reel'); skips the MoviePy and memory figures")
    args = parser.parse_args()
    settings = Settings(render_scale=0.25 if args.quick else 1.0)
    print("vignette pass: " + ("C (media/_fused.c)" if fused.ACCELERATED else
                               "OpenCV (the C extension did not build)"), flush=True)
    ffmpeg = FFmpeg(find_ffmpeg(settings.ffmpeg_path))
    preset = settings.x264_preset
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings.data_dir = tmp / "data"
        engine = LocalEngine(settings)
        photos = []
        for k in range(10):
            path = tmp / f"p{k}.jpg"
            Image.fromarray(synthetic_photo(2400, 1600, seed=k)).save(path, quality=90)
            photos.append(path)
        t = np.arange(int(30 * 48_000)) / 48_000
        music = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + (np.sin(2 * np.pi * 2 * t) > 0.9))
        pcm = (music * 32767).astype("<i2")
        from reelforge.media.audio import write_wav

        audio = write_wav(tmp / "music.wav", np.stack([pcm, pcm], axis=1))
        source = tmp / "source.mp4"
        ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=10", "-f", "lavfi",
                    "-i", "sine=f=330:d=10", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(source)])
        cases = [
            ("image_to_video 720p30 5s", "image_to_video",
             {"quality": "720p", "fps": 30, "style": "cinematic", "watermark": "reelforge"},
             {"image": photos[0]}),
            ("image_to_video 720p30 5s minimal zoom", "image_to_video",
             {"quality": "720p", "fps": 30, "style": "minimal", "prompt": "zoom in"},
             {"image": photos[0]}),
            ("image_to_video 1080p30 5s", "image_to_video",
             {"quality": "1080p", "fps": 30, "style": "vintage"}, {"image": photos[0]}),
            ("image_audio 720p24 10s waveform", "image_audio_to_video",
             {"audio_reactive": "waveform", "max_duration": 10,
              "transcript": "A line of captions for the benchmark. And another one."},
             {"image": photos[1], "audio": audio}),
            ("reel 10 images 1080p24 30s", "reel",
             {"quality": "1080p", "duration": 30, "style": "energetic"},
             {"images": photos, "audio": audio}),
            ("video_to_video grade 1080p30 10s", "video_to_video",
             {"transform_style": "cinematic", "quality": "1080p", "duration": 10},
             {"video": source}),
            ("video_to_video restyle 720p30 5s", "video_to_video",
             {"transform_style": "restyle", "prompt": "cartoon"}, {"video": source}),
            ("extend 10s + 5s 720p30", "extend", {"duration": 5, "quality": "720p"},
             {"video": source}),
        ]
        if args.looks:
            cases += [(f"look {name} {quality}30 5s", "image_to_video",
                       {"quality": quality, "fps": 30, "style": name}, {"image": photos[0]})
                      for quality in ("720p", "1080p") for name in LOOKS]
        render(engine, "image_to_video", {"duration": 5}, {"image": photos[0]},
               tmp / "warm-up")  # first-use costs (imports, cascades) out of the figures
        for label, mode, raw, inputs in cases:
            if args.only not in label:
                continue
            workdir = tmp / label.replace(" ", "_")
            raw_path, pix_fmt = tmp / "frames.yuv", "yuv420p"
            if mode != "video_to_video":
                pix_fmt = capture_frames(engine, mode, raw, inputs, tmp / "capture", raw_path)
            # Rounds alternate render and baseline, so a slow spell of this shared machine
            # weighs on both; the ratio reported is the median of the rounds' ratios.
            renders, bases = [], []
            for _ in range(args.repeat):
                seconds, meta = render(engine, mode, raw, inputs, workdir)
                if mode == "video_to_video":
                    base = decode_encode(ffmpeg, source, meta["duration"], meta["width"],
                                         meta["height"], preset, tmp)
                else:
                    base = baseline(ffmpeg, raw_path, meta, pix_fmt, preset, tmp)
                renders.append(seconds)
                bases.append(base)
            raw_path.unlink(missing_ok=True)
            base_label = "decode+encode" if mode == "video_to_video" else "x264 alone"
            ratios = sorted(r / b for r, b in zip(renders, bases))
            ratio = statistics.median(ratios)
            seconds, base = statistics.median(renders), statistics.median(bases)
            rows.append({"case": label, "size": f"{meta['width']}x{meta['height']}",
                         "frames": meta["frames"], "render_s": round(seconds, 2),
                         "baseline_s": round(base, 2), "baseline": base_label,
                         "ratio": round(ratio, 2),
                         "ratios": [round(r, 2) for r in ratios]})
            print(f"{label:34} {rows[-1]['size']:>10} {meta['frames']:>5} frames  render "
                  f"{seconds:6.2f}s  {base_label} {base:6.2f}s  ratio {ratio:5.2f} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
        mp_size = (320, 180) if args.quick else (1280, 720)
        if not args.only and moviepy_zoom(photos[0], 64, 36, 30, 0.2, preset, tmp) is not None:
            zoom = {"prompt": "zoom in", "fps": 30, "style": "minimal"}
            theirs, ours = [], []
            for _ in range(args.repeat):
                theirs.append(moviepy_zoom(photos[0], *mp_size, 30, 5.0, preset, tmp) or 0.0)
                ours.append(render(engine, "image_to_video", zoom, {"image": photos[0]},
                                   tmp / "zoom")[0])
            mp, mine = statistics.median(theirs), statistics.median(ours)
            print(f"zoom clip {mp_size[0]}x{mp_size[1]} 5 s: MoviePy {mp:.2f}s, reelforge "
                  f"{mine:.2f}s, {mp / mine:.1f}x faster", flush=True)
            rows.append({"case": "zoom clip vs MoviePy", "moviepy_s": round(mp, 2),
                         "render_s": round(mine, 2), "speedup": round(mp / mine, 1)})
        elif not args.only:
            print("MoviePy not importable: skipped the comparison (install it only in the "
                  "benchmark's environment, e.g. pip install --target DIR moviepy and "
                  "PYTHONPATH=DIR)")
        rss = None
        if not args.quick and not args.only:
            big = tmp / "24mp.jpg"
            Image.fromarray(synthetic_photo(6000, 4000)).save(big, quality=90)
            rss = peak_rss_1080p(big)
    print(f"ffmpeg {ffmpeg.features().version}, preset {preset}, {os.cpu_count()} CPUs")
    if rss is not None:
        print(f"peak RSS, 1080p30 5 s image_to_video from a 24 MP photo: {rss[0]:.0f} MB "
              f"(of which {rss[1]:.0f} MB is the interpreter and libraries before it)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peak_rss_mb": rss and rss[0]},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
