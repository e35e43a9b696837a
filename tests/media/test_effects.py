"""Frame effects: transitions, restyles (and that they do not flicker), weather,
segmentation (real model when installed, refusal when not), compositing, thumbnails,
subject framing on a real face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reelforge.errors import UnsupportedMode
from reelforge.media import framing, render, segment, transitions
from reelforge.media.composite import Backdrop, Sticker, key_out_border
from reelforge.media.looks import LOOKS, RELIGHTS, lattice_lut, write_cube
from reelforge.media.prompt import RESTYLES
from reelforge.media.stylize import Stylizer
from reelforge.media.thumbs import Thumbnails
from reelforge.media.weather import Weather

W, H = 96, 64


def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return skdata.astronaut()


def photo(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    img = np.array([70, 120, 200], np.float32) * (1 - y) + np.array([230, 190, 140]) * y
    img = np.repeat(img, width, axis=1)
    cv2.circle(img, (width // 3, height // 2), height // 5, (200, 60, 50), -1)
    cv2.rectangle(img, (width // 2, height // 3), (width - 20, height - 20), (40, 90, 40), -1)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


def yuv_frame(value: int) -> np.ndarray:
    buf = np.empty(W * H * 3 // 2, np.uint8)
    y, u, v = render.planes_of(buf, W, H)
    y[:], u[:], v[:] = value, 128, 128
    return buf


# ------------------------------------------------------------------ transitions

@pytest.mark.parametrize("kind", transitions.KINDS)
def test_transitions_go_from_a_to_b(kind: str) -> None:
    a, b, out = yuv_frame(40), yuv_frame(200), np.empty(W * H * 3 // 2, np.uint8)
    lumas = []
    for t in np.linspace(0, 1, 9):
        transitions.blend(kind, a, b, float(t), W, H, out)
        lumas.append(render.planes_of(out, W, H)[0].astype(np.float32).mean())
    assert lumas[0] == pytest.approx(40, abs=1) and lumas[-1] == pytest.approx(200, abs=1)
    assert all(y2 >= y1 - 0.5 for y1, y2 in zip(lumas, lumas[1:]))  # never backwards
    if kind != "cut":
        assert 60 < lumas[4] < 180  # halfway is a mix
    y, u, v = render.planes_of(out, W, H)
    assert u.min() == u.max() == 128  # chroma untouched for grey frames


def test_slide_moves_the_picture_and_wipe_has_a_soft_edge() -> None:
    a, b, out = yuv_frame(40), yuv_frame(200), np.empty(W * H * 3 // 2, np.uint8)
    transitions.blend("slide", a, b, 0.5, W, H, out)
    row = render.planes_of(out, W, H)[0][10]
    assert row[0] == 40 and row[-1] == 200  # a leaves on the left, b comes in on the right
    transitions.blend("wipe", a, b, 0.5, W, H, out)
    row = render.planes_of(out, W, H)[0][10]
    assert row[0] == 200 and row[-1] == 40 and len(set(row.tolist())) > 3


# ------------------------------------------------------------------ restyles

def flicker(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(b.astype(np.float32) - a).mean()
                          for a, b in zip(frames, frames[1:])]))


@pytest.mark.parametrize("kind", RESTYLES)
def test_restyles_change_the_picture_without_flicker(kind: str) -> None:
    base = photo()
    rng = np.random.default_rng(3)
    # A still scene with sensor noise: the input flickers a little from frame to frame.
    noisy = [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
             for _ in range(12)]
    styler = Stylizer(kind, base.shape[1], base.shape[0], seed=1)
    out = [styler(f) for f in noisy]
    assert out[0].shape == base.shape and out[0].dtype == np.uint8
    assert np.abs(out[-1].astype(np.float32) - base).mean() > 5  # it really restyles
    assert flicker(out[4:]) < 0.6 * flicker(noisy[4:])  # steadier than its input
    again = Stylizer(kind, base.shape[1], base.shape[0], seed=1)
    assert np.array_equal(again(noisy[0]), out[0])  # deterministic


def test_restyles_differ_from_each_other() -> None:
    base = photo()
    outs = {k: Stylizer(k, base.shape[1], base.shape[0]).__call__(base).astype(np.float32)
            for k in RESTYLES}
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outs[a] - outs[b]).mean() > 5, (a, b)


def test_grades_become_luts_that_match_the_grade() -> None:
    img = photo()
    for look in (LOOKS["vintage"], RELIGHTS["night"], RELIGHTS["golden_hour"]):
        lut = lattice_lut(look, 33)
        idx = np.rint(img.astype(np.float32) / 255 * 32).astype(int)
        approx = lut[idx[..., 0], idx[..., 1], idx[..., 2]] * 255
        from dataclasses import replace

        from reelforge.media.looks import grade

        exact = grade(img, replace(look, glow=0.0)).astype(np.float32)
        assert np.abs(approx - exact).mean() < 4
    relit = {k: lattice_lut(v, 9).mean(axis=(0, 1, 2)) for k, v in RELIGHTS.items()}
    assert relit["warm"][0] > relit["warm"][2] and relit["cool"][2] > relit["cool"][0]
    assert relit["night"].mean() < relit["moody"].mean() < relit["golden_hour"].mean()


@pytest.mark.parametrize("name", ["cinematic", "vintage", "night", "golden_hour"])
def test_yuv_grade_filters_approximate_the_grade(name: str) -> None:
    import subprocess
    from dataclasses import replace

    from reelforge.media.ffmpeg import find_ffmpeg
    from reelforge.media.looks import grade, yuv_grade_filters

    look = LOOKS.get(name) or RELIGHTS[name]
    img = photo(256, 128)
    y, u, v = render.rgb_to_planes(img)
    raw = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).tobytes()
    base = render.yuv420_to_rgb(np.frombuffer(raw, np.uint8), 256, 128)
    out = subprocess.run([find_ffmpeg(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
                          "yuv420p", "-s", "256x128", "-i", "-", "-vf",
                          ",".join(yuv_grade_filters(look)), "-f", "rawvideo", "-"],
                         input=raw, capture_output=True, check=True).stdout
    approx = render.yuv420_to_rgb(np.frombuffer(out, np.uint8), 256, 128).astype(np.float32)
    exact = grade(base, replace(look, glow=0.0)).astype(np.float32)
    assert np.abs(approx - exact).mean() < 0.35 * np.abs(exact - base).mean()


def test_cube_file_format(tmp_path: Path) -> None:
    text = write_cube(tmp_path / "g.cube", LOOKS["dramatic"], size=5).read_text()
    lines = text.splitlines()
    assert "LUT_3D_SIZE 5" in lines and len(lines) == 4 + 5 ** 3


# ------------------------------------------------------------------ weather

@pytest.mark.parametrize("kind", ["rain", "snow", "fog"])
def test_weather_is_visible_moving_and_seeded(kind: str) -> None:
    base = photo(160, 120)
    fx = Weather([kind], 160, 120, 24, seed=5)
    a, b = fx(base, 0), fx(base, 6)
    changed = np.abs(a.astype(np.float32) - base).max(axis=2) > 20
    assert changed.mean() > 0.01  # visible
    assert not np.array_equal(a, b)  # it moves
    assert np.array_equal(Weather([kind], 160, 120, 24, seed=5)(base, 6), b)  # seeded
    if kind == "fog":
        assert a.astype(np.float32).std() < base.astype(np.float32).std()  # washes out


# ------------------------------------------------------------------ segmentation

def test_background_refused_with_fix_when_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment, "PACKAGES", ("no_such_package_here",))
    with pytest.raises(UnsupportedMode) as err:
        segment.find_model()
    assert "segmentation model" in err.value.message
    assert "pip install" in err.value.fix and "REELFORGE_SEGMENTATION_MODEL" in err.value.fix
    with pytest.raises(UnsupportedMode):
        segment.find_model("/nonexistent/model.tflite")


def test_person_segmentation_on_a_real_photo() -> None:
    try:
        model = segment.find_model()
    except UnsupportedMode:
        pytest.skip("no segmentation model installed (see the refusal's fix)")
    img = astronaut()
    mask = segment.PersonSegmenter(model)(img)
    assert mask.shape == img.shape[:2]
    assert mask[200:400, 120:300].mean() > 0.9  # her suit and face
    assert mask[:80, 380:].mean() < 0.1  # the backdrop behind her
    out = Backdrop("color", 512, 512, (0, 200, 0)).apply(img, mask)
    assert out[20, 480, 1] > 180 and out[20, 480, 0] < 30  # background is now green
    assert np.abs(out[300, 200].astype(int) - img[300, 200]).max() < 10  # person kept


# ------------------------------------------------------------------ compositing

def test_sticker_lands_where_asked_and_keys_out_its_border() -> None:
    logo = np.full((60, 60, 4), 255, np.uint8)  # white square with a red disc
    cv2.circle(logo, (30, 30), 20, (220, 30, 30, 255), -1)
    keyed = key_out_border(logo)
    assert keyed[2, 2, 3] == 0 and keyed[30, 30, 3] == 255
    frame = np.full((120, 160, 3), 50, np.uint8)
    top_right = Sticker(logo, 160, 120, 24, placement="top_right", size=0.3)(frame, 24)
    red = (top_right[..., 0] > 150) & (top_right[..., 1] < 100)
    ys, xs = np.nonzero(red)
    assert xs.mean() > 100 and ys.mean() < 45
    assert not red[60:].any()
    first = Sticker(logo, 160, 120, 24, placement="center")(frame, 0)
    assert np.array_equal(first, frame)  # it fades in from nothing


# ------------------------------------------------------------------ thumbnails

def test_thumbnails_poster_and_sheet(tmp_path: Path) -> None:
    from PIL import Image

    thumbs = Thumbnails(50, 64, 36, 25, count=10, columns=5, tile_width=32)
    for i in range(50):
        thumbs(i, yuv_frame_sized(i * 4, 64, 36))
    layout = thumbs.write(tmp_path / "p.jpg", tmp_path / "s.jpg")
    assert (layout.count, layout.columns, layout.rows, layout.tile_width) == (10, 5, 2, 32)
    assert layout.interval == 0.2
    with Image.open(tmp_path / "s.jpg") as sheet:
        assert sheet.size == (160, 2 * layout.tile_height)
        tiles = np.asarray(sheet.convert("L"))
    firsts = [tiles[:layout.tile_height, k * 32:(k + 1) * 32].mean() for k in range(5)]
    assert firsts == sorted(firsts)  # later tiles are later (brighter) frames
    with Image.open(tmp_path / "p.jpg") as poster:
        assert poster.size == (64, 36)


def yuv_frame_sized(value: int, width: int, height: int) -> np.ndarray:
    buf = np.empty(width * height * 3 // 2, np.uint8)
    y, u, v = render.planes_of(buf, width, height)
    y[:], u[:], v[:] = 16 + value, 128, 128
    return buf


# ------------------------------------------------------------------ faces

def test_face_framing_on_a_real_photo() -> None:
    img = astronaut()
    subject = framing.find_subject(img)
    assert subject.kind == "face"
    assert 0.35 < subject.x < 0.52 and 0.15 < subject.y < 0.35  # her face, upper left
    # On a wide canvas with the person on the right, a 9:16 crop follows the face.
    wide = np.full((576, 1024, 3), 90, np.uint8)
    wide[32:544, 480:992] = img
    found = framing.find_subject(wide)
    plan = framing.plan_framing(1024, 576, 9 / 16, found)
    assert found.kind == "face" and plan.mode == "crop"
    face_x = found.x * 1024
    assert plan.x < face_x < plan.x + plan.w
    assert plan.x > (1024 - plan.w) / 2 + 50  # not the blind centre crop
