"""The trainer's compact view of a snapshot: per pair a few numbers in NumPy columns (its shard and
row, task, dataset, group, split bucket), built by one streaming pass over the shards
(``ShardSource.scan``), and the pairs themselves read on demand (``PairView``).

No Python object per pair outlives the pass: about 20 bytes per pair stay, plus 12 per clip for
the clip → group map of hard negatives (``ClipGroups``). The same index also wraps a list of pair
dicts already in memory (``PairView.of``), so the batcher, the probe, the held-out check and the
miner have one code path."""

from __future__ import annotations

import hashlib
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from shared.contracts.pairs import TASKS
from shared.contracts.snapshot import SPLIT_BUCKETS, split_bucket

FETCH_CHUNK = 1024  # pairs read at a time when a view is iterated


def group_key(pair: dict[str, Any]) -> int:
    """A pair's group (``data.group_of``): the hash of its ``dedup_cluster``, else its video."""
    return zlib.crc32(str(pair.get("dedup_cluster") or pair["video_id"]).encode()) & 0x7FFFFFFF


def clip_key(clip_id: str) -> int:
    """A 64-bit key of a clip id (the clip → group map keeps keys, not strings)."""
    return int.from_bytes(
        hashlib.blake2b(clip_id.encode(), digest_size=8).digest(), "little", signed=True
    )


class ClipGroups:
    """clip id → group of the pairs whose target is that clip and whose query holds no video (the
    first such pair in snapshot order), as two sorted arrays; ``get`` as a dict's."""

    def __init__(self, keys: np.ndarray, groups: np.ndarray):
        uniq, first = np.unique(keys, return_index=True)  # the first pair of each clip wins
        self.keys, self.groups = uniq, groups[first]

    def get(self, clip_id: str, default: int) -> int:
        k = clip_key(clip_id)
        i = int(np.searchsorted(self.keys, k))
        return int(self.groups[i]) if i < len(self.keys) and self.keys[i] == k else default

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class PairIndex:
    """Per pair, in snapshot order: ``shard``/``row`` (where it is read), ``task`` (index into
    ``TASKS``), ``dataset`` (index into ``datasets``; -1: synthesized), ``group`` (``group_key``),
    ``bucket`` (its video's split bucket, ``is_heldout``) and ``recorded`` (its row says
    ``split: heldout``)."""

    shard: np.ndarray
    row: np.ndarray
    task: np.ndarray
    dataset: np.ndarray
    group: np.ndarray
    bucket: np.ndarray
    recorded: np.ndarray
    datasets: list[str]
    clip_groups: ClipGroups

    @classmethod
    def build(cls, rows: Iterable[tuple[int, int, dict[str, Any]]]) -> PairIndex:
        """The index of (shard, row, pair) triples, keeping nothing else of each pair."""
        cols = {
            k: array(t)
            for k, t in (
                ("shard", "i"),
                ("row", "i"),
                ("task", "b"),
                ("dataset", "h"),
                ("group", "i"),
                ("bucket", "h"),
                ("recorded", "b"),
            )
        }
        clips, clip_group = array("q"), array("i")
        names: dict[str, int] = {}
        for shard, row, p in rows:
            g = group_key(p)
            ds = p.get("dataset")
            cols["shard"].append(shard)
            cols["row"].append(row)
            cols["task"].append(TASKS.index(p["task"]))
            cols["dataset"].append(names.setdefault(ds, len(names)) if ds else -1)
            cols["group"].append(g)
            cols["bucket"].append(split_bucket(p["video_id"]))
            cols["recorded"].append(p.get("split") == "heldout")
            video = p["target"].get("video")
            if video and "video" not in p["query"]:
                clips.append(clip_key(str(video["clip_id"])))
                clip_group.append(g)
        # the arrays' own buffers (no copy: the pass's peak is the index, not twice it)
        arrays = {k: np.frombuffer(v, dtype=np.dtype(v.typecode)) for k, v in cols.items()}
        arrays["recorded"] = arrays["recorded"].astype(bool)
        keys = np.frombuffer(clips, dtype=np.int64)
        groups = ClipGroups(keys, np.frombuffer(clip_group, dtype=np.int32))
        return cls(**arrays, datasets=list(names), clip_groups=groups)

    def __len__(self) -> int:
        return len(self.shard)

    def heldout(self, fraction: float) -> np.ndarray:
        """Pairs of held-out source videos (``is_heldout(video_id, fraction)``)."""
        return self.bucket < fraction * SPLIT_BUCKETS

    def units(self, unit: str = "task") -> tuple[np.ndarray, list[str]]:
        """Each pair's Modality Pyramid unit (``data.unit_of``) as a code, and the codes' names:
        its task, or its dataset (synthesized pairs: ``UVRD-<task>``)."""
        if unit != "dataset":
            return self.task, list(TASKS)
        names = [*self.datasets, *(f"UVRD-{t}" for t in TASKS)]
        codes = np.where(
            self.dataset >= 0, self.dataset, self.task.astype(np.int32) + len(self.datasets)
        )
        return codes, names

    def nbytes(self) -> int:
        cols = (self.shard, self.row, self.task, self.dataset, self.group, self.bucket)
        return sum(c.nbytes for c in (*cols, self.recorded)) + self.clip_groups.keys.nbytes * 2


class PairView(Sequence[dict[str, Any]]):
    """The pairs at ``positions`` of the index ``compact``, read on demand from ``fetch`` (shards,
    rows → pairs); ``negatives`` (pair id → hard negatives, the miner's) replaces the stored
    ones."""

    def __init__(self, index: PairIndex, positions: np.ndarray, fetch: Any):  # noqa: ANN401
        self.compact, self.positions, self._fetch = (
            index,
            np.asarray(positions, dtype=np.int32),
            fetch,
        )
        self.negatives: dict[str, list[dict[str, Any]]] | None = None

    @classmethod
    def of(cls, pairs: Sequence[dict[str, Any]]) -> PairView:
        """A view of pairs already in memory (each fetch returns the very dicts)."""
        if isinstance(pairs, PairView):
            return pairs
        items = list(pairs)
        index = PairIndex.build((0, i, p) for i, p in enumerate(items))
        return cls(index, np.arange(len(items)), lambda _s, rows: [items[r] for r in rows])

    def subset(self, mask_or_idx: np.ndarray) -> PairView:
        """The pairs of this view that ``mask_or_idx`` (a mask or positions in it) picks."""
        view = PairView(self.compact, self.positions[mask_or_idx], self._fetch)
        view.negatives = self.negatives
        return view

    def column(self, name: str) -> np.ndarray:
        return getattr(self.compact, name)[self.positions]

    def tasks(self) -> np.ndarray:
        return np.array(TASKS, dtype=object)[self.column("task")]

    def task_counts(self) -> dict[str, int]:
        return dict(Counter(TASKS[t] for t in self.column("task").tolist()))

    def of_task(self, task: str) -> PairView:
        return self.subset(self.column("task") == TASKS.index(task))

    def take(self, idx: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """The pairs at positions ``idx`` of this view, read together."""
        pos = self.positions[np.asarray(idx, dtype=np.int64)]
        pairs = self._fetch(self.compact.shard[pos].tolist(), self.compact.row[pos].tolist())
        if self.negatives is not None:
            for p in pairs:
                p["hard_negatives"] = self.negatives.get(p["id"], [])
        return pairs

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return self.take(range(len(self))[i])
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.take([i % len(self)])[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), FETCH_CHUNK):
            yield from self.take(range(start, min(start + FETCH_CHUNK, len(self))))
