"""video_to_video (Dockora ``transform_style``, KIE Aleph) on the CPU.

The first ``duration`` seconds (5 or 10) of the source are transformed; its audio is
kept. What each ``transform_style`` does:

* ``color_grade``: one of the eight looks as a colour grade (``style``, or a look named in
  the prompt; cinematic's grade otherwise), with its vignette and grain;
* ``cinematic``: the cinematic look with 2.39:1 letterbox bars;
* ``relight``: warm, cool, golden hour, night or moody light (``relight`` or prompt words);
* ``restyle``: cartoon, sketch, watercolor, oil paint, noir or comic (``restyle`` or
  prompt words), classic filters made temporally stable (see ``media/stylize.py``);
* ``background``: the person kept, the background blurred or replaced by a colour, a
  gradient or ``reference_image`` (needs the segmentation model, see ``media/segment.py``);
* ``add_objects``: ``reference_image`` composited where the prompt places it.

Rain, snow and fog from prompt words (or ``weather``) go over any of them.

Grades are one ffmpeg command (the look as a luma curve and a colour cast applied to
Y'CbCr, vignette, grain, bars, watermark, and the poster and spritesheet from the same
decode): close to the cost of a decode plus an encode. Everything else decodes through a pipe, transforms each frame in
numpy/OpenCV and pipes it back to libx264.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import Invalid
from ...media import render
from ...media.ffmpeg import filter_path
from ...media.composite import Backdrop, Sticker, parse_colour
from ...media.looks import (LOOKS, RELIGHTS, Look, vignette_mask, vignette_yuv, write_cube,
                            yuv_grade_filters)
from ...media.prompt import RELIGHTS as RELIGHT_NAMES
from ...media.prompt import RESTYLES, VOCABULARY, PromptParams, find_phrase, parse_prompt
from ...media.render import AudioTrack
from ...media.segment import PersonSegmenter, find_model
from ...media.stylize import DESCRIPTIONS as RESTYLE_DESCRIPTIONS
from ...media.stylize import Stylizer
from ...media.thumbs import Thumbnails, write_sheet
from ...media.video import SourceVideo, decode, fit_size, frame_count, source_facts
from ...media.weather import Weather
from ..base import ASPECT_RATIOS, QUALITIES, STYLES, TRANSFORM_STYLES, Artifact, JobSpec
from .context import RenderContext, Rendered, encode, need

DESCRIPTION = ("Transforms the first 5 or 10 s of a video, keeping its audio: colour "
               "grades, cinematic bars, relighting, classic stylisation, background blur or "
               "replacement, an added reference image, and rain, snow or fog.")
DURATIONS = (5, 10)
CINEMA_ASPECT = 2.39


@dataclass(frozen=True)
class VideoLimits:
    """Input limits for video modes; settings, so each deployment (or dialect) narrows
    them: ``v2v_max_seconds``, ``v2v_max_bytes`` and ``max_video_side``."""

    max_seconds: float = 600.0
    max_bytes: int = 500 * 1024 * 1024
    max_side: int = 4096

    @classmethod
    def from_ctx(cls, ctx: RenderContext) -> VideoLimits:
        return cls(float(ctx.setting("v2v_max_seconds", cls.max_seconds)),
                   int(ctx.setting("v2v_max_bytes", cls.max_bytes)),
                   int(ctx.setting("max_video_side", cls.max_side)))

    def check(self, src: SourceVideo, mode: str) -> None:
        if src.duration > self.max_seconds:
            raise Invalid(f"The source video lasts {src.duration:.1f} s; {mode} takes at most "
                          f"{self.max_seconds:g} s.",
                          fix=f"Trim it first, e.g. `ffmpeg -i in.mp4 -t {self.max_seconds:g} "
                              "-c copy out.mp4`.")
        if max(src.width, src.height) > self.max_side:
            raise Invalid(f"The source video is {src.width}x{src.height}; {mode} takes at "
                          f"most {self.max_side} px per side.",
                          fix=f"Scale it down, e.g. `ffmpeg -i in.mp4 -vf "
                              f"scale='min({self.max_side},iw)':-2 out.mp4`.")
        if src.bytes > self.max_bytes:
            raise Invalid(f"The source video is {src.bytes / 2**20:.1f} MiB; {mode} takes at "
                          f"most {self.max_bytes / 2**20:.0f} MiB.",
                          fix="Compress or shorten it, e.g. `ffmpeg -i in.mp4 -crf 28 out.mp4`.")


@dataclass(frozen=True)
class Transform:
    """Everything decided from the options and prompt before the first frame."""

    kind: str
    look: Look | None = None  # a grade, applied as a 3D LUT by ffmpeg
    letterbox: bool = False
    restyle: str | None = None
    background: str | None = None
    colour: tuple[int, int, int] | None = None
    weather: tuple[str, ...] = ()
    placement: str = "center"
    size: float = 0.3
    words: dict[str, Any] = field(default_factory=dict)

    @property
    def frame_path(self) -> bool:
        """Whether frames must pass through Python (else one ffmpeg command does it)."""
        return bool(self.restyle or self.background or self.kind == "add_objects"
                    or self.weather)


def output_seconds(options: dict[str, Any]) -> float:
    return float(options.get("duration") or 5)


def _wants_background(options: dict[str, Any]) -> bool:
    return options.get("transform_style") == "background"


def check_options(options: dict[str, Any], settings: Settings) -> None:
    """Refuse at submit what this install cannot do."""
    if _wants_background(options):
        find_model(str(getattr(settings, "segmentation_model", "") or ""))


def plan_transform(options: dict[str, Any], *, has_reference: bool = False,
                   seed: int = 0) -> Transform:
    kind = options.get("transform_style") or "color_grade"
    if kind not in TRANSFORM_STYLES:
        raise Invalid(f"transform_style {kind!r} is not supported",
                      fix=f"Use one of: {', '.join(TRANSFORM_STYLES)}.")
    prompt = (options.get("prompt") or "").lower()
    params: PromptParams = parse_prompt(prompt, "cinematic", seed)
    weather_opt = options.get("weather")
    weather = () if weather_opt == "none" else (
        (weather_opt,) if weather_opt else params.weather)
    letterbox = options.get("letterbox")
    base = dict(kind=kind, weather=tuple(weather), words=dict(params.words))
    if kind == "cinematic":
        return Transform(look=LOOKS["cinematic"], letterbox=letterbox is not False, **base)
    if kind == "color_grade":
        return Transform(look=_grade_look(options, prompt), letterbox=bool(letterbox), **base)
    if kind == "relight":
        name = options.get("relight") or params.relight or "warm"
        return Transform(look=RELIGHTS[name], letterbox=bool(letterbox),
                         **{**base, "words": {**params.words, "relight": name}})
    if kind == "restyle":
        name = options.get("restyle") or params.restyle or "cartoon"
        return Transform(restyle=name, letterbox=bool(letterbox),
                         **{**base, "words": {**params.words, "restyle": name}})
    if kind == "background":
        name = options.get("background") or params.background or (
            "image" if has_reference else "blur")
        if name == "image" and not has_reference:
            raise Invalid("The background should be replaced by an image, but no "
                          "reference_image was sent.",
                          fix="Send reference_image (a file, reference_image_url or "
                              "reference_image_asset_id), or ask for a blur, colour or "
                              "gradient background.")
        colour = options.get("background_color") or params.colour
        return Transform(background=name, colour=parse_colour(colour, (200, 200, 205)),
                         letterbox=bool(letterbox), **base)
    # add_objects
    if not has_reference:
        raise Invalid("add_objects composites reference_image into the video, and none "
                      "was sent.",
                      fix="Send the object as reference_image (a PNG with transparency "
                          "works best), and say where in the prompt, e.g. 'in the top "
                          "right corner'.")
    return Transform(placement=options.get("placement") or params.placement or "center",
                     size=params.size, letterbox=bool(letterbox), **base)


def _grade_look(options: dict[str, Any], prompt: str) -> Look:
    style = options.get("style")
    if style and style != "auto":
        return LOOKS[style]
    for name in STYLES:
        if find_phrase(prompt, (name,)) >= 0:
            return LOOKS[name]
    return LOOKS["cinematic"]


def run_video_to_video(ctx: RenderContext, spec: JobSpec, inputs: dict[str, Any]
                       ) -> list[Artifact]:
    opts = spec.options
    src = source_facts(need(inputs, "video", spec.mode))
    VideoLimits.from_ctx(ctx).check(src, spec.mode)
    seed = int(opts.get("seed", spec.seed) or 0)
    reference = inputs.get("reference_image")
    plan = plan_transform(opts, has_reference=bool(reference), seed=seed)
    width, height = fit_size(src, opts.get("quality") or "720p",
                             opts.get("aspect_ratio") or "source", ctx.scale)
    fps = _fps(opts.get("fps"), src)
    frames = frame_count(src, fps, output_seconds(opts))
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    meta = {"transform_style": plan.kind, "seed": seed, "source_seconds": round(src.duration, 3),
            "prompt_words": plan.words, **({"look": plan.look.name} if plan.look else {}),
            **({"restyle": plan.restyle} if plan.restyle else {}),
            **({"background": plan.background} if plan.background else {}),
            **({"weather": list(plan.weather)} if plan.weather else {})}
    ctx.progress("analyzing", 1.0)
    if not plan.frame_path:
        rendered = grade_with_ffmpeg(ctx, src, plan, width, height, fps, frames,
                                     watermark=opts.get("watermark"), seed=seed, meta=meta)
    else:
        rendered = transform_frames(ctx, src, plan, width, height, fps, frames,
                                    watermark=opts.get("watermark"), seed=seed,
                                    reference=reference, meta=meta)
    return rendered.artifacts()


def _fps(value: Any, src: SourceVideo) -> float:
    if value in (None, "", "source"):
        return float(min(30, max(1, round(src.fps))))
    return float(value)


def letterbox_bar(width: int, height: int) -> int:
    if width / height < 1.3:
        return 0
    bar = (height - width / CINEMA_ASPECT) / 2
    return int(bar // 2) * 2 if bar >= 0.02 * height else 0


VISIBLE_NOISE_GRAIN = 4.0  # weaker per-pixel grain does not survive the encoder


def grade_with_ffmpeg(ctx: RenderContext, src: SourceVideo, plan: Transform, width: int,
                      height: int, fps: float, frames: int, *, watermark: str | None,
                      seed: int, meta: dict[str, Any]) -> Rendered:
    """One ffmpeg command: decode, grade (luma curve and colour cast on Y'CbCr, see
    ``looks.yuv_grade_filters``), vignette, grain, bars, watermark, encode; the poster
    and spritesheet come out of the same run."""
    from ...media.video import crop_for, scale_filter

    look = plan.look or LOOKS["cinematic"]
    chain = [c for c in (crop_for(src, width, height),
                         scale_filter(src, width, height, to_bt709=True), f"fps={fps:g}",
                         f"trim=end_frame={frames}", "format=yuv420p") if c]
    chain += yuv_grade_filters(look)  # on Y'CbCr directly: no RGB round trip
    graph = f"[0:v]{','.join(chain)}"
    extra_inputs: list[str] = []
    if look.vignette > 0:
        # The image modes' vignette, as two still frames (gain, offset) that ffmpeg's
        # SIMD blend modes apply: 6x cheaper than its `vignette` filter, which does
        # float math on every pixel of every frame.
        raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s:v", f"{width}x{height}"]
        for name, plane in zip(("gain", "offset"),
                               vignette_yuv(width, height, look.vignette)):
            still = ctx.workdir / f"vignette-{name}.yuv"
            plane.tofile(still)
            extra_inputs += [*raw, "-i", str(still)]
        # Tagged like the frames, or format negotiation converts them first.
        tag = render.TAG_BT709
        graph += (f"[v];[1:v]{tag},loop=loop=-1:size=1[vg];[2:v]{tag},loop=loop=-1:size=1[vo];"
                  "[v][vg]blend=all_mode=multiply:shortest=1[vm];"
                  "[vm][vo]blend=all_mode=addition:shortest=1")
    post = []
    # ffmpeg's grain is per-pixel noise, which libx264 at CRF 20 mostly encodes away:
    # measured on a 1080p clip, 2 % of it survives at the cinematic look's strength
    # (1.6) against 66 % at vintage's (5.5), while it costs a quarter more encoder
    # time. So only grain strong enough to be seen is drawn.
    if look.grain >= VISIBLE_NOISE_GRAIN:
        post.append(f"noise=c0s={max(1, round(look.grain * 2))}:c0f=t:all_seed={seed % 2**31}")
    bar = letterbox_bar(width, height) if plan.letterbox else 0
    if bar:
        post.append(f"drawbox=x=0:y=0:w=iw:h={bar}:color=black:t=fill,"
                    f"drawbox=x=0:y=ih-{bar}:w=iw:h={bar}:color=black:t=fill")
    graph += f",{','.join(post)}[g]" if post else "[g]"
    if watermark:
        rgba, x, y = render.watermark_rgba(watermark, width, height)
        from PIL import Image

        png = ctx.workdir / "watermark.png"
        Image.fromarray(rgba).save(png)
        mark_input = 1 + extra_inputs.count("-i")
        extra_inputs += ["-i", str(png)]
        graph += f";[g][{mark_input}:v]overlay={x}:{y}:format=auto,format=yuv420p[w]"
        last = "w"
    else:
        last = "g"
    thumbs = Thumbnails(frames, width, height, fps)
    picks = "+".join(f"eq(n\\,{i})" for i in sorted(thumbs.indices))
    to_rgb = "in_color_matrix=bt709:in_range=tv:out_range=pc"
    # Every output must get a frame early, or ffmpeg reports no progress until it does:
    # the poster is written at frame 0 and rewritten at the middle (-update 1); the
    # sprite tiles come out as raw RGB frames and are laid out afterwards.
    graph += (f";[{last}]{render.TAG_BT709},split=3[main][p][s]"
              f";[p]select='eq(n\\,0)+eq(n\\,{thumbs.poster_index})',"
              f"scale={to_rgb}:out_color_matrix=bt601,format=yuvj420p[poster]"
              f";[s]select='{picks}',scale={thumbs.tile_w}:{thumbs.tile_h}:{to_rgb},"
              f"format=rgb24[tiles]")
    out = ctx.workdir / "video.mp4"
    part = out.with_name("video.mp4.part")
    poster, sheet = ctx.workdir / "video.jpg", ctx.workdir / "video-sprites.jpg"
    tiles_raw = ctx.workdir / "tiles.rgb"
    seconds = frames / fps
    args = ["-t", f"{seconds:.6f}", "-i", str(src.path), *extra_inputs,
            "-filter_complex", graph,
            "-map", "[main]", "-map", "0:a:0?",
            "-c:v", "libx264", "-preset", ctx.preset, "-crf", "20", "-profile:v", "high",
            "-pix_fmt", "yuv420p", *render.COLOR_ARGS,
            *(["-threads", str(ctx.threads)] if ctx.threads else []),
            "-af", f"apad=whole_dur={seconds:.6f}", "-c:a", "aac", "-b:a", "160k",
            "-ar", "48000", "-movflags", "+faststart", "-map_metadata", "-1", "-f", "mp4",
            str(part),
            "-map", "[poster]", "-fps_mode", "passthrough", "-q:v", "3", "-update", "1",
            "-f", "image2", str(poster),
            "-map", "[tiles]", "-fps_mode", "passthrough", "-f", "rawvideo", str(tiles_raw)]

    def on_progress(tick: Any) -> None:
        ctx.progress("rendering", min(1.0, tick.frame / frames))

    try:
        ctx.ffmpeg.run(args, on_progress=on_progress, deadline=ctx.deadline)
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    tile_bytes = thumbs.tile_w * thumbs.tile_h * 3
    raw = np.fromfile(tiles_raw, np.uint8)
    tiles_raw.unlink(missing_ok=True)
    tiles = [raw[k * tile_bytes:(k + 1) * tile_bytes].reshape(thumbs.tile_h, thumbs.tile_w, 3)
             if (k + 1) * tile_bytes <= len(raw) else None for k in range(thumbs.count)]
    layout = write_sheet(sheet, tiles, thumbs.columns, thumbs.tile_w, thumbs.tile_h,
                         round(frames / thumbs.count / fps, 4))
    return Rendered(out, poster, sheet, layout, width, height, fps, frames, meta)


def transform_frames(ctx: RenderContext, src: SourceVideo, plan: Transform, width: int,
                     height: int, fps: float, frames: int, *, watermark: str | None,
                     seed: int, reference: Path | None, meta: dict[str, Any]) -> Rendered:
    """Decode through a pipe, transform each RGB frame, encode (the source audio kept)."""
    steps = []
    if plan.restyle:
        steps.append(_indexless(Stylizer(plan.restyle, width, height, seed)))
    if plan.background:
        model = find_model(str(ctx.setting("segmentation_model", "") or ""))
        segmenter = PersonSegmenter(model)
        image = _rgb_image(reference) if plan.background == "image" and reference else None
        backdrop = Backdrop(plan.background, width, height, plan.colour or (200, 200, 205),
                            image)
        steps.append(lambda rgb, i: backdrop.apply(rgb, segmenter(rgb)))
    if plan.kind == "add_objects" and reference is not None:
        steps.append(Sticker(_rgba_image(reference), width, height, fps,
                             placement=plan.placement, size=plan.size))
    if plan.weather:
        steps.append(Weather(plan.weather, width, height, fps, seed))
    finish = _finisher(plan, width, height, watermark)
    filters: list[str] = []
    if plan.look is not None:
        cube = write_cube(ctx.workdir / "grade.cube", plan.look)
        filters = ["format=gbrp", f"lut3d=file={filter_path(cube)}:interp=tetrahedral"]

    def frames_out() -> Any:
        for i, rgb in enumerate(decode(ctx.ffmpeg, src, width, height, fps, frames,
                                       filters=filters, deadline=ctx.deadline)):
            for step in steps:
                rgb = step(rgb, i)
            yield np.ascontiguousarray(finish(rgb))

    seconds = frames / fps
    audio = AudioTrack(src.path, seconds=seconds, filter=f"apad=whole_dur={seconds:.6f}",
                       optional=True)
    return encode(ctx, frames_out(), width=width, height=height, fps=fps, total=frames,
                  audio=audio, pix_fmt="rgb24", meta=meta)


def _indexless(fn: Any) -> Any:
    return lambda rgb, i: fn(rgb)


def _finisher(plan: Transform, width: int, height: int, watermark: str | None) -> Any:
    bar = letterbox_bar(width, height) if plan.letterbox else 0
    mark = render.watermark_rgba(watermark, width, height) if watermark else None
    vignette = None
    if plan.look is not None and plan.look.vignette > 0:
        vignette = vignette_mask(width, height, plan.look.vignette)[..., None]

    def finish(rgb: np.ndarray) -> np.ndarray:
        if vignette is not None:
            rgb = (rgb * vignette + 0.5).astype(np.uint8)
        elif bar or mark is not None:
            rgb = rgb.copy()
        if bar:
            rgb[:bar] = 0
            rgb[-bar:] = 0
        if mark is not None:
            render.blend_rgba(rgb, mark[0], mark[1], mark[2])
        return rgb

    return finish


def _rgb_image(path: Path) -> np.ndarray:
    from .image_to_video import load_image

    return load_image(path)


def _rgba_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    from ...errors import MediaError

    try:
        with Image.open(path) as img:
            return np.asarray(ImageOps.exif_transpose(img).convert("RGBA")).copy()
    except OSError as exc:
        raise MediaError(f"could not decode reference_image: {exc}",
                         fix="Send a PNG (with transparency) or JPEG image.") from exc


def capability_options() -> dict[str, Any]:
    return {
        "inputs": {"video": "required", "reference_image": "background=image, add_objects"},
        "transform_style": {"values": list(TRANSFORM_STYLES), "default": "color_grade"},
        "prompt": {"type": "string", "vocabulary": {
            k: VOCABULARY[k] for k in ("relight", "restyle", "weather", "background",
                                       "colour", "placement", "size")},
            "description": "Chooses the relight, restyle, background and placement, and "
                           "adds rain, snow or fog."},
        "duration": {"values": list(DURATIONS), "default": 5, "unit": "s",
                     "description": "The first seconds of the source that are transformed."},
        "style": {"values": list(STYLES), "description": "The look for color_grade."},
        "relight": {"values": list(RELIGHT_NAMES), "default": "warm",
                    "descriptions": {k: v.description for k, v in RELIGHTS.items()}},
        "restyle": {"values": list(RESTYLES), "default": "cartoon",
                    "descriptions": RESTYLE_DESCRIPTIONS},
        "background": {"values": ["blur", "color", "gradient", "image"], "default": "blur",
                       "needs": "a person-segmentation model (see the refusal's fix)"},
        "background_color": {"type": "string", "description": "#rrggbb or a colour word"},
        "weather": {"values": ["none", "rain", "snow", "fog"], "default": "from the prompt"},
        "placement": {"values": ["top_left", "top", "top_right", "left", "center", "right",
                                 "bottom_left", "bottom", "bottom_right"]},
        "quality": {"values": list(QUALITIES), "default": "720p"},
        "aspect_ratio": {"values": ["source", *ASPECT_RATIOS], "default": "source",
                         "description": "Other shapes are centre-cropped."},
        "fps": {"values": ["source", 24, 30], "default": "source (at most 30)"},
        "letterbox": {"type": "boolean", "default": "on for cinematic only"},
        "watermark": {"type": "string", "default": None},
        "outputs": ["video", "poster", "spritesheet"],
        "audio": "the source's audio, re-encoded to AAC",
    }

