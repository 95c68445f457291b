"""The Hub layout of ``Alibaba-NLP/UVRB`` as extracted (SPEC §1.5): per dataset
``<DS>/jsonl/{queries,corpus,instances}.jsonl``, ``images/``, and videos or frame folders.
Loading validates it and says precisely what is missing or malformed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.evaluator.registry import DATASETS


class LayoutError(ValueError):
    """A UVRB copy that cannot be evaluated; the message names the file and line."""


@dataclass
class LoadedDataset:
    name: str
    root: Path
    queries: list[dict[str, Any]]
    corpus: list[dict[str, Any]]
    qrels: dict[str, set[str]]
    candidates: dict[str, list[str]] = field(
        default_factory=dict
    )  # per-query candidate sets, if any


def dataset_root(root: Path, name: str) -> Path:
    for cand in (root / name / "UVRB" / name, root / name):
        if (cand / "jsonl").is_dir():
            return cand
    raise LayoutError(
        f"{name}: no jsonl/ folder under {root / name} (nor {root / name / 'UVRB' / name})"
    )


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LayoutError(f"missing file {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LayoutError(f"{path}:{n}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise LayoutError(f"{path}:{n}: expected an object")
        missing = [k for k in required if k not in row]
        if missing:
            raise LayoutError(f"{path}:{n}: missing key(s) {missing}")
        row["_line"] = n  # for error messages that point at the file line
        rows.append(row)
    if not rows:
        raise LayoutError(f"{path}: empty")
    return rows


def _media_path(ds_root: Path, value: str, kind: str, where: str) -> Path:
    """The file (or frame folder) a jsonl row names; ``where`` is ``file:line`` for errors."""
    rel = Path(value)
    if rel.is_absolute() or ".." in rel.parts:
        raise LayoutError(f"{where}: {kind} path escapes the dataset folder: {value!r}")
    for base in ((ds_root / "images") if kind == "image" else ds_root / "videos", ds_root):
        p = base / rel
        if p.exists():
            return p
    frames = ds_root / "videos_frames" / rel.stem
    if kind == "video" and frames.is_dir():
        return frames
    raise LayoutError(f"{where}: {kind} file not found: {value!r}")


def load_dataset(root: Path, name: str, check_media: bool = True) -> LoadedDataset:
    ds_root = dataset_root(root, name)
    j = ds_root / "jsonl"
    queries = _read_jsonl(j / "queries.jsonl", ("id",))
    corpus = _read_jsonl(j / "corpus.jsonl", ("id", "video"))
    instances = _read_jsonl(j / "instances.jsonl", ("qid", "pos"))
    qids = {str(q["id"]) for q in queries}
    cids = {str(c["id"]) for c in corpus}
    for fname, rows, ids in (("queries.jsonl", queries, qids), ("corpus.jsonl", corpus, cids)):
        if len(ids) != len(rows):
            seen: set[str] = set()
            for r in rows:
                if str(r["id"]) in seen:
                    raise LayoutError(f"{j / fname}:{r['_line']}: duplicate id {r['id']!r}")
                seen.add(str(r["id"]))
    for q in queries:
        if not any(k in q for k in ("text", "image", "video")):
            raise LayoutError(
                f"{j / 'queries.jsonl'}:{q['_line']}"
                f": query {q['id']!r} has none of text, image, video"
            )
        bad = [str(c) for c in q.get("candidates", []) if str(c) not in cids]
        if bad:
            raise LayoutError(
                f"{j / 'queries.jsonl'}:{q['_line']}: unknown candidate corpus id(s) {bad[:3]}"
            )
    qrels: dict[str, set[str]] = {}
    for inst in instances:
        n, qid = inst["_line"], str(inst["qid"])
        pos = inst["pos"] if isinstance(inst["pos"], list) else [inst["pos"]]
        if qid not in qids:
            raise LayoutError(f"{j / 'instances.jsonl'}:{n}: unknown qid {qid!r}")
        bad = [p for p in map(str, pos) if p not in cids]
        if bad:
            raise LayoutError(f"{j / 'instances.jsonl'}:{n}: unknown corpus id(s) {bad[:3]}")
        qrels.setdefault(qid, set()).update(map(str, pos))  # a qid may appear more than once: union
    if not qrels:
        raise LayoutError(f"{name}: no relevance judgements")
    if check_media:
        for c in corpus:
            c["_path"] = str(
                _media_path(ds_root, c["video"], "video", f"{j / 'corpus.jsonl'}:{c['_line']}")
            )
        for q in queries:
            for kind in ("image", "video"):
                if kind in q:
                    q[f"_{kind}_path"] = str(
                        _media_path(ds_root, q[kind], kind, f"{j / 'queries.jsonl'}:{q['_line']}")
                    )
    candidates = {
        str(q["id"]): [str(c) for c in q["candidates"]] for q in queries if "candidates" in q
    }
    return LoadedDataset(name, ds_root, queries, corpus, qrels, candidates)


def check(root: Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """What is present and valid, per dataset: counts or the precise error."""
    report: dict[str, dict[str, Any]] = {}
    for d in DATASETS:
        if names and d.short not in names:
            continue
        try:
            ds = load_dataset(root, d.short)
            report[d.short] = {
                "ok": True,
                "queries": len(ds.queries),
                "corpus": len(ds.corpus),
                "judged": len(ds.qrels),
                "candidate_sets": len(ds.candidates),
            }
        except LayoutError as exc:
            report[d.short] = {"ok": False, "error": str(exc)}
    return report
