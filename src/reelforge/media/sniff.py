"""What a file is, told from its bytes alone.

A file's name, extension and any ``Content-Type`` header are claims made by whoever
sent it; the first bytes are what ffmpeg and Pillow will actually act on. So the type is
decided here from magic numbers only, and everything that is not plainly one of the
supported image, video or audio formats is refused before a decoder sees it — above all
text that ffmpeg would follow somewhere else (HLS/DASH playlists, ffconcat lists) and
markup or archives (SVG, HTML, zip).

The ``demuxer`` of a :class:`MediaType` is the ffmpeg input format to force when the
file is opened with PyAV, so ffmpeg never probes for a format of its own choosing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reelforge.errors import Invalid, UnsupportedMedia

HEAD_BYTES = 4096

_SUPPORTED = ("JPEG, PNG or WebP images; MP4, MOV, MKV or WebM video; "
              "MP3, WAV, M4A, OGG, FLAC or AAC audio")


@dataclass(frozen=True)
class MediaType:
    """A supported format, as recognised from a file's first bytes.

    ``kind`` is provisional for containers that may hold either (an MP4 or an Ogg file
    with only audio in it); :func:`reelforge.media.probe.inspect_file` settles it from
    the streams it finds.
    """

    kind: str  # image | video | audio
    format: str  # jpeg png webp mp4 mov mkv webm mp3 wav m4a ogg flac aac
    content_type: str
    demuxer: str  # PyAV/ffmpeg input format to force; the Pillow format for images


JPEG = MediaType("image", "jpeg", "image/jpeg", "JPEG")
PNG = MediaType("image", "png", "image/png", "PNG")
WEBP = MediaType("image", "webp", "image/webp", "WEBP")
MP4 = MediaType("video", "mp4", "video/mp4", "mov")
MOV = MediaType("video", "mov", "video/quicktime", "mov")
M4A = MediaType("audio", "m4a", "audio/mp4", "mov")
MKV = MediaType("video", "mkv", "video/x-matroska", "matroska")
WEBM = MediaType("video", "webm", "video/webm", "matroska")
MP3 = MediaType("audio", "mp3", "audio/mpeg", "mp3")
AAC = MediaType("audio", "aac", "audio/aac", "aac")
WAV = MediaType("audio", "wav", "audio/wav", "wav")
FLAC = MediaType("audio", "flac", "audio/flac", "flac")
OGG_AUDIO = MediaType("audio", "ogg", "audio/ogg", "ogg")
OGG_VIDEO = MediaType("video", "ogg", "video/ogg", "ogg")

#: Every demuxer :mod:`reelforge.media.probe` may force; nothing else reaches ffmpeg.
AV_DEMUXERS = frozenset({"mov", "matroska", "mp3", "aac", "wav", "flac", "ogg"})
#: Every Pillow format that may be opened.
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

# ISO base media ("ftyp") brands. Anything not named here is refused.
_MOV_BRANDS = {b"qt  "}
_M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"hvc1", b"av01", b"dash", b"M4V ", b"M4VH",
    b"M4VP", b"MSNV", b"NDAS", b"XAVC", b"f4v ", b"mmp4", b"3gp4", b"3gp5", b"3gp6",
    b"3g2a", b"3gg6", b"kddi", b"FACE", b"CAEP",
}
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                 b"avif", b"avis", b"jpx ", b"jp2 ", b"crx "}
# Classic QuickTime files may start with any of these atoms instead of "ftyp".
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

_OGG_CODECS = (
    (b"\x01vorbis", OGG_AUDIO), (b"OpusHead", OGG_AUDIO), (b"\x7fFLAC", OGG_AUDIO),
    (b"Speex   ", OGG_AUDIO), (b"\x80theora", OGG_VIDEO),
)


def sniff_file(path: Path) -> MediaType:
    """Recognise the file at ``path`` from its content; raise when it is not supported."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        if _is_id3(head):
            f.seek(10 + _syncsafe(head[6:10]) + (10 if head[5] & 0x10 else 0))
            return _after_id3(f.read(64))
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> MediaType:
    """Recognise a format from the first bytes of a file (``HEAD_BYTES`` is plenty)."""
    if not head:
        raise Invalid("The file is empty.", fix="Send the file's content; it arrived with 0 bytes.")
    found = _sniff_image(head) or _sniff_av(head)
    if found is not None:
        return found
    raise _refusal(head)


# --- images ---------------------------------------------------------------------------

def _sniff_image(head: bytes) -> MediaType | None:
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


# --- audio and video ------------------------------------------------------------------

def _sniff_av(head: bytes) -> MediaType | None:
    if head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head[4:8] in _QT_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head)
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return _ogg(head)
    if _is_id3(head):
        return MP3  # sniff_file looks past the tag; from bytes alone, ID3 means MP3
    return _mpeg_audio(head)


def _iso_bmff(head: bytes) -> MediaType:
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if major in _IMAGE_BRANDS:
        raise UnsupportedMedia(
            f"This is a HEIF/AVIF/JPEG 2000 still image (ISO brand {_brand(major)}), "
            "which is not supported.",
            fix="Convert it to JPEG or PNG (e.g. export from your photo app as JPEG).")
    for brands, media in ((_MOV_BRANDS, MOV), (_M4A_BRANDS, M4A), (_MP4_BRANDS, MP4)):
        if major in brands:
            return media
    for brands, media in ((_M4A_BRANDS, M4A), (_MP4_BRANDS, MP4), (_MOV_BRANDS, MOV)):
        if compatible & brands:
            return media
    raise UnsupportedMedia(
        f"This ISO media file has an unknown brand {_brand(major)}.",
        fix="Re-encode it to H.264/AAC MP4, e.g. "
            "`ffmpeg -i in -c:v libx264 -c:a aac out.mp4`.")


def _brand(brand: bytes) -> str:
    return repr(brand.decode("latin-1"))


def _matroska(head: bytes) -> MediaType:
    at = head.find(b"\x42\x82", 4, 64)  # EBML DocType element
    if at >= 0 and at + 3 <= len(head) and head[at + 2] & 0x80:
        length = head[at + 2] & 0x7F
        doctype = head[at + 3:at + 3 + length].rstrip(b"\0")
        if doctype == b"webm":
            return WEBM
        if doctype == b"matroska":
            return MKV
        raise UnsupportedMedia(
            f"This EBML file has DocType {doctype[:16].decode('latin-1')!r}, "
            "not Matroska or WebM.",
            fix="Send an MKV or WebM file, or re-encode it to MP4.")
    return MKV


def _ogg(head: bytes) -> MediaType:
    if len(head) >= 27:
        segments = head[26]
        packet = head[27 + segments:27 + segments + 16]
        for magic, media in _OGG_CODECS:
            if packet.startswith(magic):
                return media
    raise UnsupportedMedia(
        "This Ogg file holds a codec other than Vorbis, Opus, FLAC, Speex or Theora.",
        fix="Re-encode it to Opus/Vorbis Ogg, MP3 or MP4.")


def _mpeg_audio(head: bytes) -> MediaType | None:
    """An MPEG audio frame header: MP3 (layer III) or ADTS AAC (layer 0)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x3
    if layer == 0 and head[1] & 0xF0 == 0xF0 and (head[2] >> 2) & 0xF < 13:
        return AAC
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    version = (head[1] >> 3) & 0x3
    if layer == 1 and version != 1 and bitrate not in (0, 15) and rate != 3:
        return MP3
    return None


def _after_id3(after: bytes) -> MediaType:
    """An ID3 tag can sit in front of MP3, AAC or FLAC; judge by what follows it."""
    if after.startswith(b"fLaC"):
        return FLAC
    found = _mpeg_audio(after)
    return found if found is not None else MP3


def _is_id3(head: bytes) -> bool:
    """An ID3v2 header: "ID3", version 2-4, a revision, flags, a 28-bit syncsafe size."""
    return (len(head) >= 10 and head.startswith(b"ID3") and head[3] in (2, 3, 4)
            and head[4] != 0xFF and all(b < 0x80 for b in head[6:10]))


def _syncsafe(b: bytes) -> int:
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


# --- refusals -------------------------------------------------------------------------

_REENCODE = "Re-encode it to H.264/AAC MP4: `ffmpeg -i in -c:v libx264 -c:a aac out.mp4`."
_SAVE_IMAGE = "Save it as JPEG or PNG and upload that instead."

_BINARY = (
    (b"GIF87a", "a GIF image", "Convert it to PNG, or to MP4 if it is animated."),
    (b"GIF89a", "a GIF image", "Convert it to PNG, or to MP4 if it is animated."),
    (b"II*\0", "a TIFF image", _SAVE_IMAGE),
    (b"MM\0*", "a TIFF image", _SAVE_IMAGE),
    (b"\0\0\1\0", "an ICO icon", _SAVE_IMAGE),
    (b"8BPS", "a Photoshop document", _SAVE_IMAGE),
    (b"PK\x03\x04", "a zip archive (or an Office document)", "Unpack it and send the media file itself."),
    (b"PK\x05\x06", "an empty zip archive", "Send the media file itself."),
    (b"\x1f\x8b", "a gzip archive", "Decompress it and send the media file itself."),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "Unpack it and send the media file itself."),
    (b"Rar!", "a RAR archive", "Unpack it and send the media file itself."),
    (b"BZh", "a bzip2 archive", "Decompress it and send the media file itself."),
    (b"%PDF", "a PDF document", "Export the page as a PNG or JPEG image."),
    (b"\x7fELF", "an executable", "Send an image, video or audio file."),
    (b"MZ", "a Windows executable", "Send an image, video or audio file."),
    (b"FLV\x01", "an FLV video", _REENCODE),
    (b"\0\0\1\xba", "an MPEG program stream", _REENCODE),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "a Windows Media (ASF/WMV/WMA) file", _REENCODE),
    (b".RMF", "a RealMedia file", _REENCODE),
    (b"#!AMR", "an AMR audio file", "Convert it to MP3, M4A or WAV."),
    (b"MThd", "a MIDI file", "Render it to MP3 or WAV first."),
)

_TEXT = (
    (re.compile(rb"^#EXTM3U"), "an HLS/M3U playlist",
     "Send the media file itself, not a playlist: download the stream first "
     "(e.g. `ffmpeg -i playlist.m3u8 -c copy out.mp4`)."),
    (re.compile(rb"^ffconcat"), "an ffconcat list",
     "Join the files yourself and send the single result."),
    (re.compile(rb"<MPD[\s>]"), "a DASH manifest (MPD)",
     "Send the media file itself, not a manifest: download the stream first."),
    (re.compile(rb"<svg[\s>]", re.I), "an SVG image", "Render it to PNG and upload that."),
    (re.compile(rb"^(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S),
     "an HTML page",
     "The link points at a web page, not at the media: use the direct file URL."),
    (re.compile(rb"^<\?xml", re.I), "an XML document", "Send an image, video or audio file."),
    (re.compile(rb"^[\[{]"), "a JSON document", "Send an image, video or audio file."),
    (re.compile(rb"^#EXTINF|^\[playlist\]", re.I), "a playlist", "Send the media file itself."),
)


def _refusal(head: bytes) -> UnsupportedMedia:
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return UnsupportedMedia("This is an AVI file, which is not supported.", fix=_REENCODE)
    if _is_mpeg_ts(head):
        return UnsupportedMedia(
            "This is an MPEG transport stream (.ts), which is not supported.",
            fix="Remux it to MP4: `ffmpeg -i in.ts -c copy out.mp4`.")
    for magic, what, fix in _BINARY:
        if head.startswith(magic):
            return UnsupportedMedia(f"This is {what}, not a supported media file.", fix=fix)
    if _looks_like_text(head):
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        for pattern, what, fix in _TEXT:
            if pattern.search(text[:1024]):
                return UnsupportedMedia(f"This is {what}, not a media file.", fix=fix)
        return UnsupportedMedia(
            "This is a text file, not an image, video or audio file.",
            fix=f"Send the media file itself: {_SUPPORTED}.")
    return UnsupportedMedia(
        "The file's content is not a recognised image, video or audio format "
        "(its name and type header are not trusted).",
        fix=f"Send {_SUPPORTED}.")


def _is_mpeg_ts(head: bytes) -> bool:
    return len(head) >= 189 * 2 and all(head[i] == 0x47 for i in (0, 188, 376))


def _looks_like_text(head: bytes) -> bool:
    sample = head[:1024]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _printable(sample.decode("utf-16", errors="replace"))
    for cut in range(4):  # a multi-byte character cut at the sample's end is still text
        try:
            return _printable(sample[:len(sample) - cut].decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return False


def _printable(text: str) -> bool:
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)
