"""UVRB-mini: a synthetic benchmark in exactly the Hub layout, all 16 datasets, built from the
procedural world with ground-truth relevance. Each dataset tests what its real counterpart tests;
its videos come from their own seed space (``uvrb-`` ids), never from a training corpus."""

from __future__ import annotations

import copy
import json
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from shared.world.describe import composed_change, describe, phrase
from shared.world.render import render, render_frame
from shared.world.spec import sample_spec, sub_spec
from shared.world.vocab import CAMERA_MOTIONS, DIRECTIONS


def _render_job(args: tuple[dict[str, Any], str]) -> None:
    spec, path = args
    render(spec, path)


class _Builder:
    def __init__(self, root: Path, seed: int, n: int):
        self.root, self.rng, self.n, self.seed = root, random.Random(seed), n, seed
        self.jobs: list[tuple[dict[str, Any], str]] = []

    def spec(self, tag: str, **kw: Any) -> dict[str, Any]:
        return sample_spec(self.rng, f"uvrb{self.seed}-{tag}", **kw)

    def video(self, ds: str, spec: dict[str, Any]) -> str:
        name = f"{spec['id']}.mp4"
        self.jobs.append((spec, str(self.root / ds / "videos" / name)))
        return name

    def image(self, ds: str, spec: dict[str, Any], t: float) -> str:
        from PIL import Image

        name = f"{spec['id']}-{int(t * 1000)}.jpg"
        path = self.root / ds / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_frame(spec, t)).save(path, quality=92)
        return name

    def write(
        self, ds: str, queries: list[dict], corpus: list[dict], instances: list[dict]
    ) -> None:
        j = self.root / ds / "jsonl"
        j.mkdir(parents=True, exist_ok=True)
        for name, rows in (("queries", queries), ("corpus", corpus), ("instances", instances)):
            (j / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def text_to_video(self, ds: str, style: str, **spec_kw: Any) -> None:
        specs = [self.spec(f"{ds}-{i}", **spec_kw) for i in range(self.n)]
        corpus = [{"id": f"c{i}", "video": self.video(ds, s)} for i, s in enumerate(specs)]
        queries = [
            {"id": f"q{i}", "text": describe(s, style, self.rng)} for i, s in enumerate(specs)
        ]
        self.write(ds, queries, corpus, [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(self.n)])


def _reorder(spec: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same objects and scene, with different motions: spatially equal, temporally different."""
    out = copy.deepcopy(spec)
    out["id"] += "-b"
    for shot in out["shots"]:
        for obj in shot["objects"]:
            choices = [d for d in DIRECTIONS if d != obj["motion"]]
            obj["motion"] = rng.choice(choices)
            dx, dy = DIRECTIONS[obj["motion"]]
            obj["x"], obj["y"] = round(0.5 - 0.25 * dx, 3), round(0.5 - 0.25 * dy, 3)
        shot["events"] = [e for e in shot["events"] if e["kind"] != "moves"] + [
            {
                "t_s": round(max(o["appear_s"], shot["start_s"]) + 0.01, 2),
                "kind": "moves",
                "subject": o["id"],
                "detail": o["motion"],
            }
            for o in shot["objects"]
        ]
        shot["events"].sort(key=lambda e: (e["t_s"], e["subject"]))
    return out


def _vdc_o(b: _Builder, n: int) -> None:
    """The VDC-O set: object phrases with texture."""
    specs = [b.spec(f"VDC-O-{i}", shots=1) for i in range(n)]
    b.write(
        "VDC-O",
        [
            {
                "id": f"q{i}",
                "text": "; ".join(
                    f"{phrase(o)} with {o['texture']} texture" for o in s["shots"][0]["objects"]
                ),
            }
            for i, s in enumerate(specs)
        ],
        [{"id": f"c{i}", "video": b.video("VDC-O", s)} for i, s in enumerate(specs)],
        [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(n)],
    )


def _crb_t(b: _Builder, n: int) -> None:
    """CRB-T: pairs with the same objects and different motion."""
    rng = b.rng
    # fine-grained: temporal — pairs with the same objects and different motion
    base = [b.spec(f"CRB-T-{i}", shots=1, n_objects=1) for i in range(n // 2)]
    specs = [s for pair in ((s, _reorder(s, rng)) for s in base) for s in pair]
    b.write(
        "CRB-T",
        [{"id": f"q{i}", "text": describe(s, "temporal")} for i, s in enumerate(specs)],
        [{"id": f"c{i}", "video": b.video("CRB-T", s)} for i, s in enumerate(specs)],
        [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(len(specs))],
    )


def _cmrb(b: _Builder, n: int) -> None:
    """CMRB: the same scene under every camera motion."""
    # camera motion: the same scene under every camera motion; queries for some of them (R@10)
    scenes = [b.spec(f"CMRB-{i}", shots=1) for i in range(max(2, n // len(CAMERA_MOTIONS)))]
    corpus, queries, inst = [], [], []
    for si, sc in enumerate(scenes):
        for ci, cam in enumerate(CAMERA_MOTIONS):
            v = copy.deepcopy(sc)
            v["id"] += f"-{ci}"
            v["shots"][0]["camera"] = cam
            cid = f"c{si}-{ci}"
            corpus.append({"id": cid, "video": b.video("CMRB", v)})
            queries.append({"id": f"q{si}-{ci}", "text": describe(v, "camera")})
            inst.append({"qid": f"q{si}-{ci}", "pos": [cid]})
    b.write("CMRB", queries, corpus, inst)


def _dream_e(b: _Builder, n: int) -> None:
    """DREAM-E: single events, several queries per video."""
    # partially relevant: single events (several queries per video), themes of clips, keywords
    specs = [b.spec(f"DREAM-E-{i}", shots=2) for i in range(n)]
    queries, inst = [], []
    for i, s in enumerate(specs):
        events = [(sh, e) for sh in s["shots"] for e in sh["events"]][:3] or [(s["shots"][0], None)]
        for k, (_sh, e) in enumerate(events):
            text = (
                describe(dict(s, shots=[_sh]), "partial", random.Random(k))
                if e is None
                else describe(dict(s, shots=[dict(_sh, events=[e])]), "partial", random.Random(k))
            )
            queries.append({"id": f"q{i}-{k}", "text": text})
            inst.append({"qid": f"q{i}-{k}", "pos": [f"c{i}"]})
    b.write(
        "DREAM-E",
        queries,
        [{"id": f"c{i}", "video": b.video("DREAM-E", s)} for i, s in enumerate(specs)],
        inst,
    )


def _lovr_v(b: _Builder, long_n: int) -> None:
    """LoVR-V: long videos, long descriptions."""
    rng = b.rng
    # long context
    longs = [
        b.spec(f"LoVR-V-{i}", shots=rng.randint(5, 7), shot_s=(3.0, 4.0)) for i in range(long_n)
    ]
    b.write(
        "LoVR-V",
        [{"id": f"q{i}", "text": describe(s, "long")} for i, s in enumerate(longs)],
        [{"id": f"c{i}", "video": b.video("LoVR-V", s)} for i, s in enumerate(longs)],
        [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(long_n)],
    )


def _composed(b: _Builder, n: int) -> None:
    """MS-TI and MS-TV: composed queries over per-query candidate sets of 10 clips."""
    rng = b.rng
    # composed: per-query candidate sets of 10 clips
    for ds in ("MS-TI", "MS-TV"):
        specs = [b.spec(f"{ds}-{i}", shots=2) for i in range(n)]
        corpus, queries, inst = [], [], []
        for i, s in enumerate(specs):
            first, second = s["shots"][0], s["shots"][1]
            target = sub_spec(s, second["start_s"], second["end_s"])
            target["id"] = s["id"] + "-target"
            corpus.append({"id": f"c{i}", "video": b.video(ds, target)})
            if ds == "MS-TI":
                t = (first["start_s"] + first["end_s"]) / 2
                q: dict[str, Any] = {
                    "id": f"q{i}",
                    "text": composed_change(s, t, "image"),
                    "image": b.image(ds, s, t),
                }
            else:
                ref = sub_spec(s, first["start_s"], first["end_s"])
                ref["id"] = s["id"] + "-ref"
                q = {
                    "id": f"q{i}",
                    "text": composed_change(s, first["end_s"] - 0.01, "video"),
                    "video": b.video(ds, ref),
                }
            others = [f"c{j}" for j in rng.sample([j for j in range(n) if j != i], min(9, n - 1))]
            q["candidates"] = sorted([f"c{i}", *others])
            queries.append(q)
            inst.append({"qid": f"q{i}", "pos": [f"c{i}"]})
        b.write(ds, queries, corpus, inst)


def _visual(b: _Builder, n: int, long_n: int) -> None:
    """MSRVTT-I2V (a frame to its video) and LoVR-C2V (a clip to its long video)."""
    rng = b.rng
    # visual: a frame → its video; a clip → its long video
    specs = [b.spec(f"MSRVTT-I2V-{i}", shots=1) for i in range(n)]
    b.write(
        "MSRVTT-I2V",
        [
            {
                "id": f"q{i}",
                "image": b.image("MSRVTT-I2V", s, rng.uniform(0.3, 0.7) * s["duration_s"]),
            }
            for i, s in enumerate(specs)
        ],
        [{"id": f"c{i}", "video": b.video("MSRVTT-I2V", s)} for i, s in enumerate(specs)],
        [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(n)],
    )
    longs = [
        b.spec(f"LoVR-C2V-{i}", shots=rng.randint(4, 6), shot_s=(3.0, 4.0)) for i in range(long_n)
    ]
    queries = []
    for i, s in enumerate(longs):
        shot = rng.choice(s["shots"])
        clip = sub_spec(s, shot["start_s"], shot["end_s"])
        clip["id"] = s["id"] + "-clip"
        queries.append({"id": f"q{i}", "video": b.video("LoVR-C2V", clip)})
    b.write(
        "LoVR-C2V",
        queries,
        [{"id": f"c{i}", "video": b.video("LoVR-C2V", s)} for i, s in enumerate(longs)],
        [{"qid": f"q{i}", "pos": [f"c{i}"]} for i in range(long_n)],
    )


def _render(b: _Builder, workers: int) -> None:
    """Render every queued video (in ``workers`` processes)."""
    for _, path in b.jobs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_render_job, b.jobs, chunksize=8))
    else:
        for job in b.jobs:
            _render_job(job)


def build_mini(
    out: str | Path, seed: int = 100_000, n: int = 32, long_n: int = 8, workers: int = 2
) -> dict[str, Any]:
    root = Path(out)
    b = _Builder(root, seed, n)
    # coarse-grained
    b.text_to_video("MSRVTT", "concise", shots=1)
    b.text_to_video("DiDeMo", "rich", shots=3)
    b.text_to_video("CRB-G", "rich")
    # fine-grained: spatial
    b.text_to_video("CRB-S", "spatial")
    _vdc_o(b, n)
    _crb_t(b, n)
    _cmrb(b, n)
    _dream_e(b, n)
    b.text_to_video("LoVR-TH", "abstract", shots=1)
    b.text_to_video("PEV-K", "keywords")
    _lovr_v(b, long_n)
    b.text_to_video("VDC-D", "rich", shots=2)
    _composed(b, n)
    _visual(b, n, long_n)
    _render(b, workers)
    info = {"seed": seed, "n": n, "long_n": long_n, "videos": len(b.jobs), "kind": "uvrb-mini"}
    (root / "uvrb-mini.json").write_text(json.dumps(info))
    return info
