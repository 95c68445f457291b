"""Named presets of external datasets (SPEC §5.6 Table 6, the full training mixture): each one's
task type, the fields its released files really use for the query, the target and (where it ships
them) hard negatives, and the paper's explicit hard-negative count (Neg) and batch size (BS).

A field is a dotted path into a record: ``json.Caption`` is the ``Caption`` key of a WebDataset
sample's ``.json`` member, ``txt_posFacts.0.fact`` the first positive fact's text. A field holding
a list gives one element per record, drawn by a hash of the record's key (VAST: "one of its vision
captions is picked at random per video")."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    task: str
    format: str  # the format the dataset is usually distributed in (the CLI's default)
    query: str
    target: str
    negatives: str | None = None  # a field of hard-negative targets, where the dataset has one
    hard_negatives: int = 0  # SPEC Table 6's Neg
    batch_size: int = 64  # SPEC Table 6's BS
    note: str = ""


PRESETS: dict[str, Preset] = {
    # text-only: sentence-transformers' triplet releases (query, positive passage, BM25 negative)
    "msmarco": Preset("T2T", "parquet", "query", "positive", "negative", 2, 64),
    "hotpotqa": Preset("T2T", "parquet", "anchor", "positive", "negative", 1, 64),
    # WebQA's JSON: question "Q", positive text facts "txt_posFacts" [{"fact": ...}]
    "webqa": Preset("T2T", "jsonl", "Q", "txt_posFacts.0.fact", None, 1, 32),
    # image-centric: img2dataset WebDataset shards (caption in .txt, image in .jpg)
    "cc3m": Preset("T2I", "webdataset", "txt", "jpg", None, 3, 32),
    "laion": Preset("T2I", "webdataset", "txt", "jpg", None, 3, 32),
    # HF releases: an Image feature "image" and its description "text"
    "fashion200k": Preset("T2I", "hf", "text", "image", None, 1, 32),
    # VisualNews' data.json: "caption" and "image_path" (relative to the dataset folder)
    "visualnews": Preset("T2I", "jsonl", "caption", "image_path", None, 1, 64),
    # video-centric: video2dataset WebDataset shards (.mp4, caption in .txt, metadata in .json)
    "webvid": Preset("T2V", "webdataset", "txt", "mp4", None, 0, 32),
    "internvid-flt": Preset(
        "T2V", "webdataset", "json.Caption", "mp4", None, 0, 32, "InternVid's Caption field"
    ),
    # VAST-27M annotations: "vision_cap" (several captions: one drawn per video), clip by path
    "vast": Preset("T2V", "jsonl", "vision_cap", "video_path", None, 0, 32),
    # PE-Video: WebDataset with the metadata's human caption
    "pe-video": Preset("T2V", "webdataset", "json.human_caption", "mp4", None, 1, 64),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
