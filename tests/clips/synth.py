"""Generated media for the clips tests and bench: talking heads made from a real face
photo (scikit-image's astronaut) over drawn backgrounds, with hard cuts, a no-face
"slide" shot, two-person shots where one mouth moves, and espeak-ng speech.

Everything is drawn here or by ffmpeg's lavfi; nothing is downloaded.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reelforge.media.ffmpeg import find_ffmpeg


@dataclass(frozen=True)
class Shot:
    """One shot: from ``start`` s, the layout until the next shot.

    layout: "face" (one face at fx, fy in fractions of the frame, moving by vx fractions
    per second), "two" (two faces, left one talking when talker == 0), or "slide" (no
    face: a slide with text blocks).
    """

    start: float
    layout: str = "face"
    fx: float = 0.5
    fy: float = 0.45
    vx: float = 0.0
    sway: float = 0.0  # amplitude (fraction of width) of a slow side-to-side sway
    talker: int = 0
    bg: int = 0


@functools.lru_cache(maxsize=8)
def astronaut_face(height: int) -> np.ndarray:
    """Head and shoulders from scikit-image's astronaut photo, RGB, ``height`` px tall."""
    from skimage import data

    img = data.astronaut()[0:300, 90:350]  # face box is about (86..184, 65..163) in here
    scale = height / img.shape[0]
    size = (int(round(img.shape[1] * scale)) // 2 * 2, height // 2 * 2)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def face_box_in_tile(height: int) -> tuple[float, float, float, float]:
    """Where the face is in ``astronaut_face(height)``: (cx, cy, w, h) in tile pixels."""
    scale = (height // 2 * 2) / 300
    return ((176 + 49 - 90) * scale, (65 + 49) * scale, 98 * scale, 98 * scale)


def background(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([(40, 60, 110), (110, 70, 50), (50, 90, 70), (80, 80, 90)][seed % 4],
                    np.float32)
    noise = sum(cv2.resize(rng.random((3 * 2 ** k, 5 * 2 ** k), dtype=np.float32),
                           (width, height), interpolation=cv2.INTER_CUBIC) / 2 ** k
                for k in range(5))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    img = base * (0.6 + 0.8 * noise[..., None])
    return np.clip(img, 0, 255).astype(np.uint8)


def slide(width: int, height: int) -> np.ndarray:
    img = np.full((height, width, 3), 235, np.uint8)
    for k in range(5):
        y = int(height * (0.15 + 0.15 * k))
        cv2.rectangle(img, (int(width * 0.1), y), (int(width * (0.5 + 0.08 * k)),
                                                   y + height // 20), (60, 60, 70), -1)
    return img


def _png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def make_video(path: Path, shots: list[Shot], seconds: float, *, size: tuple[int, int],
               fps: int = 30, audio: Path | None = None, face_height: float = 0.6,
               preset: str = "veryfast", crf: int = 23, gop: int | None = None) -> Path:
    """Render the shots into an H.264/AAC MP4 (silent AAC when ``audio`` is None)."""
    width, height = size
    work = path.parent / (path.stem + "_parts")
    work.mkdir(parents=True, exist_ok=True)
    fh = int(height * face_height) // 2 * 2
    face = _png(work / "face.png", astronaut_face(fh))
    fw = cv2.imread(str(face)).shape[1]
    bgs = sorted({s.bg for s in shots})
    stills = [_png(work / f"bg{k}.png", background(width, height, k)) for k in bgs]
    stills += [_png(work / "slide.png", slide(width, height)), face, _mouth_png(work, fh)]
    inputs: list[str] = []
    graph: list[str] = []
    for k, still in enumerate(stills):  # raw frames, re-read (cheap) for every frame
        rgb = cv2.cvtColor(cv2.imread(str(still)), cv2.COLOR_BGR2RGB)
        raw = still.with_suffix(".yuv")
        raw.write_bytes(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
        inputs += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s",
                   f"{rgb.shape[1]}x{rgb.shape[0]}", "-framerate", str(fps),
                   "-stream_loop", "-1", "-t", f"{seconds}", "-i", str(raw)]
        graph.append(f"[{k}:v]null[s{k}]")
    n_bg = len(bgs)
    slide_in, face_in, mouth_in = n_bg, n_bg + 1, n_bg + 2
    ends = [s.start for s in shots[1:]] + [seconds + 1]
    last = "[s0]"
    for idx, k in enumerate(bgs[1:], start=1):
        on = _during([(s, e) for s, e in zip(shots, ends) if s.bg == k])
        graph.append(f"{last}[s{idx}]overlay=0:0:enable='{on}'[b{idx}]")
        last = f"[b{idx}]"
    face_shots = [(s, e) for s, e in zip(shots, ends) if s.layout in ("face", "two")]
    graph.append(f"[s{face_in}]split=3[fa][fb][fc]")
    # the first face (single layout, or the left one of two)
    x1 = _piecewise([(s, e, _face_x(s, 0, width, fw)) for s, e in face_shots])
    y1 = _piecewise([(s, e, f"{_fy(s) * height - fh / 2:.1f}") for s, e in face_shots])
    graph.append(f"{last}[fa]overlay=x='{x1}':y='{y1}':eval=frame:"
                 f"enable='{_during(face_shots)}'[f1]")
    two = [(s, e) for s, e in face_shots if s.layout == "two"]
    last = "[f1]"
    if two:
        x2 = _piecewise([(s, e, f"{width * TWO_X[1] - fw / 2:.1f}") for s, e in two])
        graph.append(f"[fb]hflip[fb2];{last}[fb2]overlay=x='{x2}':y={height * TWO_Y - fh / 2:.1f}:"
                     f"eval=frame:enable='{_during(two)}'[f2]")
        last = "[f2]"
    else:
        graph.append("[fb]nullsink")
    # a moving mouth: a dark ellipse that opens and shuts irregularly on the talker
    mw = cv2.imread(str(stills[mouth_in])).shape[1]
    graph.append("[fc]nullsink")
    mx = _piecewise([(s, e, _mouth_x(s, width, fw, fh, mw)) for s, e in face_shots])
    tile = face_box_in_tile(fh)
    mouth_y = _piecewise([(s, e, f"{_fy(s) * height - fh / 2 + tile[1] + tile[3] * 0.32:.1f}")
                          for s, e in face_shots])
    talking = f"({_during(face_shots)})*gt(sin(t*37)*sin(t*23.3),0)"
    graph.append(f"{last}[s{mouth_in}]overlay=x='{mx}':y='{mouth_y}':eval=frame:"
                 f"enable='{talking}'[m]")
    slides = _during([(s, e) for s, e in zip(shots, ends) if s.layout == "slide"])
    graph.append(f"[m][s{slide_in}]overlay=0:0:enable='{slides}',format=yuv420p[v]")
    ffmpeg = find_ffmpeg()
    audio_args = (["-i", str(audio)] if audio is not None else
                  ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"])
    audio_in = len(stills)
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *inputs, *audio_args,
           "-filter_complex", ";".join(graph), "-map", "[v]", "-map", f"{audio_in}:a",
           "-t", f"{seconds}", "-r", str(fps), "-c:v", "libx264", "-preset", preset,
           "-crf", str(crf), *(["-g", str(gop)] if gop else []), "-c:a", "aac",
           "-b:a", "96k", "-af", "apad", "-shortest", "-movflags", "+faststart", str(path)]
    subprocess.run(cmd, check=True)
    shutil.rmtree(work, ignore_errors=True)
    return path


def _mouth_png(work: Path, fh: int) -> Path:
    tile = face_box_in_tile(fh)
    w, h = int(tile[2] * 0.34) // 2 * 2, int(tile[3] * 0.12) // 2 * 2
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (150, 90, 90)
    cv2.ellipse(img, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, (40, 10, 20), -1)
    return _png(work / "mouth.png", img)


TWO_X, TWO_Y = (0.27, 0.73), 0.45


def _fy(s: Shot) -> float:
    return s.fy if s.layout == "face" else TWO_Y


def _face_x(s: Shot, which: int, width: int, fw: int) -> str:
    base = (s.fx if s.layout == "face" else TWO_X[0]) * width - fw / 2
    expr = f"{base:.1f}+{s.vx * width:.3f}*(t-{s.start:.3f})"
    if s.sway:
        expr += f"+{s.sway * width:.2f}*sin((t-{s.start:.3f})*0.9)"
    return expr


def _mouth_x(s: Shot, width: int, fw: int, fh: int, mw: int) -> str:
    tile = face_box_in_tile(fh)
    if s.layout == "two" and s.talker == 1:
        # the right face is mirrored: its face centre sits at fw - cx in the tile
        return f"{width * TWO_X[1] - fw / 2 + (fw - tile[0]) - mw / 2:.1f}"
    return f"{_face_x(s, 0, width, fw)}+{tile[0] - mw / 2:.1f}"


def _during(spans: list[tuple[Shot, float]]) -> str:
    if not spans:
        return "0"
    return "+".join(f"between(t,{s.start:.3f},{e - 1e-3:.3f})" for s, e in spans)


def _piecewise(parts: list[tuple[Shot, float, str]]) -> str:
    expr = "0"
    for s, e, value in reversed(parts):
        expr = f"if(between(t,{s.start:.3f},{e - 1e-3:.3f}),{value},{expr})"
    return expr.replace(",", "\\,")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, wav: Path, *, wpm: int = 165) -> Path:
    """Speech from espeak-ng (a Debian package; CI installs it)."""
    subprocess.run(["espeak-ng", "-s", str(wpm), "-w", str(wav), text], check=True,
                   stdout=subprocess.DEVNULL)
    return wav


SENTENCES = [
    "Here is the thing nobody tells you about hiring.",
    "Most teams interview for skills they could teach in a week.",
    "What if you hired for slope instead of intercept?",
    "The best engineer I ever hired had never written Python.",
    "She learned faster than anyone on the team.",
    "That is the secret.",
    "Stop asking candidates to reverse a linked list.",
    "Ask them what they learned last month, and how.",
    "Three things matter more than a resume.",
    "Curiosity, ownership, and the courage to say I was wrong.",
    "Let me tell you a story about a startup that almost died.",
    "We had six weeks of money left and no customers.",
    "So we did something crazy.",
    "We called every user personally, one hundred and twelve calls.",
    "Two of them changed the whole company.",
    "The weather was mild and the office was quiet that spring.",
    "We ordered lunch from the same place most days.",
    "Budgets were reviewed every quarter by the finance group.",
    "Why does this work so well?",
    "Because people remember how you made them feel.",
]


def script(words: int, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    out: list[str] = []
    count = 0
    while count < words:
        s = SENTENCES[int(rng.integers(len(SENTENCES)))]
        out.append(s)
        count += len(s.split())
    return " ".join(out)


def speak_words(sentences: list[str], wav: Path, *, wpm: int = 190, word_gap: float = 0.06,
                sentence_gap: float = 0.45, lead: float = 0.3) -> list[dict]:
    """Speech with exactly known word timings: each word spoken by espeak-ng on its own
    and laid end to end. Returns JSON words [{"word", "start", "end"}]."""
    import wave

    tmp = wav.with_suffix(".w.wav")
    rate = 22050
    pieces: list[np.ndarray] = [np.zeros(int(lead * rate), np.int16)]
    t = lead
    words: list[dict] = []
    for sentence in sentences:
        tokens = sentence.split()
        for k, token in enumerate(tokens):
            subprocess.run(["espeak-ng", "-s", str(wpm), "-w", str(tmp), token], check=True,
                           stdout=subprocess.DEVNULL)
            with wave.open(str(tmp)) as w:
                rate = w.getframerate()
                pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
            loud = np.flatnonzero(np.abs(pcm) > 300)  # trim espeak's own silence
            pcm = pcm[max(0, loud[0] - 100):loud[-1] + 100] if loud.size else pcm[:0]
            words.append({"word": token, "start": round(t, 3),
                          "end": round(t + len(pcm) / rate, 3)})
            gap = sentence_gap if k == len(tokens) - 1 else word_gap
            pieces += [pcm, np.zeros(int(gap * rate), np.int16)]
            t += len(pcm) / rate + int(gap * rate) / rate
    tmp.unlink(missing_ok=True)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(pieces).tobytes())
    return words
