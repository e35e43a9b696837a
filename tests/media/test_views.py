"""A camera path's views drawn as resizes of regions (render.fit_views, draw_view) land
where cv2.warpAffine would put them."""

from __future__ import annotations

import cv2
import numpy as np

from reelforge.media import render


def smooth_plane(h: int, w: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def views(scales: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    ms = np.zeros((len(scales), 2, 3))
    ms[:, 0, 0] = ms[:, 1, 1] = scales
    ms[:, 0, 2], ms[:, 1, 2] = offsets[:, 0], offsets[:, 1]
    return ms


def test_resized_views_match_the_warp():
    src = smooth_plane(300, 400)
    rng = np.random.default_rng(1)
    n = 60
    ms = views(rng.uniform(1.05, 1.6, n), rng.uniform(8.0, 40.0, (n, 2)))
    fits = render.fit_views(ms, src.shape, (120, 160))
    assert sum(f is not None for f in fits) >= 0.8 * n  # most views are resizes
    for m, fit in zip(ms, fits):
        if fit is None:
            continue
        mine = np.empty((120, 160), np.uint8)
        assert render.draw_view(src, fit, mine)
        warped = cv2.warpAffine(src, m, (160, 120), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        # placed within VIEW_TOLERANCE of a source pixel, on a smooth picture
        assert np.abs(mine.astype(int) - warped).max() <= 3
        assert np.abs(mine.astype(int) - warped).mean() < 0.6


def test_views_that_cannot_be_resized_are_left_to_the_warp():
    src_shape, dst_shape = (300, 400), (120, 160)
    ms = views(np.array([1.0, 1.3, 1.3]), np.array([[10.0, 10.0], [-5.0, 10.0], [10.0, 250.0]]))
    # scale 1 (a resize would only copy); a region starting left of the plane; one
    # running off its bottom
    assert render.fit_views(ms, src_shape, dst_shape) == [None, None, None]


def test_a_vignette_is_applied_to_the_view_on_its_way_in():
    src = smooth_plane(300, 400, seed=2)
    fit = render.fit_views(views(np.array([1.2371]), np.array([[20.3, 30.7]])), src.shape,
                           (120, 160))[0]
    assert fit is not None
    plain, dimmed = np.empty((120, 160), np.uint8), np.empty((120, 160), np.uint8)
    half, black = np.full((120, 160), 128, np.uint8), np.full((120, 160), 8, np.uint8)
    assert render.draw_view(src, fit, plain) and render.draw_view(src, fit, dimmed,
                                                                  (half, black))
    assert np.abs(dimmed.astype(int) - np.rint(plain.astype(int) * 128 / 255) - 8).max() <= 1
