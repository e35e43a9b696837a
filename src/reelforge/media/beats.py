"""Beats in an audio track, with numpy only, and cut points that fall on them.

``onset_envelope`` is the half-wave rectified spectral flux of the log-magnitude
spectrum (100 frames a second), normalised. ``find_beats`` estimates the tempo from the
envelope's autocorrelation (60–180 BPM), lays a beat grid at the phase that collects the
most onset energy, and nudges each beat to the strongest onset within 10% of a period.
``cut_times`` splits a length into segments whose boundaries sit on beats, as close to
an even split as the beats allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOP_RATE = 100.0  # envelope frames per second


@dataclass(frozen=True)
class Beats:
    times: tuple[float, ...]  # seconds
    tempo: float  # beats per minute (0 when none was found)
    strength: float  # how periodic the onsets are, 0..1


def onset_envelope(mono: np.ndarray, rate: int, hop_rate: float = HOP_RATE) -> np.ndarray:
    """Spectral flux per hop (``1 / hop_rate`` seconds), 0..1."""
    factor = max(1, rate // 16_000)  # 16 kHz is plenty for onsets
    if factor > 1:
        usable = len(mono) // factor * factor
        mono = mono[:usable].reshape(-1, factor).mean(axis=1)
        rate //= factor
    hop = int(round(rate / hop_rate))
    n_fft = 1 << int(np.ceil(np.log2(hop * 4)))
    if len(mono) < n_fft:
        return np.zeros(max(1, len(mono) // hop), np.float32)
    frames = 1 + (len(mono) - n_fft) // hop
    window = np.hanning(n_fft).astype(np.float32)
    signal = mono.astype(np.float32)
    logmag = np.empty((frames, n_fft // 2 + 1), np.float32)
    for first in range(0, frames, 2048):  # in chunks: bounded memory for long tracks
        count = min(2048, frames - first)
        idx = np.arange(n_fft)[None, :] + hop * (first + np.arange(count))[:, None]
        logmag[first:first + count] = np.log1p(100.0 * np.abs(
            np.fft.rfft(signal[idx] * window, axis=1)))
    flux = np.maximum(np.diff(logmag, axis=0), 0.0).sum(axis=1)
    flux = np.concatenate([[0.0], flux]).astype(np.float32)
    # Shift so each value marks the onset time, not the start of the window that saw it.
    flux = np.concatenate([np.zeros(int(round(0.75 * n_fft / hop)), np.float32), flux])
    flux -= np.convolve(flux, np.ones(16) / 16, mode="same")  # remove the slow trend
    flux = np.maximum(flux, 0.0)
    top = float(flux.max())
    return flux / top if top > 0 else flux


def find_beats(mono: np.ndarray, rate: int, *, min_bpm: float = 60.0,
               max_bpm: float = 180.0) -> Beats:
    env = onset_envelope(mono, rate)
    if len(env) < HOP_RATE * 2 or env.max() <= 0:
        return Beats((), 0.0, 0.0)
    centred = env - env.mean()
    ac = np.correlate(centred, centred, mode="full")[len(env) - 1:]
    if ac[0] <= 0:
        return Beats((), 0.0, 0.0)
    ac = ac / ac[0]
    lo, hi = int(HOP_RATE * 60 / max_bpm), int(HOP_RATE * 60 / min_bpm)
    hi = min(hi, len(ac) - 1)
    if hi <= lo:
        return Beats((), 0.0, 0.0)
    lags = np.arange(lo, hi + 1)
    # Prefer tempi near 120 BPM a little (a log-Gaussian weight), as beat trackers do.
    weight = np.exp(-0.5 * (np.log2(lags / (HOP_RATE * 0.5)) / 1.0) ** 2)
    scores = ac[lo:hi + 1] * weight
    best = int(lags[int(np.argmax(scores))])
    # Refine the period to a fraction of a hop with a parabola through the peak.
    period = float(best)
    if lo < best < hi:
        a, b, c = ac[best - 1], ac[best], ac[best + 1]
        denom = a - 2 * b + c
        if denom < 0:
            period = best + 0.5 * (a - c) / denom
    phases = np.arange(int(np.ceil(period)))
    grid = [env[np.clip(np.round(p + period * np.arange(int(len(env) / period) + 1))
                        .astype(np.int64), 0, len(env) - 1)].sum() for p in phases]
    phase = float(phases[int(np.argmax(grid))])
    times, reach = [], max(1, int(period * 0.1))
    t = phase
    while t < len(env):
        k = int(round(t))
        a, b = max(0, k - reach), min(len(env), k + reach + 1)
        peak = a + int(np.argmax(env[a:b]))
        times.append(peak / HOP_RATE if env[peak] > 0.05 else t / HOP_RATE)
        t += period
    return Beats(tuple(times), 60.0 * HOP_RATE / period, float(max(0.0, ac[best])))


def cut_times(total: float, segments: int, beats: Sequence[float] = (), *,
              min_len: float = 1.0, tolerance: float = 0.35) -> list[float]:
    """``segments - 1`` increasing cut times in (0, total): an even split, each cut
    moved to the nearest beat within ``tolerance`` of a segment's length, keeping every
    segment at least ``min_len`` long."""
    if segments <= 1:
        return []
    even = total / segments
    min_len = min(min_len, even * 0.6)
    cuts: list[float] = []
    beats_arr = np.asarray(sorted(beats), dtype=np.float64)
    for k in range(1, segments):
        ideal = even * k
        prev = cuts[-1] if cuts else 0.0
        lo = prev + min_len
        hi = total - min_len * (segments - k)
        chosen = min(max(ideal, lo), hi)
        if len(beats_arr):
            ok = beats_arr[(beats_arr >= lo) & (beats_arr <= hi)
                           & (np.abs(beats_arr - ideal) <= tolerance * even)]
            if len(ok):
                chosen = float(ok[np.argmin(np.abs(ok - ideal))])
        cuts.append(chosen)
    return cuts
