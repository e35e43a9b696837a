"""Audio for the frame pipe: decode, loudness-normalise, fit to whole video frames, and
read it back as numbers (loudness per frame, spectrum bars) for audio-reactive visuals.

``prepare_audio`` runs ffmpeg once: the source (up to a cap) through ``loudnorm``
(EBU R128: -16 LUFS integrated, -1.5 dBTP) to 48 kHz stereo PCM; then the samples are
cut or padded to exactly ``frames / fps`` seconds, where ``frames`` is the whole number
of video frames nearest the audio's length. The video gets exactly that many frames, so
both streams start at 0 and end together: A/V sync holds by construction.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .ffmpeg import FFmpeg

SAMPLE_RATE = 48_000  # divisible by 24, 25 and 30: whole samples per video frame
CHANNELS = 2
LOUDNORM = "loudnorm=I=-16:TP=-1.5:LRA=11"


@dataclass(frozen=True)
class PreparedAudio:
    path: Path  # WAV, s16le stereo 48 kHz, exactly frames / fps long
    mono: np.ndarray  # float32 in -1..1, the same samples mixed down (for analysis)
    rate: int
    frames: int  # video frames it spans
    fps: float
    source_seconds: float  # how much audio was read (before fitting to frames)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def decode_pcm(ffmpeg: FFmpeg, src: Path, out_raw: Path, *, max_seconds: float | None,
               normalize: bool = True, start: float = 0.0,
               deadline: float | None = None) -> np.ndarray:
    """Decode ``src``'s first audio stream to interleaved int16 stereo at 48 kHz."""
    filters = [LOUDNORM] if normalize else []
    filters.append(f"aresample={SAMPLE_RATE}")
    args = [*(["-ss", f"{start:.6f}"] if start else []),
            *(["-t", f"{max_seconds:.6f}"] if max_seconds else []), "-i", str(src),
            "-map", "0:a:0", "-vn", "-af", ",".join(filters), "-ac", str(CHANNELS),
            "-ar", str(SAMPLE_RATE), "-f", "s16le", "-c:a", "pcm_s16le", str(out_raw)]
    ffmpeg.run(args, deadline=deadline)
    data = np.fromfile(out_raw, dtype="<i2")
    out_raw.unlink(missing_ok=True)
    return data[: len(data) // CHANNELS * CHANNELS].reshape(-1, CHANNELS)


def write_wav(path: Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return path


def fit_to_frames(pcm: np.ndarray, fps: float, frames: int | None = None,
                  rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Cut or zero-pad ``pcm`` to a whole number of video frames (the nearest, or
    ``frames``); returns the samples and the frame count."""
    if frames is None:
        frames = max(1, round(len(pcm) / rate * fps))
    want = round(frames * rate / fps)
    if len(pcm) >= want:
        return pcm[:want], frames
    pad = np.zeros((want - len(pcm), pcm.shape[1]), dtype=pcm.dtype)
    return np.concatenate([pcm, pad]), frames


def prepare_audio(ffmpeg: FFmpeg, src: Path, out_wav: Path, *, fps: float,
                  max_seconds: float | None = None, frames: int | None = None,
                  normalize: bool = True, fade_out: float = 0.0,
                  deadline: float | None = None) -> PreparedAudio:
    """Normalised, frame-fitted audio from ``src`` (see the module docstring).
    ``frames`` fixes the length instead of following the audio; ``fade_out`` fades the
    last seconds of the source when ``max_seconds`` cut it short."""
    pcm = decode_pcm(ffmpeg, src, out_wav.with_suffix(".raw"), max_seconds=max_seconds,
                     normalize=normalize, deadline=deadline)
    if len(pcm) == 0:
        raise MediaError("the audio track decoded to nothing",
                         fix="Send an audio file that plays in a normal player.")
    source_seconds = len(pcm) / SAMPLE_RATE
    was_cut = max_seconds is not None and source_seconds >= max_seconds - 0.01
    if fade_out > 0 and was_cut:
        n = min(len(pcm), int(fade_out * SAMPLE_RATE))
        ramp = np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
        pcm = pcm.copy()
        pcm[-n:] = (pcm[-n:].astype(np.float32) * ramp).astype(np.int16)
    pcm, frames = fit_to_frames(pcm, fps, frames)
    write_wav(out_wav, pcm)
    mono = pcm.astype(np.float32).mean(axis=1) / 32768.0
    return PreparedAudio(out_wav, mono, SAMPLE_RATE, frames, fps, source_seconds)


# ---------------------------------------------------------------- analysis

def frame_loudness(mono: np.ndarray, rate: int, fps: float, frames: int,
                   attack: float = 0.6, release: float = 0.15) -> np.ndarray:
    """Loudness of each video frame's slice of audio, 0..1 (RMS in dB, from the quiet
    bed, the 10th percentile, up to the loudest frame), smoothed with a fast attack and a slower
    release so a pulse follows the beat without jitter."""
    per = rate / fps
    rms = np.zeros(frames, dtype=np.float32)
    for i in range(frames):
        chunk = mono[int(i * per):int((i + 1) * per)]
        if len(chunk):
            rms[i] = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    floor = max(float(db.max()) - 45.0, float(np.percentile(db, 10)))  # the quiet bed
    level = np.clip((db - floor) / max(1e-6, float(db.max()) - floor), 0.0, 1.0)
    out = np.empty_like(level)
    state = 0.0
    for i, x in enumerate(level):
        state += (attack if x > state else release) * (x - state)
        out[i] = state
    return out


def spectrum_bars(mono: np.ndarray, rate: int, fps: float, frames: int,
                  bars: int = 32, window: int = 2048) -> np.ndarray:
    """(frames, bars) levels 0..1 of log-spaced bands from 120 Hz to 12 kHz, centred on
    each frame's time, smoothed over time like ``frame_loudness``."""
    edges = np.geomspace(120.0, min(12_000.0, rate / 2), bars + 1)
    freqs = np.fft.rfftfreq(window, 1.0 / rate)
    band = np.searchsorted(edges, freqs) - 1
    valid = (band >= 0) & (band < bars)
    band = band[valid]
    counts = np.maximum(np.bincount(band, minlength=bars), 1)
    hann = np.hanning(window).astype(np.float32)
    padded = np.concatenate([np.zeros(window // 2, np.float32), mono.astype(np.float32),
                             np.zeros(window, np.float32)])
    out = np.zeros((frames, bars), dtype=np.float32)
    for i in range(frames):
        start = int((i + 0.5) * rate / fps)
        mag = np.abs(np.fft.rfft(padded[start:start + window] * hann))[valid]
        out[i] = np.bincount(band, weights=mag, minlength=bars) / counts
    db = 20 * np.log10(np.maximum(out, 1e-6))
    top = db.max() if np.isfinite(db.max()) else 0.0
    level = np.clip((db - (top - 50.0)) / 50.0, 0.0, 1.0)
    smooth = np.empty_like(level)
    state = np.zeros(bars, np.float32)
    for i in range(frames):
        k = np.where(level[i] > state, 0.7, 0.25)
        state = state + k * (level[i] - state)
        smooth[i] = state
    return smooth


def read_wav_mono(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as mono float32 and its rate (for tests and analysis)."""
    with wave.open(str(path), "rb") as f:
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        channels, rate = f.getnchannels(), f.getframerate()
    return data.reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0, rate
