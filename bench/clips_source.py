"""The bench's talking-head source: made once into bench/out/ (gitignored)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.clips.synth import SENTENCES, Shot, make_video, speak_words  # noqa: E402

OUT = ROOT / "bench" / "out"


def shots_for(seconds: float, seed: int = 7) -> list[Shot]:
    rng = np.random.default_rng(seed)
    shots, t, k = [], 0.0, 0
    while t < seconds - 5:
        kind = ["face", "face", "face", "two", "slide"][int(rng.integers(5))] if k else "face"
        fx = float(rng.uniform(0.3, 0.7))
        shots.append(Shot(t, kind, fx=fx, sway=0.015, talker=int(rng.integers(2)),
                          bg=int(rng.integers(3))))
        t += float(rng.uniform(8, 14)) if kind == "slide" else float(rng.uniform(20, 50))
        k += 1
    return shots


def bench_source(seconds: int = 600, size: tuple[int, int] = (1920, 1080)) -> tuple[Path, Path]:
    """(video, transcript JSON words): espeak-ng speech with known word times over a
    talking head with cuts, slides and two-person shots. Made once, then reused."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"talking_head_{seconds}s_{size[1]}p.mp4"
    words_path = path.with_suffix(".words.json")
    if path.exists() and words_path.exists():
        return path, words_path
    rng = np.random.default_rng(seconds)
    sentences: list[str] = []
    while len(" ".join(sentences).split()) < seconds * 2.6:
        sentences.append(SENTENCES[int(rng.integers(len(SENTENCES)))])
    wav = OUT / f"speech_{seconds}s.wav"
    words = [w for w in speak_words(sentences, wav) if w["end"] < seconds - 0.5]
    tmp = path.with_name(path.stem + ".tmp.mp4")
    make_video(tmp, shots_for(seconds), seconds, size=size, audio=wav, gop=250)
    tmp.replace(path)
    words_path.write_text(json.dumps(words))
    return path, words_path


if __name__ == "__main__":
    print(bench_source(int(sys.argv[1]) if len(sys.argv) > 1 else 600))
