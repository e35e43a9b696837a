"""Where a still's subject is, and how the picture fills the frame around it.

``find_subject`` finds a face (OpenCV's Haar cascade) or else the centre of visual
interest; ``plan_framing`` decides between a crop around it and a fit over a blurred
copy of the image; ``compose_canvas`` makes that base frame, at the size
``canvas_scale`` asks for (enough pixels for the deepest zoom).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

FIT_ZOOM = 1.3  # a fitted image may be this much larger than "contain"


@dataclass(frozen=True)
class Subject:
    """Where the picture's subject is: centre and box size, as fractions of the image."""

    x: float
    y: float
    w: float
    h: float
    kind: str  # "face" | "saliency" | "centre"


@dataclass(frozen=True)
class Framing:
    """How the source fills the base frame. ``crop``: the frame shows the source
    rectangle (x, y, w, h) in source pixels. ``fit``: the image lies over a blurred
    copy of itself at (x, y, w, h) in fractions of the frame (it may overflow on one
    side, by at most ``FIT_ZOOM``). ``anchor``: where the subject lands in the frame
    (0..1), for zooms."""

    mode: str
    x: float
    y: float
    w: float
    h: float
    anchor: tuple[float, float]


def find_subject(rgb: np.ndarray) -> Subject:
    """A face if OpenCV's Haar cascade is installed and finds one, else the centre of
    visual interest (spectral-residual saliency and edge energy, centre-weighted)."""
    gray = _gray_at(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), FACE_SIDE)
    # The saliency fallback is worked out beside the face search (it is needed
    # whenever no face is found), on a core that the frame pipe leaves idle until
    # the first frame.
    with ThreadPoolExecutor(1) as pool:
        salient = pool.submit(_salient_region, _gray_at(gray, 480))
        return _find_face(gray) or salient.result()


FACE_SIDE = 480  # faces are looked for at this size (long side): down to 16 pixels,
# a thirtieth of the picture. (At 720 and a finer scale step, 1.1, the search took
# 40-130 ms on scikit-image's photos; here 10-38 ms, and the astronaut's face is found.)
FACE_SCALE_STEP = 1.2
FACE_MIN_WEIGHT = 2.0  # cascade confidence below this is mostly false positives


def _gray_at(gray: np.ndarray, side: int) -> np.ndarray:
    """``gray`` shrunk to ``side`` pixels on its long side (as it is if smaller)."""
    h, w = gray.shape
    while max(h, w) >= 2 * side:  # exact halvings first: OpenCV's fast path for these
        gray = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = gray.shape
    scale = side / max(h, w)
    if scale >= 1:
        return gray
    return cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def _find_face(gray: np.ndarray) -> Subject | None:
    from .faces import face_cascade

    cascade = face_cascade()
    if cascade is None:
        return None
    h, w = gray.shape
    side = max(16, min(h, w) // 30)
    faces, _, weights = cascade.detectMultiScale3(
        gray, scaleFactor=FACE_SCALE_STEP, minNeighbors=5, minSize=(side, side),
        outputRejectLevels=True)
    found = [(float(wt), tuple(int(v) for v in f)) for f, wt in zip(faces, weights)
             if float(wt) >= FACE_MIN_WEIGHT]
    if not found:
        return None
    # The most confident face, larger faces preferred among near-equals.
    _, (fx, fy, fw, fh) = max(found, key=lambda item: item[0] * (item[1][2] ** 0.5))
    # Frame head and shoulders, not just the face box.
    return Subject(x=(fx + fw / 2) / w, y=(fy + fh * 0.7) / h, w=min(1.0, fw * 2.2 / w),
                   h=min(1.0, fh * 2.6 / h), kind="face")


def _salient_region(gray: np.ndarray) -> Subject:
    h, w = gray.shape
    g = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    spectrum = np.fft.fft2(g)
    log_amp = np.log(np.abs(spectrum) + 1e-6)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sal = cv2.resize(cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5), (w, h))
    edges = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    edges = cv2.GaussianBlur(edges, (0, 0), max(2.0, w / 40))
    score = sal / (sal.max() + 1e-6) + edges / (edges.max() + 1e-6)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    prior = np.exp(-(((xs / w - 0.5) ** 2) + ((ys / h - 0.5) ** 2)) / (2 * 0.3 ** 2))
    score *= prior
    if score.max() - score.min() < 1e-3 * (score.max() + 1e-6):
        return Subject(0.5, 0.5, 0.5, 0.5, "centre")
    weights = np.clip(score - np.quantile(score, 0.9), 0.0, None)
    total = float(weights.sum())
    if total <= 0:
        return Subject(0.5, 0.5, 0.5, 0.5, "centre")
    cx = float((weights * xs).sum() / total)
    cy = float((weights * ys).sum() / total)
    sx = float(np.sqrt((weights * (xs - cx) ** 2).sum() / total))
    sy = float(np.sqrt((weights * (ys - cy) ** 2).sum() / total))
    return Subject(x=cx / w, y=cy / h, w=min(1.0, 4 * sx / w), h=min(1.0, 4 * sy / h),
                   kind="saliency")


def plan_framing(src_w: int, src_h: int, aspect: float, subject: Subject,
                 min_keep: float = 0.5) -> Framing:
    """Crop around the subject when the crop keeps the whole subject and at least
    ``min_keep`` of the image (a face needs only half that: framing a person tightly is
    what a crop is for); otherwise fit the image over a blurred fill."""
    if src_w / src_h > aspect:
        crop_w, crop_h = src_h * aspect, float(src_h)
    else:
        crop_w, crop_h = float(src_w), src_w / aspect
    keep = crop_w * crop_h / (src_w * src_h)
    face = subject.kind == "face"
    fits = not face or (subject.w * src_w <= crop_w and subject.h * src_h <= crop_h)
    if keep >= (min_keep / 2 if face else min_keep) and fits:
        target_y = subject.y * src_h - (crop_h * 0.1 if subject.kind == "face" else 0.0)
        x0 = min(max(subject.x * src_w - crop_w / 2, 0.0), src_w - crop_w)
        y0 = min(max(target_y - crop_h / 2, 0.0), src_h - crop_h)
        anchor = ((subject.x * src_w - x0) / crop_w, (subject.y * src_h - y0) / crop_h)
        return Framing("crop", x0, y0, crop_w, crop_h, _clip_pair(anchor))
    # Fit, in units of the frame height (the frame is `aspect` wide): a little larger
    # than "contain", cropping the overflow around the subject, so it does not shrink
    # to a strip in a frame of a very different shape.
    contain, cover = min(aspect / src_w, 1.0 / src_h), max(aspect / src_w, 1.0 / src_h)
    scale = contain * min(FIT_ZOOM, cover / contain)
    iw, ih = src_w * scale, src_h * scale
    x0 = _place(iw, aspect, subject.x)
    y0 = _place(ih, 1.0, subject.y)
    anchor = ((x0 + subject.x * iw) / aspect, y0 + subject.y * ih)
    return Framing("fit", x0 / aspect, y0, iw / aspect, ih, _clip_pair(anchor))


def _place(size: float, room: float, subject: float) -> float:
    """Offset of an image side of ``size`` in ``room``: centred if it fits, else
    centred on the subject without leaving a gap."""
    if size <= room:
        return (room - size) / 2
    return min(0.0, max(room - size, room / 2 - subject * size))


def _clip_pair(p: tuple[float, float]) -> tuple[float, float]:
    return (min(1.0, max(0.0, p[0])), min(1.0, max(0.0, p[1])))


# Shrinks by a factor this close to 1 are bilinear, as the frames' own views are (they
# shrink the canvas by down to 1 / (1.3 * RESAMPLE_HEADROOM)).
LINEAR_SHRINK = 0.75


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` at ``size``: bicubic up, area-averaged down. OpenCV's area average is
    fast only for whole factors (9-16 ms from a 2400-pixel photo to a canvas otherwise),
    so a shrink is made of exact halvings, then a bilinear step up to twice the size
    and one more halving, or where it is mild (``LINEAR_SHRINK``) a bilinear step:
    1.4-5.3 ms, 50-58 dB from the direct average on photos."""
    h, w = img.shape[:2]
    if size[0] >= w and size[1] >= h:
        return cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
    while w >= 2 * size[0] and h >= 2 * size[1]:
        w, h = w // 2, h // 2
        img = cv2.resize(img[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
    if size[0] >= LINEAR_SHRINK * w and size[1] >= LINEAR_SHRINK * h:
        return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    twice = cv2.resize(img, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(twice, size, interpolation=cv2.INTER_AREA)


def compose_canvas(rgb: np.ndarray, framing: Framing, width: int, height: int) -> np.ndarray:
    """The base frame as an RGB image of ``width`` x ``height``."""
    if framing.mode == "crop":
        x0, y0 = int(round(framing.x)), int(round(framing.y))
        x1, y1 = int(round(framing.x + framing.w)), int(round(framing.y + framing.h))
        return _resize(rgb[y0:y1, x0:x1], (width, height))
    src_h, src_w = rgb.shape[:2]
    # Background: the image covering the frame, blurred, darkened and muted.
    tw, th = max(2, width // 8), max(2, height // 8)
    cover = max(tw / src_w, th / src_h)
    bw, bh = max(tw, round(src_w * cover)), max(th, round(src_h * cover))
    small = cv2.resize(rgb, (bw, bh), interpolation=cv2.INTER_AREA)
    sx, sy = (bw - tw) // 2, (bh - th) // 2
    small = cv2.GaussianBlur(small[sy:sy + th, sx:sx + tw], (0, 0), max(1.0, min(tw, th) / 30))
    back = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    grey = back.mean(axis=2, keepdims=True)
    canvas = ((0.75 * back + 0.25 * grey) * 0.55).astype(np.uint8)
    fw, fh = max(1, round(framing.w * width)), max(1, round(framing.h * height))
    ox, oy = round(framing.x * width), round(framing.y * height)
    front = _resize(rgb, (fw, fh))
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(width, ox + fw), min(height, oy + fh)
    canvas[y0:y1, x0:x1] = front[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return canvas


# The canvas is this much larger than the detail the deepest zoom needs, so that every
# view is a true resize (cheap, see render.fit_views) rather than a 1:1 sub-pixel warp.
RESAMPLE_HEADROOM = 1.05


def canvas_scale(framing: Framing, src_size: tuple[int, int], out_size: tuple[int, int],
                 max_zoom: float) -> float:
    """How much larger than the output to make the canvas: enough source pixels for
    the deepest zoom (never more than the source has, never below the output), times
    ``RESAMPLE_HEADROOM``."""
    src_w, out_w = src_size[0], out_size[0]
    if framing.mode == "crop":
        detail = framing.w / out_w
    else:
        detail = src_w / (framing.w * out_w)
    return float(min(max(detail, 1.0), max_zoom) * RESAMPLE_HEADROOM)

