"""End-to-end latency: submit → succeeded over real HTTP, on the embedded default.

Starts the real server (SQLite, local files, in-process workers) on a loopback port,
submits image_to_video jobs one at a time, and times each from the POST to the moment
its Server-Sent Events stream reports `succeeded`. The baseline, measured in the same run, is the engine's own
render of the same job called directly (no HTTP, queue, database or storage), so the
difference is the platform's overhead.

    python bench/bench_e2e.py [--runs 5] [--quality 720p]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from PIL import Image, ImageDraw

from reelforge.api.app import create_app
from reelforge.config import Settings
from reelforge.core import accounts, keys
from reelforge.engines.base import JobSpec
from reelforge.runtime import Runtime


def make_image(path: Path) -> Path:
    img = Image.new("RGB", (1600, 1000))
    draw = ImageDraw.Draw(img)
    for y in range(1000):
        draw.line([(0, y), (1600, y)], fill=(40 + y // 8, 90 + y // 12, 200 - y // 10))
    draw.ellipse([1100, 150, 1350, 400], fill=(250, 210, 90))
    img.save(path, "JPEG", quality=90)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data: Path) -> tuple[Runtime, uvicorn.Server, str]:
    port = free_port()
    settings = Settings(data_dir=data, public_base_url=f"http://127.0.0.1:{port}")
    rt = Runtime.build(settings)
    rt.db.upgrade()
    server = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return rt, server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quality", default="720p", choices=["720p", "1080p"])
    args = parser.parse_args()
    options = {"mode": "image_to_video", "style": "cinematic", "duration": "5",
               "quality": args.quality, "prompt": "slow push in"}

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        image = make_image(tmp_path / "photo.jpg")
        rt, server, url = start_server(tmp_path / "data")
        with rt.db.session() as s:
            acc = accounts.create_account(s, rt.settings, "bench", plan="enterprise",
                                          credits=100000)
            _, key = keys.create_key(s, acc)

        # baseline: the engine alone, same options, same machine, same run
        engine = rt.engines["local"]
        clean = rt.submitter.quote("image_to_video", options).options
        direct = []
        for i in range(args.runs):
            work = tmp_path / f"direct{i}"
            started = time.perf_counter()
            engine.run(JobSpec(f"direct{i}", "image_to_video", clean), {"image": image}, work,
                       lambda stage, fraction: None)
            direct.append(time.perf_counter() - started)

        e2e = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=120) as client:
            for _ in range(args.runs):
                started = time.perf_counter()
                job = client.post("/v1/jobs", data=options,
                                  files={"image": ("photo.jpg", image.read_bytes())}).json()
                status = ""
                with client.stream("GET", f"/v1/jobs/{job['id']}/events") as events:
                    for line in events.iter_lines():  # SSE: no polling, no rate limit
                        if line.startswith("data: "):
                            status = json.loads(line[6:])["status"]
                assert status == "succeeded", status
                e2e.append(time.perf_counter() - started)
        server.should_exit = True

    med_direct, med_e2e = statistics.median(direct), statistics.median(e2e)
    print(f"image_to_video 5 s {args.quality}, {args.runs} runs each, medians")
    print(f"{'engine render (direct call)':34s} {med_direct:7.2f} s")
    print(f"{'submit -> succeeded over HTTP':34s} {med_e2e:7.2f} s")
    print(f"{'platform overhead':34s} {med_e2e - med_direct:7.2f} s "
          f"({med_e2e / med_direct:.2f}x the render)")
    print(f"e2e min/max: {min(e2e):.2f} / {max(e2e):.2f} s")


if __name__ == "__main__":
    main()
