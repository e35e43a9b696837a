"""Reframing a landscape source for a vertical (or square) clip: a camera path over the
face track, rendered by ffmpeg in one pass.

The camera is a crop window of the output's aspect that slides over the source:

- it aims at the speaking face (or at every face, when they all fit in the window),
  with a **dead zone**: while the target stays within ``dead_zone`` of where the
  camera is aiming, the aim does not move, so detector jitter never becomes shake;
- it moves on a **critically damped spring** (no overshoot, no wobble);
- at a **scene cut** it jumps straight to the new shot's face (no pan across a cut);
- the **speaker** changes only when another face has been clearly more active (mouth
  movement) for a while, and never sooner than ``min_dwell_s`` after the last change
  (hysteresis); a change to a far face is a cut, to a near one a pan;
- a shot with **no face** is shown whole, fitted over a blurred, darkened copy of
  itself (the blurred-fill layout).

``render_clip`` turns the path into one ffmpeg command: the crop window is moved per
frame by ``sendcmd`` commands to a ``crop`` filter, scaled to the output, blurred-fill
shots are laid over it with timeline ``enable``, captions are burned in by ``ass`` (or,
where ffmpeg has no libass, their images from ``caption_overlay`` come in as a second
input and are laid on by ``overlay``), and libx264 encodes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import Analysis
from .caption_overlay import CaptionOverlay
from .captions import CaptionTrack, ass_filter
from .faces import FaceTrack
from .ffmpeg import FFmpeg, Tick, filter_path

CROP, FILL, WHOLE = "crop", "fill", "whole"


@dataclass(frozen=True)
class CameraParams:
    dead_zone: float = 0.08  # of the crop width (and height): jitter inside is ignored
    omega: float = 7.0  # spring stiffness (rad/s): ~0.7 s to settle
    switch_ratio: float = 1.5  # a challenger must be this much more active ...
    switch_hold_s: float = 0.8  # ... for this long ...
    min_dwell_s: float = 2.0  # ... and the current speaker must have had this long
    activity_tau_s: float = 0.8  # smoothing of mouth activity
    hold_s: float = 1.5  # a lost face is still aimed at for this long
    group_fill: float = 0.85  # frame every face when together they span this much


@dataclass(frozen=True)
class Segment:
    start: float  # clip time (s)
    end: float
    layout: str  # crop | fill | whole


@dataclass(frozen=True)
class CameraPath:
    fps: float
    frames: int
    src_w: int
    src_h: int
    crop_w: int
    crop_h: int
    xs: np.ndarray  # crop window's left edge per output frame (source px)
    ys: np.ndarray  # crop window's top edge
    targets: np.ndarray  # (frames, 2): where the camera was aiming (window centre)
    segments: tuple[Segment, ...]
    resets: tuple[float, ...]  # clip times where the camera jumped (cuts, far switches)
    speakers: tuple[tuple[float, int], ...]  # (clip time, track id) at each change

    @property
    def layouts(self) -> set[str]:
        return {s.layout for s in self.segments}

    def centre(self, i: int) -> tuple[float, float]:
        return (self.xs[i] + self.crop_w / 2, self.ys[i] + self.crop_h / 2)


def crop_size(src_w: int, src_h: int, out_w: int, out_h: int) -> tuple[int, int] | None:
    """The crop window for the output's aspect; None when the shapes already match."""
    a, s = out_w / out_h, src_w / src_h
    if abs(a - s) / s < 0.04:
        return None
    if a < s:
        return _even(src_h * a), src_h - src_h % 2
    return src_w - src_w % 2, _even(src_w / a)


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def plan_camera(analysis: Analysis, start: float, end: float, out_w: int, out_h: int,
                fps: float, params: CameraParams = CameraParams()) -> CameraPath:
    """The camera path for the clip [start, end) of the analysed source."""
    W, H = analysis.width, analysis.height
    frames = max(1, int(round((end - start) * fps)))
    size = crop_size(W, H, out_w, out_h)
    cuts = [c - start for c in analysis.cuts if start < c < end]
    if size is None:
        return CameraPath(fps, frames, W, H, W, H, np.zeros(frames), np.zeros(frames),
                          np.tile([W / 2, H / 2], (frames, 1)),
                          (Segment(0.0, frames / fps, WHOLE),), tuple(cuts), ())
    cw, ch = size
    return _Planner(analysis, start, end, cw, ch, fps, frames, cuts, params).plan()


class _Planner:
    def __init__(self, analysis: Analysis, start: float, end: float, cw: int, ch: int,
                 fps: float, frames: int, cuts: list[float], params: CameraParams) -> None:
        self.a, self.start, self.end = analysis, start, end
        self.cw, self.ch, self.fps, self.frames = cw, ch, fps, frames
        self.cuts, self.p = cuts, params
        self.W, self.H = analysis.width, analysis.height
        self.tracks = [t for t in analysis.tracks
                       if t.end >= start - params.hold_s and t.start <= end]
        self.activity = {t.id: _smoothed_activity(t, params.activity_tau_s)
                         for t in self.tracks}

    def plan(self) -> CameraPath:
        xs, ys = np.zeros(self.frames), np.zeros(self.frames)
        targets = np.zeros((self.frames, 2))
        edges = [0.0, *self.cuts, self.frames / self.fps]
        shots = list(zip(edges[:-1], edges[1:]))
        segments: list[Segment] = []
        resets: list[float] = list(self.cuts)
        speakers: list[tuple[float, int]] = []
        for s0, s1 in shots:
            i0, i1 = int(round(s0 * self.fps)), int(round(s1 * self.fps))
            alive = [t for t in self.tracks if self._in_shot(t, s0, s1)]
            if not alive:
                segments.append(Segment(s0, s1, FILL))
                xs[i0:i1], ys[i0:i1] = (self.W - self.cw) / 2, (self.H - self.ch) / 2
                targets[i0:i1] = (self.W / 2, self.H / 2)
                continue
            segments.append(Segment(s0, s1, CROP))
            self._shot(i0, i1, alive, xs, ys, targets, resets, speakers)
        merged = _merge(segments)
        return CameraPath(self.fps, self.frames, self.W, self.H, self.cw, self.ch,
                          np.round(xs).astype(int), np.round(ys).astype(int), targets,
                          tuple(merged), tuple(sorted(set(resets))), tuple(speakers))

    def _in_shot(self, track: FaceTrack, s0: float, s1: float) -> bool:
        a, b = self.start + s0, self.start + s1
        return any(a <= t < b for t in track.times)

    def _shot(self, i0: int, i1: int, alive: list[FaceTrack], xs: np.ndarray, ys: np.ndarray,
              targets: np.ndarray, resets: list[float], speakers: list[tuple[float, int]]) -> None:
        p = self.p
        dt = 1.0 / self.fps
        speaker: FaceTrack | None = None
        last_switch = -1e9
        challenger_since: float | None = None
        goal = pos = vel = None
        for i in range(i0, i1):
            t = i / self.fps
            T = self.start + t
            live = [tr for tr in alive if tr.start - 0.3 <= T <= tr.end + p.hold_s]
            if not live:
                live = [min(alive, key=lambda tr: min(abs(tr.start - T), abs(tr.end - T)))]
            jump = goal is None
            if speaker is None or speaker not in live:
                speaker = max(live, key=lambda tr: (self._act(tr, T), tr.at(T).w))
                speakers.append((t, speaker.id))
                last_switch = t
                jump = True
            else:
                rival = max((tr for tr in live if tr is not speaker),
                            key=lambda tr: self._act(tr, T), default=None)
                louder = rival is not None and self._act(rival, T) > \
                    p.switch_ratio * self._act(speaker, T) + 0.002
                challenger_since = (challenger_since if challenger_since is not None
                                    else t) if louder else None
                lasting = challenger_since is not None and \
                    t - challenger_since >= p.switch_hold_s
                if louder and lasting and t - last_switch >= p.min_dwell_s:
                    assert rival is not None
                    far = abs(rival.at(T).cx - speaker.at(T).cx) * self.W > self.cw * 0.5
                    speaker, last_switch, challenger_since = rival, t, None
                    speakers.append((t, speaker.id))
                    if far:
                        jump = True
                        resets.append(t)
            target = self._aim(speaker, live, T)
            targets[i] = target
            if jump:
                goal, pos, vel = np.array(target), np.array(target), np.zeros(2)
            else:
                assert goal is not None and pos is not None and vel is not None
                off = np.abs(np.array(target) - goal)
                if off[0] > p.dead_zone * self.cw or off[1] > p.dead_zone * self.ch:
                    goal = np.array(target)
                pos, vel = _spring(pos, vel, goal, p.omega, dt)
            pos = self._clamp(pos)
            xs[i], ys[i] = pos[0] - self.cw / 2, pos[1] - self.ch / 2

    def _act(self, track: FaceTrack, T: float) -> float:
        times, values = track.times, self.activity[track.id]
        k = int(np.clip(np.searchsorted(times, T, side="right") - 1, 0, len(values) - 1))
        return float(values[k])

    def _aim(self, speaker: FaceTrack, live: Sequence[FaceTrack], T: float) -> tuple[float, float]:
        boxes = [tr.at(T) for tr in live]
        left = min(b.x for b in boxes) * self.W
        right = max(b.x + b.w for b in boxes) * self.W
        if len(boxes) > 1 and right - left <= self.p.group_fill * self.cw:
            cx = (left + right) / 2
            cy = float(np.mean([b.cy for b in boxes])) * self.H
        else:
            box = speaker.at(T)
            cx, cy = box.cx * self.W, box.cy * self.H
        # eyes a little above the middle: the face sits at ~40 % of the window's height
        return self._clamp_xy(cx, cy + self.ch * 0.1)

    def _clamp_xy(self, cx: float, cy: float) -> tuple[float, float]:
        cx = min(max(cx, self.cw / 2), self.W - self.cw / 2)
        cy = min(max(cy, self.ch / 2), self.H - self.ch / 2)
        return cx, cy

    def _clamp(self, pos: np.ndarray) -> np.ndarray:
        return np.array(self._clamp_xy(float(pos[0]), float(pos[1])))


def _spring(pos: np.ndarray, vel: np.ndarray, goal: np.ndarray, omega: float,
            dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact step of a critically damped spring (stable for any ``dt``)."""
    y0 = pos - goal
    c = vel + omega * y0
    decay = math.exp(-omega * dt)
    y = (y0 + c * dt) * decay
    v = (vel - omega * c * dt) * decay
    return goal + y, v


def _smoothed_activity(track: FaceTrack, tau: float) -> np.ndarray:
    out = np.zeros(len(track.times))
    value, last = 0.0, None
    for k, (t, box) in enumerate(zip(track.times, track.boxes)):
        alpha = 1.0 if last is None else 1.0 - math.exp(-(t - last) / tau)
        value += alpha * (box.activity - value)
        out[k], last = value, t
    return out


def _merge(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if out and out[-1].layout == seg.layout:
            out[-1] = Segment(out[-1].start, seg.end, seg.layout)
        else:
            out.append(seg)
    return out


# --- rendering ---------------------------------------------------------------------------

def sendcmd_script(path: CameraPath) -> str:
    """``sendcmd`` commands moving ``crop@cam`` to the path, one per change of place."""
    lines = []
    last = None
    for i in range(path.frames):
        xy = (int(path.xs[i]), int(path.ys[i]))
        if xy != last:
            t = max(0.0, i / path.fps - 0.5 / path.fps)
            lines.append(f"{t:.4f} crop@cam x {xy[0]}, crop@cam y {xy[1]};")
            last = xy
    return "\n".join(lines) + "\n"


def filter_graph(path: CameraPath, out_w: int, out_h: int, cmds: Path | None,
                 captions: CaptionTrack | CaptionOverlay | None, fps: float | None) -> str:
    """The ``-filter_complex`` for one clip: input [0:v] (and [1:v], the caption images,
    when ``captions`` is a ``CaptionOverlay``), output [v]."""
    head = f"[0:v]{f'fps={fps:g},' if fps else ''}setsar=1"
    fill = (f"scale={max(2, out_w // 8)}:{max(2, out_h // 8)}:force_original_aspect_ratio=increase,"
            f"crop={max(2, out_w // 8)}:{max(2, out_h // 8)},"
            "boxblur=luma_radius=min(w\\,h)/6:luma_power=2:chroma_radius=min(cw\\,ch)/6:"
            "chroma_power=2,"
            f"scale={out_w}:{out_h},eq=brightness=-0.12:saturation=0.8[bg];"
            "[fgsrc]scale=w={w}:h={h}:force_original_aspect_ratio=decrease,"
            "scale=trunc(iw/2)*2:trunc(ih/2)*2[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2")
    fill = fill.replace("{w}", str(out_w)).replace("{h}", str(out_h))
    layouts = path.layouts
    cam = ""
    if CROP in layouts:
        assert cmds is not None
        cam = (f"sendcmd=f={filter_path(cmds)},crop@cam=w={path.crop_w}:h={path.crop_h}:"
               f"x={int(path.xs[0])}:y={int(path.ys[0])},scale={out_w}:{out_h}")
    parts: list[str]
    if layouts == {WHOLE}:
        parts = [f"{head},scale={out_w}:{out_h}:force_original_aspect_ratio=increase,"
                 f"crop={out_w}:{out_h}[base]"]
    elif layouts == {FILL}:
        parts = [f"{head},split=2[bgsrc][fgsrc]", "[bgsrc]" + fill + "[base]"]
    elif FILL not in layouts:
        parts = [f"{head},{cam}[base]"]
    else:
        on = "+".join(f"between(t,{s.start:.3f},{s.end - 0.001:.3f})"
                      for s in path.segments if s.layout == FILL)
        parts = [f"{head},split=3[camsrc][bgsrc][fgsrc]", f"[camsrc]{cam}[cam]",
                 "[bgsrc]" + fill + "[fill]",
                 f"[cam][fill]overlay=0:0:enable='{on}'[base]"]
    if isinstance(captions, CaptionOverlay):
        tail = f"{captions.overlay('[base]', '[1:v]')},format=yuv420p[v]"
    else:
        tail = f"[base]{ass_filter(captions) + ',' if captions else ''}format=yuv420p[v]"
    return ";".join(parts + [tail])



def render_clip(ffmpeg: FFmpeg, src: Path, out: Path, *, start: float, duration: float,
                path: CameraPath, out_w: int, out_h: int,
                captions: CaptionTrack | CaptionOverlay | None,
                has_audio: bool, src_fps: float, workdir: Path, preset: str = "veryfast",
                crf: int = 21, on_progress: Callable[[float], None] | None = None,
                deadline: float | None = None) -> Path:
    """Render one clip in one ffmpeg pass (see the module docstring). ``captions``: a
    track for libass to burn in, or caption images to overlay, or None."""
    cmds = None
    if CROP in path.layouts:
        cmds = workdir / f"{out.stem}.cmds"
        cmds.write_text(sendcmd_script(path))
    fps = path.fps if src_fps > path.fps + 0.5 else None
    graph = filter_graph(path, out_w, out_h, cmds, captions, fps)
    part = out.with_name(out.name + ".part")
    args = ["-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-i", str(src)]
    if isinstance(captions, CaptionOverlay):
        args += captions.input_args()
    args += ["-filter_complex", graph, "-map", "[v]"]
    if has_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128k"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-color_range", "tv", "-colorspace", "bt709", "-color_primaries", "bt709",
             "-color_trc", "bt709", "-movflags", "+faststart", "-map_metadata", "-1",
             "-f", "mp4", str(part)]

    def tick(t: Tick) -> None:
        if on_progress is not None:
            on_progress(min(1.0, t.seconds / max(duration, 1e-6)))

    try:
        ffmpeg.run(args, on_progress=tick, deadline=deadline)
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    return out


def poster(ffmpeg: FFmpeg, clip: Path, out: Path, at: float,
           deadline: float | None = None) -> Path:
    """A JPEG still of the rendered clip at ``at`` seconds."""
    ffmpeg.run(["-ss", f"{max(0.0, at):.3f}", "-i", str(clip), "-frames:v", "1",
                "-q:v", "3", "-f", "image2", "-update", "1", str(out)], deadline=deadline)
    return out
