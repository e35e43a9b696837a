"""Poster and thumbnail spritesheet, taken from frames as they are encoded.

``Thumbnails(total, width, height)`` is handed to ``encode_frames(on_frame=...)``: it
keeps the middle frame at full size (the poster) and ``count`` evenly spaced frames as
small tiles, then ``write`` (given as ``on_end``: it runs while x264 finishes) saves the
poster JPEG and one spritesheet JPEG (tiles in rows of ``columns``, left to right, top to
bottom) and returns the sheet's layout, so a player can show the tile for any time:
tile ``k`` covers ``k * interval`` seconds on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .render import planes_of, yuv420_to_rgb, yuv_to_rgb

POSTER_QUALITY = 90
SPRITE_QUALITY = 80


@dataclass(frozen=True)
class SpriteLayout:
    count: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    interval: float  # seconds between tiles

    def as_meta(self) -> dict[str, Any]:
        return asdict(self)


class Thumbnails:
    """Collects the poster and sprite tiles from yuv420p (or rgb24) frames."""

    def __init__(self, total: int, width: int, height: int, fps: float, *, count: int = 10,
                 columns: int = 5, tile_width: int = 160, pix_fmt: str = "yuv420p",
                 poster_index: int | None = None) -> None:
        self.total, self.width, self.height, self.fps = total, width, height, fps
        self.pix_fmt = pix_fmt
        self.count = max(1, min(count, total))
        self.columns = min(columns, self.count)
        self.tile_w = min(tile_width, width) // 2 * 2
        self.tile_h = max(2, round(self.tile_w * height / width) // 2 * 2)
        step = total / self.count
        self.indices = {min(total - 1, int(k * step + step / 2)): k for k in range(self.count)}
        self.poster_index = total // 2 if poster_index is None else poster_index
        self.tiles: dict[int, np.ndarray] = {}
        self.poster: np.ndarray | None = None  # the poster's frame as it came
        self.layout: SpriteLayout | None = None  # once written

    def __call__(self, index: int, frame: np.ndarray) -> None:
        if index == self.poster_index:  # converted in write(), while x264 finishes
            self.poster = np.array(frame, copy=True)
        k = self.indices.get(index)
        if k is not None:
            self.tiles[k] = self._tile(frame)

    def _rgb(self, frame: np.ndarray) -> np.ndarray:
        if self.pix_fmt == "rgb24":
            return np.asarray(frame).reshape(self.height, self.width, 3).copy()
        return yuv420_to_rgb(frame, self.width, self.height)

    def _tile(self, frame: np.ndarray) -> np.ndarray:
        size = (self.tile_w, self.tile_h)
        if self.pix_fmt == "rgb24":
            return cv2.resize(self._rgb(frame), size, interpolation=cv2.INTER_AREA)
        planes = planes_of(np.asarray(frame).reshape(-1), self.width, self.height)
        small = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in planes]
        return yuv_to_rgb(np.dstack(small))

    def write(self, poster_path: Path, sprite_path: Path) -> SpriteLayout:
        """Save both JPEGs; tiles never seen (a short source) repeat the last one.
        Returns the sheet's layout (also kept as ``layout``)."""
        from PIL import Image

        if self.poster is not None:
            poster = self._rgb(self.poster)
        else:  # fewer frames than planned: the last tile will do
            poster = cv2.resize(self.tiles[max(self.tiles)] if self.tiles
                                else np.zeros((2, 2, 3), np.uint8), (self.width, self.height))
        Image.fromarray(poster).save(poster_path, "JPEG", quality=POSTER_QUALITY, optimize=True)
        self.layout = write_sheet(sprite_path, [self.tiles.get(k) for k in range(self.count)],
                                  self.columns, self.tile_w, self.tile_h,
                                  round(self.total / self.count / self.fps, 4))
        return self.layout


def write_sheet(path: Path, tiles: list[np.ndarray | None], columns: int, tile_w: int,
                tile_h: int, interval: float) -> SpriteLayout:
    """Lay ``tiles`` (RGB, tile-sized; a missing one repeats the one before) in rows of
    ``columns`` and save the sheet as a JPEG."""
    from PIL import Image

    count = len(tiles)
    rows = -(-count // columns)
    sheet = np.zeros((rows * tile_h, columns * tile_w, 3), np.uint8)
    last = None
    for k, tile in enumerate(tiles):
        tile = last if tile is None else tile
        if tile is None:
            continue
        last = tile
        r, c = divmod(k, columns)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    Image.fromarray(sheet).save(path, "JPEG", quality=SPRITE_QUALITY, optimize=True)
    return SpriteLayout(count, columns, rows, tile_w, tile_h, interval)
