"""`univr search`: query the live index from the command line, one query or a file of them (one
model load for all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import typer

if TYPE_CHECKING:
    from qdrant_client.models import Filter


def search(
    text: str = typer.Argument(
        None, help="Query text (with --image or --video: a composed query)."
    ),
    image: Path | None = typer.Option(None, help="Query image file."),
    video: Path | None = typer.Option(None, help="Query video file."),
    top_k: int = typer.Option(5, min=1, max=100),
    source: str | None = typer.Option(None, help="Only this source (id or URI)."),
    dataset: str | None = typer.Option(None, help="Only this dataset (snapshot name or id)."),
    kind: str | None = typer.Option(None, help="clip | video"),
    queries: Path | None = typer.Option(
        None,
        help='A JSON-lines file of queries, each {"text", "image", "video"} (any of them; files '
        "as paths): all answered by one process. --json prints [{query, hits}] in file order.",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Search the live index with text, an image, a video, or text with either."""
    from services.api.owner import running_owner
    from services.api.search import build_filter

    if queries is not None:
        if text or image is not None or video is not None:
            raise _usage("give either --queries or one query, not both")
        asked = _read_queries(queries)
    else:
        asked = [Query(text, image, video)]
    for q in asked:
        _check(q)
    owner = running_owner()
    if owner is not None:  # the API holds the local Qdrant folder: ask it
        answers = [_through_api(owner, *q, top_k, source, dataset, kind) for q in asked]
    else:
        answers = _local(asked, top_k, build_filter(source, dataset, kind))
    if queries is None:
        _print(answers[0], json_out)
        return
    if json_out:
        pairs = zip(asked, answers, strict=True)
        typer.echo(json.dumps([{"query": q.as_json(), "hits": h} for q, h in pairs]))
        return
    for q, hits in zip(asked, answers, strict=True):
        typer.echo(f"== {q.describe()}")
        _print(hits, json_out=False)


class Query(NamedTuple):
    text: str | None
    image: Path | None
    video: Path | None

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._asdict().items() if v}

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_json().items())


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _read_queries(path: Path) -> list[Query]:
    """The queries of a JSON-lines file; a bad line is a usage error naming its line."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _usage(f"cannot read {path}: {exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise _usage(f"{path}:{n}: not JSON") from None
        extra = set(row) - set(Query._fields) if isinstance(row, dict) else None
        if extra is None or extra:
            raise _usage(f"{path}:{n}: a query is an object with text, image and/or video")
        values = [row.get(f) for f in Query._fields]
        if not all(v is None or isinstance(v, str) for v in values):
            raise _usage(f"{path}:{n}: text, image and video are strings")
        text, image, video = values
        out.append(Query(text, Path(image) if image else None, Path(video) if video else None))
    if not out:
        raise _usage(f"{path} holds no query")
    return out


def _check(q: Query) -> None:
    if not q.text and q.image is None and q.video is None:
        raise _usage("give a text, --image or --video")
    for p in (q.image, q.video):
        if p is not None and not p.is_file():
            raise _usage(f"no such file {p}")


def _print(hits: list[dict], json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(hits))
        return
    for h in hits:
        typer.echo(
            f"{h['score']:.3f}  {h['kind']:<5} {h.get('video') or h.get('video_id')}"
            f"  {h['start_ms'] / 1000:.1f}-{h['end_ms'] / 1000:.1f}s"
            f"  {h.get('caption', '')[:60]}"
        )


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _local(asked: list[Query], top_k: int, flt: Filter | None) -> list[list[dict]]:
    from services.api.search import search as do_search
    from shared.model import Embedder
    from shared.storage import get_store
    from shared.vectors import get_qdrant

    try:
        client = get_qdrant()
    except (RuntimeError, OSError) as exc:  # local mode: another process holds the folder
        raise _fail(
            f"the vector store is in use by another process ({str(exc)[:200]}); run "
            "`univr api serve` and `univr search` goes through it"
        ) from None
    try:
        embedder, presign = Embedder.from_settings(), get_store().presign
        return [
            do_search(
                embedder,
                client,
                text=q.text,
                image=str(q.image) if q.image else None,
                video=str(q.video) if q.video else None,
                top_k=top_k,
                filters=flt,
                presign=presign,
            )
            for q in asked
        ]
    except Exception as exc:  # noqa: BLE001
        raise _fail(
            f"search failed ({exc}); is there a live index? (univr index build / promote)"
        ) from exc
    finally:
        client.close()


def _through_api(
    owner: dict,
    text: str | None,
    image: Path | None,
    video: Path | None,
    top_k: int,
    source: str | None,
    dataset: str | None,
    kind: str | None,
) -> list[dict]:
    import base64

    import httpx

    body: dict = {"top_k": top_k}
    if text:
        body["text"] = text
    if image is not None:
        body["image_b64"] = base64.b64encode(image.read_bytes()).decode()
    if video is not None:
        body["video_b64"] = base64.b64encode(video.read_bytes()).decode()
    filters = {k: v for k, v in {"source": source, "dataset": dataset, "kind": kind}.items() if v}
    if filters:
        body["filters"] = filters
    try:
        r = httpx.post(
            f"{owner['url']}/v1/search",
            json=body,
            timeout=300,
            headers={"Authorization": f"Bearer {owner['token']}"},
        )
    except httpx.HTTPError as exc:
        raise _fail(
            f"the API at {owner['url']} holds the vector store but does not answer "
            f"({type(exc).__name__})"
        ) from None
    if r.status_code != 200:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text[:200]
        raise _fail(f"search failed through the API ({r.status_code}: {detail})")
    return r.json()["results"]
