"""How fast is the clips mode on this machine, and how much memory does it take?

Source: a 10-minute 1080p30 talking head (scikit-image's astronaut photo over drawn
backgrounds, hard cuts, slides without a face, two-person shots, espeak-ng speech with
known word times), made once into bench/out/ (gitignored) by bench/clips_source.py.

Prints, from one run:

  clip time     3 captioned (beasty) 9:16 clips of 20–45 s (clipLength medium) at 720p,
                the transcript given with the job, so transcription is not in it;
                split into analysis and rendering, and as a multiple of the source
                length (goal: at most 0.25)
  1080p         the same at 1080x1920
  transcription faster-whisper over the same 10 minutes, when a model is on this
                machine (REELFORGE_WHISPER_MODEL: a converted model folder or a cached
                name); skipped otherwise, since the bench never downloads
  memory        peak RSS of the analysis pass over a 1-hour source (the 10 minutes
                six times over, joined without re-encoding), measured in a child
                process; with --hour only (it takes a few minutes)

Run: ``python bench/bench_clips.py [--hour]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from clips_source import OUT, bench_source  # noqa: E402

from reelforge.config import Settings  # noqa: E402
from reelforge.engines.base import JobSpec  # noqa: E402
from reelforge.engines.local.clips import run_clips, validate_clip_options  # noqa: E402
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg  # noqa: E402


def clip_run(src: Path, words: Path, quality: str, workdir: Path) -> dict:
    settings = Settings(data_dir=workdir / "data", transcriber="none")
    raw = {"numClips": 3, "clipLength": "medium", "aspectRatio": "9:16",
           "captionPreset": "beasty", "transcript": words.read_text(), "prompt": "hiring"}
    options = {"prompt": "hiring", "quality": quality}
    options.update(validate_clip_options(raw, options))
    stages: dict[str, float] = {}

    def progress(stage: str, fraction: float) -> None:
        stages.setdefault(stage, time.monotonic())

    t0, cpu0 = time.monotonic(), cpu_seconds()
    arts = run_clips(JobSpec("bench", "clips", options), {"video": src}, workdir / quality,
                     progress, settings=settings, ffmpeg=FFmpeg(find_ffmpeg()))
    total, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    manifest = json.loads(next(a for a in arts if a.name == "manifest").path.read_text())
    return {"total": total, "cpu": cpu, "timings": manifest["pipeline"]["timings"],
            "clips": [(c["start"], c["duration"], c["score"]) for c in manifest["clips"]],
            "size": (manifest["clips"][0]["width"], manifest["clips"][0]["height"])}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg): what the job costs
    whatever else the machine is doing."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def transcription(src: Path) -> str:
    model = os.environ.get("REELFORGE_WHISPER_MODEL", "small")
    from reelforge.media.transcript import make_transcriber

    transcriber, why = make_transcriber("auto", model, False)
    if transcriber is None:
        return f"skipped ({why})"
    from reelforge.media.analysis import analyse

    with tempfile.TemporaryDirectory() as tmp:
        audio = analyse(src, Path(tmp)).load_audio()
        t0 = time.monotonic()
        result = transcriber.transcribe(audio)
        took = time.monotonic() - t0
    return (f"{took:.1f} s for {len(audio) / 16000:.0f} s of speech "
            f"({took / (len(audio) / 16000):.2f}x), {len(result.words)} words, model {model}")


CHILD = """
import resource, sys, time
from pathlib import Path
from reelforge.media.analysis import analyse
t = time.monotonic()
a = analyse(Path(sys.argv[1]), Path(sys.argv[2]))
took = time.monotonic() - t
print(took, a.duration, len(a.face_times), len(a.cuts),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def hour_memory(src: Path) -> str:
    hour = OUT / "talking_head_3600s_1080p.mp4"
    if not hour.exists():
        listing = OUT / "hour.txt"
        listing.write_text("".join(f"file '{src.name}'\n" for _ in range(6)))
        subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f",
                        "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                        "-movflags", "+faststart", str(hour)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(hour), tmp], check=True,
                             capture_output=True, text=True).stdout.split()
    took, seconds, samples, cuts, rss = map(float, out)
    return (f"analysis of {seconds / 60:.0f} min: {took:.1f} s, peak RSS {rss:.0f} MiB "
            f"({samples:.0f} face samples, {cuts:.0f} cuts)")


def main() -> None:
    src, words = bench_source(600)
    print(f"source: {src.name} (10 min, 1920x1080, 30 fps); {os.cpu_count()} cores; {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        for quality in ("720p", "1080p"):
            r = clip_run(src, words, quality, Path(tmp))
            t = r["timings"]
            print(f"clips {quality} {r['size'][0]}x{r['size'][1]}: total {r['total']:.1f} s = "
                  f"{r['total'] / 600:.3f}x source (analysis {t['analyzing']:.1f} s, "
                  f"rendering {t['rendering']:.1f} s); CPU {r['cpu']:.1f} s "
                  f"(= {r['cpu'] / 2 / 600:.3f}x source on 2 idle cores); {load()}")
            print(f"   clips (start s, length s, score): {r['clips']}")
    print("peak RSS (this process):",
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB;",
          "largest child (ffmpeg):",
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB")
    print("transcription:", transcription(src))
    if "--hour" in sys.argv:
        print("1-hour source:", hour_memory(src))


if __name__ == "__main__":
    main()
