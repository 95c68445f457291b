"""A stand-in Qdrant server for the benchmarks: Qdrant's REST routes that univr's indexer uses,
served over HTTP by uvicorn in its own process, on Qdrant's own storage engine (Qdrant Edge,
``qdrant-edge-py``).

Why it exists: the batched-upsert goal of issue 7 is about one network round trip per call to a
Qdrant
*server*, and no Qdrant server can run on the development machine (no Docker engine, no binary).
With this, the real ``qdrant-client`` talks REST over loopback to a separate process that stores
points in Qdrant's engine (segments, WAL, payload filters), so a bench measures the round trips the
indexer makes.

It is NOT Qdrant's server: its HTTP layer is Python (uvicorn + Starlette), not Rust (actix), so a
request costs more here; ``bench/indexer_qdrant.py`` prints that floor (an empty round trip) beside
the ratios. Only the routes below exist; anything else answers 404. Used by the benchmarks and by
the test of the indexer's server path (tests/integration/indexer/test_build_server.py), and as
Qdrant by `make stack` (aliases and payload indexes too, for promotion and filtered search); never
deployed.

Run: ``python bench/_qdrant_rest_standin.py --port 6333 --data DIR``."""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import qdrant_edge as qe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DISTANCES = {"Cosine": qe.Distance.Cosine, "Dot": qe.Distance.Dot, "Euclid": qe.Distance.Euclid}


async def body_of(request: Request) -> dict:
    """The request's JSON, parsed in Rust like Qdrant's own server does (serde): Python's json
    module took 14 ms for a 256 x 128 batch, 7x orjson's 2 ms, and dominated the stand-in's cost per
    batch."""
    raw = await request.body()
    return orjson.loads(raw) if raw else {}


def ok(result: Any, t0: float) -> Response:
    """Qdrant's answer envelope, serialised by orjson (point ids may be UUIDs, as Qdrant's are)."""
    return Response(
        orjson.dumps({"result": result, "status": "ok", "time": time.perf_counter() - t0}),
        media_type="application/json",
    )


def _plain(vector: Any) -> Any:
    """A stored vector as Qdrant's JSON has it (a list of floats for the unnamed vector)."""
    if isinstance(vector, dict) and list(vector) == [""]:
        vector = vector[""]
    return (
        [float(x) for x in vector]
        if vector is not None and not isinstance(vector, dict)
        else vector
    )


def condition(c: dict) -> Any:
    """One condition of Qdrant's REST filter JSON as an Edge condition (match value/any, range,
    nested)."""
    if any(k in c for k in ("must", "should", "must_not")):
        return to_filter(c)
    if "match" in c:
        m = c["match"]
        match = qe.MatchAny(m["any"]) if "any" in m else qe.MatchValue(m["value"])
        return qe.FieldCondition(key=c["key"], match=match)
    if "range" in c:
        r = {k: v for k, v in c["range"].items() if v is not None}
        return qe.FieldCondition(key=c["key"], range=qe.RangeFloat(**r))
    raise ValueError(f"condition not supported by the stand-in: {c}")


def to_filter(f: dict | None) -> qe.Filter | None:
    if not f:
        return None
    parts = {k: [condition(c) for c in f[k]] for k in ("must", "should", "must_not") if f.get(k)}
    return qe.Filter(**parts)


class _Shards(dict):
    """Collections by name; an alias name reads as its collection (Qdrant resolves aliases
    alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.aliases: dict[str, str] = {}

    def __getitem__(self, name: str) -> qe.EdgeShard:
        return super().__getitem__(self.aliases.get(name, name))

    def __contains__(self, name: object) -> bool:
        return super().__contains__(self.aliases.get(name, name))  # type: ignore[arg-type]


def collection_info(params: dict[str, Any], points: int) -> dict[str, Any]:
    """``GET /collections/{name}`` as Qdrant answers it: the client parses the whole of it
    (``CollectionInfo``: config with the vector params and the metadata, optimizer, WAL)."""
    return {
        "status": "green",
        "optimizer_status": "ok",
        "segments_count": 1,
        "points_count": points,
        "indexed_vectors_count": 0,
        "payload_schema": params.get("payload_schema") or {},
        "config": {
            "params": {
                "vectors": params["vectors"],
                "shard_number": 1,
                "replication_factor": 1,
                "write_consistency_factor": 1,
                "on_disk_payload": True,
            },
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "flush_interval_sec": 5,
            },
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": None,
            "metadata": params.get("metadata") or {},
        },
    }


class Standin:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.shards: _Shards = _Shards()
        self.params: dict[str, dict[str, Any]] = {}  # per collection: vectors, metadata, schema

    async def aliases(self, request: Request) -> JSONResponse:
        """GET /aliases; POST /collections/aliases applies its actions at once (the atomic
        switch)."""
        t0 = time.perf_counter()
        if request.method == "POST":
            for action in (await body_of(request))["actions"]:
                if "delete_alias" in action:
                    self.shards.aliases.pop(action["delete_alias"]["alias_name"], None)
                elif "create_alias" in action:
                    a = action["create_alias"]
                    self.shards.aliases[a["alias_name"]] = a["collection_name"]
                elif "rename_alias" in action:
                    a = action["rename_alias"]
                    self.shards.aliases[a["new_alias_name"]] = self.shards.aliases.pop(
                        a["old_alias_name"]
                    )
            return ok(True, t0)
        return ok(
            {
                "aliases": [
                    {"alias_name": a, "collection_name": c} for a, c in self.shards.aliases.items()
                ]
            },
            t0,
        )

    async def field_index(self, request: Request) -> JSONResponse:
        """PUT /collections/{name}/index: a payload index, in Qdrant's engine as in Qdrant."""
        t0, name = time.perf_counter(), request.path_params["name"]
        body = await body_of(request)
        schema = body.get("field_schema") or "keyword"
        kind = schema["type"] if isinstance(schema, dict) else schema
        schemas = self.params[self.shards.aliases.get(name, name)].setdefault("payload_schema", {})
        schemas[body["field_name"]] = {"data_type": str(kind).lower(), "points": 0}
        self.shards[name].update(
            qe.UpdateOperation.create_field_index(
                body["field_name"], getattr(qe.PayloadSchemaType, str(kind).capitalize())
            )
        )
        return ok({"operation_id": 0, "status": "completed"}, t0)

    async def root(self, request: Request) -> JSONResponse:
        return JSONResponse({"title": "qdrant-rest-standin (Qdrant Edge)", "version": "1.15.0"})

    async def collection(self, request: Request) -> JSONResponse:
        t0, name = time.perf_counter(), request.path_params["name"]
        if request.method == "PUT":
            body = await body_of(request)
            vp = body["vectors"]
            cfg = qe.EdgeConfig(
                vectors=qe.EdgeVectorParams(size=vp["size"], distance=DISTANCES[vp["distance"]])
            )
            self.shards[name] = qe.EdgeShard.create(str(self.data / name), cfg)
            self.params[name] = {
                "vectors": {"size": vp["size"], "distance": vp["distance"]},
                "metadata": body.get("metadata") or {},
            }
            return ok(True, t0)
        if request.method == "DELETE":
            self.params.pop(name, None)
            shard = self.shards.pop(name, None)
            if shard is not None:
                shard.close()
                shutil.rmtree(self.data / name, ignore_errors=True)
            return ok(shard is not None, t0)
        if name not in self.shards:
            return JSONResponse(
                {"status": {"error": f"Collection `{name}` doesn't exist!"}}, status_code=404
            )
        target = self.shards.aliases.get(name, name)
        return ok(collection_info(self.params[target], self._count(name)), t0)

    async def exists(self, request: Request) -> JSONResponse:
        return ok({"exists": request.path_params["name"] in self.shards}, time.perf_counter())

    async def upsert(self, request: Request) -> JSONResponse:
        t0, name = time.perf_counter(), request.path_params["name"]
        body = await body_of(request)
        if "batch" in body:
            b = body["batch"]
            payloads = b.get("payloads") or [None] * len(b["ids"])
            points = [
                qe.Point(id=i, vector=v, payload=p)
                for i, v, p in zip(b["ids"], b["vectors"], payloads, strict=True)
            ]
        else:
            points = [
                qe.Point(id=p["id"], vector=p["vector"], payload=p.get("payload"))
                for p in body["points"]
            ]
        self.shards[name].update(qe.UpdateOperation.upsert_points(points))
        # wait=true in Qdrant returns once the operation is applied; the WAL write above is that
        # point
        return ok({"operation_id": 0, "status": "completed"}, t0)

    def _count(self, name: str, flt: dict | None = None) -> int:
        return self.shards[name].count(qe.CountRequest(exact=True, filter=to_filter(flt)))

    async def count(self, request: Request) -> JSONResponse:
        t0, name = time.perf_counter(), request.path_params["name"]
        body = await body_of(request)
        return ok({"count": self._count(name, body.get("filter"))}, t0)

    async def scroll(self, request: Request) -> JSONResponse:
        t0, name = time.perf_counter(), request.path_params["name"]
        body = await body_of(request)
        records, next_offset = self.shards[name].scroll(
            qe.ScrollRequest(
                offset=body.get("offset"),
                limit=body.get("limit", 10),
                filter=to_filter(body.get("filter")),
                with_payload=bool(body.get("with_payload", True)),
                with_vector=bool(body.get("with_vector")),
            )
        )
        points = [
            {
                "id": r.id,
                "payload": r.payload,
                **({"vector": _plain(r.vector)} if body.get("with_vector") else {}),
            }
            for r in records
        ]
        return ok({"points": points, "next_page_offset": next_offset}, t0)

    async def query(self, request: Request) -> JSONResponse:
        t0, name = time.perf_counter(), request.path_params["name"]
        body = await body_of(request)
        vector = body["query"]
        if isinstance(vector, dict):  # the client sends {"nearest": [...]} for a plain vector
            vector = vector["nearest"]
        hits = self.shards[name].query(
            qe.QueryRequest(
                limit=body.get("limit", 10),
                query=qe.Query.Nearest(vector),
                filter=to_filter(body.get("filter")),
                with_payload=bool(body.get("with_payload", True)),
                with_vector=False,
            )
        )
        points = [
            {"id": h.id, "version": h.version, "score": h.score, "payload": h.payload} for h in hits
        ]
        return ok({"points": points}, t0)


def app(data: Path) -> Starlette:
    s = Standin(data)
    return Starlette(
        routes=[
            Route("/", s.root),
            Route("/aliases", s.aliases),
            Route("/collections/aliases", s.aliases, methods=["POST"]),
            Route("/collections/{name}/index", s.field_index, methods=["PUT"]),
            Route("/collections/{name}", s.collection, methods=["GET", "PUT", "DELETE"]),
            Route("/collections/{name}/exists", s.exists),
            Route("/collections/{name}/points", s.upsert, methods=["PUT"]),
            Route("/collections/{name}/points/count", s.count, methods=["POST"]),
            Route("/collections/{name}/points/query", s.query, methods=["POST"]),
            Route("/collections/{name}/points/scroll", s.scroll, methods=["POST"]),
        ]
    )


def start(data: Path, timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Run the stand-in in its own process on a free port; returns the process and its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port), "--data", str(data)])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the Qdrant stand-in did not start (exit code {proc.poll()})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=6333)
    p.add_argument("--data", type=Path, required=True, help="folder for the shards (emptied first)")
    a = p.parse_args()
    shutil.rmtree(a.data, ignore_errors=True)
    a.data.mkdir(parents=True)
    uvicorn.run(app(a.data), host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
