"""URL sources: a direct link through the address guard, a page through yt-dlp (its
generic extractor finds the <video> on a page served on loopback), and the caps."""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reelforge.errors import Invalid, TooLarge, UnsupportedMedia
from reelforge.media import download as dl
from reelforge.media.ffmpeg import find_ffmpeg


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(talk, tmp_path: Path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "talk.mp4").write_bytes(talk.path.read_bytes())
    (root / "watch.html").write_text('<!doctype html><html><head><title>A talk</title></head>'
                                     '<body><video controls src="talk.mp4"></video></body></html>')
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_direct_link(site: str, clip_settings, tmp_path: Path) -> None:
    seen: list[float] = []
    path = dl.download(f"{site}/talk.mp4", tmp_path / "d", settings=clip_settings,
                       progress=seen.append, deadline=time.monotonic() + 30)
    assert path.name == "source.mp4" and path.stat().st_size > 10_000
    assert seen and all(0 <= f <= 1 for f in seen)


def test_page_without_ytdlp_says_how_to_fix(site: str, clip_settings, tmp_path: Path) -> None:
    clip_settings.ytdlp_enabled = False
    with pytest.raises(UnsupportedMedia) as err:
        dl.download(f"{site}/watch.html", tmp_path / "d", settings=clip_settings,
                    progress=lambda f: None, deadline=time.monotonic() + 30)
    assert "web page" in err.value.message and "direct link" in err.value.fix


ytdlp = pytest.mark.skipif(not dl.ytdlp_available(), reason="yt-dlp (optional extra) missing")


@ytdlp
def test_site_link_through_ytdlp(site: str, clip_settings, tmp_path: Path) -> None:
    path = dl.download(f"{site}/watch.html", tmp_path / "y", settings=clip_settings,
                       progress=lambda f: None, deadline=time.monotonic() + 60)
    assert path.parent == tmp_path / "y" and path.name.startswith("source.")
    assert path.stat().st_size > 10_000


@ytdlp
def test_ytdlp_caps_size_and_duration(site: str, tmp_path: Path) -> None:
    common = dict(ffmpeg_path=find_ffmpeg(), progress=lambda f: None)
    with pytest.raises(TooLarge):
        dl.download_with_ytdlp(f"{site}/watch.html", tmp_path / "a", max_bytes=50_000,
                               max_seconds=3600, deadline=time.monotonic() + 60, **common)
    with pytest.raises(Invalid) as err:
        dl.download_with_ytdlp(f"{site}/watch.html", tmp_path / "b", max_bytes=10**9,
                               max_seconds=5, deadline=time.monotonic() + 60, **common)
    assert "longer than" in err.value.message


def test_ytdlp_command_is_fixed_and_safe(tmp_path: Path) -> None:
    cmd = dl.ytdlp_command("https://example.com/watch?v=1", tmp_path, max_bytes=123,
                           max_seconds=600, ffmpeg_path="/bin/ffmpeg")
    assert "--ignore-config" in cmd and "--no-plugin-dirs" in cmd and "--no-exec" in cmd
    assert "--exec" not in cmd and "--netrc" not in cmd
    assert cmd[cmd.index("--max-filesize") + 1] == "123"
    assert cmd[cmd.index("-o") + 1] == "source.%(ext)s"
    assert cmd[-2:] == ["--", "https://example.com/watch?v=1"]  # never read as an option
    assert "duration <=? 600" in cmd[cmd.index("--match-filters") + 1]
