"""Promotion: verify a built collection (point count, canary queries), gate on UVRB AVG-A against
the live version, then switch the live alias atomically (one alias-update call: delete + create),
and retire collections beyond the retention.

The gate: while another version is live, a version is promoted only with an AVG-A strictly better
than the live one's (a live version without a score is beaten by any score); a version without a
score is refused. ``force`` overrides a refusal, and the result records it (``forced`` and the
reason overridden). With nothing live the first version needs no score."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from qdrant_client import models
from sqlalchemy import select

from services.indexer.collections import live_collection
from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.models import EvalRun, IndexVersion
from shared.vectors import get_qdrant

log = logging.getLogger(__name__)


class PromotionRefused(RuntimeError):
    """The version is incomplete, fails its canaries, or is not better than the live one."""


def verify(client, version: str, expected: int | None, canaries: int = 3) -> dict[str, Any]:  # noqa: ANN001
    if not client.collection_exists(version):
        raise PromotionRefused(f"no collection {version}")
    count = client.count(version, exact=True).count
    if expected is not None and count != expected:
        raise PromotionRefused(f"{version} has {count} points, expected {expected}")
    points, _ = client.scroll(version, limit=canaries, with_vectors=True)
    for (
        p
    ) in points:  # a stored vector must find itself first (or tied first: identical clips exist)
        hits = client.query_points(version, query=p.vector, limit=10).points
        if not hits or not any(
            str(h.id) == str(p.id) and h.score >= hits[0].score - 1e-5 for h in hits
        ):
            raise PromotionRefused(f"canary query for point {p.id} did not return it")
    return {"points": count, "canaries": len(points)}


def live_score() -> tuple[str | None, float | None]:
    """The live version and its AVG-A (None, None when nothing is live)."""
    init_db()
    with session_scope() as s:
        row = s.scalars(select(IndexVersion).where(IndexVersion.state == "live")).first()
        return (row.id, row.avg_a) if row else (None, None)


def refusal(version: str, avg_a: float | None) -> str | None:
    """Why the gate refuses ``version`` with this AVG-A (None: it passes)."""
    live_id, live_avg = live_score()
    if live_id is None or live_id == version:
        return None
    if avg_a is None:
        return (
            f"no AVG-A to compare with the live version {live_id}'s "
            "(give eval_run_id or avg_a, or force)"
        )
    if live_avg is not None and avg_a <= live_avg:
        return f"AVG-A {avg_a:.4f} is not better than the live version's {live_avg:.4f} ({live_id})"
    return None


def gate(version: str, avg_a: float | None, force: bool = False) -> str | None:
    """Raise ``PromotionRefused`` when the gate refuses ``version``, unless ``force``; returns the
    reason a forced promotion overrides (None when the gate passed on its own)."""
    reason = refusal(version, avg_a)
    if reason is not None and not force:
        raise PromotionRefused(reason)
    return reason


def _switch_alias(client, alias: str, version: str, current: str | None) -> None:  # noqa: ANN001
    """Point ``alias`` at ``version`` in one atomic alias update."""
    ops: list[Any] = []
    if current:
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    ops.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=version, alias_name=alias)
        )
    )
    client.update_collection_aliases(change_aliases_operations=ops)  # atomic switch


def _record_live(
    version: str, avg_a: float | None, eval_run_id: str | None, points: int
) -> list[str]:
    """Mark ``version`` live and the one before retired; returns the retired versions, newest
    first."""
    with session_scope() as s:
        for old in s.scalars(
            select(IndexVersion).where(IndexVersion.state == "live", IndexVersion.id != version)
        ):
            old.state = "retired"
        row = s.get(IndexVersion, version)
        if row is None:
            row = IndexVersion(id=version, model="unknown", points=points)
            s.add(row)
        row.state, row.avg_a, row.promoted_at = (
            "live",
            avg_a if avg_a is not None else row.avg_a,
            datetime.now(UTC),
        )
        row.eval_run_id = eval_run_id or row.eval_run_id
        retired = [
            r.id
            for r in s.scalars(
                select(IndexVersion)
                .where(IndexVersion.state == "retired")
                .order_by(IndexVersion.created_at.desc())
            )
        ]
    return retired


def promote(
    version: str,
    avg_a: float | None = None,
    force: bool = False,
    client=None,  # noqa: ANN001
    eval_run_id: str | None = None,
) -> dict[str, Any]:
    """``client``: an open Qdrant client to use (Qdrant local mode allows one per process);
    ``eval_run_id``: the UVRB run that scored this version (recorded with it)."""
    init_db()
    settings = get_settings()
    alias = settings.vectors.alias
    own_client = client is None
    client = client or get_qdrant()
    try:
        with session_scope() as s:
            row = s.get(IndexVersion, version)
            expected = row.points if row else None
            if eval_run_id is not None and s.get(EvalRun, eval_run_id) is None:
                eval_run_id = None  # an unknown run is not recorded (the column is a foreign key)
        overridden = gate(version, avg_a, force)
        checks = verify(client, version, expected)
        current = live_collection(client, alias)
        _switch_alias(client, alias, version, current)  # atomic switch
        retired = _record_live(version, avg_a, eval_run_id, checks["points"])
        removed = []
        for name in retired[settings.vectors.retention :]:
            if client.collection_exists(name):
                client.delete_collection(name)
                removed.append(name)
        if overridden is not None:
            log.warning("forced promotion of %s over the gate: %s", version, overridden)
        return {
            "live": version,
            "previous": current,
            "alias": alias,
            "removed": removed,
            "avg_a": avg_a,
            "forced": overridden is not None,
            "overridden": overridden,
            **checks,
        }
    finally:
        if own_client:
            client.close()
