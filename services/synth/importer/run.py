"""One import: read the source (``readers``), turn each record into a pair of the dataset's task
type (``sides``), tagged with the dataset, and write the pairs (idempotent: a pair's id is a hash
of the dataset and the record's key, so importing again updates, never duplicates). Records that
cannot become pairs are counted by reason, with a few examples. The dataset's info (task, source,
fields, the preset's hard-negative count and batch size, counts) is written to
``imports/<dataset>/dataset.json``, where snapshots and the trainer read it."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.synth.importer import readers, remote, sides
from services.synth.importer.presets import Preset, get_preset
from shared import layout
from shared.config import get_settings
from shared.db import init_db, session_scope, upsert
from shared.db.models import Pair
from shared.storage import get_store

PAGE = 500
EXAMPLES = 5
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,119}$")


@dataclass
class ImportSpec:
    name: str
    format: str
    path: str
    task: str
    query: str
    target: str
    negatives: str | None = None
    hard_negatives: int | None = None  # Neg: a preset's, or given; None: the task type's
    batch_size: int | None = None  # BS: likewise
    preset: str | None = None
    limit: int = 0


@dataclass
class _Tally:
    pairs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)

    def skip(self, key: str, reason: str) -> None:
        kind = reason.split(":")[0][:80]
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"key": key, "reason": reason})


def dataset_key(name: str) -> str:
    return layout.import_info_key(name)


def resolve(name: str, preset: str | None = None, **given: Any) -> ImportSpec:
    """The spec from a preset (by ``preset``, else by ``name`` when that is a preset) with what
    the caller gives on top (None: not given)."""
    p: Preset | None = get_preset(preset) if preset else None
    if p is None and not preset:
        from services.synth.importer.presets import PRESETS

        p = PRESETS.get(name)
    base = asdict(p) if p else {}
    base.pop("note", None)
    values = {**base, **{k: v for k, v in given.items() if v is not None}}
    missing = [k for k in ("format", "task", "query", "target", "path") if not values.get(k)]
    if missing:
        raise ValueError(f"{name}: give {', '.join('--' + m for m in missing)} (or a --preset)")
    return ImportSpec(name=name, preset=preset or (name if p else None), **values)


def _pair(rec: dict[str, Any], spec: ImportSpec, ctx: sides.Context) -> dict[str, Any]:
    key = str(rec["__key__"])
    qk, yk = sides.task_kinds(spec.task)
    query = sides.side(qk, sides.field(rec, spec.query), key, ctx)
    target = sides.side(yk, sides.field(rec, spec.target), key, ctx)
    negs: list[dict[str, Any]] = []
    if spec.negatives:
        raw = sides.field(rec, spec.negatives)
        for i, v in enumerate(raw if isinstance(raw, list) else [raw] if raw else []):
            negs.append(sides.side(yk, v, f"{key}#neg{i}", ctx))
    pid = sides.item_id(spec.name, key)
    return {
        "id": pid,
        "task": spec.task,
        "domain": None,
        "video_id": pid,
        "dedup_cluster": None,
        "dataset": spec.name,
        "query": query,
        "target": target,
        "hard_negatives": negs,
    }


def import_dataset(spec: ImportSpec) -> dict[str, Any]:
    """Import ``spec``'s source (a local path or an ``s3://`` prefix): pairs written, the
    dataset's info recorded and returned."""
    if not NAME.match(spec.name):
        raise ValueError(f"dataset name {spec.name!r}: lower-case letters, digits, . _ -")
    sides.task_kinds(spec.task)
    init_db()
    store = get_store()
    with remote.source_path(spec.path) as path:
        tally = _import(spec, path, store)
    if not tally.pairs:
        raise ValueError(f"{spec.name}: no record became a pair ({tally.skipped or 'empty'})")
    info = {
        **asdict(spec),
        "imported_at": datetime.now(UTC).isoformat(),
        "pairs": tally.pairs,
        "skipped": tally.skipped,
        "skipped_examples": tally.examples,
    }
    store.put_bytes(dataset_key(spec.name), json.dumps(info, indent=1).encode(), "application/json")
    return info


def _import(spec: ImportSpec, path: Path, store: Any) -> _Tally:
    s = get_settings().synth
    base = path if path.is_dir() else path.parent
    ctx = sides.Context(spec.name, base, store, s.frames_per_clip, s.frame_side or None)
    tally = _Tally()
    page: list[dict[str, Any]] = []
    for rec in readers.read(spec.format, path, s.import_max_member_bytes):
        if spec.limit and tally.pairs + len(page) >= spec.limit:
            break
        if isinstance(rec, readers.Skip):
            tally.skip(rec.key, rec.reason)
            continue
        try:
            page.append(_pair(rec, spec, ctx))
        except sides.Unusable as exc:
            tally.skip(str(rec["__key__"]), str(exc))
        if len(page) >= PAGE:
            tally.pairs += _write(page)
            page = []
    tally.pairs += _write(page)
    return tally


def _write(rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with session_scope() as s:
        upsert(s, Pair, rows)
    return len(rows)


def read_info(name: str, store: Any = None) -> dict[str, Any] | None:
    """An imported dataset's recorded info (None if it has none)."""
    store = store or get_store()
    key = dataset_key(name)
    return json.loads(store.get_bytes(key)) if store.exists(key) else None
