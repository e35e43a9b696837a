"""Audio-reactive drawing on frames: a mirrored spectrum ("waveform") strip.

``SpectrumStrip(levels, width, height)`` is a frame hook: frame ``i`` draws the bars of
``levels[i]`` (0..1 per bar, from ``audio.spectrum_bars``) as soft white capsules
mirrored about a line near the bottom of the frame, straight into the Y'CbCr planes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SpectrumStrip:
    def __init__(self, levels: np.ndarray, width: int, height: int, *,
                 opacity: float = 0.8, strip: float = 0.14, bottom: float = 0.05) -> None:
        self.levels = np.asarray(levels, dtype=np.float32)
        bars = self.levels.shape[1]
        self.strip_h = max(4, int(height * strip) // 2 * 2)
        self.y0 = (height - self.strip_h - int(height * bottom)) // 2 * 2
        span = int(width * 0.7) // 2 * 2
        self.x0 = (width - span) // 2 // 2 * 2
        self.span = span
        col = np.arange(span, dtype=np.float32)
        pitch = span / bars
        self.bar_of = np.minimum((col / pitch).astype(np.int64), bars - 1)
        inside = (col - self.bar_of * pitch) / pitch  # 0..1 across a bar
        self.col_mask = ((inside > 0.18) & (inside < 0.82)).astype(np.float32)
        rows = np.arange(self.strip_h, dtype=np.float32)
        self.dist = np.abs(rows - (self.strip_h - 1) / 2)[:, None]  # from the centre line
        self.opacity = opacity

    def mask(self, index: int) -> np.ndarray:
        """(strip_h, span) coverage 0..1 for frame ``index``."""
        level = self.levels[min(index, len(self.levels) - 1)]
        half = (0.08 + 0.92 * level[self.bar_of]) * self.strip_h / 2  # per column
        edge = np.clip(half[None, :] - self.dist + 0.5, 0.0, 1.0)  # anti-aliased ends
        return edge * self.col_mask[None, :] * self.opacity

    def __call__(self, index: int, planes: Sequence[np.ndarray]) -> None:
        m = self.mask(index)
        y = planes[0][self.y0:self.y0 + self.strip_h, self.x0:self.x0 + self.span]
        y[:] = (y * (1.0 - m) + 235.0 * m + 0.5).astype(np.uint8)
        half = m[::2, ::2] if m.shape[0] > 1 else m
        for c in planes[1:]:
            region = c[self.y0 // 2:self.y0 // 2 + half.shape[0],
                       self.x0 // 2:self.x0 // 2 + half.shape[1]]
            region[:] = (region * (1.0 - half) + 128.0 * half + 0.5).astype(np.uint8)
