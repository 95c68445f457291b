"""Object-store round trips through the real minio client against moto's S3 server, and locally."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from shared.storage import InvalidKey, LocalStore, ObjectNotFound, S3Store, validate_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path, s3_endpoint):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    from minio import Minio

    client = Minio(
        s3_endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )
    import uuid

    return S3Store(client, f"univr-{uuid.uuid4().hex[:12]}")


def test_round_trip(store, tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    store.put_bytes("clips/c1/clip.mp4", data, content_type="video/mp4")
    src = tmp_path / "frame.jpg"
    src.write_bytes(b"\xff\xd8jpeg")
    store.put_file("clips/c1/frames/00.jpg", src, content_type="image/jpeg")
    assert store.get_bytes("clips/c1/clip.mp4") == data
    with store.open("clips/c1/clip.mp4") as fh:  # streaming read in chunks
        chunks = iter(lambda: fh.read(65536), b"")
        assert b"".join(chunks) == data
    assert sorted(store.list("clips/c1/")) == ["clips/c1/clip.mp4", "clips/c1/frames/00.jpg"]
    assert list(store.list("clips/c2/")) == []
    assert (
        store.download("clips/c1/frames/00.jpg", tmp_path / "dl" / "f.jpg").read_bytes()
        == b"\xff\xd8jpeg"
    )
    url = store.presign("clips/c1/clip.mp4", expires_s=60)
    if url.startswith("file://"):
        assert store.local_path("clips/c1/clip.mp4").read_bytes() == data
    else:
        assert httpx.get(url).content == data
    assert store.exists("clips/c1/clip.mp4")
    assert store.delete_prefix("clips/c1/") == 2
    assert not store.exists("clips/c1/clip.mp4")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("clips/c1/clip.mp4")


def test_overwrite_is_atomic_and_idempotent(store):
    store.put_bytes("a/b", b"one")
    store.put_bytes("a/b", b"two")
    assert store.get_bytes("a/b") == b"two"
    assert list(store.list("a/")) == ["a/b"]


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a/./b", "a\x00b", "a\nb", "", "a\\b"],
)
def test_hostile_keys_are_rejected(store, key):
    with pytest.raises(InvalidKey):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        validate_key(key)


def test_unicode_keys_round_trip(store):
    key = "videos/vidéo 日本語 ✓;$(id).mp4"
    store.put_bytes(key, b"ok")
    assert store.get_bytes(key) == b"ok"
