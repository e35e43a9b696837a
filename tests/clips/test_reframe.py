"""The camera path over a real face photo: it follows the face, stays smooth, ignores
jitter inside its dead zone, resets at a cut, switches speakers with hysteresis, and
falls back to the blurred-fill layout when a shot has no face."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from reelforge.media.analysis import HOP_S, Analysis, analyse
from reelforge.media.faces import FaceBox, FaceDetector, FaceTrack
from reelforge.media.reframe import CROP, FILL, CameraParams, plan_camera, render_clip

from .conftest import SIZE
from .synth import astronaut_face, face_box_in_tile

FPS = 30


def true_face_cx(shot, t: float, width: int = SIZE[0], height: int = SIZE[1]) -> float:
    fh = int(height * 0.6) // 2 * 2
    fw = astronaut_face(fh).shape[1]
    return shot.fx * width - fw / 2 + shot.vx * width * (t - shot.start) + face_box_in_tile(fh)[0]


@pytest.fixture(scope="module")
def moving_analysis(moving_face, tmp_path_factory) -> Analysis:
    return analyse(moving_face.path, tmp_path_factory.mktemp("an"))


def test_analysis_finds_the_face_and_the_cut(moving_analysis: Analysis, moving_face) -> None:
    a = moving_analysis
    assert len(a.cuts) == 1 and a.cuts[0] == pytest.approx(4.5, abs=1.5 / FPS)
    assert a.face_fraction(0, 7) > 0.9
    assert len(a.tracks) == 2  # one per shot: tracks never cross a cut
    first = a.tracks[0]
    for t, box in zip(first.times, first.boxes):
        assert box.cx * SIZE[0] == pytest.approx(true_face_cx(moving_face.shots[0], t), abs=12)


def test_camera_follows_the_face_smoothly_and_resets_at_the_cut(moving_analysis: Analysis,
                                                                moving_face) -> None:
    path = plan_camera(moving_analysis, 0.0, 7.0, 360, 640, FPS)
    cw = path.crop_w
    assert (cw, path.crop_h) == (202, 360) and path.layouts == {CROP}
    cut = moving_analysis.cuts[0]
    assert cut in path.resets
    first, second = moving_face.shots
    for i in range(path.frames):
        t = i / FPS
        shot = first if t < cut else second
        face = true_face_cx(shot, t)
        inside = (face - path.xs[i]) / cw
        assert 0.2 < inside < 0.8, f"face at {inside:.2f} of the window at {t:.2f} s"
    k = int(round(cut * FPS))
    dx = np.diff(path.xs[:k].astype(float))
    assert np.abs(dx).max() <= 6  # no jumps inside a shot (the face moves ~2.6 px/frame)
    assert np.abs(np.diff(dx)).max() <= 2  # and no jerks: velocity changes gently
    assert abs(path.xs[k] - path.xs[k - 1]) > 30  # a jump, straight to the new shot's face
    new_face = true_face_cx(second, cut)
    assert abs(path.xs[k] + cw / 2 - max(new_face, cw / 2)) < 12


def test_rendered_clip_keeps_the_face_in_frame(moving_analysis: Analysis, moving_face,
                                               ffmpeg, tmp_path: Path) -> None:
    path = plan_camera(moving_analysis, 0.0, 7.0, 180, 320, FPS)
    out = render_clip(ffmpeg, moving_face.path, tmp_path / "clip.mp4", start=0.0,
                      duration=7.0, path=path, out_w=180, out_h=320, captions=None,
                      has_audio=True, src_fps=FPS, workdir=tmp_path, preset="ultrafast")
    detector = FaceDetector()
    seen = 0
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (180, 320)
        for n, frame in enumerate(c.decode(stream)):
            if n % 15:
                continue
            gray = frame.to_ndarray(format="gray")
            faces = detector.detect(gray)
            assert faces, f"no face in output frame {n}"
            assert 0.25 < faces[0].cx < 0.75, (n, faces[0].cx)
            seen += 1
    assert seen >= 12


def synthetic(tracks: list[FaceTrack], seconds: float, cuts: tuple[float, ...] = (),
              width: int = 1920, height: int = 1080) -> Analysis:
    times = np.arange(0, seconds, 0.2)
    hops = int(seconds / HOP_S)
    return Analysis(start=0.0, end=seconds, width=width, height=height, fps=FPS, cuts=cuts,
                    face_times=times, faces=tuple(() for _ in times), tracks=tuple(tracks),
                    energy_db=np.full(hops, -20.0, np.float32), speech=np.ones(hops, bool),
                    audio_path=None)


def track(tid: int, times, xs, w: float = 0.1, activity=None) -> FaceTrack:
    acts = activity if activity is not None else [0.0] * len(times)
    return FaceTrack(tid, list(times), [FaceBox(x - w / 2, 0.3, w, w * 16 / 9, a)
                                        for x, a in zip(xs, acts)])


def test_jitter_inside_the_dead_zone_never_moves_the_camera() -> None:
    rng = np.random.default_rng(3)
    times = np.arange(0, 6, 0.2)
    params = CameraParams()
    cw = 1080 * 9 / 16
    # peak to peak just inside the dead zone (0.9 of it)
    jitter = rng.uniform(-1, 1, len(times)) * params.dead_zone * cw * 0.45 / 1920
    path = plan_camera(synthetic([track(0, times, 0.5 + jitter)], 6.0), 0, 6, 1080, 1920, FPS)
    assert np.ptp(path.xs) == 0 and np.ptp(path.ys) == 0


def test_a_move_beyond_the_dead_zone_eases_in_without_overshoot() -> None:
    times = np.arange(0, 6, 0.2)
    xs = np.where(times < 2.0, 0.4, 0.6)
    path = plan_camera(synthetic([track(0, times, xs)], 6.0), 0, 6, 1080, 1920, FPS)
    centre = path.xs + path.crop_w / 2
    before, after = centre[int(1.7 * FPS)], centre[-1]  # samples are 0.2 s apart
    assert before == pytest.approx(0.4 * 1920, abs=2) and after == pytest.approx(0.6 * 1920, abs=2)
    move = centre[int(1.75 * FPS):]
    assert np.all(np.diff(move) >= 0) and move.max() <= after + 0.5  # monotone, no overshoot
    steps = np.diff(move)
    assert steps.max() < 40  # a pan, not a jump
    settle = np.argmax(move >= after - 3) / FPS
    assert 0.3 < settle < 1.5


def test_speaker_switch_needs_a_clear_and_lasting_lead() -> None:
    times = np.arange(0, 12, 0.2)
    act_a = np.where(times < 6, 0.05, 0.01)
    act_b = np.where(times < 6, 0.01, 0.05)
    act_b[(times >= 2.0) & (times < 2.4)] = 0.1  # a short outburst: no switch
    a = track(1, times, np.full(len(times), 0.2), activity=act_a)
    b = track(2, times, np.full(len(times), 0.8), activity=act_b)
    params = CameraParams()
    path = plan_camera(synthetic([a, b], 12.0), 0, 12, 1080, 1920, FPS, params)
    assert [s for _, s in path.speakers] == [1, 2]
    switch = path.speakers[1][0]
    assert 6.0 + params.switch_hold_s <= switch <= 6.0 + params.switch_hold_s + 1.2
    assert switch in path.resets  # far apart: a cut, not a long pan across the room
    centre = path.xs + path.crop_w / 2
    assert centre[int(3 * FPS)] == pytest.approx(0.2 * 1920, abs=30)
    assert centre[int(11 * FPS)] == pytest.approx(0.8 * 1920, abs=30)


def test_faces_that_fit_together_are_framed_together() -> None:
    times = np.arange(0, 4, 0.2)
    a = track(1, times, np.full(len(times), 0.45), w=0.05, activity=[0.05] * len(times))
    b = track(2, times, np.full(len(times), 0.55), w=0.05)
    path = plan_camera(synthetic([a, b], 4.0), 0, 4, 1080, 1920, FPS)
    assert (path.xs + path.crop_w / 2)[60] == pytest.approx(0.5 * 1920, abs=4)


def test_real_two_speaker_video_follows_the_talker(two_speakers, tmp_path: Path) -> None:
    a = analyse(two_speakers.path, tmp_path)
    path = plan_camera(a, 0, 12, 360, 640, FPS)
    centre = (path.xs + path.crop_w / 2) / SIZE[0]
    assert centre[int(4 * FPS)] < 0.4  # the left face talks first
    assert centre[int(11.5 * FPS)] > 0.6  # then the right one
    assert len(path.speakers) >= 2


def test_a_shot_without_a_face_gets_the_blurred_fill(slide_then_face, ffmpeg,
                                                     tmp_path: Path) -> None:
    a = analyse(slide_then_face.path, tmp_path / "an")
    path = plan_camera(a, 0, 5, 180, 320, FPS)
    kinds = [s.layout for s in path.segments]
    assert kinds == [FILL, CROP]
    assert path.segments[0].end == pytest.approx(2.5, abs=1.5 / FPS)
    out = render_clip(ffmpeg, slide_then_face.path, tmp_path / "fill.mp4", start=0,
                      duration=5, path=path, out_w=180, out_h=320, captions=None,
                      has_audio=True, src_fps=FPS, workdir=tmp_path, preset="ultrafast")
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="gray") for n, f in enumerate(c.decode(video=0))
                  if n in (30, 120)]
    slide, face = frames
    sharp = lambda img: float(cv2.Laplacian(img, cv2.CV_64F).var())  # noqa: E731
    top, middle = slide[:80], slide[130:190]
    assert sharp(top) < 5 < sharp(middle)  # blurred fill above, the whole slide in the middle
    assert FaceDetector().detect(face)


def test_phone_video_with_display_rotation_is_analysed_upright(moving_face, ffmpeg,
                                                               tmp_path: Path) -> None:
    """Stored sideways (portrait pixels) with a 90° display matrix, as phones do: faces
    are found in the picture as shown, and the camera works in shown coordinates."""
    sideways = tmp_path / "sideways.mp4"
    ffmpeg.run(["-i", str(moving_face.path), "-t", "3", "-vf", "transpose=clock",
                "-c:v", "libx264", "-preset", "ultrafast", "-an", str(sideways)])
    flagged = tmp_path / "phone.mp4"
    ffmpeg.run(["-display_rotation", "90", "-i", str(sideways), "-c", "copy", str(flagged)])
    a = analyse(flagged, tmp_path / "an")
    assert (a.width, a.height) == SIZE  # as shown, not as stored (360x640)
    assert a.face_fraction(0, 3) > 0.8
    square = plan_camera(a, 0, 3, 320, 320, FPS)
    assert (square.crop_w, square.crop_h) == (360, 360) and square.layouts == {CROP}
    out = render_clip(ffmpeg, flagged, tmp_path / "sq.mp4", start=0, duration=3, path=square,
                      out_w=160, out_h=160, captions=None, has_audio=False, src_fps=FPS,
                      workdir=tmp_path, preset="ultrafast")
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="gray")
    assert FaceDetector().detect(cv2.resize(frame, (320, 320)))
