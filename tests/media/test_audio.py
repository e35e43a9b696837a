"""Audio for the frame pipe: normalisation, frame fitting, loudness, beats, captions."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from reelforge.media.audio import (SAMPLE_RATE, fit_to_frames, frame_loudness, limit_peaks,
                                   prepare_audio, read_wav_mono, spectrum_bars, write_wav)
from reelforge.media.beats import cut_times, find_beats, onset_envelope
from reelforge.media.ffmpeg import FFmpeg, find_ffmpeg
from reelforge.media.timed_text import (CaptionTrack, parse_transcript, speech_span,
                                        split_lines, to_webvtt)


@pytest.fixture(scope="module")
def ffmpeg() -> FFmpeg:
    return FFmpeg(find_ffmpeg())


def clicks(seconds: float, period: float, offset: float, rate: int = SAMPLE_RATE,
           level: float = 0.6) -> np.ndarray:
    """Noise with a decaying 150 Hz knock every ``period`` seconds from ``offset``."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.01, int(seconds * rate)).astype(np.float32)
    n = int(0.06 * rate)
    knock = (np.sin(2 * np.pi * 150 * np.arange(n) / rate)
             * np.exp(-np.arange(n) / (0.012 * rate))).astype(np.float32)
    for t in np.arange(offset, seconds - 0.07, period):
        i = int(t * rate)
        x[i:i + n] += level * knock
    return x


def save(path: Path, mono: np.ndarray) -> Path:
    pcm = (np.clip(mono, -1, 1) * 32767).astype("<i2")
    return write_wav(path, np.stack([pcm, pcm], axis=1))


def integrated_lufs(ffmpeg: FFmpeg, path: Path) -> float:
    done = subprocess.run([ffmpeg.path, "-hide_banner", "-nostdin", "-i", str(path), "-af",
                           "ebur128", "-f", "null", "-"], capture_output=True, text=True)
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", done.stderr)[-1])


def test_prepare_audio_normalises_and_fits_whole_frames(ffmpeg: FFmpeg, tmp_path: Path) -> None:
    quiet = 0.02 * np.sin(2 * np.pi * 440 * np.arange(int(2.51 * SAMPLE_RATE)) / SAMPLE_RATE)
    src = save(tmp_path / "quiet.wav", quiet.astype(np.float32))
    out = prepare_audio(ffmpeg, src, tmp_path / "norm.wav", fps=24)
    mono, rate = read_wav_mono(out.path)
    assert rate == 48_000 and out.frames == 60  # 2.51 s -> the nearest whole frame count
    assert len(mono) == 60 * 2000  # exactly frames / fps seconds
    assert abs(integrated_lufs(ffmpeg, out.path) - -16.0) < 1.5  # from about -37 LUFS
    capped = prepare_audio(ffmpeg, src, tmp_path / "cap.wav", fps=30, max_seconds=1.0,
                           fade_out=0.5)
    assert capped.frames == 30 and capped.source_seconds == pytest.approx(1.0, abs=0.01)
    tail = np.abs(read_wav_mono(capped.path)[0][-200:]).max()
    assert tail < 0.05  # faded out where the cap cut it


def test_peaky_audio_is_normalised_without_clipping(ffmpeg: FFmpeg, tmp_path: Path) -> None:
    """A quiet bed with loud clicks: one linear gain brings it to -16 LUFS and the
    limiter holds the clicks under -1.5 dBFS instead of clipping them."""
    src = save(tmp_path / "peaky.wav", clicks(4.0, 0.5, 0.25, level=0.9))
    out = prepare_audio(ffmpeg, src, tmp_path / "norm.wav", fps=30)
    mono, _ = read_wav_mono(out.path)
    assert np.abs(mono).max() <= 10 ** (-1.5 / 20) + 1e-3
    assert abs(integrated_lufs(ffmpeg, out.path) - -16.0) < 2.0


def test_limit_peaks_leaves_everything_but_the_peaks_alone() -> None:
    rate = 48_000
    x = np.full((rate, 2), 0.2, np.float32)
    x[24_000:24_010] = 1.6  # a 10-sample spike, twice the ceiling
    y = limit_peaks(x, 0.8, rate)
    assert np.abs(y).max() <= 0.8 + 1e-6
    assert np.allclose(y[:23_000], 0.2) and np.allclose(y[25_000:], 0.2)  # only near it


def test_fit_to_frames_pads_and_cuts() -> None:
    pcm = np.ones((4000, 2), np.int16)
    padded, n = fit_to_frames(pcm, 24, frames=3)
    assert n == 3 and len(padded) == 6000 and padded[-1].sum() == 0
    cut, n = fit_to_frames(pcm, 30, frames=1)
    assert len(cut) == 1600


def test_loudness_and_spectrum_follow_the_audio() -> None:
    x = clicks(2.0, 0.5, 0.25)
    loud = frame_loudness(x, SAMPLE_RATE, 24, 48)
    peaks = [int(t * 24) for t in (0.25, 0.75, 1.25, 1.75)]
    assert all(loud[p] > 0.5 for p in peaks)
    assert all(loud[p - 1] < 0.25 for p in peaks[1:])  # quiet just before each knock
    bars = spectrum_bars(x, SAMPLE_RATE, 24, 48, bars=16)
    assert bars.shape == (48, 16) and 0 <= bars.min() and bars.max() <= 1
    assert bars[peaks[1]].mean() > bars[peaks[1] - 3].mean()


@pytest.mark.parametrize("period,offset", [(0.5, 0.3), (0.4, 0.1), (0.75, 0.55)])
def test_beats_are_found_within_a_frame(period: float, offset: float) -> None:
    x = clicks(10.0, period, offset)
    beats = find_beats(x, SAMPLE_RATE)
    assert beats.tempo == pytest.approx(60 / period, rel=0.02)
    truth = np.arange(offset, 10.0 - 0.07, period)
    found = np.array(beats.times)
    assert len(found) >= len(truth) - 1
    errors = [np.abs(found - t).min() for t in truth]
    assert max(errors) < 1 / 30


def test_no_beats_in_silence_or_noise() -> None:
    assert find_beats(np.zeros(SAMPLE_RATE * 3, np.float32), SAMPLE_RATE).times == ()
    assert onset_envelope(np.zeros(100, np.float32), SAMPLE_RATE).max() == 0


def test_cut_times_snap_to_beats() -> None:
    beats = np.arange(0.3, 12, 0.5)
    cuts = cut_times(12.0, 4, beats)
    assert len(cuts) == 3 and cuts == sorted(cuts)
    assert all(np.isclose(beats, c).any() for c in cuts)
    assert all(abs(c - 3 * (k + 1)) <= 0.35 * 3 for k, c in enumerate(cuts))
    assert cut_times(9.0, 3) == [3.0, 6.0]  # no beats: an even split
    assert cut_times(5.0, 1, beats) == []


def test_transcripts_srt_vtt_json_and_plain() -> None:
    srt = "1\n00:00:00,500 --> 00:00:01,250\nHello <b>there</b>\n\n2\n00:00:01,500 --> 00:00:09,000\nBye"
    cues = parse_transcript(srt, 3.0)
    assert [(c.start, c.end, c.text) for c in cues] == [(0.5, 1.25, "Hello there"),
                                                       (1.5, 3.0, "Bye")]
    vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\nOne line"
    assert parse_transcript(vtt, 5.0)[0].start == 1.0
    js = '[{"start": 0, "end": 1.5, "text": "json cue"}]'
    assert parse_transcript(js, 5.0)[0].text == "json cue"
    plain = ("This is a longer piece of text that has to be split into caption lines. "
             "It has two sentences, and a clause.")
    lines = split_lines(plain)
    assert all(len(line) <= 42 for line in lines) and " ".join(lines) == plain
    timed = parse_transcript(plain, 10.0, speech=(1.0, 9.0))
    assert timed[0].start == 1.0 and timed[-1].end == pytest.approx(9.0)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(timed, timed[1:]))
    assert to_webvtt(cues).startswith("WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.250\nHello there")
    loud = np.r_[np.zeros(24), np.ones(48), np.zeros(24)]
    assert speech_span(loud, 24) == (1.0, 3.0)


def test_caption_track_draws_only_while_a_cue_is_on() -> None:
    cues = parse_transcript("1\n00:00:01,000 --> 00:00:02,000\nHello world", 3.0)
    track = CaptionTrack(cues, 320, 180, 24)
    planes = [np.full((180, 320), 16, np.uint8), np.full((90, 160), 128, np.uint8),
              np.full((90, 160), 128, np.uint8)]
    track(10, planes)
    assert planes[0].max() == 16  # before the cue
    track(30, planes)
    assert planes[0][120:].max() > 200  # white text low in the frame
    assert track.active(48) is None
