"""The download stage of web sources (task ``synth.io_download``, io queue): one web item's video
fetched into the store (``layout.raw_video_key``), after which V-SynFlow's media step reads it.
A file already in the store is never fetched again (a restarted or resubmitted job skips it); an
unfinished one waits in ``partial_dir`` for the next try to resume it.

- addresses (``netguard``, SSRF): every address a host resolves to must be public unless
  ``allow_private`` / ``allow_networks`` allow it, on every redirect hop, and the connection goes
  to the address that was checked (no second lookup can rebind the name); requests to one host are
  spaced by ``per_host_interval_s`` (per worker process);
- plain HTTP (``http_fetch``): ``max_bytes``, timeouts and ``deadline_s``, retries with backoff,
  ``Range`` resume;
- platforms (``ytdlp_fetch``): YouTube ids and URLs of ``platform_hosts`` through yt-dlp, a span as
  its download range, every request of yt-dlp and its ffmpeg through the address guard's proxy
  (``ytdlp_guard``).

A refusal (an address, a 4xx, a size) rejects the item at once with its reason; a transient failure
left after the retries is raised (``DownloadFailed``): the task retries it, then fails the item."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from services.synth.errors import Rejected
from services.synth.http_fetch import fetch_http
from services.synth.netguard import Refused, Transient
from services.synth.sources import SourceItem
from services.synth.ytdlp_fetch import fetch_ytdlp, is_platform
from shared import layout
from shared.config import DownloadSettings, get_settings
from shared.storage import get_store


class DownloadFailed(RuntimeError):
    """What is left after the retries of one attempt; the task retries it, then fails the item."""


def partial_root(cfg: DownloadSettings) -> Path:
    if cfg.partial_dir:
        return Path(cfg.partial_dir).expanduser()
    return Path(get_settings().home).expanduser().resolve() / "downloads"


def download_stage(item: SourceItem, video_id: str) -> dict[str, Any]:
    """The web item's file into the store (kept there: a restart never fetches it again)."""
    cfg = get_settings().synth.download
    url = item.extra.get("url")
    if not url:
        raise Rejected("not a web source (no URL)")
    store = get_store()
    key = layout.raw_video_key(video_id, str(item.extra.get("ext", ".mp4")))
    if store.exists(key):
        return {"raw_key": key, "download": "already in the store"}
    work = partial_root(cfg) / video_id
    work.mkdir(parents=True, exist_ok=True)
    try:
        if item.extra.get("fetch") == "ytdlp" or is_platform(url, cfg):
            got = fetch_ytdlp(url, item.extra.get("span"), work, cfg)
        else:
            got = fetch_http(url, work / "source.part", cfg)
    except Refused as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise Rejected(f"download refused: {exc}") from None
    except Transient as exc:
        raise DownloadFailed(str(exc)) from None
    store.put_file(key, got.path)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "raw_key": key,
        "download": f"{got.size} bytes in {got.requests} request(s)"
        + (f", resumed at {got.resumed_from}" if got.resumed_from else ""),
    }
