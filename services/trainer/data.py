"""Training data from a dataset snapshot: pairs grouped by task, single-task batches of distinct
source videos, inputs resolved to the embedder's ``EmbedInput`` (frames read from the object
store, decoded once through the embedder's frame cache)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.model import TASK_INSTRUCTIONS, EmbedInput, VideoFrames
from shared.storage import get_store


@dataclass
class Snapshot:
    id: str
    manifest: dict[str, Any]
    pairs: list[dict[str, Any]]


def load_snapshot(snapshot_id: str) -> Snapshot:
    store = get_store()
    manifest = json.loads(store.get_bytes(f"snapshots/{snapshot_id}/manifest.json"))
    lines = store.get_bytes(manifest["pairs_key"]).decode().splitlines()
    return Snapshot(snapshot_id, manifest, [json.loads(line) for line in lines if line.strip()])


def heldout(video_id: str, fraction: float) -> bool:
    """A stable split by source video: the same videos are held out in every run."""
    return (zlib.crc32(video_id.encode()) % 1000) < fraction * 1000


def group_of(pair: dict[str, Any]) -> int:
    return zlib.crc32(str(pair.get("dedup_cluster") or pair["video_id"]).encode()) & 0x7FFFFFFF


def side_input(side: dict[str, Any], instruction: str | None) -> EmbedInput:
    video = side.get("video")
    return EmbedInput(text=side.get("text"), image=f"store://{side['image']}" if side.get("image") else None,
                      video=VideoFrames(video["frames"]) if video else None, instruction=instruction)


class PairBatcher:
    """Draws single-task batches whose pairs come from distinct groups where possible."""

    def __init__(self, pairs: list[dict[str, Any]], seed: int = 0):
        self.by_task: dict[str, list[dict[str, Any]]] = {}
        for p in pairs:
            self.by_task.setdefault(p["task"], []).append(p)
        self.rng = np.random.default_rng(seed)

    @property
    def tasks(self) -> list[str]:
        return sorted(self.by_task)

    def batch(self, task: str, size: int) -> list[dict[str, Any]]:
        pool = self.by_task[task]
        order = self.rng.permutation(len(pool))
        chosen, seen = [], set()
        for i in order:  # prefer one pair per group; fill up with the rest if the task is small
            g = group_of(pool[i])
            if g not in seen:
                chosen.append(pool[i])
                seen.add(g)
            if len(chosen) == size:
                return chosen
        for i in order:
            if len(chosen) == size:
                break
            if pool[i] not in chosen:
                chosen.append(pool[i])
        while len(chosen) < size:  # tiny tasks: repeat (masked as duplicates in the loss)
            chosen.append(pool[int(self.rng.integers(len(pool)))])
        return chosen

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def to_inputs(batch: list[dict[str, Any]], task: str) -> tuple[list[EmbedInput], list[EmbedInput], list[EmbedInput], list[int], list[int]]:
    instruction = TASK_INSTRUCTIONS.get(task)
    queries = [side_input(p["query"], instruction) for p in batch]
    targets = [side_input(p["target"], None) for p in batch]
    groups = [group_of(p) for p in batch]
    hard, hard_groups = [], []
    for p in batch:
        for neg in p.get("hard_negatives") or []:
            hard.append(side_input(neg, None))
            hard_groups.append(zlib.crc32(str(neg.get("video", {}).get("clip_id", "")).encode()) & 0x7FFFFFFF)
    return queries, targets, hard, groups, hard_groups
