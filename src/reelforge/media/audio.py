"""Audio for the frame pipe: decode, loudness-normalise, fit to whole video frames, and
read it back as numbers (loudness per frame, spectrum bars) for audio-reactive visuals.

``prepare_audio`` runs ffmpeg once: the source (up to a cap) to 48 kHz stereo PCM,
measured on the way by ``ebur128`` (EBU R128 integrated loudness); one linear gain then
brings it to -16 LUFS, and a short look-around limiter holds the peaks under -1.5 dBFS
(for peaky audio, the loudness it takes away is given back over a few rounds).
(ffmpeg's ``loudnorm`` would do it in the same pass, but in its dynamic mode: it
resamples to 192 kHz and took 1.45 s for 30 s of audio where this takes 0.1 s, and it
compresses the dynamics that a linear gain keeps.) Then the samples are cut or padded
to exactly ``frames / fps`` seconds, where ``frames`` is the whole number of video frames
nearest the audio's length. The video gets exactly that many frames, so both streams
start at 0 and end together: A/V sync holds by construction.
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MediaError
from .ffmpeg import FFmpeg, filter_path

SAMPLE_RATE = 48_000  # divisible by 24, 25 and 30: whole samples per video frame
CHANNELS = 2
TARGET_LUFS = -16.0
PEAK_DBFS = -1.5  # sample-peak ceiling after normalising
MAX_GAIN_DB = 40.0  # near-silence is not pumped up into noise
SILENT_LUFS = -69.0  # ebur128's floor: nothing to measure
LIMITER_BLOCK_S = 0.005


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
    """Decode ``src``'s first audio stream to interleaved int16 stereo at 48 kHz, at
    -16 LUFS with peaks under -1.5 dBFS when ``normalize`` (see the module docstring)."""
    log = out_raw.with_suffix(".r128")
    filters = [f"aresample={SAMPLE_RATE}", "aformat=channel_layouts=stereo"]
    if normalize:  # measured on what is written: stereo, 48 kHz
        filters += ["ebur128=metadata=1",
                    f"ametadata=mode=print:key=lavfi.r128.I:file={filter_path(log)}"]
    args = [*(["-ss", f"{start:.6f}"] if start else []),
            *(["-t", f"{max_seconds:.6f}"] if max_seconds else []), "-i", str(src),
            "-map", "0:a:0", "-vn", "-af", ",".join(filters), "-ac", str(CHANNELS),
            "-ar", str(SAMPLE_RATE), "-f", "f32le", "-c:a", "pcm_f32le", str(out_raw)]
    try:
        ffmpeg.run(args, deadline=deadline)
        data = np.fromfile(out_raw, dtype="<f4")
        loudness = _integrated(log) if normalize else None
    finally:
        out_raw.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
    pcm = data[: len(data) // CHANNELS * CHANNELS].reshape(-1, CHANNELS)
    if loudness is not None and loudness > SILENT_LUFS:
        pcm = _normalised(pcm, min(MAX_GAIN_DB, TARGET_LUFS - loudness))
    return np.rint(np.clip(pcm, -1.0, 1.0) * 32767).astype("<i2")


def _normalised(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    """``pcm`` raised by ``gain_db`` with its peaks limited. Where the limiter takes
    loudness away (peaky audio: claps, clicks), the loss (measured as RMS) is given back
    and the peaks limited again, a few rounds, as a loudness-targeting limiter does."""
    ceiling = 10 ** (PEAK_DBFS / 20)
    gain = 10 ** (gain_db / 20)
    want = _rms(pcm) * gain
    out = pcm
    for _ in range(4):
        out = limit_peaks(pcm * np.float32(gain), ceiling, SAMPLE_RATE)
        got = _rms(out)
        if got <= 0 or got >= want * 0.989 or 20 * np.log10(gain) >= MAX_GAIN_DB:
            break  # within 0.1 dB, silent, or as loud as it may be made
        gain *= min(want / got, 2.0)
    return out


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if pcm.size else 0.0


def _integrated(log: Path) -> float | None:
    """The last integrated loudness (LUFS) ``ametadata`` wrote, or None."""
    found = re.findall(r"lavfi\.r128\.I=(-?[\d.]+|-inf)", log.read_text()) if log.exists() else []
    if not found or found[-1] == "-inf":
        return None
    return float(found[-1])


def limit_peaks(pcm: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """Scale ``pcm`` (float, samples x channels) down around its peaks so no sample
    passes ``ceiling``: the gain each 5 ms block needs, also given to its neighbours,
    then eased linearly between block centres (no clipping, no clicks)."""
    peak = np.abs(pcm).max(axis=1)
    if len(peak) == 0 or float(peak.max()) <= ceiling:
        return pcm
    block = max(1, int(rate * LIMITER_BLOCK_S))
    count = -(-len(peak) // block)
    padded = np.zeros(count * block, np.float32)
    padded[:len(peak)] = peak
    need = np.minimum(1.0, ceiling / np.maximum(padded.reshape(count, block).max(axis=1), 1e-9))
    need = np.minimum(need, np.minimum(np.r_[need[1:], 1.0], np.r_[1.0, need[:-1]]))
    gain = np.interp(np.arange(len(peak)), (np.arange(count) + 0.5) * block, need)
    return pcm * gain.astype(np.float32)[:, None]


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
