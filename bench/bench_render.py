"""How close is the local engine's image_to_video to a bare libx264 encode?

For 5 s at 720p and at 1080p (16:9, 24 fps, cinematic look: grade, letterbox,
vignette, grain, watermark), this times, in one run:

  render   the whole job: framing, grading, the frame pipe into libx264, the poster
  x264     the same frames, made up front into memory, piped into the same ffmpeg
           command (same preset, fps, frame count and size): the encoder alone

and prints the ratio render / x264 (each the best of 3 interleaved runs).
Run: ``python bench/bench_render.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from reelforge.config import Settings
from reelforge.engines.local.image_to_video import plan_still, render_still_video
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg
from reelforge.media.motion import parse_motion
from reelforge.media.render import encode_frames, output_size

SECONDS, FPS, STYLE = 5, 24, "cinematic"
REPEAT = 3  # best of


def synthetic_photo(width: int = 3000, height: int = 2000, seed: int = 3) -> np.ndarray:
    """A photo-like test picture: sky with clouds, textured hills, a figure."""
    rng = np.random.default_rng(seed)
    clouds = sum(cv2.resize(rng.random((4 * 2 ** k, 6 * 2 ** k), dtype=np.float32),
                            (width, height), interpolation=cv2.INTER_CUBIC) / 2 ** k
                 for k in range(6))
    clouds = (clouds - clouds.min()) / (np.ptp(clouds) + 1e-6)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = np.array([60, 110, 190], np.float32) * (1 - y) + np.array([245, 185, 140]) * y
    img = sky + 70 * clouds[..., None] * (1 - y)
    xs = np.arange(width)
    for k, colour in enumerate([(95, 105, 130), (55, 85, 60), (35, 55, 40)]):
        ridge = (0.55 + 0.12 * k + 0.05 * np.sin(xs / width * 6.3 * (k + 1.3) + k)) * height
        mask = np.arange(height)[:, None] > ridge[None, :]
        texture = 0.75 + 0.5 * clouds[..., None]
        img = np.where(mask[..., None], np.array(colour, np.float32) * texture, img)
    cx, cy = int(width * 0.38), int(height * 0.55)
    cv2.ellipse(img, (cx, cy + height // 7), (width // 22, height // 8), 0, 0, 360,
                (170, 40, 40), -1)
    cv2.circle(img, (cx, cy), height // 22, (225, 170, 140), -1)
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def bench(quality: str, image: np.ndarray, ffmpeg: FFmpeg, preset: str, workdir: Path,
          repeat: int) -> dict[str, float]:
    """Best of ``repeat`` for each, interleaved, so a busy machine skews both alike."""
    width, height = output_size(quality, "16:9")
    move = parse_motion("", STYLE, 1)
    opts = dict(width=width, height=height, fps=FPS, seconds=SECONDS, look=STYLE, move=move,
                seed=1, watermark="reelforge")
    plan = plan_still(image, **opts)
    frames = [frame.copy() for frame in plan.animator]  # made up front, not timed
    render_times, bare_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = render_still_video(image, workdir, ffmpeg=ffmpeg, preset=preset,
                                    name=f"render-{quality}", **opts)
        render_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        encode_frames(ffmpeg, frames, workdir / f"bare-{quality}.mp4", width=width,
                      height=height, fps=FPS, total=len(frames), preset=preset)
        bare_times.append(time.perf_counter() - start)
    render_s, bare_s = min(render_times), min(bare_times)
    return {"width": width, "height": height, "frames": result.frames,
            "render": render_s, "x264": bare_s, "ratio": render_s / bare_s}


def main() -> int:
    settings = Settings()
    ffmpeg = FFmpeg(find_ffmpeg(settings.ffmpeg_path))
    image = synthetic_photo()
    print(f"ffmpeg {ffmpeg.features().version}, preset {settings.x264_preset}, "
          f"{os.cpu_count()} CPUs, source {image.shape[1]}x{image.shape[0]}, "
          f"{SECONDS} s at {FPS} fps, style {STYLE}, best of {REPEAT}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bench("720p", image, ffmpeg, settings.x264_preset, Path(tmp), 1)  # warm-up
        for quality in ("720p", "1080p"):
            rows.append((quality, bench(quality, image, ffmpeg, settings.x264_preset,
                                        Path(tmp), REPEAT)))
    print(f"{'quality':8} {'size':>10} {'frames':>6} {'render s':>9} {'x264 s':>8} "
          f"{'ratio':>6} {'render fps':>10}")
    for quality, r in rows:
        print(f"{quality:8} {r['width']:>5}x{r['height']:<4} {r['frames']:>6} "
              f"{r['render']:>9.2f} {r['x264']:>8.2f} {r['ratio']:>6.2f} "
              f"{r['frames'] / r['render']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
