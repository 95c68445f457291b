"""A dataset snapshot's manifest (``snapshots/<id>/manifest.json``, ``shared.layout``): what the
synthesis service writes and the trainer, the indexer and the garbage collector read. A snapshot
is either Parquet shards (``shards``, each with its row count and SHA-256) or, as written before
shards, one JSON-lines file (``pairs_key``). The held-out split is by source video
(``is_heldout``) and recorded in ``splits``."""

from __future__ import annotations

import zlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPLIT_BUCKETS = 1000


def split_bucket(video_id: str) -> int:
    """A source video's split bucket, in [0, SPLIT_BUCKETS): the lowest ``fraction`` of them are
    held out."""
    return zlib.crc32(video_id.encode()) % SPLIT_BUCKETS


def is_heldout(video_id: str, fraction: float) -> bool:
    """A stable split by source video: the same videos are held out in every run and service."""
    return split_bucket(video_id) < fraction * SPLIT_BUCKETS


class Shard(BaseModel):
    key: str
    rows: int = Field(ge=0)
    sha256: str
    bytes: int = Field(ge=0)


class Splits(BaseModel):
    """Which pairs are held out: every pair of a held-out source video (``is_heldout``)."""

    model_config = ConfigDict(extra="allow")
    holdout_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    by: Literal["video_id"] = "video_id"
    train: int = 0
    heldout: int = 0
    train_videos: int = 0
    heldout_videos: int = 0


class SnapshotManifest(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str = ""
    created_at: str | None = None
    format: Literal["jsonl", "parquet"] = "jsonl"
    counts: dict[str, int] = {}
    pairs: int | None = None
    videos: int | None = None
    splits: Splits | None = None
    skipped: dict[str, int] = {}
    # per dataset ("uvrd": synthesized): {"pairs", "tasks": {task: n}} and, for an imported
    # dataset, its recorded "hard_negatives" and "batch_size" (SPEC Table 6), "format", "path"
    datasets: dict[str, dict[str, Any]] = {}
    # pairs by task and variant: a T2V/T2I query's caption style, a TI2V strategy, a TV2V relation
    variants: dict[str, dict[str, int]] = {}
    pairs_key: str | None = None
    shards: list[Shard] = []

    @model_validator(mode="before")
    @classmethod
    def _old(cls, data: Any) -> Any:
        """Manifests written before splits were recorded carry ``"splits": {}``."""
        if isinstance(data, dict) and data.get("splits") == {}:
            data = {**data, "splits": None}
        return data

    @model_validator(mode="after")
    def _names_pairs(self) -> SnapshotManifest:
        if self.format == "parquet" and self.pairs_key:
            raise ValueError("a Parquet snapshot names its shards, not a pairs_key")
        if self.format == "jsonl" and not self.pairs_key and not self.shards:
            raise ValueError("a snapshot manifest names no pairs (neither shards nor pairs_key)")
        return self
