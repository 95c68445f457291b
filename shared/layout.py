"""The object-store layout every service shares: where synthesis puts a clip's file, frames and
keyframe, a whole video's frames, and a dataset snapshot's manifest and pair shards; and how a
pair names a whole video instead of a clip (``video:<id>``). No service types these strings
itself: it calls these functions.

    clips/<clip id>/clip.mp4            the clip (stream copy or re-encode)
    clips/<clip id>/frames/<NN>.jpg     its uniformly sampled frames
    clips/<clip id>/key/00.jpg          its keyframe
    videos/<video id>/frames/<NN>.jpg   frames of the whole source video
    snapshots/<snapshot id>/manifest.json, pairs/part-<NNNNN>.parquet (or pairs.jsonl: older)
    imports/<dataset>/dataset.json      an imported dataset's info (`univr data import`)
    imports/<dataset>/<item>/image.jpg, frames/<NN>.jpg   its images and videos' frames
    raw/<video id>/source<.ext>         a web source's downloaded video (a URL manifest's row)
"""

from __future__ import annotations

CLIPS = "clips/"
VIDEOS = "videos/"
SNAPSHOTS = "snapshots/"
IMPORTS = "imports/"
RAW = "raw/"
VIDEO_REF = "video:"  # how a pair side names a whole video instead of a clip
MANIFEST = "manifest.json"


def clip_prefix(clip_id: str) -> str:
    """Every object of one clip lies under this prefix."""
    return f"{CLIPS}{clip_id}/"


def clip_key(clip_id: str) -> str:
    return f"{clip_prefix(clip_id)}clip.mp4"


def clip_frame_prefix(clip_id: str) -> str:
    return f"{clip_prefix(clip_id)}frames/"


def frame_key(prefix: str, i: int) -> str:
    """Frame ``i`` under a frame prefix (a clip's ``frame_prefix`` or a video's)."""
    return f"{prefix}{i:02d}.jpg"


def frame_keys(clip_id: str, n: int) -> list[str]:
    return [frame_key(clip_frame_prefix(clip_id), i) for i in range(n)]


def keyframe_key(clip_id: str) -> str:
    return f"{clip_prefix(clip_id)}key/00.jpg"


def video_prefix(video_id: str) -> str:
    return f"{VIDEOS}{video_id}/"


def video_frame_keys(video_id: str, n: int) -> list[str]:
    return [frame_key(f"{video_prefix(video_id)}frames/", i) for i in range(n)]


def thumbnail_key(kind: str, item_id: str, n_frames: int) -> str:
    """The image shown for a search hit: a clip's keyframe, or a video's middle frame."""
    if kind in ("clip", "clips"):
        return keyframe_key(item_id)
    return video_frame_keys(item_id, n_frames)[n_frames // 2]


def owner_of(key: object) -> str | None:
    """The clip or video id a synthesis object key belongs to (``clips/<id>/...``,
    ``videos/<id>/...``), else None."""
    parts = key.split("/") if isinstance(key, str) else []
    if len(parts) >= 3 and f"{parts[0]}/" in (CLIPS, VIDEOS):
        return parts[1]
    return None


# --- refs ----------------------------------------------------------------------------------


def video_ref(video_id: str) -> str:
    """The ``clip_id`` of a pair side that is a whole video."""
    return f"{VIDEO_REF}{video_id}"


def is_video_ref(ref: object) -> bool:
    return str(ref).startswith(VIDEO_REF)


def ref_owner(ref: object) -> str:
    """The clip id, or the video id of a whole-video ref."""
    return str(ref).removeprefix(VIDEO_REF)


# --- snapshots -----------------------------------------------------------------------------


def snapshot_prefix(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}{snapshot_id}/"


def manifest_key(snapshot_id: str) -> str:
    return f"{snapshot_prefix(snapshot_id)}{MANIFEST}"


def is_manifest_key(key: str) -> bool:
    return key.startswith(SNAPSHOTS) and key.endswith(f"/{MANIFEST}")


def pairs_jsonl_key(snapshot_id: str) -> str:
    """The single pairs file of a snapshot written before shards (still read)."""
    return f"{snapshot_prefix(snapshot_id)}pairs.jsonl"


def shards_prefix(snapshot_id: str) -> str:
    """The folder of a snapshot's Parquet shards (nothing else lies in it: open it as a dataset)."""
    return f"{snapshot_prefix(snapshot_id)}pairs/"


def shard_key(snapshot_id: str, index: int) -> str:
    return f"{shards_prefix(snapshot_id)}part-{index:05d}.parquet"


# --- imported datasets ---------------------------------------------------------------------


def import_info_key(dataset: str) -> str:
    return f"{IMPORTS}{dataset}/dataset.json"


def import_image_key(dataset: str, item_id: str) -> str:
    return f"{IMPORTS}{dataset}/{item_id}/image.jpg"


def import_frame_prefix(dataset: str, item_id: str) -> str:
    return f"{IMPORTS}{dataset}/{item_id}/frames/"


# --- web sources ---------------------------------------------------------------------------


def raw_video_key(video_id: str, ext: str = ".mp4") -> str:
    """Where the downloaded file of a URL source lies (``ext``: its extension, with the dot)."""
    safe = ext.lower() if ext[:1] == "." and ext[1:].isalnum() and len(ext) <= 6 else ".bin"
    return f"{RAW}{video_id}/source{safe}"
