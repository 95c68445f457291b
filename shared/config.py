"""The one typed Settings object of univr.

Every knob of every service lives here, grouped in sections (``settings.synth.min_clip_s``...).
Values come, in increasing priority, from: the profile defaults (``embedded`` | ``stack``), an
optional YAML file (``UNIVR_CONFIG_FILE``), and environment variables with prefix ``UNIVR_``
(nested with ``__``: ``UNIVR_TRAIN__LR=1e-3``). A run records ``settings.resolved()``.

Size: every knob of every service in one place, by design (the one Settings object).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

Profile = Literal["embedded", "stack"]


class DatabaseSettings(BaseModel):
    url: str = ""  # filled from the profile when empty
    echo: bool = False


class StorageSettings(BaseModel):
    backend: Literal["local", "s3"] = "local"
    local_root: str = ""  # filled from the profile when empty
    endpoint: str = "localhost:9000"
    access_key: str = "univr"
    secret_key: SecretStr = SecretStr("univr-secret")
    secure: bool = False
    region: str = "us-east-1"
    bucket: str = "univr"
    presign_expiry_s: int = 3600


class BrokerSettings(BaseModel):
    url: str = ""  # filled from the profile: filesystem:// (embedded) or amqp:// (stack)
    result_backend: str = ""
    # Per-item tasks (media, caption, io queues): soft < hard < visibility timeout (DESIGN.md).
    # Long jobs (train, eval, index queues) have no task limit: their message is acked at once and
    # the run is held by a lease (JobSettings), so it may last days.
    soft_time_limit_s: int = 300
    hard_time_limit_s: int = 360
    visibility_timeout_s: int = 3600
    max_attempts: int = 3
    # A task that cannot reach the database (restart, fail-over) is retried with exponential backoff
    # (1, 2, 4 ... outage_backoff_max_s seconds) without spending its item's attempts.
    outage_retries: int = 60
    outage_backoff_max_s: float = 30.0
    worker_concurrency: int = 2
    eager: bool = False  # run tasks in-process (debugging only; the demo uses real workers)


class JobSettings(BaseModel):
    """Leases of long jobs (train, eval, index build; shared/db/lease.py, shared/supervise.py,
    shared/heartbeat.py, shared/sweeper.py)."""

    lease_s: float = Field(
        60.0, gt=0
    )  # a job whose worker stopped renewing is taken over after this
    heartbeat_s: float = Field(10.0, gt=0)  # renewals (and progress) per lease: keep several
    sweep_s: float = Field(15.0, gt=0)  # how often a long-job worker looks for expired leases
    cancel_grace_s: float = Field(30.0, ge=0)  # SIGTERM, then this long, then SIGKILL

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> JobSettings:
        if self.heartbeat_s >= self.lease_s:
            raise ValueError(
                "jobs.heartbeat_s must be below jobs.lease_s, or a live run loses its lease"
            )
        return self


class VectorSettings(BaseModel):
    url: str = ""  # Qdrant server URL (stack)
    path: str = ""  # Qdrant local-mode folder (embedded); filled from the profile when empty
    api_key: SecretStr | None = None
    alias: str = "univr-live"
    retention: int = 2  # old collections kept after a promotion
    # points embedded and upserted per call by an index build: one round trip per 256 points is ~20x
    # faster than per point (bench/indexer_qdrant.py); the embedder still batches by
    # model.batch_size
    upsert_batch: int = Field(256, ge=1)
    # upserts left in flight while the build embeds the next batch (server only: local mode runs
    # them in turn, its SQLite handle belongs to the thread that opened it)
    upsert_parallel: int = Field(2, ge=1)


class ModelSettings(BaseModel):
    name_or_path: str = ""  # empty: the tiny bundle under home/models/tiny (built on demand)
    adapter: str | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | float32 | bfloat16 | float16
    num_frames: int = Field(8, ge=2, multiple_of=2)  # SPEC §6.3: 8 uniform frames; temporal patch 2
    fps: float = 1.0
    # video frames, sized as the reference preprocessing sizes them (qwen-vl-utils' fetch_video,
    # SPEC §6.3): at least VIDEO_MIN_PIXELS, at most GVE's per-frame max_pixels, and at most an even
    # share of the whole video's budget (0.9 * 128000 tokens' worth); the checkpoint's own video
    # processor limits then apply on top, as its processor applies them to the reference's frames
    video_min_pixels: int = Field(
        128 * 28 * 28, ge=1, validation_alias=AliasChoices("video_min_pixels", "frame_min_pixels")
    )
    video_max_pixels: int = Field(
        200 * 28 * 28, ge=1, validation_alias=AliasChoices("video_max_pixels", "frame_max_pixels")
    )
    video_total_pixels: int = Field(90_316_800, ge=1)
    # images: None takes the checkpoint processor's limits (its preprocessor config)
    image_min_pixels: int | None = Field(None, ge=1)
    image_max_pixels: int | None = Field(None, ge=1)
    max_length: int = Field(8192, ge=1)  # tokens, the appended <|endoftext|> included
    padding_side: Literal["left", "right"] = "left"
    batch_size: int = Field(16, ge=1)
    max_batch_tokens: int = Field(32768, ge=1)
    frame_cache_items: int = Field(512, ge=0)  # decoded videos kept (resized); 0: no cache
    seek_min_frames: int = Field(
        2000, ge=1
    )  # clips this long are sampled by seeking, not by decoding every frame
    seed: int = 0
    # CPU threads torch uses per process (shared/threads.py); 0: torch's default for a process
    # alone, cores / pool size in a worker pool's children (torchrun ranks: 1)
    torch_threads: int = Field(0, ge=0)


class CaptionSettings(BaseModel):
    backend: Literal["template", "openai"] = "template"
    base_url: str = "http://localhost:8000/v1"
    api_key: SecretStr = SecretStr("EMPTY")
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    timeout_s: float = 120.0
    max_retries: int = 3
    concurrency: int = 8
    # image_url parts per request; vLLM's --limit-mm-per-prompt image limit must allow as many
    frames_per_request: int = Field(8, ge=1)


class MediaSettings(BaseModel):
    # The ffmpeg binary every service runs: empty = the static build pinned with imageio-ffmpeg, so
    # behaviour does not depend on whichever ffmpeg a machine has on PATH; a path or a command name
    # (looked up on PATH) chooses another. Its version is checked once and logged.
    ffmpeg: str = ""


class DownloadSettings(BaseModel):
    """Web sources (``services/synth/download.py``): URL manifests fetched on the io queue into the
    store's ``raw/`` prefix (``UNIVR_SYNTH__DOWNLOAD__*``)."""

    # private, loopback, link-local, multicast and reserved addresses are refused (SSRF), on the
    # first request and on every redirect hop, unless allowed here: all of them, or some networks
    allow_private: bool = False
    allow_networks: list[str] = Field(default_factory=list)  # CIDRs, e.g. an internal mirror
    max_bytes: int = Field(4 * 1024**3, gt=0)  # a larger answer is refused (announced or counted)
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)  # no byte for this long: a transient failure
    # one file's time limit per attempt (below broker.soft_time_limit_s); a partial file resumes
    deadline_s: float = Field(240.0, gt=0)
    retries: int = Field(3, ge=0)  # transient failures (timeouts, 5xx, 429, a cut) retried in-task
    backoff_s: float = Field(1.0, ge=0)  # 1, 2, 4 ... times this, capped at backoff_max_s
    backoff_max_s: float = Field(30.0, ge=0)
    max_redirects: int = Field(5, ge=0)
    per_host_interval_s: float = Field(0.5, ge=0)  # the least time between requests to one host
    # where unfinished downloads wait to be resumed (HTTP Range); empty: <home>/downloads
    partial_dir: str = ""
    user_agent: str = "univr-synth/1 (+https://github.com/univr)"
    # URLs of these hosts (and their subdomains) go through yt-dlp; a bare YouTube id is one
    platform_hosts: list[str] = Field(
        default_factory=lambda: ["youtube.com", "youtu.be", "vimeo.com"]
    )
    ytdlp_format: str = "best[height<=720][ext=mp4]/best[height<=720]/best"


class SynthSettings(BaseModel):
    max_file_bytes: int = 4 * 1024**3
    max_duration_s: float = 4 * 3600.0
    min_duration_s: float = 0.5
    max_pixels: int = 3840 * 2160
    min_side: int = 16
    min_clip_s: float = 1.0
    max_clip_s: float = 10.0
    stride_clip_s: float = 4.0
    scene_threshold: float = 0.25  # fraction of pixels that change at a hard cut
    scene_pixel_delta: float = 8.0  # levels a pixel must change by to count as changed at a cut
    analysis_side: int = 32  # the one low-resolution decode pass feeds every consumer
    frames_per_clip: int = 8
    # stored frames: 0 keeps them at the size the model's video preprocessing gives them (the
    # reference's per-frame budget, model.video_*_pixels; never enlarged), so training feeds the
    # token count evaluation feeds; > 0 caps the longer side at that many pixels instead
    frame_side: int = Field(0, ge=0)
    clip_copy: bool = True  # clips by stream copy with an edit list; False: re-encode every clip
    clip_max_side: int = 448  # long side of re-encoded clips
    static_threshold: float = (
        0.5  # percent of pixels changing between frames below which a clip is static
    )
    dedup_hamming: int = 4
    # V-SynFlow's recipe (SPEC §3): "gve" turns on the filters the paper runs (the cross-modal
    # consistency filter); "tiny" (the CPU demo's) leaves off what a filter left unset
    preset: Literal["gve", "tiny"] = "gve"
    # cross-modal consistency of the RAW caption against its clip (SPEC §3.2, filter 2), before any
    # captioning request: None follows the preset (on in gve, off in tiny)
    consistency_filter: bool | None = None
    # scorer: "embedder" (the model's caption-video similarity), "truth" (the fraction of colours
    # and shapes the caption names that a procedural video's sidecar holds), "auto" (truth where a
    # sidecar exists, else the embedder); clips scoring below the threshold are dropped
    consistency_scorer: Literal["auto", "embedder", "truth"] = "auto"
    consistency_threshold: float = 0.2
    hard_negatives: int = 1
    # T2V queries per clip: "sample" one caption style per clip (SPEC §3.3, the paper's "(video,
    # one sampled new caption)"; T2T then pairs two captions T2V did not use, T2I one sampled frame
    # caption), or "all" five styles as T2V queries with T2T concise → rich and T2I the concise
    # frame caption (what the demo's figures before 2026-12-05 evening used)
    t2v_styles: Literal["all", "sample"] = "sample"
    # `univr data import`: a WebDataset member larger than this is never read (its sample is
    # skipped with the reason), so a hostile archive cannot fill memory
    import_max_member_bytes: int = Field(512 * 1024**2, gt=0)
    snapshot_shard_rows: int = Field(100_000, gt=0)  # pairs per Parquet shard of a snapshot
    # `univr synth gc`: objects (and clips claimed) within this many seconds are never collected, so
    # a job writing at the same moment keeps its uploads; keep it well above
    # broker.hard_time_limit_s
    gc_grace_s: float = Field(24 * 3600.0, ge=0)
    profile_weights: dict[str, float] = Field(
        default_factory=lambda: {"spatial": 0.3, "temporal": 0.6, "other": 0.1}
    )
    download: DownloadSettings = Field(default_factory=DownloadSettings)

    @property
    def consistency_on(self) -> bool:
        """Whether the consistency filter runs: as set, else on in the gve preset."""
        if self.consistency_filter is None:
            return self.preset == "gve"
        return self.consistency_filter


class TrainSettings(BaseModel):
    """Every training knob (services/trainer). A run resolves them in increasing priority: these
    defaults, the preset's recipe values (``preset``), the YAML file and ``UNIVR_TRAIN__*``
    variables, then what the caller gives (CLI options, a ``--config`` file, job parameters); the
    resolved values are recorded with the run."""

    preset: Literal["gve", "tiny"] = "gve"  # gve: SPEC's recipe; tiny: the CPU demo's
    # total optimisation steps; 0: epochs × steps_per_epoch
    steps: int = Field(0, ge=0)
    epochs: int = Field(3, ge=1)
    # 0: one pass over the task-weighted training data (sum over tasks of pairs / global batch)
    # when the run is given in epochs (steps 0); with a step count the epochs split it evenly
    steps_per_epoch: int = Field(0, ge=0)
    heldout_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # of source videos, held out of training
    # decoded Parquet row groups (up to 1000 pairs each) the trainer keeps of its snapshot, which it
    # reads lazily (services/trainer/shards.py): memory is bounded by these, not by the snapshot
    shard_cache: int = Field(16, ge=1)
    lr: float = 3e-5
    weight_decay: float = 0.1
    warmup_steps: int = 20
    batch_size: int = Field(
        32, ge=1
    )  # per process; a step's global batch is batch_size × processes
    # per-task batch sizes (per process), e.g. SPEC Table 7's BS column {"T2I": 32, "T2V": 64, ...};
    # a task not listed uses batch_size (the gve preset fills it unless batch_size is given)
    task_batch_size: dict[str, int] = Field(default_factory=dict)
    # explicit hard negatives used per pair, by task (SPEC Table 7's Neg column); a task not
    # listed uses all its pairs carry
    task_hard_negatives: dict[str, int] = Field(default_factory=dict)
    temperature: float = 0.03
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj", "gate_proj"]
    )
    lora_scope: Literal["language", "all"] = (
        "language"  # SPEC §5.2: LoRA on the language model only
    )
    sampler: Literal["pyramid", "uniform"] = "pyramid"
    # what a Modality Pyramid unit is (SPEC §4.2 leaves it open): each task type, or each dataset
    # (an imported dataset by its name, the synthesized pairs as UVRD-<task>, as Table 7 names
    # them); a dataset unit trains with the batch size and hard negatives its import recorded
    pyramid_unit: Literal["task", "dataset"] = "task"
    sigma_min: float = 0.1
    sigma_max: float = 1.0
    sigma_ramp: Literal["epoch", "step"] = "epoch"
    probe_pairs: int = 32
    # epoch-1 prober of the Modality Pyramid (SPEC §4.2: an off-the-shelf embedder such as GME-7B):
    # a model path or hub id loaded as a separate embedder; empty: the model being trained
    prober: str = ""
    grad_cache: bool = False
    grad_cache_chunk: int = 8
    # hard negatives (SPEC §4.3): "random" trains on the snapshot's stored ones (synth pairs stage);
    # "mined" replaces them with the prober's top-K candidates of each query that are not its
    # positive, its dedup cluster or its source video (services/trainer/mining.py), re-mined with
    # each epoch's prober; K per task (SPEC §3.5, Table 7's Neg column; a task not listed: 0)
    hard_negative_source: Literal["random", "mined"] = "random"
    mined_negatives_per_task: dict[str, int] = Field(
        default_factory=lambda: {
            "T2T": 0,
            "T2I": 0,
            "T2V": 1,
            "TI2V": 1,
            "TV2V": 1,
            "I2V": 0,
            "V2V": 0,
        }
    )
    # guards of mined negatives beyond positive/cluster/video (services/trainer/mining.py Guard):
    # a candidate is the mined negative of at most mined_max_uses queries per task (0: no cap);
    # candidates the prober scores above mined_positive_ratio x the positive's cosine are skipped
    # as likely false negatives (0: off); with either on, the search looks mined_search_depth
    # candidates deeper
    mined_max_uses: int = Field(0, ge=0)
    mined_positive_ratio: float = Field(0.0, ge=0.0)
    mined_search_depth: int = Field(64, ge=0)
    checkpoint_every: int = 100
    grad_clip: float = 1.0
    seed: int = 42
    loader_workers: int = 1
    # processes a training job runs under torchrun (one per GPU); 0: the GPUs this worker sees
    # (CUDA_VISIBLE_DEVICES), 1 on a host without one
    nproc: int = Field(0, ge=0)
    # experiment tracking: TensorBoard event files (default), MLflow (needs the mlflow package)
    report_to: Literal["tensorboard", "mlflow", "none"] = "tensorboard"
    logdir: str = ""  # TensorBoard folder; empty: <out>/tensorboard
    # progress: a rich bar on a terminal; otherwise one log line at least this often (seconds)
    log_every_s: float = Field(10.0, gt=0)


class EvalSettings(BaseModel):
    # exact top-k (shared/topk.py): one matmul tile is query_block x block_size scores;
    # tiles are merged once per topk_memory_mb of scores (per worker thread); chunk maxima over
    # topk_chunk scores prune; topk_threads query blocks run at once (0: torch's thread count)
    block_size: int = 4096
    query_block: int = 256
    topk_chunk: int = 128
    topk_memory_mb: int = 32
    topk_threads: int = 0
    topk: int = 10
    cache_dir: str = ""  # filled from the profile when empty


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    max_upload_bytes: int = 32 * 1024**2
    require_keys: bool = True
    # /metrics counts job events of this recent window only, at most this many (a bounded read)
    metrics_events_window_s: float = Field(3600.0, gt=0)
    metrics_events_limit: int = Field(100_000, gt=0)
    # uploaded media (services/api, shared/media/upload.py): checked from headers before decoding
    max_image_pixels: int = 4096 * 4096  # an image's width x height (also PIL's bomb limit)
    max_frame_pixels: int = 3840 * 2160  # a video frame's width x height
    max_video_pixels: int = 3840 * 2160 * 600  # width x height x declared frames
    max_video_seconds: float = 600.0
    video_formats: list[str] = ["mov", "mp4", "matroska", "webm", "avi"]  # demuxers allowed
    image_formats: list[str] = ["PNG", "JPEG", "WEBP"]  # PIL decoders allowed
    max_decodes: int = 2  # media decodes at once per API process; beyond: 429
    # API keys: a verified key is cached for key_cache_s (revocation shows within that time);
    # a client with auth_fail_limit failed attempts in auth_fail_window_s gets 429 until it ends
    key_cache_s: float = 30.0
    auth_fail_limit: int = 20
    auth_fail_window_s: float = 60.0
    auth_block_delay_s: float = 1.0  # a blocked client's 429 waits this long (slows a flood down)
    session_cookie: str = "univr_session"
    max_job_params_bytes: int = 64 * 1024
    # what a job submitted through the API may name (shared/contracts/jobs.py): server folders it
    # may read (synth sources, UVRB, models, adapters; empty: <home>/data) and S3 buckets its
    # sources may be in (empty: storage.bucket); outputs go under <home>/runs
    data_roots: list[str] = []
    source_buckets: list[str] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="UNIVR_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    profile: Profile = "embedded"
    home: str = ".univr"
    log_level: str = "INFO"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    caption: CaptionSettings = Field(default_factory=CaptionSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    synth: SynthSettings = Field(default_factory=SynthSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)

    @model_validator(mode="after")
    def _fill_profile_defaults(self) -> Settings:
        home = Path(self.home).expanduser().resolve()
        if self.profile == "embedded":
            self.database.url = self.database.url or f"sqlite:///{home / 'univr.db'}"
            self.storage.local_root = self.storage.local_root or str(home / "objects")
            self.vectors.path = self.vectors.path or (
                "" if self.vectors.url else str(home / "qdrant")
            )
            self.broker.url = self.broker.url or "filesystem://"
        else:
            self.database.url = (
                self.database.url or "postgresql+psycopg://postgres@localhost:5432/univr"
            )
            if self.storage.backend == "local" and not self.storage.local_root:
                self.storage.backend = "s3"
            self.vectors.url = self.vectors.url or (
                "" if self.vectors.path else "http://localhost:6333"
            )
            self.broker.url = self.broker.url or "amqp://guest:guest@localhost:5672//"
        self.storage.local_root = self.storage.local_root or str(home / "objects")
        self.eval.cache_dir = self.eval.cache_dir or str(home / "cache" / "embeddings")
        return self

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def broker_folder(self) -> Path:
        """Folder of the embedded (kombu filesystem) broker."""
        return self.home_path / "broker"

    @property
    def tiny_model_path(self) -> Path:
        return self.home_path / "models" / "tiny"

    def resolved(self, mask_secrets: bool = True) -> dict[str, Any]:
        """The configuration as data, as a run records it (secrets masked by default)."""
        if not mask_secrets:
            return _unmasked(self)
        return _mask_urls(self.model_dump(mode="json"))


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``UNIVR_CONFIG_FILE`` (YAML) when set; env vars still win over it."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("UNIVR_CONFIG_FILE")
        if not path:
            return {}
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: the config file must hold a mapping, got {type(data).__name__}"
            )
        return data


def _unmasked(s: Settings) -> dict[str, Any]:
    out = s.model_dump(mode="python")

    def walk(obj: Any) -> Any:
        if isinstance(obj, SecretStr):
            return obj.get_secret_value()
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        return obj

    return walk(out)


def _mask_urls(obj: Any) -> Any:
    """Hide passwords inside URLs such as amqp://user:pass@host (SecretStr already dumps as
    ****)."""
    if isinstance(obj, dict):
        return {k: _mask_urls(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask_urls(v) for v in obj]
    if isinstance(obj, str) and "://" in obj and "@" in obj:
        scheme, rest = obj.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:****@{host}" if ":" in creds else obj
    return obj


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide Settings (call ``get_settings.cache_clear()`` after changing env in
    tests)."""
    return Settings()
