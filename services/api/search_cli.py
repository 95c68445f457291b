"""`univr search`: query the live index from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def search(text: str = typer.Argument(None, help="Query text (with --image or --video: a composed query)."),
           image: Path | None = typer.Option(None, help="Query image file."),
           video: Path | None = typer.Option(None, help="Query video file."),
           top_k: int = typer.Option(5, min=1, max=100),
           source: str | None = typer.Option(None, help="Only this source (id or URI)."),
           dataset: str | None = typer.Option(None, help="Only this dataset (snapshot name or id)."),
           kind: str | None = typer.Option(None, help="clip | video"),
           json_out: bool = typer.Option(False, "--json")) -> None:
    """Search the live index with text, an image, a video, or text with either."""
    from services.api.search import build_filter
    from services.api.search import search as do_search
    from shared.model import Embedder
    from shared.storage import get_store
    from shared.vectors import get_qdrant

    if not text and image is None and video is None:
        typer.echo("error: give a text, --image or --video", err=True)
        raise typer.Exit(2)
    for p in (image, video):
        if p is not None and not p.is_file():
            typer.echo(f"error: no such file {p}", err=True)
            raise typer.Exit(2)
    client = get_qdrant()
    try:
        hits = do_search(Embedder.from_settings(), client, text=text, image=str(image) if image else None,
                         video=str(video) if video else None, top_k=top_k, filters=build_filter(source, dataset, kind),
                         presign=get_store().presign)
    except Exception as exc:  # noqa: BLE001
        typer.echo(f"error: search failed ({exc}); is there a live index? (univr index build / promote)", err=True)
        raise typer.Exit(1) from exc
    finally:
        client.close()
    if json_out:
        typer.echo(json.dumps(hits))
        return
    for h in hits:
        typer.echo(f"{h['score']:.3f}  {h['kind']:<5} {h['video']}  {h['start_ms'] / 1000:.1f}-{h['end_ms'] / 1000:.1f}s  {h.get('caption', '')[:60]}")
