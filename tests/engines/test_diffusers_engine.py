"""The ``diffusers`` engine against a real (tiny, randomly initialised) diffusers
text-to-video pipeline that the test builds and saves with ``save_pretrained``: a
``TextToVideoSDPipeline`` with a two-block UNet3D, a one-block VAE, a one-layer CLIP text
encoder and a CLIP tokenizer made from a byte-level vocabulary written here. Nothing is
downloaded and nothing of diffusers is mocked; the videos are probed with PyAV."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import av  # noqa: E402

from reelforge.config import Settings  # noqa: E402
from reelforge.core.options import normalize_options  # noqa: E402
from reelforge.engines.base import JobSpec  # noqa: E402
from reelforge.engines.diffusers import (DiffusersEngine, frames_per_pass,  # noqa: E402
                                         generation_size, video_array)
from reelforge.engines.registry import build_engines, engine_classes, how_to_enable  # noqa: E402
from reelforge.errors import EngineError, JobCancelled, UnsupportedMode  # noqa: E402
from reelforge.media.probe import probe_av  # noqa: E402

from ..conftest import LiveServer, make_settings, wait_for  # noqa: E402

SETTING = "REELFORGE_DIFFUSERS_MODEL"


# ---------------------------------------------------------------- a tiny real pipeline

def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins for bytes that byte-level BPE (CLIP's) uses."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + n) for n in range(len(extra))]


def build_tiny_pipeline(folder: Path) -> Path:
    """Save a random TextToVideoSDPipeline (about 0.5 MB) to ``folder``."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):  # every byte, alone and word-final: no merges needed
        for symbol in _byte_symbols():
            vocab[symbol + suffix] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    words = folder.parent / f"{folder.name}-vocab"
    words.mkdir(parents=True, exist_ok=True)
    (words / "vocab.json").write_text(json.dumps(vocab))
    (words / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(words / "vocab.json"), str(words / "merges.txt"),
                              model_max_length=77)

    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=8,
        attention_head_dim=4, norm_num_groups=4)
    vae = AutoencoderKL(
        block_out_channels=(8,), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
        latent_channels=4, sample_size=32, norm_num_groups=4)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=8,
        bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"]))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                 unet=unet, scheduler=scheduler)
    pipe.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model gains nothing from more threads and loses a lot when the CPU is
    shared (OpenMP workers spin): one thread keeps this file fast on a busy runner."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-t2v")


def engine_settings(tmp: Path, model: Path | str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(data_dir=tmp / "data", diffusers_model=str(model),
                                  render_scale=0.25, diffusers_steps=2, diffusers_max_frames=8,
                                  diffusers_device="cpu")
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def engine(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffusersEngine:
    built = DiffusersEngine.from_settings(engine_settings(tmp_path_factory.mktemp("e"), model_dir))
    assert built is not None
    built.load()
    return built


def spec(job_id: str, **options: Any) -> JobSpec:
    clean = normalize_options("text_to_video", {"prompt": "a red fox running through snow",
                                                **options})
    return JobSpec(job_id=job_id, mode="text_to_video", options=clean,
                   seed=int(clean.get("seed", 0)))


class Recorder:
    """A Progress that records its calls and can stop the job like the worker does."""

    def __init__(self, cancel_at: float | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.cancel_at = cancel_at

    def __call__(self, stage: str, fraction: float) -> None:
        self.calls.append((stage, fraction))
        if self.cancel_at is not None and stage == "generating" and fraction >= self.cancel_at:
            raise JobCancelled("The job was cancelled.")

    def fractions(self, stage: str) -> list[float]:
        return [f for s, f in self.calls if s == stage]


def decode(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return {"size": (v.codec_context.width, v.codec_context.height),
                "pix_fmt": v.codec_context.pix_fmt, "codec": v.codec_context.name,
                "frames": frames}


# ---------------------------------------------------------------- registration, settings

def test_registers_and_stays_off_without_a_model(tmp_path: Path) -> None:
    assert engine_classes()["diffusers"] is DiffusersEngine
    assert DiffusersEngine.priority == 60 and DiffusersEngine.offers == ("text_to_video",)
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.diffusers_model == ""
    assert DiffusersEngine.from_settings(settings) is None
    assert "diffusers" not in build_engines(settings)
    assert any(line.startswith("diffusers: ") and SETTING in line
               for line in how_to_enable("text_to_video"))


def test_a_misconfigured_model_stops_the_start_with_the_fix(tmp_path: Path,
                                                            model_dir: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "unet").mkdir()
    for folder in (empty, tmp_path / "missing"):
        with pytest.raises(ValueError, match=SETTING) as exc:
            DiffusersEngine.from_settings(engine_settings(tmp_path, folder))
        assert "model_index.json" in str(exc.value) and "unset" in str(exc.value)
    with pytest.raises(ValueError, match="REELFORGE_DIFFUSERS_DEVICE"):
        DiffusersEngine.from_settings(engine_settings(tmp_path, model_dir,
                                                      diffusers_device="tpu"))
    with pytest.raises(ValueError, match=SETTING):  # build_engines: the runtime's path
        build_engines(engine_settings(tmp_path, empty))


def test_a_model_that_cannot_load_fails_the_job_without_retries(model_dir: Path,
                                                                 tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken-t2v"
    shutil.copytree(model_dir, broken)
    for weights in (broken / "unet").glob("diffusion_pytorch_model*"):
        weights.unlink()
    engine = DiffusersEngine.from_settings(engine_settings(tmp_path, broken))
    assert engine is not None  # the folder looks right; loading finds out on the first job
    with pytest.raises(EngineError) as exc:
        engine.run(spec("job_broken"), {}, tmp_path / "out", Recorder())
    assert exc.value.retryable is False
    assert "broken-t2v" in exc.value.message and str(tmp_path) not in exc.value.message
    assert SETTING in exc.value.fix


def test_capabilities_say_what_it_does(engine: DiffusersEngine, model_dir: Path) -> None:
    cap = engine.capabilities()
    assert cap.engine == "diffusers" and cap.modes == ("text_to_video",)
    assert "TextToVideoSDPipeline" in cap.description and model_dir.name in cap.description
    assert "blending" in cap.description and "8 frames" in cap.description
    options = cap.options["text_to_video"]
    assert options["duration"]["values"] == [5, 10] and options["fps"]["values"] == [24, 30]
    assert "9:16" in options["aspect_ratio"]["values"] and "1080p" in options["quality"]["values"]
    assert engine.output_seconds("text_to_video", {"duration": 10}) == 10.0
    with pytest.raises(UnsupportedMode):
        engine.output_seconds("image_to_video", {"duration": 5})


def test_sizes_frames_and_outputs_of_any_shape() -> None:
    assert generation_size((32, 32), 16 / 9, 8) == (40, 24)
    assert generation_size((256, 256), 9 / 16, 64) == (192, 320)
    assert generation_size((720, 480), 1.0, 16) == (592, 592)
    assert frames_per_pass(120, 49, 16, 1) == 16  # the pipeline's own default is less
    assert frames_per_pass(120, 49, 81, 4) == 49  # 4k + 1 for a VAE that packs 4 frames
    assert frames_per_pass(120, 30, None, 8) == 25
    import numpy as np

    floats = np.linspace(0, 1, 3 * 4 * 5 * 3, dtype=np.float32).reshape(1, 3, 4, 5, 3)
    as_np = video_array(floats)
    assert as_np.shape == (3, 4, 5, 3) and as_np.dtype == np.uint8
    assert (as_np.min(), as_np.max()) == (0, 255)
    channels_first = torch.from_numpy(floats).permute(0, 1, 4, 2, 3)  # (b, n, c, h, w)
    assert (video_array(channels_first) == as_np).all()
    from PIL import Image

    pil = [[Image.fromarray(frame) for frame in as_np]]
    assert (video_array(pil) == as_np).all()


# ---------------------------------------------------------------- real generation

def test_generates_a_video_of_exactly_the_duration(engine: DiffusersEngine, model_dir: Path,
                                                   tmp_path: Path) -> None:
    progress = Recorder()
    started = time.monotonic()
    artifacts = engine.run(spec("job_fox", seed=7), {}, tmp_path / "out", progress)
    elapsed = time.monotonic() - started
    by_name = {a.name: a for a in artifacts}
    assert set(by_name) == {"video", "poster", "spritesheet"}
    video = by_name["video"]
    assert video.content_type == "video/mp4"
    info = probe_av(video.path, "mov", fmt="mp4")
    assert info.duration == pytest.approx(5.0, abs=1e-3)
    assert (info.width, info.height, info.video_codec, info.fps) == (320, 180, "h264", 24.0)
    facts = decode(video.path)
    assert facts["pix_fmt"] == "yuv420p" and len(facts["frames"]) == 120
    first, last = facts["frames"][0].astype(int), facts["frames"][-1].astype(int)
    assert abs(first - last).mean() > 0.5  # the generated clip moves
    meta = video.meta
    assert meta["engine"] == "diffusers" and meta["model"] == model_dir.name
    assert meta["pipeline"] == "TextToVideoSDPipeline" and meta["seed"] == 7
    assert meta["generated_frames"] == 8 and meta["generated_size"] == [40, 24]
    assert meta["interpolation"] == "frame blending"
    assert meta["frames"] == 120 and meta["duration"] == 5.0
    for name in ("poster", "spritesheet"):
        assert by_name[name].content_type == "image/jpeg"
        assert by_name[name].path.read_bytes()[:3] == b"\xff\xd8\xff"
    generating = progress.fractions("generating")
    assert generating == sorted(generating) and generating[-1] == 1.0 and 0.5 in generating
    stages = [stage for stage, _ in progress.calls]
    assert stages.index("rendering") > max(i for i, s in enumerate(stages) if s == "generating")
    assert elapsed < 30


def test_same_seed_same_video_other_seed_other_video(engine: DiffusersEngine,
                                                     tmp_path: Path) -> None:
    def render(job: str, seed: int) -> bytes:
        out = engine.run(spec(job, seed=seed, aspect_ratio="9:16", watermark="tiny"), {},
                         tmp_path / job, Recorder())
        return next(a for a in out if a.name == "video").path.read_bytes()

    one, again, other = render("job_a", 11), render("job_b", 11), render("job_c", 12)
    assert one == again
    assert one != other


def test_cancel_stops_the_denoising_and_propagates(model_dir: Path, tmp_path: Path) -> None:
    slow = DiffusersEngine.from_settings(engine_settings(tmp_path, model_dir,
                                                         diffusers_steps=6))
    assert slow is not None
    unet = slow.load().pipe.unet
    calls: list[int] = []
    hook = unet.register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        progress = Recorder(cancel_at=1 / 6)
        with pytest.raises(JobCancelled):
            slow.run(spec("job_stop", seed=1), {}, tmp_path / "out", progress)
        stopped_at = len(calls)
        assert 1 <= stopped_at <= 3  # stopped within a step or two of step 1, not all 6
        assert not [t for t in threading.enumerate() if t.name.endswith("job_stop")]
        assert not list((tmp_path / "out").glob("*.mp4"))
        # the pipeline is free again: the next job runs all its steps
        calls.clear()
        done = slow.run(spec("job_next", seed=1), {}, tmp_path / "next", Recorder())
        assert len(calls) == 6 and done[0].path.is_file()
    finally:
        hook.remove()


# ---------------------------------------------------------------- over HTTP

@pytest.fixture(scope="module")
def live(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("api")
    server = LiveServer(make_settings(
        tmp, f"sqlite:///{tmp / 'reelforge.db'}", render_scale=0.25,
        diffusers_model=str(model_dir), diffusers_steps=2, diffusers_max_frames=8,
        diffusers_device="cpu"))
    yield server
    server.stop()


def test_text_to_video_over_http(live: LiveServer, tmp_path: Path) -> None:
    _, key = live.account("t2v", plan="enterprise", credits=10_000)
    with live.client(key) as c:
        engines = {e["name"]: e for e in c.get("/v1/engines").json()["data"]}
        assert engines["diffusers"]["modes"] == ["text_to_video"]
        quote = c.post("/v1/estimate", json={"mode": "text_to_video", "prompt": "a fox",
                                             "duration": 10}).json()
        assert quote["output_seconds"] == 10
        r = c.post("/v1/jobs", json={"mode": "text_to_video", "seed": 5, "aspect_ratio": "1:1",
                                     "prompt": "a lighthouse in a storm at night"})
        assert r.status_code == 201, r.text
        assert r.json()["engine"] == "diffusers"
        done = wait_for(c, r.json()["id"], timeout=60)
        assert done["status"] == "succeeded", done
        assert {"video", "poster", "spritesheet"} <= set(done["outputs"])
        assert done["outputs"]["video"]["engine"] == "diffusers"
        body = c.get(f"/v1/jobs/{done['id']}/artifacts/video")
    assert body.status_code == 200
    path = tmp_path / "t2v.mp4"
    path.write_bytes(body.content)
    facts = decode(path)
    assert facts["size"] == (180, 180) and len(facts["frames"]) == 120
    assert probe_av(path, "mov", fmt="mp4").duration == pytest.approx(5.0, abs=1e-3)


def test_text_to_video_is_refused_with_the_setting_when_off(tmp_path: Path) -> None:
    server = LiveServer(make_settings(tmp_path, f"sqlite:///{tmp_path / 'reelforge.db'}"))
    try:
        _, key = server.account("off")
        with server.client(key) as c:
            assert "diffusers" not in {e["name"] for e in c.get("/v1/engines").json()["data"]}
            r = c.post("/v1/jobs", json={"mode": "text_to_video", "prompt": "a cat"})
        assert 400 <= r.status_code < 500
        error = r.json()["error"]
        assert error["code"] == "unsupported_mode" and SETTING in error["fix"]
    finally:
        server.stop()
