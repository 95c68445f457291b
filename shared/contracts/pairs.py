"""A training pair as synthesis writes it and the trainer, the indexer and the garbage collector
read it (a snapshot row): a query side, a target side and hard negatives, each a ``Side`` naming
text, an image (object key) and/or a video (a clip's frames, or a whole video by ``video:<id>``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TASKS = ("T2T", "T2I", "T2V", "TI2V", "TV2V", "I2V", "V2V")
Task = Literal["T2T", "T2I", "T2V", "TI2V", "TV2V", "I2V", "V2V"]
Split = Literal["train", "heldout"]


class VideoRef(BaseModel):
    """A clip (or a whole video: ``clip_id`` is ``video:<id>``) by its stored frames."""

    model_config = ConfigDict(extra="allow")
    clip_id: str
    frames: list[str]
    fps: float | None = None
    video_id: str | None = None
    dedup_cluster: str | None = None


class Side(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str | None = None
    image: str | None = None
    video: VideoRef | None = None


class Pair(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    task: Task
    domain: str | None = None
    video_id: str
    dedup_cluster: str | None = None
    dataset: str | None = None  # an imported pair's dataset; None: synthesized (UVRD)
    query: Side
    target: Side
    hard_negatives: list[Side] = []
    split: Split = "train"

    def as_dict(self) -> dict[str, Any]:
        """The plain form consumers index (``pair["query"]["video"]["frames"]``), unset fields
        of the sides left out."""
        out = self.model_dump(exclude={"query", "target", "hard_negatives"})
        out["query"] = self.query.model_dump(exclude_none=True)
        out["target"] = self.target.model_dump(exclude_none=True)
        out["hard_negatives"] = [n.model_dump(exclude_none=True) for n in self.hard_negatives]
        return out
