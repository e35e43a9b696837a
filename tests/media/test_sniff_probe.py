"""Sniffing by content and probing under limits, on media generated here (Pillow, lavfi)."""

from __future__ import annotations

import struct
import subprocess
import time
import zlib
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from reelforge.config import Limits
from reelforge.errors import Invalid, TooLarge, UnsupportedMedia
from reelforge.media.probe import ImageInfo, MediaInfo, inspect_file, probe_av, probe_image
from reelforge.media.sniff import sniff_bytes, sniff_file

LIMITS = Limits()


# --- generated media ------------------------------------------------------------------

@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def _ffmpeg(out: Path, *args: str) -> Path:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           *args, str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return out


_VIDEO_IN = ("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24")
_AUDIO_IN = ("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100")

# name -> ffmpeg arguments (output file name decides nothing: the muxer is explicit)
_AV_RECIPES: dict[str, tuple[str, ...]] = {
    "clip.mp4": (*_VIDEO_IN, *_AUDIO_IN, "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-f", "mp4"),
    "long.mp4": (*_VIDEO_IN, "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4"),
    "clip.mov": (*_VIDEO_IN, "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mov"),
    "clip.mkv": (*_VIDEO_IN, *_AUDIO_IN, "-t", "1", "-c:v", "libx264", "-c:a", "flac",
                 "-f", "matroska"),
    "clip.webm": (*_VIDEO_IN, *_AUDIO_IN, "-t", "1", "-c:v", "libvpx", "-deadline", "realtime",
                  "-c:a", "libopus", "-f", "webm"),
    "tone.wav": (*_AUDIO_IN, "-t", "1", "-f", "wav"),
    "tone.mp3": (*_AUDIO_IN, "-t", "1", "-c:a", "libmp3lame", "-f", "mp3"),
    "tone.m4a": (*_AUDIO_IN, "-t", "1", "-c:a", "aac", "-f", "ipod"),
    "tone.ogg": (*_AUDIO_IN, "-t", "1", "-c:a", "libvorbis", "-f", "ogg"),
    "tone.opus": (*_AUDIO_IN, "-t", "1", "-c:a", "libopus", "-f", "ogg"),
    "tone.flac": (*_AUDIO_IN, "-t", "1", "-c:a", "flac", "-f", "flac"),
    "tone.aac": (*_AUDIO_IN, "-t", "1", "-c:a", "aac", "-f", "adts"),
    "audio_only.mp4": (*_AUDIO_IN, "-t", "1", "-c:a", "aac", "-f", "mp4"),
}


@pytest.fixture(scope="module")
def av_file(media_dir: Path):
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = _ffmpeg(media_dir / name, *_AV_RECIPES[name])
        return made[name]
    return get


def _image(media_dir: Path, name: str, fmt: str, size=(64, 48)) -> Path:
    im = Image.effect_noise(size, 64).convert("RGB")
    path = media_dir / name
    im.save(path, format=fmt)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG signature and an IHDR with a valid CRC, declaring ``width``×``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND") & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + iend)
    return path


# --- accepted -------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, pil", [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_images_are_accepted_with_their_facts(media_dir: Path, fmt: str, pil: str) -> None:
    path = _image(media_dir, f"wrong-name.{'txt' if fmt == 'png' else 'bin'}", pil, (80, 60))
    facts = inspect_file(path, LIMITS, expect={"image"})
    assert facts.kind == "image"
    assert facts.sniff.format == fmt and facts.sniff.content_type == f"image/{fmt}"
    assert facts.info == ImageInfo(format=fmt, width=80, height=60, mode="RGB")
    assert facts.size_bytes == path.stat().st_size


@pytest.mark.parametrize("name, fmt, kind, vcodec, acodec", [
    ("clip.mp4", "mp4", "video", "h264", "aac"),
    ("clip.mov", "mov", "video", "h264", None),
    ("clip.mkv", "mkv", "video", "h264", "flac"),
    ("clip.webm", "webm", "video", "vp8", "opus"),
    ("tone.wav", "wav", "audio", None, "pcm_s16le"),
    ("tone.mp3", "mp3", "audio", None, "mp3"),
    ("tone.m4a", "m4a", "audio", None, "aac"),
    ("tone.ogg", "ogg", "audio", None, "vorbis"),
    ("tone.opus", "ogg", "audio", None, "opus"),
    ("tone.flac", "flac", "audio", None, "flac"),
    ("tone.aac", "aac", "audio", None, "aac"),
    ("audio_only.mp4", "mp4", "audio", None, "aac"),
])
def test_audio_and_video_are_accepted_with_their_facts(av_file, name, fmt, kind, vcodec,
                                                       acodec) -> None:
    facts = inspect_file(av_file(name), LIMITS)
    info = facts.info
    assert isinstance(info, MediaInfo)
    assert (facts.kind, facts.sniff.format, info.format) == (kind, fmt, fmt)
    assert info.video_codec == vcodec
    assert info.audio_codec == acodec
    assert info.has_video == (vcodec is not None) and info.has_audio == (acodec is not None)
    assert 0.9 <= info.duration <= 1.2
    if vcodec:
        assert (info.width, info.height) == (320, 240)
        assert info.fps == pytest.approx(24, abs=0.01)
    else:
        assert info.width is None and info.fps is None


def test_mp4_facts_in_full(av_file) -> None:
    facts = inspect_file(av_file("clip.mp4"), LIMITS, expect={"video"})
    assert facts.sniff.content_type == "video/mp4" and facts.sniff.demuxer == "mov"
    assert facts.info.streams == 2
    assert (facts.info.has_video, facts.info.has_audio) == (True, True)


def test_mp4_with_audio_satisfies_an_audio_field(av_file) -> None:
    assert inspect_file(av_file("clip.mp4"), LIMITS, expect={"audio"}).kind == "video"


# --- refused: content that is not what it claims --------------------------------------

def test_truncated_jpeg_is_invalid(media_dir: Path) -> None:
    whole = _image(media_dir, "whole.jpg", "JPEG", (640, 480)).read_bytes()
    cut = media_dir / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Invalid) as err:
        inspect_file(cut, LIMITS)
    assert err.value.status == 422 and "truncated" in err.value.message and err.value.fix


def test_truncated_mp4_is_invalid(av_file, media_dir: Path) -> None:
    whole = av_file("clip.mp4").read_bytes()
    cut = media_dir / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Invalid) as err:
        inspect_file(cut, LIMITS)
    assert err.value.status == 422
    assert str(media_dir) not in err.value.message  # no server paths in user-facing text


@pytest.mark.parametrize("name, content, says", [
    ("playlist.mp4", b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nhttp://169.254.169.254/a.ts\n",
     "HLS"),
    ("bom.mp4", b"\xef\xbb\xbf  #EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", "HLS"),
    ("concat.mp4", b"ffconcat version 1.0\nfile '/etc/passwd'\n", "ffconcat"),
    ("dash.mp4", b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">', "DASH"),
    ("image.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', "SVG"),
    ("page.jpg", b"<!DOCTYPE html><html><body>login</body></html>", "HTML"),
    ("notes.wav", b"just some words\nand more words\n", "text file"),
    ("id3.mp3", b"ID3 tags are described in id3.org\n", "text file"),
    ("archive.mp4", b"PK\x03\x04" + b"\0" * 100, "zip"),
    ("anim.png", b"GIF89a" + b"\0" * 100, "GIF"),
    ("photo.jpg", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "HEIF"),
    ("movie.mp4", b"RIFF\0\0\0\0AVI LIST", "AVI"),
    ("noise.mp4", bytes(range(256)) * 4, "not a recognised"),
])
def test_non_media_is_unsupported(media_dir: Path, name: str, content: bytes, says: str) -> None:
    path = media_dir / name
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia) as err:
        inspect_file(path, LIMITS)
    assert err.value.status == 415
    assert says in err.value.message
    assert err.value.fix


def test_empty_file_is_invalid(media_dir: Path) -> None:
    path = media_dir / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(Invalid):
        inspect_file(path, LIMITS)


def test_sniff_tells_iso_brands_apart() -> None:
    def ftyp(major: bytes, *compat: bytes) -> bytes:
        body = major + b"\0\0\0\0" + b"".join(compat)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body
    assert sniff_bytes(ftyp(b"isom", b"isom", b"avc1")).format == "mp4"
    assert sniff_bytes(ftyp(b"qt  ", b"qt  ")).format == "mov"
    assert sniff_bytes(ftyp(b"M4A ", b"M4A ", b"mp42")).format == "m4a"
    assert sniff_bytes(ftyp(b"XYZW", b"mp42")).format == "mp4"
    with pytest.raises(UnsupportedMedia):
        sniff_bytes(ftyp(b"XYZW", b"ABCD"))


def test_sniff_looks_past_an_id3_tag(media_dir: Path, av_file) -> None:
    tagged = media_dir / "tagged.aac"
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 20]) + b"\0" * 20
    tagged.write_bytes(tag + av_file("tone.aac").read_bytes())
    assert sniff_file(tagged).format == "aac"
    assert sniff_file(av_file("tone.mp3")).format == "mp3"


# --- refused: limits ------------------------------------------------------------------

def test_png_declaring_huge_size_is_refused_without_decoding(media_dir: Path) -> None:
    path = _png_header_only(media_dir / "bomb.png", 100_000, 100_000)
    started = time.monotonic()
    with pytest.raises((TooLarge, Invalid)) as err:
        inspect_file(path, LIMITS)
    assert err.value.status in (413, 422) and err.value.fix
    assert time.monotonic() - started < 1.0  # nothing of 30 GB was allocated or decoded


def test_png_over_pixel_limit_is_refused_by_its_header(media_dir: Path) -> None:
    # 8000×8000 is under Pillow's own bomb guard, so this is our check, before decoding:
    # the file has no pixel data at all, so a decode would fail with 422 instead.
    path = _png_header_only(media_dir / "big.png", 8000, 8000)
    with pytest.raises(TooLarge) as err:
        probe_image(path, "png", limits=LIMITS)
    assert "8000×8000" in err.value.message and err.value.status == 413


def test_image_side_limit(media_dir: Path) -> None:
    path = _image(media_dir, "wide.png", "PNG", (300, 10))
    with pytest.raises(TooLarge):
        inspect_file(path, Limits(max_image_side=200))


def test_upload_bytes_limit(media_dir: Path) -> None:
    path = _image(media_dir, "bytes.png", "PNG", (64, 64))
    with pytest.raises(TooLarge) as err:
        inspect_file(path, Limits(max_upload_bytes=100))
    assert err.value.status == 413


def test_duration_limit(av_file) -> None:
    with pytest.raises(Invalid) as err:
        inspect_file(av_file("long.mp4"), Limits(max_media_seconds=1))
    assert err.value.status == 422 and "2.0 s" in err.value.message and err.value.fix


def test_stream_limit(av_file) -> None:
    with pytest.raises(Invalid) as err:
        inspect_file(av_file("clip.mp4"), Limits(max_streams=1))
    assert "2 streams" in err.value.message


def test_video_side_limit(av_file) -> None:
    with pytest.raises(TooLarge) as err:
        inspect_file(av_file("clip.mp4"), Limits(max_video_side=200))
    assert "320×240" in err.value.message


@pytest.mark.parametrize("name, expect", [
    ("clip.mp4", {"image"}),
    ("audio_only.mp4", {"video"}),
    ("tone.wav", {"image", "video"}),
])
def test_wrong_kind_for_the_field(av_file, name: str, expect: set[str]) -> None:
    with pytest.raises(UnsupportedMedia) as err:
        inspect_file(av_file(name), LIMITS, expect=expect)
    assert "This field takes" in err.value.message and err.value.fix


def test_image_for_a_video_field(media_dir: Path) -> None:
    with pytest.raises(UnsupportedMedia):
        inspect_file(_image(media_dir, "still.jpg", "JPEG"), LIMITS, expect={"video"})


def test_demuxer_must_be_on_the_allow_list(av_file) -> None:
    for demuxer in ("hls", "concat", "dash", "image2", "lavfi"):
        with pytest.raises(UnsupportedMedia):
            probe_av(av_file("clip.mp4"), demuxer)
    with pytest.raises(UnsupportedMedia):
        probe_image(av_file("clip.mp4"), "GIF")


def test_image_bytes_under_a_forced_format_mismatch(media_dir: Path) -> None:
    png = _image(media_dir, "really.png", "PNG")
    with pytest.raises(Invalid):
        probe_image(png, "JPEG")
