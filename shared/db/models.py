"""SQLAlchemy 2 models for the whole lifecycle: source → video → clip → frame/caption → pair →
snapshot → training run → checkpoint → eval run/score → index version; plus jobs, per-item job
events and API keys.

Conventions (DESIGN.md): IDs of media rows are deterministic strings (uuid5 of the source URI and
span, see ``shared.ids``), used as object keys, primary keys and Qdrant point IDs alike; every
write is an upsert (``shared.db.upsert``). Types are portable across PostgreSQL and SQLite.

Size: the whole schema in one module, as the migrations and their autogenerate read it; each
table on its own is short.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


ID = String(64)


class ItemState(enum.StrEnum):
    """State machine of one unit of work (a job item): pending → running → done | rejected | failed.

    ``rejected``: the input is bad (a clear reason is recorded; retrying cannot help).
    ``failed``: an error persisted past ``broker.max_attempts`` tries.
    """

    pending = "pending"
    running = "running"
    done = "done"
    rejected = "rejected"
    failed = "failed"


class JobState(enum.StrEnum):
    pending = "pending"
    running = "running"
    completed = "completed"  # every item ended (done, rejected or failed)
    failed = "failed"  # the job itself could not proceed
    cancelled = "cancelled"


# --- synthesis ------------------------------------------------------------------------------


class Source(Base):
    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(uri)
    uri: Mapped[str] = mapped_column(Text, unique=True)  # dir path, s3://bucket/prefix, manifest
    kind: Mapped[str] = mapped_column(String(32))  # directory | s3 | manifest
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Video(Base):
    __tablename__ = "videos"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(video uri)
    source_id: Mapped[str | None] = mapped_column(ForeignKey("sources.id"), index=True)
    uri: Mapped[str] = mapped_column(Text)
    raw_caption: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # sidecar, manifest extras
    duration_s: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    codec: Mapped[str | None] = mapped_column(String(32))
    frame_count: Mapped[int | None] = mapped_column(Integer)
    object_key: Mapped[str | None] = mapped_column(Text)  # normalised/remuxed copy in the store
    status: Mapped[str] = mapped_column(String(16), default="pending")  # ok | rejected
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Clip(Base):
    __tablename__ = "clips"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(video uri | start_ms | end_ms)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id"), index=True)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str | None] = mapped_column(Text)  # the clip mp4
    frame_prefix: Mapped[str | None] = mapped_column(Text)  # its 8 sampled frames
    kept: Mapped[bool] = mapped_column(Boolean, default=True)
    filter_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name → score
    reject_reason: Mapped[str | None] = mapped_column(Text)
    phash: Mapped[str | None] = mapped_column(String(64), index=True)
    dedup_cluster: Mapped[str | None] = mapped_column(ID, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # when a synthesis attempt last recorded the clip (its objects are uploaded after that): the
    # garbage collector leaves the objects of a clip claimed within its grace period alone
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Frame(Base):
    __tablename__ = "frames"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(clip id | index | kind)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="sample")  # sample | keyframe
    time_ms: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)


def clip_stored():  # noqa: ANN201 - a SQL condition on Clip
    """Kept clips whose objects are all in the store. Frame rows are written after a clip's uploads
    (and deleted before its objects are), so a kept clip without them is still being stored or lost
    its upload: no consumer (pairs, snapshots, the indexer) may use it."""
    from sqlalchemy import and_, exists

    return and_(Clip.kept.is_(True), exists().where(Frame.clip_id == Clip.id))


class ClipHashBand(Base):
    """Multi-index hashing of stored clips' perceptual hashes (``shared.db.hash_bands``): the
    64-bit pHash cut into ``scheme`` bands, one row per band, indexed by (scheme, band, value), so
    every stored hash within ``scheme - 1`` bits of a query shares at least one row key with it.
    Written with a clip's Frame rows (when it becomes stored), deleted with them."""

    __tablename__ = "clip_hash_bands"
    __table_args__ = (  # covering: a bucket's rows read from the index alone (migration 0008)
        Index("ix_clip_hash_bands_lookup", "scheme", "band", "value", "hash", "clip_id"),
    )
    scheme: Mapped[int] = mapped_column(Integer, primary_key=True)  # number of bands
    band: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clips.id"), primary_key=True, index=True)
    hash: Mapped[int] = mapped_column(BigInteger)  # the whole pHash (signed): verified in SQL


class Caption(Base):
    __tablename__ = "captions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(target | style | model | prompt)
    target_kind: Mapped[str] = mapped_column(String(16))  # clip | frame | composed
    target_id: Mapped[str] = mapped_column(ID, index=True)
    style: Mapped[str] = mapped_column(
        String(32)
    )  # concise | rich | abstract | keywords | partial | query
    text: Mapped[str] = mapped_column(Text)
    info_profile: Mapped[str | None] = mapped_column(String(16))  # spatial | temporal | other
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # what the caption describes and how it was asked for: the keyframe it captions (the pairs'
    # image), the TI2V strategy, the TV2V relation and target (V-SynFlow's prompt lineage)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Pair(Base):
    __tablename__ = "pairs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(task | query ref | target ref)
    task: Mapped[str] = mapped_column(String(8), index=True)  # T2T T2I T2V TI2V TV2V I2V V2V
    domain: Mapped[str | None] = mapped_column(
        String(16)
    )  # coarse | spatial | temporal | long | partial
    video_id: Mapped[str] = mapped_column(ID, index=True)  # source video (duplicate-positive mask)
    dedup_cluster: Mapped[str | None] = mapped_column(ID)
    # the external dataset an imported pair came from (`univr data import`); None: synthesized
    dataset: Mapped[str | None] = mapped_column(String(120), index=True)
    # refs are {"text": str} | {"image": object key} | {"video": clip id, "frames": prefix} | combos
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    hard_negatives: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # what made the pair: the TI2V strategy or TV2V relation of its composed query
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Snapshot(Base):
    __tablename__ = "snapshots"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # content hash of the manifest
    name: Mapped[str] = mapped_column(String(200))
    manifest_key: Mapped[str] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # task → n
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- jobs -----------------------------------------------------------------------------------


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # synth | train | eval | index
    state: Mapped[JobState] = mapped_column(
        Enum(JobState, native_enum=False, length=16), default=JobState.pending
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_id: Mapped[str | None] = mapped_column(ForeignKey("sources.id"))
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(
        JSON
    )  # what it produced (eval: run id, AVG-A)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    # the lease of a long job (train, eval, index: shared/db/lease.py): the worker running it, its
    # last heartbeat, when another worker may take it over; the claims so far; the run's progress
    # (step, dataset, points); the task message that runs it (re-sent on takeover)
    owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class JobItem(Base):
    """One unit of work of a job (one source video for synth), with its state and attempts."""

    __tablename__ = "job_items"
    __table_args__ = (UniqueConstraint("job_id", "item_key"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # uuid5(job id | item key)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    item_key: Mapped[str] = mapped_column(Text)  # e.g. the video URI
    state: Mapped[ItemState] = mapped_column(
        Enum(ItemState, native_enum=False, length=16), default=ItemState.pending, index=True
    )
    stage: Mapped[str | None] = mapped_column(String(32))  # last stage reached
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)  # the clear reason a user reads
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. {"clips": 3}
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class JobCount(Base):
    """How many items of a job are in each state, kept by database triggers on ``job_items`` in
    the same transaction as every insert, state change and delete (migration 0005), so a reader
    (``univr synth status``, ``/metrics``, a job's completion) never counts the items."""

    __tablename__ = "job_counts"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(64), primary_key=True)  # a state, or sum:<name>
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class JobEvent(Base):
    """Append-only log of what happened to an item: stage transitions, rejections, errors."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    item_id: Mapped[str | None] = mapped_column(ForeignKey("job_items.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- training, evaluation, serving ----------------------------------------------------------


class TrainingRun(Base):
    __tablename__ = "training_runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    snapshot_id: Mapped[str | None] = mapped_column(ForeignKey("snapshots.id"))
    base_model: Mapped[str] = mapped_column(Text)
    sampler: Mapped[str] = mapped_column(String(16))  # pyramid | uniform
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # resolved config
    state: Mapped[str] = mapped_column(String(16), default="running")
    step: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class TrainMetric(Base):
    __tablename__ = "train_metrics"
    __table_args__ = (UniqueConstraint("run_id", "step"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("training_runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    task: Mapped[str | None] = mapped_column(String(120))  # a task, or a dataset unit
    loss: Mapped[float] = mapped_column(Float)
    values: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # pos/neg sim, probs, σ, rate
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # run id + step
    run_id: Mapped[str] = mapped_column(ForeignKey("training_runs.id"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    object_prefix: Mapped[str] = mapped_column(Text)
    merged_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvalRun(Base):
    __tablename__ = "eval_runs"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    adapter: Mapped[str | None] = mapped_column(Text)
    checkpoint_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"))
    benchmark: Mapped[str] = mapped_column(Text)  # path or name of the UVRB copy
    abilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # TXT … PR, AVG_A, AVG_D
    report_key: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvalScore(Base):
    __tablename__ = "eval_scores"
    __table_args__ = (UniqueConstraint("eval_run_id", "dataset"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    eval_run_id: Mapped[str] = mapped_column(ForeignKey("eval_runs.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(8))  # R@1 | R@10 | P@1
    score: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # R@1/5/10, MRR, nDCG@10


class IndexVersion(Base):
    __tablename__ = "index_versions"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the Qdrant collection name
    model: Mapped[str] = mapped_column(Text)
    adapter: Mapped[str | None] = mapped_column(Text)
    eval_run_id: Mapped[str | None] = mapped_column(ForeignKey("eval_runs.id"))
    avg_a: Mapped[float | None] = mapped_column(Float)
    points: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(
        String(16), default="building"
    )  # building | ready | live | retired
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(ID, primary_key=True)  # public key id (prefix of the token)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(200))  # never the key itself
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)  # search | jobs | admin
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_pairs_task_video", Pair.task, Pair.video_id)
Index("ix_job_events_created_at", JobEvent.created_at)
Index("ix_job_events_job_id_id", JobEvent.job_id, JobEvent.id)
