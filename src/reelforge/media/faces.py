"""Faces: detection with the Haar cascade that ships inside the opencv-python wheel,
and tracks that follow one face from sample to sample within a shot.

Boxes are fractions of the source frame (x, y = top-left corner), so they do not care
at what resolution analysis decoded. ``activity`` is how much the mouth region changed
since the previous sample (0..1): the speaking face moves its mouth.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import EngineError

CASCADE = "haarcascade_frontalface_default.xml"
MIN_FACE = 0.1  # smallest face, as a fraction of the frame's short side
MATCH_DISTANCE = 0.6  # a box joins a track if its centre is within this many face widths
MAX_MISSES_S = 1.5  # a track survives this long without a detection
MIN_HITS = 2  # detections a track needs before it counts (drops one-off false positives)


@dataclass(frozen=True)
class FaceBox:
    x: float
    y: float
    w: float
    h: float
    activity: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


_local = threading.local()


def face_cascade() -> cv2.CascadeClassifier | None:
    """OpenCV's frontal-face Haar cascade (the model is in the opencv-python wheel),
    loaded once per thread (detectMultiScale is not re-entrant); None when the install
    lacks it."""
    if not hasattr(_local, "cascade"):
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
        path = Path(folder or ".") / CASCADE
        usable = bool(folder) and path.is_file() and hasattr(cv2, "CascadeClassifier")
        _local.cascade = cv2.CascadeClassifier(str(path)) if usable else None
    return _local.cascade


class FaceDetector:
    """Faces in frames, with OpenCV's frontal-face Haar cascade."""

    def __init__(self) -> None:
        if face_cascade() is None:
            raise EngineError("OpenCV's face model (Haar cascade) is missing from this "
                              "install.", fix="pip install 'opencv-python-headless>=4.9,<5'.")

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = face_cascade()
        assert cascade is not None  # checked when the detector was made, in this process
        return cascade

    def detect(self, gray: np.ndarray) -> list[FaceBox]:
        """Faces in an 8-bit grey frame, as fractions of it, largest first."""
        h, w = gray.shape
        side = max(14, int(MIN_FACE * min(w, h)))
        found = self._cascade().detectMultiScale(gray, scaleFactor=1.2, minNeighbors=4,
                                                 minSize=(side, side))
        boxes = [FaceBox(fx / w, fy / h, fw / w, fh / h) for fx, fy, fw, fh in found]
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes

    def detect_near(self, gray: np.ndarray, known: Sequence[FaceBox]) -> list[FaceBox]:
        """Faces found again near ``known`` boxes only (a small search each: fast)."""
        h, w = gray.shape
        out: list[FaceBox] = []
        for box in known:
            x0, x1 = max(0, int((box.x - box.w) * w)), min(w, int((box.x + 2 * box.w) * w))
            y0, y1 = max(0, int((box.y - box.h) * h)), min(h, int((box.y + 2 * box.h) * h))
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            side = max(14, int(box.w * w * 0.6))
            found = self._cascade().detectMultiScale(
                gray[y0:y1, x0:x1], scaleFactor=1.15, minNeighbors=3, minSize=(side, side),
                maxSize=(int(box.w * w * 1.7) + 1, int(box.h * h * 1.7) + 1))
            if len(found):
                fx, fy, fw, fh = max(found, key=lambda f: f[2] * f[3])
                out.append(FaceBox((x0 + fx) / w, (y0 + fy) / h, fw / w, fh / h))
        # two searches may find the same face
        unique: list[FaceBox] = []
        for b in out:
            if all(abs(b.cx - u.cx) > u.w * 0.5 or abs(b.cy - u.cy) > u.h * 0.5 for u in unique):
                unique.append(b)
        return unique


def mouth_activity(gray: np.ndarray, prev: np.ndarray | None, box: FaceBox) -> float:
    """Mean absolute change (0..1) of the mouth region since the previous sample."""
    if prev is None or prev.shape != gray.shape:
        return 0.0
    h, w = gray.shape
    x0, x1 = int((box.x + box.w * 0.25) * w), int((box.x + box.w * 0.75) * w)
    y0, y1 = int((box.y + box.h * 0.68) * h), int((box.y + box.h * 1.0) * h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    a = gray[y0:y1, x0:x1].astype(np.int16)
    b = prev[y0:y1, x0:x1].astype(np.int16)
    return float(np.abs(a - b).mean() / 255.0)


@dataclass
class FaceTrack:
    """One face followed through a shot: sample times and boxes."""

    id: int
    times: list[float] = field(default_factory=list)
    boxes: list[FaceBox] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    def at(self, t: float) -> FaceBox:
        """The box at ``t``, interpolated between samples and held at the ends."""
        times = self.times
        if t <= times[0]:
            return self.boxes[0]
        if t >= times[-1]:
            return self.boxes[-1]
        i = int(np.searchsorted(times, t))
        a, b = self.boxes[i - 1], self.boxes[i]
        f = (t - times[i - 1]) / max(1e-9, times[i] - times[i - 1])
        return FaceBox(a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f, a.w + (b.w - a.w) * f,
                       a.h + (b.h - a.h) * f, a.activity + (b.activity - a.activity) * f)


def build_tracks(times: Sequence[float], detections: Sequence[Sequence[FaceBox]],
                 cuts: Sequence[float]) -> list[FaceTrack]:
    """Link per-sample detections into tracks; a track never crosses a scene cut."""
    tracks: list[FaceTrack] = []
    live: list[FaceTrack] = []
    cut_list = sorted(cuts)
    next_cut = 0
    for t, boxes in zip(times, detections):
        while next_cut < len(cut_list) and cut_list[next_cut] <= t:
            live = []  # a cut ends every track
            next_cut += 1
        live = [tr for tr in live if t - tr.end <= MAX_MISSES_S]
        taken: set[int] = set()
        for box in boxes:
            best, best_d = None, MATCH_DISTANCE
            for k, tr in enumerate(live):
                if k in taken:
                    continue
                last = tr.boxes[-1]
                d = np.hypot(box.cx - last.cx, box.cy - last.cy) / max(last.w, 1e-6)
                if d < best_d and 0.6 < box.w / max(last.w, 1e-6) < 1.6:
                    best, best_d = k, d
            if best is None:
                track = FaceTrack(len(tracks))
                tracks.append(track)
                live.append(track)
                best = len(live) - 1
            taken.add(best)
            live[best].times.append(float(t))
            live[best].boxes.append(box)
    return [tr for tr in tracks if len(tr.times) >= MIN_HITS]
