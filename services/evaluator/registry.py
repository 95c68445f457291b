"""The 16 UVRB datasets in one table (SPEC §1.2, §6.4): names, task, domain tags, modalities,
metric and query instruction."""

from __future__ import annotations

from dataclasses import dataclass

from shared.model.prompts import UVRB_INSTRUCTIONS


@dataclass(frozen=True)
class Dataset:
    short: str
    long: str
    task: str  # TXT | CMP | VIS
    domains: tuple[str, ...]  # CG | S | T | PR | LC (S/T/PR are the FG sub-domains); () for CMP/VIS
    query: str
    corpus: str
    metric: str  # R@1 | R@10 | P@1
    n_query: int
    n_corpus: int

    @property
    def instruction(self) -> str:
        return UVRB_INSTRUCTIONS[self.short]


DATASETS: tuple[Dataset, ...] = (
    Dataset("MSRVTT", "MSRVTT", "TXT", ("CG",), "text (caption)", "video", "R@1", 1000, 1000),
    Dataset("DiDeMo", "DiDeMo", "TXT", ("CG",), "text (paragraph)", "video", "R@1", 1004, 1004),
    Dataset("CRB-G", "CaReBench-General", "TXT", ("CG",), "text", "video", "R@1", 1000, 1000),
    Dataset("CRB-S", "CaReBench-Spatial", "TXT", ("S",), "text", "video", "R@1", 1000, 1000),
    Dataset(
        "VDC-O", "VDC-Object", "TXT", ("S",), "text (object caption)", "video", "R@1", 1027, 1027
    ),
    Dataset("CRB-T", "CaReBench-Temporal", "TXT", ("T",), "text", "video", "R@1", 1000, 1000),
    Dataset(
        "CMRB", "CameraBench", "TXT", ("T",), "text (camera motion)", "video", "R@10", 728, 1071
    ),
    Dataset(
        "DREAM-E",
        "DREAM-1K-Event",
        "TXT",
        ("PR",),
        "text (single event)",
        "video",
        "R@1",
        6251,
        1000,
    ),
    Dataset(
        "LoVR-TH", "LoVR-Theme2Clip", "TXT", ("PR",), "text (theme)", "clip", "R@10", 8854, 8854
    ),
    Dataset(
        "PEV-K", "PE-Video-Keyword", "TXT", ("PR",), "text (keywords)", "video", "R@1", 14427, 15000
    ),
    Dataset(
        "LoVR-V", "LoVR-Text2Video", "TXT", ("LC",), "long text", "long video", "R@1", 100, 467
    ),
    Dataset(
        "VDC-D",
        "VDC-Detail",
        "TXT",
        ("LC",),
        "long text (detailed caption)",
        "video",
        "R@1",
        1000,
        1027,
    ),
    Dataset(
        "MS-TI", "MomentSeeker-Text-Image", "CMP", (), "text + image", "video clip", "P@1", 400, 10
    ),
    Dataset(
        "MS-TV",
        "MomentSeeker-Text-Video",
        "CMP",
        (),
        "text + video clip",
        "video clip",
        "P@1",
        400,
        10,
    ),
    Dataset(
        "MSRVTT-I2V",
        "MSRVTT-ImageVideo",
        "VIS",
        (),
        "image (one frame)",
        "video",
        "R@1",
        1000,
        1000,
    ),
    Dataset(
        "LoVR-C2V", "LoVR-Clip-to-Video", "VIS", (), "video clip", "long video", "R@1", 467, 467
    ),
)
BY_NAME = {d.short: d for d in DATASETS}
ABILITIES = ("TXT", "CMP", "VIS", "CG", "FG", "LC", "S", "T", "PR")


def get(short: str) -> Dataset:
    try:
        return BY_NAME[short]
    except KeyError:
        raise KeyError(f"unknown UVRB dataset {short!r}; known: {', '.join(BY_NAME)}") from None
