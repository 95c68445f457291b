"""Training data from a dataset snapshot: pairs grouped by task, single-task batches of distinct
source videos (the same global batch on every process, each taking its slice), inputs resolved to
the embedder's ``EmbedInput`` (frames read from the object store, decoded once through the
embedder's frame cache).

The trainer reads its snapshot lazily (``open_snapshot``): one streaming pass keeps a compact
index of the pairs (``services.trainer.pairindex``), and a batch's pairs are read from their
shards when it is drawn (``services.trainer.shards``), so memory is bounded by a few row groups,
not by the snapshot. ``load_snapshot`` (every pair in memory) remains for tools and tests.

Groups: a pair's group is its ``dedup_cluster`` (else its ``video_id``); in-batch candidates of the
positive's group are not negatives. A hard negative belongs to the group of its clip, the same
definition: the ``dedup_cluster``/``video_id`` it carries, else the group of the snapshot's pairs
whose target is that clip, else its own clip id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from services.trainer.pairindex import PairIndex, PairView, group_key
from services.trainer.shards import ShardSource
from shared.contracts.pairs import TASKS
from shared.contracts.snapshot import is_heldout
from shared.model import TASK_INSTRUCTIONS, EmbedInput, VideoFrames
from shared.snapshots import iter_pairs, read_manifest
from shared.storage import get_store


@dataclass
class Snapshot:
    id: str
    manifest: dict[str, Any]
    pairs: list[dict[str, Any]]


def iter_snapshot_pairs(snapshot_id: str) -> Iterator[dict[str, Any]]:
    """A snapshot's pairs, read lazily (one Parquet shard, or one line of an older JSON-lines
    snapshot, at a time) and each validated against the ``Pair`` contract."""
    store = get_store()
    yield from iter_pairs(store, read_manifest(store, snapshot_id))


class GroupLookup(Protocol):
    """clip id → group: a dict (``clip_groups``) or the index's ``ClipGroups``."""

    def get(self, key: str, default: int, /) -> int: ...


@dataclass
class LazySnapshot:
    """A snapshot as the trainer reads it: its manifest, the compact index of its pairs (one
    streaming pass) and a view of all of them, read on demand through ``source``'s cache of
    ``cache_groups`` row groups (``train.shard_cache``)."""

    id: str
    manifest: dict[str, Any]
    source: ShardSource
    pairs: PairView


def open_snapshot(snapshot_id: str, cache_groups: int = 16) -> LazySnapshot:
    """Index a snapshot in one pass over its shards (checked against the manifest); no pair is
    kept in memory."""
    store = get_store()
    manifest = read_manifest(store, snapshot_id)
    source = ShardSource(store, manifest, cache_groups)
    index = PairIndex.build(source.scan())
    view = PairView(index, np.arange(len(index)), source.fetch)
    return LazySnapshot(snapshot_id, manifest.model_dump(exclude_none=True), source, view)


def load_snapshot(snapshot_id: str) -> Snapshot:
    """A snapshot's manifest (validated) and all its pairs in memory (tools and tests; the trainer
    reads lazily: ``open_snapshot``)."""
    store = get_store()
    manifest = read_manifest(store, snapshot_id)
    return Snapshot(
        snapshot_id, manifest.model_dump(exclude_none=True), list(iter_pairs(store, manifest))
    )


def heldout(video_id: str, fraction: float) -> bool:
    """A stable split by source video: the same videos are held out in every run."""
    return is_heldout(video_id, fraction)


def recorded_holdout(snap: Snapshot) -> float:
    """The held-out fraction the snapshot was written with (0.0: none recorded)."""
    return float((snap.manifest.get("splits") or {}).get("holdout_fraction") or 0.0)


def split_pairs(
    snap: Snapshot, fraction: float = 0.0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train pairs, held-out pairs). A snapshot written with a held-out split (``univr data
    snapshot --holdout F``) uses the split it records, whatever ``fraction`` says; otherwise the
    pairs of the fraction ``fraction`` of source videos are held out (``heldout``). Either way the
    two sides share no source video. The trainer's held-out probe takes the second list."""
    if recorded_holdout(snap):
        train = [p for p in snap.pairs if p.get("split", "train") != "heldout"]
        return train, [p for p in snap.pairs if p.get("split") == "heldout"]
    train = [p for p in snap.pairs if not heldout(p["video_id"], fraction)]
    return train, [p for p in snap.pairs if heldout(p["video_id"], fraction)]


def _hash(key: str) -> int:
    return group_key({"video_id": key})


def group_of(pair: dict[str, Any]) -> int:
    return group_key(pair)


def clip_groups(pairs: list[dict[str, Any]]) -> dict[str, int]:
    """clip id → group, from the pairs whose target is that clip and whose query holds no video
    (in a TV2V pair the target is the *next* clip, of another dedup cluster)."""
    out: dict[str, int] = {}
    for p in pairs:
        video = p["target"].get("video")
        if video and "video" not in p["query"]:
            out.setdefault(video["clip_id"], group_of(p))
    return out


def hard_group(neg: dict[str, Any], groups: GroupLookup) -> int:
    """The group of a hard negative, defined as for a positive (see the module docstring)."""
    video = neg.get("video") or {}
    own = (
        neg.get("dedup_cluster")
        or video.get("dedup_cluster")
        or neg.get("video_id")
        or video.get("video_id")
    )
    if own:
        return _hash(str(own))
    clip = str(video.get("clip_id", ""))
    return groups.get(clip, _hash(clip))


NO_GROUPS: dict[str, int] = {}


def side_input(side: dict[str, Any], instruction: str | None) -> EmbedInput:
    video = side.get("video")
    return EmbedInput(
        text=side.get("text"),
        image=f"store://{side['image']}" if side.get("image") else None,
        video=VideoFrames(video["frames"], fps=video.get("fps")) if video else None,
        instruction=instruction,
    )


def unit_of(pair: dict[str, Any], unit: str = "task") -> str:
    """A pair's Modality Pyramid unit (``train.pyramid_unit``): its task, or its dataset (an
    imported dataset's name; synthesized pairs by task as ``UVRD-<task>``, SPEC Table 7)."""
    if unit == "dataset":
        return pair.get("dataset") or f"UVRD-{pair['task']}"
    return pair["task"]


class PairBatcher:
    """Draws single-unit batches (one task, or one dataset: ``unit``) whose pairs come from
    distinct groups where possible. ``pools`` holds each unit's pairs as positions of ``pairs`` (a
    ``PairView``: a lazily read snapshot, or a list in memory); a batch's pairs are read when it is
    drawn. ``by_task`` is each unit's pairs as a view."""

    def __init__(self, pairs: Sequence[dict[str, Any]], seed: int = 0, unit: str = "task"):
        """Every process builds it from the same pairs and seed, so all draw the same batches."""
        self.pairs = PairView.of(pairs)
        codes, names = self.pairs.compact.units(unit)
        codes = codes[self.pairs.positions]
        present = np.flatnonzero(np.bincount(codes, minlength=len(names)))
        self.pools: dict[str, np.ndarray] = {}
        for name in sorted({names[c] for c in present}):
            same = [c for c in present if names[c] == name]  # a dataset named UVRD-<task>
            self.pools[name] = np.flatnonzero(np.isin(codes, same)).astype(np.int32)
        self.groups = self.pairs.column("group")
        self.rng = np.random.default_rng(seed)

    @property
    def by_task(self) -> dict[str, PairView]:
        return {u: self.pairs.subset(pool) for u, pool in self.pools.items()}

    def task_of(self, unit: str) -> str:
        """The task type of a unit's pairs (a dataset holds one task type)."""
        return TASKS[int(self.pairs.column("task")[self.pools[unit][0]])]

    @property
    def tasks(self) -> list[str]:
        return sorted(self.pools)

    def draw(self, task: str, size: int) -> list[int]:
        """A batch as positions in ``pairs``: in a random order of the unit's pairs, the first of
        each group; filled up with the rest in that order if the unit has too few groups, then
        (tiny units) with random repeats, masked as duplicates in the loss."""
        pool = self.pools[task]
        order = self.rng.permutation(len(pool))
        _, first = np.unique(self.groups[pool[order]], return_index=True)
        chosen = order[np.sort(first)[:size]].tolist()
        if len(chosen) < size:
            taken = set(chosen)
            chosen += [i for i in order.tolist() if i not in taken][: size - len(chosen)]
        while len(chosen) < size:
            chosen.append(int(self.rng.integers(len(pool))))
        return pool[chosen].tolist()

    def batch(self, task: str, size: int) -> list[dict[str, Any]]:
        return self.pairs.take(self.draw(task, size))

    def local_batch(self, task: str, size: int, rank: int, world: int) -> list[dict[str, Any]]:
        """This process's ``size`` pairs: slice ``rank`` of the global batch of ``size × world``,
        which every process draws identically (distinct groups across the whole global batch)."""
        return self.pairs.take(self.draw(task, size * world)[rank * size : (rank + 1) * size])

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def to_inputs(
    batch: list[dict[str, Any]],
    task: str,
    groups_of_clips: GroupLookup | None = None,
) -> tuple[list[EmbedInput], list[EmbedInput], list[EmbedInput], list[int], list[int]]:
    """Queries, targets, hard negatives and their group ids; ``groups_of_clips`` (``clip_groups``
    of the whole snapshot) places hard negatives in their clips' groups."""
    instruction = TASK_INSTRUCTIONS.get(task)
    queries = [side_input(p["query"], instruction) for p in batch]
    targets = [side_input(p["target"], None) for p in batch]
    groups = [group_of(p) for p in batch]
    hard, hard_groups = [], []
    for p in batch:
        for neg in p.get("hard_negatives") or []:
            hard.append(side_input(neg, None))
            hard_groups.append(hard_group(neg, groups_of_clips or NO_GROUPS))
    return queries, targets, hard, groups, hard_groups
