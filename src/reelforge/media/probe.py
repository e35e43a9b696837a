"""Facts about an input file, checked against the limits before anything trusts it.

The order matters: bytes on disk, then the type told from content
(:mod:`reelforge.media.sniff`), then the sizes and durations the file *declares*
(refused before any pixel is decoded), and only then a real decode of the start of the
file, which proves it is not truncated or corrupt. Pillow opens images with an explicit
format list; PyAV opens audio and video with the demuxer forced from an allow-list and
through a Python file object, so ffmpeg neither guesses a format nor opens any URL,
playlist or concat list.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.stream
from PIL import Image, UnidentifiedImageError

from reelforge.config import Limits
from reelforge.errors import Invalid, TooLarge, UnsupportedMedia
from reelforge.media.sniff import AV_DEMUXERS, IMAGE_FORMATS, MediaType, sniff_file

KINDS = frozenset({"image", "video", "audio"})
_AUDIO_FRAMES_TO_DECODE = 4
_REENCODE_FIX = ("Check that the file plays in a normal player, then re-encode it, e.g. "
                 "`ffmpeg -i in -c:v libx264 -c:a aac out.mp4` (or export the image again).")


@dataclass(frozen=True)
class ImageInfo:
    format: str  # jpeg | png | webp
    width: int
    height: int
    mode: str  # Pillow mode: RGB, RGBA, L, P, ...

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class MediaInfo:
    format: str  # mp4 | mov | mkv | webm | mp3 | wav | m4a | ogg | flac | aac
    duration: float  # seconds
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    has_video: bool
    has_audio: bool
    streams: int  # every stream in the container, cover art and data included
    # The video's Y'CbCr matrix as ffmpeg's scale filter names it (bt709, smpte170m, …;
    # None when untagged) and whether its samples use the full 0-255 range.
    color_matrix: str | None = None
    full_range: bool = False


@dataclass(frozen=True)
class MediaFacts:
    """What :func:`inspect_file` established about an accepted input."""

    kind: str  # image | video | audio (video when the file has a real video stream)
    sniff: MediaType
    info: ImageInfo | MediaInfo
    size_bytes: int


# --- the whole check ------------------------------------------------------------------

def inspect_file(path: Path, limits: Limits, expect: set[str] | None = None) -> MediaFacts:
    """Sniff, probe and check ``path`` against ``limits``; raise on the first problem.

    ``expect`` names the kinds the caller can use (e.g. ``{"image"}``). A file with an
    audio stream satisfies ``"audio"`` even when it also holds video.
    """
    if expect is not None and not expect <= KINDS:
        raise ValueError(f"expect must be a subset of {sorted(KINDS)}, got {sorted(expect)}")
    size = _check_bytes(path, limits)
    media = sniff_file(path)
    _check_kind_early(media, expect)
    if media.kind == "image":
        info: ImageInfo | MediaInfo = probe_image(path, media.demuxer, limits=limits)
        kind = "image"
    else:
        info = probe_av(path, media.demuxer, limits=limits, fmt=media.format)
        kind = "video" if info.has_video else "audio"
    _check_kind(kind, media, info, expect)
    return MediaFacts(kind=kind, sniff=media, info=info, size_bytes=size)


def _check_bytes(path: Path, limits: Limits) -> int:
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise TooLarge(
            f"The file is {_mb(size)}; the limit is {_mb(limits.max_upload_bytes)}.",
            fix=f"Send a file under {_mb(limits.max_upload_bytes)}: compress it, "
                "shorten it or lower its resolution.")
    return size


def _check_kind_early(media: MediaType, expect: set[str] | None) -> None:
    """Refuse an image where audio/video is wanted (and back) before probing."""
    if expect is None:
        return
    if media.kind == "image" and "image" not in expect:
        raise _wrong_kind(expect, f"a {media.format.upper()} image")
    if media.kind != "image" and not expect & {"video", "audio"}:
        raise _wrong_kind(expect, f"a {media.format.upper()} {media.kind} file")


def _check_kind(kind: str, media: MediaType, info: ImageInfo | MediaInfo,
                expect: set[str] | None) -> None:
    if expect is None or kind in expect:
        return
    if "audio" in expect and isinstance(info, MediaInfo) and info.has_audio:
        return
    raise _wrong_kind(expect, f"a {media.format.upper()} file with "
                              f"{'video' if kind == 'video' else 'only audio'} in it")


def _wrong_kind(expect: set[str], got: str) -> UnsupportedMedia:
    wanted = " or ".join(sorted(expect))
    fixes = {
        "image": "a JPEG, PNG or WebP image",
        "video": "an MP4, MOV, MKV or WebM video",
        "audio": "an MP3, WAV, M4A, OGG, FLAC or AAC audio file",
    }
    return UnsupportedMedia(
        f"This field takes {wanted}, but the file is {got}.",
        fix="Send " + " or ".join(fixes[k] for k in sorted(expect)) + " here.")


# --- images ---------------------------------------------------------------------------

def probe_image(path: Path, fmt: str, *, limits: Limits | None = None) -> ImageInfo:
    """Open ``path`` as exactly ``fmt`` (JPEG/PNG/WEBP), check its declared size, decode it."""
    limits = limits or Limits()
    pil_format = fmt.upper()
    if pil_format not in IMAGE_FORMATS:
        raise UnsupportedMedia(f"Image format {fmt!r} is not supported.",
                               fix="Send a JPEG, PNG or WebP image.")
    try:
        with Image.open(path, formats=[pil_format]) as im:
            info = ImageInfo(format=pil_format.lower(), width=im.width, height=im.height,
                             mode=im.mode)
            check_image_limits(info, limits)  # before a single pixel is decoded
            im.load()
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"The {pil_format} image declares a size far beyond the limit of "
            f"{limits.max_image_pixels / 1e6:.1f} MP (a decompression bomb, or a broken header).",
            fix=_image_size_fix(limits)) from exc
    except UnidentifiedImageError as exc:
        raise Invalid(f"The file starts like a {pil_format} image but cannot be read as one.",
                      fix=_REENCODE_FIX) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Invalid(f"The {pil_format} image is truncated or corrupt: {exc}",
                      fix="Upload the complete file again; if it keeps failing, "
                          "re-export it from an image editor.") from exc
    return info


def check_image_limits(info: ImageInfo, limits: Limits) -> None:
    if info.width <= 0 or info.height <= 0:
        raise Invalid(f"The image declares an empty size {info.width}×{info.height}.",
                      fix=_REENCODE_FIX)
    if max(info.width, info.height) > limits.max_image_side:
        raise TooLarge(
            f"The image is {info.width}×{info.height}; no side may exceed "
            f"{limits.max_image_side} px.", fix=_image_size_fix(limits))
    if info.pixels > limits.max_image_pixels:
        raise TooLarge(
            f"The image is {info.width}×{info.height} = {info.pixels / 1e6:.1f} MP; "
            f"the limit is {limits.max_image_pixels / 1e6:.1f} MP.",
            fix=_image_size_fix(limits))


def _image_size_fix(limits: Limits) -> str:
    return (f"Resize the image to at most {limits.max_image_side} px per side and "
            f"{limits.max_image_pixels / 1e6:.0f} MP in all.")


# --- audio and video ------------------------------------------------------------------

def probe_av(path: Path, demuxer: str, *, limits: Limits | None = None,
             fmt: str | None = None) -> MediaInfo:
    """Open ``path`` with the forced ``demuxer``, read its facts, check them, decode a little.

    ``fmt`` is the sniffed format to report (default: the demuxer's name). With
    ``limits`` the declared facts are checked before any frame is decoded.
    """
    if demuxer not in AV_DEMUXERS:
        raise UnsupportedMedia(f"Container {demuxer!r} is not on the allow-list.",
                               fix=_REENCODE_FIX)
    try:
        with open(path, "rb") as f, av.open(f, mode="r", format=demuxer) as container:
            info = _read_facts(container, fmt or demuxer)
            check_av_limits(info, limits or Limits())
            _prove_decodable(container, info)
    except av.FFmpegError as exc:
        reason = exc.strerror or type(exc).__name__  # str(exc) would name our temp path
        raise Invalid(f"The {fmt or demuxer} file could not be read: {reason}.",
                      fix=_REENCODE_FIX) from exc
    return info


def _media_streams(container: av.container.InputContainer) -> tuple[list, list]:
    video = [s for s in container.streams.video if not _is_cover_art(s)]
    return video, list(container.streams.audio)


def _is_cover_art(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _read_facts(container: av.container.InputContainer, fmt: str) -> MediaInfo:
    video, audio = _media_streams(container)
    if not video and not audio:
        raise Invalid(f"The {fmt} file contains no audio or video stream.", fix=_REENCODE_FIX)
    v = video[0].codec_context if video else None
    a = audio[0].codec_context if audio else None
    return MediaInfo(
        format=fmt,
        duration=_duration(container),
        width=v.width if v else None,
        height=v.height if v else None,
        fps=_fps(video[0]) if video else None,
        video_codec=_codec_name(v),
        audio_codec=_codec_name(a),
        has_video=bool(video),
        has_audio=bool(audio),
        streams=len(container.streams),
        color_matrix=_COLOR_MATRICES.get(int(getattr(v, "colorspace", 2) or 2)) if v else None,
        full_range=bool(v) and (int(getattr(v, "color_range", 0) or 0) == 2
                                or str(getattr(v, "pix_fmt", "") or "").startswith("yuvj")),
    )


# AVColorSpace codes -> the scale filter's in_color_matrix names (2 = unspecified).
_COLOR_MATRICES = {1: "bt709", 4: "fcc", 5: "bt470", 6: "smpte170m", 7: "smpte240m",
                   9: "bt2020", 10: "bt2020"}


def _codec_name(ctx: av.codec.context.CodecContext | None) -> str | None:
    """The codec's canonical name (``mp3``, ``h264``), not the decoder's (``mp3float``)."""
    if ctx is None:
        return None
    return ctx.codec.canonical_name or ctx.name


def _fps(stream: av.video.stream.VideoStream) -> float | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return round(float(rate), 3) if rate else None


def _duration(container: av.container.InputContainer) -> float:
    """The container's duration, else the longest stream's, else the last packet's end."""
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    ends = [float(s.duration * s.time_base) for s in container.streams
            if s.duration and s.time_base]
    if ends and max(ends) > 0:
        return max(ends)
    return _duration_by_demuxing(container)


def _duration_by_demuxing(container: av.container.InputContainer) -> float:
    end = Fraction(0)
    for packet in container.demux():
        if packet.pts is not None and packet.time_base:
            end = max(end, (packet.pts + (packet.duration or 0)) * packet.time_base)
    container.seek(0)
    return float(end)


def check_av_limits(info: MediaInfo, limits: Limits) -> None:
    if info.streams > limits.max_streams:
        raise Invalid(f"The file has {info.streams} streams; at most {limits.max_streams} "
                      "are accepted.",
                      fix="Keep one video and one audio stream, e.g. "
                          "`ffmpeg -i in -map 0:v:0 -map 0:a:0? -c copy out.mp4`.")
    if info.duration <= 0:
        raise Invalid(f"The {info.format} file has no measurable duration.", fix=_REENCODE_FIX)
    if info.duration > limits.max_media_seconds:
        raise Invalid(
            f"The {info.format} file lasts {info.duration:.1f} s; the limit is "
            f"{limits.max_media_seconds:g} s.",
            fix=f"Trim it to at most {limits.max_media_seconds:g} s, e.g. "
                f"`ffmpeg -i in -t {limits.max_media_seconds:g} -c copy out.mp4`.")
    if info.has_video:
        _check_video_size(info, limits)


def _check_video_size(info: MediaInfo, limits: Limits) -> None:
    w, h = info.width or 0, info.height or 0
    if w <= 0 or h <= 0:
        raise Invalid(f"The video stream declares an empty frame size {w}×{h}.",
                      fix=_REENCODE_FIX)
    if max(w, h) > limits.max_video_side:
        side = limits.max_video_side
        raise TooLarge(
            f"The video is {w}×{h}; no side may exceed {side} px.",
            fix=f"Scale it down, e.g. `ffmpeg -i in -vf scale='min({side},iw)':-2 out.mp4`.")


def _prove_decodable(container: av.container.InputContainer, info: MediaInfo) -> None:
    """Decode the first video frame and a few audio frames, or raise Invalid."""
    video, audio = _media_streams(container)
    wanted = video[:1] + audio[:1]
    v_index = video[0].index if video else None
    want_video = bool(video)
    audio_left = _AUDIO_FRAMES_TO_DECODE if audio else 0
    for packet in container.demux(wanted):
        if packet.stream.index == v_index:
            if want_video:
                want_video = not packet.decode()
        elif audio_left:
            audio_left = max(0, audio_left - len(packet.decode()))
        if not want_video and not audio_left:
            return
    if want_video or (audio and audio_left == _AUDIO_FRAMES_TO_DECODE):
        what = "video frame" if want_video else "audio"
        raise Invalid(f"The {info.format} file has no decodable {what}; it may be "
                      "truncated or corrupt.", fix=_REENCODE_FIX)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"
