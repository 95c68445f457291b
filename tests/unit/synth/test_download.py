"""Web sources (issue #17, point 4): URL manifests become items; the download stage fetches them
from a loopback server with hostile answers (slow, truncated, 404, oversized, redirects to private
addresses), each failure a reason; a partial file resumes with Range; a finished one is never
fetched again; private addresses are refused on every hop and the connection goes to the address
that was checked."""

from __future__ import annotations

import json
import socket

import pytest

from services.synth import download as dl
from services.synth import http_fetch, netguard, ytdlp_fetch
from services.synth.errors import Rejected
from services.synth.sources import list_manifest
from shared import layout
from shared.config import DownloadSettings, get_settings
from shared.media.probe import probe
from shared.storage import get_store
from tests.helpers import small_videos
from tests.web_server import web_server

BODY = bytes(range(256)) * 400  # 100 KiB


def _cfg(**kw) -> DownloadSettings:  # noqa: ANN003
    base = dict(
        allow_networks=["127.0.0.1/32"],
        read_timeout_s=0.4,
        connect_timeout_s=1.0,
        retries=1,
        backoff_s=0.0,
        per_host_interval_s=0.0,
        max_bytes=300_000,
    )
    return DownloadSettings(**{**base, **kw})


@pytest.fixture
def web():
    with web_server() as w:
        w.files["/files/a.mp4"] = BODY
        yield w


def test_webvid_and_internvid_manifests_become_web_items(tmp_path):
    webvid = tmp_path / "webvid.csv"
    webvid.write_text(
        "videoid,contentUrl,duration,page_dir,name\n"
        "1,https://cdn.example.com/v/1.mp4,PT10S,dir,A dog runs\n"
        "2,ftp://cdn.example.com/2.mp4,PT10S,dir,ftp\n"
        "3,file:///etc/passwd,PT1S,dir,local file\n"
        "4,https://user:pw@cdn.example.com/4.mp4,PT1S,dir,credentials\n"
        "5,https://cdn.example.com/v/1.mp4,PT10S,dir,the same again\n"
        f"6,https://cdn.example.com/{'x' * 3000}.mp4,PT1S,dir,long\n"
        "7,http:///nohost.mp4,PT1S,dir,no host\n"
    )
    items = list_manifest(webvid)
    assert items[0].reject is None and items[0].raw_caption == "A dog runs"
    assert items[0].extra == {
        "url": "https://cdn.example.com/v/1.mp4",
        "fetch": "http",
        "ext": ".mp4",
    }
    reasons = [it.reject or "" for it in items[1:]]
    assert "unsupported URL scheme 'ftp'" in reasons[0] and "'file'" in reasons[1]
    assert "credentials" in reasons[2] and "pw" not in items[3].uri + reasons[2]
    assert "same video as an earlier row" in reasons[3]
    assert "longer than 2048" in reasons[4] and len(items[5].uri) < 200
    assert "no host" in reasons[5]

    internvid = tmp_path / "internvid.jsonl"
    rows = [
        {"YoutubeID": "dQw4w9WgXcQ", "Start_timestamp": "00:00:01.500", "End_timestamp": "00:00:09",
         "Caption": "a man sings"},
        {"YoutubeID": "dQw4w9WgXcQ", "Start_timestamp": "00:01:00", "End_timestamp": "00:01:05",
         "Caption": "another span of the same video"},
        {"YoutubeID": "bad id; rm -rf", "Caption": "x"},
        {"YoutubeID": "dQw4w9WgXcQ", "Start_timestamp": "00:00:09", "End_timestamp": "00:00:02"},
        {"YoutubeID": "dQw4w9WgXcQ", "Start_timestamp": "soon", "End_timestamp": "later"},
    ]  # fmt: skip
    internvid.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = list_manifest(internvid)
    assert [it.reject is None for it in items] == [True, True, False, False, False]
    assert items[0].extra["fetch"] == "ytdlp" and items[0].extra["span"] == [1.5, 9.0]
    assert items[0].uri != items[1].uri and items[0].raw_caption == "a man sings"
    assert "not a YouTube id" in items[2].reject and "empty span" in items[3].reject
    assert "bad span" in items[4].reject

    csv_internvid = tmp_path / "internvid.csv"  # the FLT release's CSV header
    csv_internvid.write_text(
        "YoutubeID,Start_timestamp,End_timestamp,Caption,Aesthetic_Score,UMT_Score\n"
        "dQw4w9WgXcQ,00:00:01,00:00:04,a clip,5.1,0.4\n"
    )
    (it,) = list_manifest(csv_internvid)
    assert it.reject is None and it.extra["span"] == [1.0, 4.0] and it.raw_caption == "a clip"


def test_hostile_answers_each_end_with_a_reason(web, tmp_path):
    cfg = _cfg()
    web.cut_after["/files/t.mp4"] = 1000  # every answer cut after 1000 bytes
    web.files["/files/t.mp4"] = BODY
    web.files["/files/big.mp4"] = BODY * 4
    cases = {
        "/missing.mp4": (netguard.Refused, "HTTP 404"),
        "/slow/files/a.mp4": (netguard.Transient, "timed out"),
        "/files/t.mp4": (netguard.Transient, "truncated"),
        "/files/big.mp4": (netguard.Refused, "larger than 300000 bytes (409600 announced)"),
        "/huge-announced": (netguard.Refused, "announced"),
        "/huge-chunked": (netguard.Refused, "larger than 300000 bytes (counted)"),
        "/redirect-private": (
            netguard.Refused,
            "redirect to http://169.254.169.254/latest/meta-data/",
        ),
        "/redirect-ten": (netguard.Refused, "private, loopback or link-local address (10.1.2.3)"),
        "/redirect-loop": (netguard.Refused, "more than 5 redirects"),
    }
    for i, (path, (kind, reason)) in enumerate(cases.items()):
        part = tmp_path / f"{i}.part"
        with pytest.raises(kind, match=None) as exc:
            http_fetch.fetch_http(web.url(path), part, cfg)
        assert reason in str(exc.value), (path, str(exc.value))
        if kind is netguard.Refused and "larger" in reason:
            assert not part.exists()  # nothing oversized is kept
    assert web.hits["/slow/files/a.mp4"] == 2 and web.hits["/missing.mp4"] == 1  # 1 retry, 0
    got = http_fetch.fetch_http(web.url("/redirect-good/a.mp4"), tmp_path / "r.part", cfg)
    assert got.path.read_bytes() == BODY and got.final_url.endswith("/files/a.mp4")
    web.files["/files/b.mp4"] = BODY
    got = http_fetch.fetch_http(
        web.url("/busy/b.mp4"), tmp_path / "b.part", cfg
    )  # 503, Retry-After 0
    assert got.requests == 2 and got.path.read_bytes() == BODY


def test_a_cut_answer_resumes_with_range(web, tmp_path):
    web.cut_after["/files/a.mp4"], web.cut_times["/files/a.mp4"] = 30_000, 1
    got = http_fetch.fetch_http(web.url("/files/a.mp4"), tmp_path / "a.part", _cfg())
    assert got.path.read_bytes() == BODY and got.resumed_from == 30_000
    assert web.ranges == [("/files/a.mp4", "bytes=30000-")]
    assert web.bytes_sent["/files/a.mp4"] == len(BODY)  # no byte fetched twice


def test_private_addresses_are_refused_before_any_request(web, tmp_path):
    strict = DownloadSettings(retries=0, per_host_interval_s=0.0)
    port = web.base.rsplit(":", 1)[1]
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0.0.0.0"):
        with pytest.raises(netguard.Refused, match="private, loopback or link-local"):
            http_fetch.fetch_http(f"http://{host}:{port}/files/a.mp4", tmp_path / "x.part", strict)
    assert sum(web.hits.values()) == 0
    allowed = [("8.8.8.8", True), ("10.0.0.1", False), ("172.16.0.1", False),
               ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
               ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::ffff:10.0.0.1", False),
               ("224.0.0.1", False), ("2606:4700::1111", True)]  # fmt: skip
    for address, ok in allowed:
        assert netguard.address_allowed(address, strict) is ok, address
    assert netguard.address_allowed("10.0.0.1", DownloadSettings(allow_networks=["10.0.0.0/8"]))
    assert netguard.address_allowed("10.0.0.1", DownloadSettings(allow_private=True))


def test_the_connection_goes_to_the_address_that_was_checked(web, tmp_path, monkeypatch):
    """DNS rebinding: the name is resolved once, by the check; the request connects to that
    address (no second lookup could answer differently) and names the host in its header."""
    lookups, real = [], socket.getaddrinfo

    def fake_getaddrinfo(host, port, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        lookups.append(host)
        if host == "videos.example":  # the name: resolved by the check only
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *a, **kw)  # an address literal (the connection's)

    monkeypatch.setattr(netguard.socket, "getaddrinfo", fake_getaddrinfo)
    port = web.base.rsplit(":", 1)[1]
    got = http_fetch.fetch_http(
        f"http://videos.example:{port}/files/a.mp4", tmp_path / "a.part", _cfg()
    )
    assert got.path.read_bytes() == BODY
    assert lookups == ["videos.example", "127.0.0.1"] and web.hosts == [f"videos.example:{port}"]


def test_the_stage_stores_once_rejects_with_reasons_and_resumes(web, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIVR_SYNTH__DOWNLOAD__ALLOW_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("UNIVR_SYNTH__DOWNLOAD__PER_HOST_INTERVAL_S", "0")
    monkeypatch.setenv("UNIVR_SYNTH__DOWNLOAD__RETRIES", "0")
    get_settings.cache_clear()
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "contentUrl,name\n"
        f"{web.url('/files/a.mp4')},fine\n{web.url('/missing.mp4')},gone\n"
        f"{web.url('/redirect-private')},sneaky\n"
    )
    good, missing, sneaky = list_manifest(manifest)
    out = dl.download_stage(good, "v1")
    assert out["raw_key"] == layout.raw_video_key("v1") == "raw/v1/source.mp4"
    assert get_store().get_bytes(out["raw_key"]) == BODY
    assert dl.download_stage(good, "v1")["download"] == "already in the store"
    assert web.hits["/files/a.mp4"] == 1  # a finished file is not fetched again
    with pytest.raises(Rejected, match="download refused: HTTP 404"):
        dl.download_stage(missing, "v2")
    with pytest.raises(Rejected, match="169.254.169.254"):
        dl.download_stage(sneaky, "v3")
    # a restart mid-download: the partial file waits in partial_dir and the rest is asked for
    web.files["/files/c.mp4"] = BODY
    (_c,) = list_manifest(_one(tmp_path, web.url("/files/c.mp4")))
    part = dl.partial_root(get_settings().synth.download) / "v4" / "source.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(BODY[:50_000])
    out = dl.download_stage(_c, "v4")
    assert get_store().get_bytes(out["raw_key"]) == BODY and "resumed at 50000" in out["download"]
    assert web.bytes_sent["/files/c.mp4"] == len(BODY) - 50_000 and not part.parent.exists()


def _one(tmp_path, url: str):  # noqa: ANN001, ANN202
    m = tmp_path / "one.jsonl"
    m.write_text(json.dumps({"url": url, "caption": "c"}) + "\n")
    return m


def test_platform_urls_go_through_ytdlp_with_their_span(tmp_path, monkeypatch):
    """A YouTube id with a span is handed to yt-dlp with that span as a download range (yt-dlp
    itself stubbed: no network); its errors become reasons."""
    import yt_dlp

    seen: dict = {}

    class FakeYDL:
        def __init__(self, opts):  # noqa: ANN001
            seen.update(opts)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            return False

        def extract_info(self, url, download):  # noqa: ANN001, ANN201
            seen["url"] = url
            if "unavailable" in url:
                raise yt_dlp.utils.DownloadError("ERROR: [youtube] xxx: Video unavailable")
            (tmp_path / "w" / "ytdlp.mp4").write_bytes(b"video")
            return {}

    monkeypatch.setattr(yt_dlp, "YoutubeDL", FakeYDL)
    monkeypatch.setattr(ytdlp_fetch, "resolve_checked", lambda host, port, cfg: "203.0.113.5")
    (tmp_path / "w").mkdir()
    cfg = _cfg()
    got = ytdlp_fetch.fetch_ytdlp(
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ", [1.5, 9.0], tmp_path / "w", cfg
    )
    assert got.path.read_bytes() == b"video" and seen["max_filesize"] == cfg.max_bytes
    ranges = list(seen["download_ranges"]({}, None))
    assert ranges == [{"start_time": 1.5, "end_time": 9.0}]
    assert ytdlp_fetch.is_platform("https://m.youtube.com/watch?v=x", cfg)
    assert not ytdlp_fetch.is_platform("https://notyoutube.com/x.mp4", cfg)
    with pytest.raises(netguard.Refused, match="Video unavailable"):
        ytdlp_fetch.fetch_ytdlp(
            "https://www.youtube.com/watch?v=unavailable", None, tmp_path / "w", cfg
        )


def test_hostile_url_names_never_choose_a_path(web, tmp_path, monkeypatch):
    """Whatever a URL's path says (traversal, shell characters, odd extensions), the stored key and
    the partial file are named by the video id alone; control characters reject the row."""
    monkeypatch.setenv("UNIVR_SYNTH__DOWNLOAD__ALLOW_NETWORKS", '["127.0.0.1/32"]')
    monkeypatch.setenv("UNIVR_SYNTH__DOWNLOAD__PER_HOST_INTERVAL_S", "0")
    get_settings.cache_clear()
    names = ["../../../../etc/passwd", "a;rm%20-rf%20~;$(id).mp4", "..%2F..%2Fx.MKV", "x.$(id)"]
    rows = [{"url": web.url("/files/" + n), "caption": n} for n in names]
    rows.append({"url": web.url("/files/line\nbreak.mp4")})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    items = list_manifest(manifest)
    assert "whitespace or control characters" in (items[-1].reject or "")
    for i, it in enumerate(items[:-1]):
        assert it.reject is None, it
        web.files["/files/" + names[i]] = BODY  # the server answers each name
        key = layout.raw_video_key(f"v{i}", it.extra["ext"])
        assert key.startswith(f"raw/v{i}/source.") and key.count("/") == 2, key
        try:
            dl.download_stage(it, f"v{i}")
        except Rejected as exc:
            assert "HTTP 404" in str(exc)  # a traversal the client normalised: a missing file
    stored = list(get_store().list(layout.RAW))
    assert stored and all(k.count("/") == 2 and k.startswith(layout.RAW) for k in stored)
    assert not (tmp_path.parent / "etc").exists()
    partials = dl.partial_root(get_settings().synth.download)
    assert not partials.exists() or all(p.parent == partials for p in partials.iterdir())


def test_ytdlp_for_real_on_the_loopback_server(web, tmp_path):
    """The real yt-dlp (its generic extractor: a direct file) downloads a whole video and a span
    of it (cut by the pinned ffmpeg); a 404 is a refusal with yt-dlp's reason."""
    (video,) = small_videos(tmp_path / "v", 1, seed=1)
    web.files["/files/v.mp4"] = video.read_bytes()
    cfg = _cfg(max_bytes=10**7)
    whole, span = tmp_path / "whole", tmp_path / "span"
    whole.mkdir(), span.mkdir()
    got = ytdlp_fetch.fetch_ytdlp(web.url("/files/v.mp4"), None, whole, cfg)
    assert got.path.read_bytes() == video.read_bytes()
    part = ytdlp_fetch.fetch_ytdlp(web.url("/files/v.mp4"), [0.5, 1.5], span, cfg)
    assert 0 < part.size < got.size and probe(part.path).duration_s < probe(video).duration_s
    with pytest.raises(netguard.Refused, match="HTTP Error 404"):
        ytdlp_fetch.fetch_ytdlp(web.url("/missing.mp4"), None, tmp_path, cfg)


def test_ytdlp_redirects_go_through_the_address_guard(web, tmp_path, monkeypatch):
    """yt-dlp's own requests are checked like plain HTTP's (``ytdlp_guard``): the loopback server
    is allowed (``allow_networks`` 127.0.0.1/32, as above) but a redirect from it to another
    loopback server (127.0.0.2, which serves the file: without the guard yt-dlp fetches it), to a
    private or to a link-local address is refused with the guard's reason; a redirect to an
    allowed address is followed, every request through the guard."""
    (video,) = small_videos(tmp_path / "v", 1, seed=1)
    web.files["/files/v.mp4"] = video.read_bytes()
    guards: list = []
    real = ytdlp_fetch.GuardProxy

    def spy(cfg):  # noqa: ANN001, ANN202
        guards.append(real(cfg))
        return guards[-1]

    monkeypatch.setattr(ytdlp_fetch, "GuardProxy", spy)
    cfg = _cfg(max_bytes=10**7, retries=0)
    with web_server("127.0.0.2") as inner:
        inner.files["/files/v.mp4"] = video.read_bytes()
        to_inner = web.url(f"/redirect-to?to={inner.url('/files/v.mp4')}")
        cases = {
            to_inner: "127.0.0.2",
            web.url("/redirect-ten/v.mp4"): "10.1.2.3",
            web.url("/redirect-private/v.mp4"): "169.254.169.254",
        }
        for i, (url, address) in enumerate(cases.items()):
            work = tmp_path / f"w{i}"
            work.mkdir()
            with pytest.raises(netguard.Refused) as exc:
                ytdlp_fetch.fetch_ytdlp(url, None, work, cfg)
            assert str(exc.value).startswith("yt-dlp: ") and f"address ({address})" in str(
                exc.value
            ), str(exc.value)
            assert guards[-1].refused and not list(work.glob("ytdlp.*"))
        assert inner.hits["/files/v.mp4"] == 0  # never reached
        # allowed, the inner server serves it (the guard, not the server, refused it above)
        allowed = _cfg(max_bytes=10**7, allow_networks=["127.0.0.1/32", "127.0.0.2/32"])
        (tmp_path / "in").mkdir()
        got = ytdlp_fetch.fetch_ytdlp(to_inner, None, tmp_path / "in", allowed)
        assert got.path.read_bytes() == video.read_bytes() and inner.hits["/files/v.mp4"] >= 1
    (tmp_path / "ok").mkdir()
    got = ytdlp_fetch.fetch_ytdlp(web.url("/redirect-good/v.mp4"), None, tmp_path / "ok", cfg)
    assert got.path.read_bytes() == video.read_bytes() and not guards[-1].refused
    port = web.base.rsplit(":", 1)[1]
    assert guards[-1].hosts and set(guards[-1].hosts) == {f"127.0.0.1:{port}"}
    # a span is cut by ffmpeg, which yt-dlp hands the proxy: its requests go through the guard too
    (tmp_path / "span").mkdir()
    before = web.hits["/files/v.mp4"]
    ytdlp_fetch.fetch_ytdlp(web.url("/files/v.mp4"), [0.5, 1.5], tmp_path / "span", cfg)
    assert len(guards[-1].hosts) == web.hits["/files/v.mp4"] - before >= 2
    # with loopback not allowed at all, the first host is refused before yt-dlp starts
    with pytest.raises(netguard.Refused, match=r"loopback or link-local address \(127\.0\.0\.1\)"):
        ytdlp_fetch.fetch_ytdlp(web.url("/files/v.mp4"), None, tmp_path, DownloadSettings())
