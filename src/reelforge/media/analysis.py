"""One streaming, low-resolution decode pass over a source video: scene cuts, faces,
audio energy and speech activity, and the 16 kHz speech audio for the transcriber.

The video decoder skips frames nothing refers to (``skip_frame=NONREF``: most B
frames) and the loop filter, so it does roughly half the work of a full decode; every
frame it does produce is looked at through a strided view of its luma plane (no copy,
no scaling) for cuts, and a few times a second one is shrunk to ``ANALYSIS_SIDE`` px for
the face detector. Audio is resampled to 16 kHz mono and written straight to disk.
Memory stays flat whatever the length: nothing is kept per frame but a few numbers.

The file is opened like :mod:`reelforge.media.probe` does: through a Python file
object, with the demuxer forced from the sniffed type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import Invalid, MediaError
from .faces import FaceBox, FaceDetector, FaceTrack, build_tracks, mouth_activity
from .sniff import sniff_file

ANALYSIS_SIDE = 384  # long side of the frames the face detector sees
FACE_FPS = 5.0  # face detections per second
HOP_S = 0.1  # audio energy/speech resolution
SAMPLE_RATE = 16000
CUT_HIST = 0.30  # histogram distance that makes a cut by itself
CUT_PIXELS = 0.035  # mean luma change (0..1) that makes a cut when it is also a jump
CUT_JUMP = 6.0  # ... this many times the recent typical change
FULL_SCAN_S = 1.0  # the whole frame is searched for new faces this often
MIN_SHOT_S = 0.5
_GRID = 24  # luma sampling stride for cut detection

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Analysis:
    """What one pass found, on the source's timeline (seconds)."""

    start: float  # analysed range [start, end)
    end: float
    width: int
    height: int
    fps: float
    cuts: tuple[float, ...]  # scene cut times, start and end excluded
    face_times: np.ndarray  # sample times of the face detector
    faces: tuple[tuple[FaceBox, ...], ...]  # boxes found at each sample
    tracks: tuple[FaceTrack, ...]
    energy_db: np.ndarray  # RMS level per HOP_S from ``start``, dBFS
    speech: np.ndarray  # bool per HOP_S: someone is talking
    audio_path: Path | None  # 16 kHz mono s16le of [start, end), or None (no audio)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def shots(self) -> list[tuple[float, float]]:
        edges = [self.start, *self.cuts, self.end]
        return list(zip(edges[:-1], edges[1:]))

    def hop_index(self, t: float) -> int:
        return int(np.clip((t - self.start) / HOP_S, 0, len(self.energy_db)))

    def face_fraction(self, a: float, b: float) -> float:
        """Share of detector samples in [a, b) with at least one face."""
        lo, hi = np.searchsorted(self.face_times, [a, b])
        if hi <= lo:
            return 0.0
        return float(np.mean([1.0 if self.faces[i] else 0.0 for i in range(lo, hi)]))

    def load_audio(self) -> np.ndarray:
        """The speech audio as float32 in -1..1 (empty when the source has none)."""
        if self.audio_path is None or not self.audio_path.exists():
            return np.zeros(0, np.float32)
        raw = np.fromfile(self.audio_path, dtype="<i2")
        return (raw.astype(np.float32) / 32768.0)


def analyse(path: Path, workdir: Path, *, start: float = 0.0, end: float | None = None,
            progress: Progress | None = None, detector: FaceDetector | None = None,
            face_fps: float = FACE_FPS) -> Analysis:
    """Analyse ``path`` over [start, end) in one pass (see the module docstring)."""
    media = sniff_file(path)
    detector = detector or FaceDetector()
    workdir.mkdir(parents=True, exist_ok=True)
    audio_path = workdir / "speech16k.s16le"
    try:
        with open(path, "rb") as f, av.open(f, mode="r", format=media.demuxer) as container:
            return _Pass(container, audio_path, start, end, detector, face_fps,
                         progress).run()
    except av.FFmpegError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"The video could not be decoded: {reason}.",
                         fix="Check that it plays in a normal player; re-encode it to "
                             "H.264/AAC MP4.") from exc


class _Pass:
    def __init__(self, container: av.container.InputContainer, audio_path: Path,
                 start: float, end: float | None, detector: FaceDetector, face_fps: float,
                 progress: Progress | None) -> None:
        videos = [s for s in container.streams.video
                  if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            raise Invalid("The source has no video stream.",
                          fix="Send a video file (MP4, MOV, MKV or WebM).")
        self.container = container
        self.video = videos[0]
        self.audio = container.streams.audio[0] if container.streams.audio else None
        duration = container.duration / av.time_base if container.duration else 0.0
        self.start = max(0.0, start)
        self.end = min(end, duration) if end and duration else (end or duration)
        if self.end and self.end <= self.start:
            raise Invalid(f"trimStart ({start:g} s) is past the end of the video "
                          f"({duration:.1f} s).", fix="Use a trimStart inside the video.",
                          field="trim_start")
        self.detector, self.face_step = detector, 1.0 / face_fps
        self.progress = progress
        self.audio_path = audio_path
        ctx = self.video.codec_context
        self.width, self.height = ctx.width, ctx.height  # as displayed (after rotation)
        self.raw_w, self.raw_h = ctx.width, ctx.height  # as decoded
        self.rot_k: int | None = None  # quarter turns to display (phone videos)
        rate = self.video.average_rate or self.video.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.video.thread_type = "AUTO"
        ctx.skip_frame = "NONREF"
        ctx.options = {"skip_loop_filter": "all"}
        scale = ANALYSIS_SIDE / max(self.width, self.height)
        self.small = (max(16, round(self.width * scale)), max(16, round(self.height * scale)))
        self.stride = max(1, int(max(self.width, self.height) // (2 * ANALYSIS_SIDE)))
        # state
        self.cuts: list[float] = []
        self.prev_hist: np.ndarray | None = None
        self.prev_grid: np.ndarray | None = None
        self.recent: list[float] = []
        self.next_scan = self.start
        self.last_cut = -1e9
        self.face_times: list[float] = []
        self.faces: list[tuple[FaceBox, ...]] = []
        self.prev_small: np.ndarray | None = None
        self.next_face = self.start
        self.pcm_tail = np.zeros(0, np.int16)
        self.energy: list[float] = []
        self.last_t = self.start
        self.last_report = 0.0

    def run(self) -> Analysis:
        if self.start > 0:
            self.container.seek(int(self.start * av.time_base), backward=True, any_frame=False)
        resampler = (av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                     if self.audio is not None else None)
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        audio_t0: float | None = None
        with open(self.audio_path, "wb") as pcm_out:
            for packet in self.container.demux(streams):
                for frame in _decode(packet):
                    t = frame.time
                    if t is None:
                        continue
                    if packet.stream is self.video:
                        if t < self.start:
                            continue
                        self.last_t = t
                        if self.end and t >= self.end:
                            continue
                        self._video_frame(frame, t)
                    elif resampler is not None:
                        for out in resampler.resample(frame):
                            audio_t0 = self._audio_frame(out, pcm_out, audio_t0)
                if self.end and self.last_t >= self.end and self._audio_done(audio_t0):
                    break
            if resampler is not None:
                for out in resampler.resample(None):
                    audio_t0 = self._audio_frame(out, pcm_out, audio_t0)
        end = self.end or self.last_t
        return self._result(end, has_audio=self.audio is not None)

    def _audio_done(self, audio_t0: float | None) -> bool:
        if self.audio is None or audio_t0 is None:
            return self.audio is None
        written = len(self.energy) * HOP_S
        return self.start + written >= (self.end or 0)

    def _video_frame(self, frame: av.VideoFrame, t: float) -> None:
        if self.rot_k is None:
            # the display rotation (as ffmpeg applies it when rendering): np.rot90 turns
            self.rot_k = int(round(float(getattr(frame, "rotation", 0) or 0) / 90)) % 4
            if self.rot_k % 2:
                self.width, self.height = self.raw_h, self.raw_w
        luma = _luma(frame)
        cut = self._cut_check(luma, t)
        if t >= self.next_face or cut:
            self.next_face = t + self.face_step * 0.95
            view = luma[:self.raw_h:self.stride, :self.raw_w:self.stride]
            if self.rot_k:
                view = np.rot90(view, self.rot_k)
            small = cv2.resize(np.ascontiguousarray(view), self._small_size(),
                               interpolation=cv2.INTER_AREA)
            known = self.faces[-1] if self.faces and not cut else ()
            if cut or not known or t >= self.next_scan:
                self.next_scan = t + FULL_SCAN_S
                boxes = self.detector.detect(small)
            else:
                boxes = self.detector.detect_near(small, known)
            prev = None if cut else self.prev_small
            boxes = [FaceBox(b.x, b.y, b.w, b.h, mouth_activity(small, prev, b)) for b in boxes]
            self.face_times.append(t)
            self.faces.append(tuple(boxes))
            self.prev_small = small
        if self.progress is not None:
            now = time.monotonic()
            if now - self.last_report >= 0.25:
                self.last_report = now
                span = (self.end or t) - self.start
                self.progress(min(1.0, (t - self.start) / span) if span > 0 else 0.0)

    def _small_size(self) -> tuple[int, int]:
        return self.small if not (self.rot_k or 0) % 2 else (self.small[1], self.small[0])

    def _cut_check(self, luma: np.ndarray, t: float) -> bool:
        """A hard cut: the colours change (histogram), or the picture jumps far more
        than it has been moving (so a pan or a talking head is not a cut)."""
        grid = luma[:self.raw_h:_GRID, :self.raw_w:_GRID].astype(np.int16)
        hist = np.bincount((grid >> 3).ravel(), minlength=32).astype(np.float32)
        hist /= max(1.0, hist.sum())
        cut = False
        if self.prev_hist is not None and self.prev_grid is not None:
            distance = 0.5 * float(np.abs(hist - self.prev_hist).sum())
            change = float(np.abs(grid - self.prev_grid).mean()) / 255.0
            typical = float(np.median(self.recent)) if self.recent else 0.0
            jump = change > CUT_PIXELS and change > CUT_JUMP * max(typical, 0.002)
            if (distance > CUT_HIST or jump) and t - self.last_cut >= MIN_SHOT_S \
                    and t - self.start >= MIN_SHOT_S:
                self.cuts.append(t)
                self.last_cut = t
                self.recent.clear()
                cut = True
            else:
                self.recent = (self.recent + [change])[-15:]
        self.prev_hist, self.prev_grid = hist, grid
        return cut

    def _audio_frame(self, frame: av.AudioFrame, out, audio_t0: float | None) -> float | None:
        t = frame.time if frame.time is not None else (audio_t0 or 0.0)
        pcm = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
        if audio_t0 is None:
            # drop what lies before start (the seek lands on an earlier packet)
            skip = int(round((self.start - t) * SAMPLE_RATE))
            if skip > 0:
                pcm = pcm[skip:]
                t = self.start
            if pcm.size == 0:
                return None
            audio_t0 = t
        if self.end:
            room = int(round((self.end - self.start) * SAMPLE_RATE)) - \
                (len(self.energy) * int(HOP_S * SAMPLE_RATE) + len(self.pcm_tail))
            pcm = pcm[:max(0, room)]
        if pcm.size:
            out.write(pcm.astype("<i2").tobytes())
            self._energy(pcm)
        return audio_t0

    def _energy(self, pcm: np.ndarray) -> None:
        hop = int(HOP_S * SAMPLE_RATE)
        data = np.concatenate([self.pcm_tail, pcm]) if self.pcm_tail.size else pcm
        n = len(data) // hop
        if n:
            block = data[:n * hop].astype(np.float32).reshape(n, hop) / 32768.0
            rms = np.sqrt(np.mean(block * block, axis=1) + 1e-12)
            self.energy.extend((20 * np.log10(rms)).tolist())
        self.pcm_tail = data[n * hop:].copy()

    def _result(self, end: float, *, has_audio: bool) -> Analysis:
        hops = max(1, int(np.ceil((end - self.start) / HOP_S)))
        energy = np.full(hops, -90.0, np.float32)
        got = np.asarray(self.energy[:hops], np.float32)
        energy[:len(got)] = got
        face_times = np.asarray(self.face_times, np.float64)
        cuts = tuple(c for c in self.cuts if self.start + MIN_SHOT_S <= c <= end - 0.2)
        tracks = build_tracks(face_times, self.faces, cuts)
        return Analysis(start=self.start, end=end, width=self.width, height=self.height,
                        fps=self.fps, cuts=cuts, face_times=face_times,
                        faces=tuple(self.faces), tracks=tuple(tracks), energy_db=energy,
                        speech=speech_activity(energy) if has_audio else
                        np.zeros(hops, bool),
                        audio_path=self.audio_path if has_audio else None)


def _decode(packet: av.Packet) -> list:
    try:
        return packet.decode()
    except av.InvalidDataError:
        return []  # a damaged packet: skip it, as players do


_PLANAR_8BIT = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p",
                          "yuvj444p", "nv12", "gray"})


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame's luma plane: a zero-copy 2-D view for 8-bit formats (line padding
    included), else a converted copy (10-bit, RGB)."""
    if frame.format.name not in _PLANAR_8BIT:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)


def speech_activity(energy_db: np.ndarray, *, margin_db: float = 12.0,
                    floor_db: float = -55.0, hangover: int = 1) -> np.ndarray:
    """Voice activity from the level alone: above the noise floor (10th percentile) by
    ``margin_db`` and above ``floor_db``, with a short hangover to bridge syllables."""
    if energy_db.size == 0:
        return np.zeros(0, bool)
    noise = float(np.percentile(energy_db, 10))
    active = (energy_db > max(floor_db, noise + margin_db))
    if hangover > 0 and active.any():
        kernel = np.ones(2 * hangover + 1, np.int32)
        active = np.convolve(active.astype(np.int32), kernel, mode="same") > 0
    return active
