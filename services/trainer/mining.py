"""Mined hard negatives (SPEC §4.3): the prober's nearest candidates that are not the positive.

Candidates are the distinct targets of the training pairs (held-out pairs never feed training, not
even as negatives), one pool per target kind (video clips, images, texts), each embedded once with
the prober. For every pair of a task with K > 0, the query (with its task instruction) takes the
top-K candidates of its target's kind by cosine, skipping the false negatives: its own positive,
any candidate of its dedup cluster and any candidate from its source video (a candidate's clusters
and videos are those of every pair that targets it, and those its video ref names). The search is
the exact blocked top-k of shared/topk.py, asked for K plus the most exclusions any query of the
task has, so the K kept are exactly the best K allowed.

The pairs are read in passes over the (lazily read) snapshot: the candidate pools are built in one
pass, then one task's pairs are held at a time; the mined negatives apply as pairs are read
(``PairView.negatives``). The trainer mines whenever the prober changes (each epoch);
each epoch's negatives are stored with the run's checkpoints, so a resumed run trains on the same
ones. Cost (items embedded, seconds) and spread (how far the negatives are from the positives)
go to stderr and into the stored record."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from services.trainer.data import side_input
from services.trainer.heldout import embed_shared
from services.trainer.mining_spread import print_spread, task_spread
from services.trainer.pairindex import PairView
from shared.config import TrainSettings
from shared.model import TASK_INSTRUCTIONS, EmbedInput
from shared.storage import get_store
from shared.topk import blocked_topk

Embed = Callable[[list[EmbedInput]], np.ndarray]


def target_kind(side: dict[str, Any]) -> str:
    return "video" if side.get("video") else "image" if side.get("image") else "text"


def side_key(side: dict[str, Any]) -> str:
    """What identifies a candidate: a clip id, an image key or a text."""
    if side.get("video"):
        return "clip:" + str(side["video"]["clip_id"])
    if side.get("image"):
        return f"image:{side['image']}"
    return f"text:{side.get('text', '')}"


def _cluster(pair: dict[str, Any]) -> str:
    return str(pair.get("dedup_cluster") or pair["video_id"])


@dataclass
class Pool:
    """The distinct candidates of one target kind, with the videos and clusters each belongs to."""

    sides: list[dict[str, Any]] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    videos: list[set[str]] = field(default_factory=list)
    clusters: list[set[str]] = field(default_factory=list)

    def add(self, side: dict[str, Any], pair: dict[str, Any]) -> None:
        key = side_key(side)
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.sides)
            self.sides.append(side)
            self.videos.append(set())
            self.clusters.append(set())
        self.videos[i].add(str(pair["video_id"]))
        ref = side.get("video") or {}
        if ref.get("video_id"):
            self.videos[i].add(str(ref["video_id"]))
        if ref.get("dedup_cluster"):
            self.clusters[i].add(str(ref["dedup_cluster"]))
        if (
            "video" not in pair["query"]
        ):  # a TV2V pair's cluster is its query clip's (data.clip_groups)
            self.clusters[i].add(_cluster(pair))

    def negative(self, i: int) -> dict[str, Any]:
        """Candidate ``i`` as a hard negative, carrying its group (data.hard_group reads it)."""
        side = json.loads(json.dumps(self.sides[i]))
        video_id, cluster = min(self.videos[i]), min(self.clusters[i] or self.videos[i])
        if side.get("video"):
            side["video"].setdefault("video_id", video_id)
            side["video"].setdefault("dedup_cluster", cluster)
        return {**side, "video_id": video_id, "dedup_cluster": cluster}


def build_pools(pairs: Iterable[dict[str, Any]]) -> dict[str, Pool]:
    pools: dict[str, Pool] = {}
    for p in pairs:
        pools.setdefault(target_kind(p["target"]), Pool()).add(p["target"], p)
    return pools


def excluded(
    pair: dict[str, Any], pool: Pool, by_video: dict[str, set[int]], by_cluster: dict[str, set[int]]
) -> set[int]:
    """Candidates that must not be this pair's negatives: its positive, its query's own item,
    anything of its dedup cluster or source video."""
    out = set(by_video.get(str(pair["video_id"]), ())) | set(by_cluster.get(_cluster(pair), ()))
    for side in (pair["target"], pair["query"]):
        for key in [side_key(side)] + (
            [side_key({"video": side["video"]})] if side.get("video") else []
        ):
            if key in pool.index:
                out.add(pool.index[key])
    return out


@dataclass(frozen=True)
class Guard:
    """Guards beyond the identity ones, off by default: ``max_uses`` (> 0) lets one candidate be
    a mined negative of at most that many queries of a task (queries in snapshot order), against
    hubs a weak prober puts near everything; ``positive_ratio`` (> 0) skips candidates the prober
    scores above that fraction of the query's positive cosine, as likely false negatives (NV-
    Retriever's positive-aware mining). With either on, the search looks ``depth`` candidates
    further than K plus the exclusions."""

    max_uses: int = 0
    positive_ratio: float = 0.0
    depth: int = 64

    @property
    def on(self) -> bool:
        return self.max_uses > 0 or self.positive_ratio > 0

    @classmethod
    def from_settings(cls, ts: TrainSettings) -> Guard:
        return cls(ts.mined_max_uses, ts.mined_positive_ratio, ts.mined_search_depth)


def mine(
    pairs: Sequence[dict[str, Any]],
    embed: Embed,
    k_per_task: dict[str, int],
    guard: Guard | None = None,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """pair id → its mined negatives (best first) for every pair of a task with K > 0, and the cost
    ``{"queries", "candidates", "embedded", "seconds", "spread"}`` (spread: per task, how far the
    negatives are from the positives, services/trainer/mining_spread.py). ``embed`` maps inputs to
    unit rows."""
    t0 = time.perf_counter()
    view = PairView.of(pairs)  # read in passes; one task's pairs are held at a time
    pools = build_pools(view)
    tasks = view.tasks()
    wanted = view.subset(np.array([k_per_task.get(t, 0) > 0 for t in tasks], dtype=bool))
    emb: dict[str, np.ndarray] = {}
    for kind in sorted({target_kind(p["target"]) for p in wanted}):
        emb[kind] = embed([side_input(s, None) for s in pools[kind].sides])
    out: dict[str, list[dict[str, Any]]] = {}
    spread: dict[str, dict[str, Any]] = {}
    for task in sorted(set(wanted.tasks().tolist())):
        task_pairs = list(wanted.of_task(task))
        queries = embed([side_input(p["query"], TASK_INSTRUCTIONS.get(task)) for p in task_pairs])
        kinds = sorted({target_kind(p["target"]) for p in task_pairs})
        for kind in kinds:
            rows = [n for n, p in enumerate(task_pairs) if target_kind(p["target"]) == kind]
            pool, q = pools[kind], queries[rows]
            positives = [pool.index.get(side_key(task_pairs[n]["target"]), -1) for n in rows]
            mined = [task_pairs[n] for n in rows]
            kept = _mine_rows(mined, q, emb[kind], pool, positives, k_per_task[task], guard)
            for n, keep in zip(rows, kept, strict=True):
                out[task_pairs[n]["id"]] = [pool.negative(i) for i in keep]
            key = task if len(kinds) == 1 else f"{task}/{kind}"
            spread[key] = task_spread(q, emb[kind], positives, kept)
    n_cand = sum(len(emb[kind]) for kind in emb)
    cost = {
        "queries": len(wanted),
        "candidates": n_cand,
        "embedded": len(wanted) + n_cand,
        "seconds": round(time.perf_counter() - t0, 3),
        "spread": spread,
    }
    return out, cost


def _mine_rows(
    pairs: list[dict[str, Any]],
    queries: np.ndarray,
    candidates: np.ndarray,
    pool: Pool,
    positives: list[int],
    k: int,
    guard: Guard | None,
) -> list[list[int]]:
    """Each pair's K best allowed candidates of ``pool`` (indices, best first)."""
    guard = guard or Guard()
    by_video: dict[str, set[int]] = {}
    by_cluster: dict[str, set[int]] = {}
    for i in range(len(pool.sides)):
        for v in pool.videos[i]:
            by_video.setdefault(v, set()).add(i)
        for c in pool.clusters[i]:
            by_cluster.setdefault(c, set()).add(i)
    skip = [excluded(p, pool, by_video, by_cluster) for p in pairs]
    depth = k + max(map(len, skip), default=0) + (guard.depth if guard.on else 0)
    scores, top = blocked_topk(queries, candidates, depth)
    if not guard.on:
        return [
            [int(i) for i in cand if int(i) not in banned][:k]
            for banned, cand in zip(skip, top, strict=True)
        ]
    pos_cos = [
        float(queries[n] @ candidates[p]) if p >= 0 else float("inf")
        for n, p in enumerate(positives)
    ]
    uses: dict[int, int] = {}
    kept = []
    for row, cand, banned, pc in zip(scores, top, skip, pos_cos, strict=True):
        keep: list[int] = []
        for score, i in zip(row, map(int, cand), strict=True):
            if len(keep) == k:
                break
            if i in banned or (guard.max_uses and uses.get(i, 0) >= guard.max_uses):
                continue
            if guard.positive_ratio > 0 and score > guard.positive_ratio * pc:
                continue
            keep.append(i)
            uses[i] = uses.get(i, 0) + 1
        kept.append(keep)
    return kept


@torch.no_grad()
def prober_embed(prober: Any, rank: int = 0, world: int = 1) -> Embed:  # noqa: ANN401 (an Embedder)
    """The prober's embedding in eval mode; under ``world`` processes each embeds every world-th
    item and the rows are all-reduced, so every process gets the same matrix (call together)."""

    def embed(items: list[EmbedInput]) -> np.ndarray:
        was = prober.model.training
        prober.model.eval()
        try:
            return embed_shared(prober, items, rank, world)
        finally:
            prober.model.train(was)

    return embed


def mine_for_epoch(
    pairs: Sequence[dict[str, Any]],
    prober: Any,
    ts: TrainSettings,
    run_id: str,  # noqa: ANN401
    epoch: int,
    rank: int = 0,
    world: int = 1,
    spreads: dict[int, Any] | None = None,
) -> int:
    """Set every training pair's ``hard_negatives`` to those mined with this epoch's prober (read
    back from the run's store record when it exists: a resumed run keeps its negatives); pairs of
    tasks with K = 0 get none; the epoch's spread goes into ``spreads``. Returns ``epoch``. All
    processes call it together."""
    key = f"checkpoints/{run_id}/mined/epoch-{epoch:03d}.json"
    store = get_store()
    have = torch.tensor([int(store.exists(key))])
    if world > 1:
        torch.distributed.all_reduce(have, op=torch.distributed.ReduceOp.MIN)
    if int(have):
        record = json.loads(store.get_bytes(key))
    else:
        with torch.no_grad():
            negatives, cost = mine(
                pairs,
                prober_embed(prober, rank, world),
                ts.mined_negatives_per_task,
                Guard.from_settings(ts),
            )
        record = {"epoch": epoch, "cost": cost, "negatives": negatives}
        if rank == 0:
            store.put_bytes(key, json.dumps(record).encode(), "application/json")
    cost = record["cost"]
    if rank == 0:
        print(
            f"mined hard negatives for epoch {epoch}: {cost['queries']} queries x "
            f"{cost['candidates']} candidates, {cost['embedded']} items embedded in "
            f"{cost['seconds']} s" + (" (stored)" if int(have) else ""),
            file=sys.stderr,
        )
        print_spread(epoch, cost.get("spread") or {})
    if spreads is not None:
        spreads[epoch] = cost.get("spread") or {}
    if isinstance(pairs, PairView):  # applied as its pairs are read
        pairs.negatives = record["negatives"]
    else:
        for p in pairs:
            p["hard_negatives"] = record["negatives"].get(p["id"], [])
    return epoch
