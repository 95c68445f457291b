"""The world snapshot builder the trainer's tests use: it lives in shared/world/snapshot.py
(`univr media snapshot`); re-exported here for the tests' imports."""

from shared.world.snapshot import FRAMES_PER_CLIP, _store_clip, build_world_snapshot

__all__ = ["FRAMES_PER_CLIP", "_store_clip", "build_world_snapshot"]
