"""`univr search`: query the live index from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

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
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Search the live index with text, an image, a video, or text with either."""
    from services.api.owner import running_owner
    from services.api.search import build_filter

    if not text and image is None and video is None:
        typer.echo("error: give a text, --image or --video", err=True)
        raise typer.Exit(2)
    for p in (image, video):
        if p is not None and not p.is_file():
            typer.echo(f"error: no such file {p}", err=True)
            raise typer.Exit(2)
    owner = running_owner()
    if owner is not None:  # the API holds the local Qdrant folder: ask it
        hits = _through_api(owner, text, image, video, top_k, source, dataset, kind)
    else:
        hits = _local(text, image, video, top_k, build_filter(source, dataset, kind))
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


def _local(
    text: str | None, image: Path | None, video: Path | None, top_k: int, flt: Filter | None
) -> list[dict]:
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
        return do_search(
            Embedder.from_settings(),
            client,
            text=text,
            image=str(image) if image else None,
            video=str(video) if video else None,
            top_k=top_k,
            filters=flt,
            presign=get_store().presign,
        )
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
