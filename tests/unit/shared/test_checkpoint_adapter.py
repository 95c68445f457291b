"""A checkpoint's adapter, named by its store prefix in ``checkpoint.ready`` / ``eval.completed``,
is fetched into the local cache whole or not at all, once."""

from __future__ import annotations

import pytest

from shared.storage import InvalidKey, checkpoint_adapter, download_prefix, get_store

PREFIX = "checkpoints/run-1/00000010"


def _put_adapter(prefix: str = PREFIX, config: bool = True) -> None:
    store = get_store()
    if config:
        store.put_bytes(f"{prefix}/adapter/adapter_config.json", b'{"r": 16}')
    store.put_bytes(f"{prefix}/adapter/adapter_model.safetensors", b"weights")
    store.put_bytes(f"{prefix}/state.pt", b"optimizer: not part of the adapter")


def test_the_adapter_is_downloaded_once_into_the_cache(univr_home, monkeypatch):
    _put_adapter()
    path = checkpoint_adapter(PREFIX)
    assert path.is_relative_to(univr_home) and sorted(p.name for p in path.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (path / "adapter_model.safetensors").read_bytes() == b"weights"
    store = get_store()
    monkeypatch.setattr(type(store), "download", lambda *a, **k: pytest.fail("downloaded again"))
    assert checkpoint_adapter(PREFIX + "/") == path


def test_a_checkpoint_without_an_adapter_is_a_clear_error_and_leaves_nothing(univr_home):
    _put_adapter(config=False)  # a save killed before adapter_config.json
    with pytest.raises(FileNotFoundError, match="has no adapter"):
        checkpoint_adapter(PREFIX)
    with pytest.raises(FileNotFoundError, match="has no adapter"):
        checkpoint_adapter("checkpoints/never-written/1")
    cache = univr_home / "cache" / PREFIX
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("bad", ["../outside", "/etc", "", "/"])
def test_hostile_prefixes_are_refused(bad):
    with pytest.raises(InvalidKey):
        checkpoint_adapter(bad) if bad not in ("", "/") else download_prefix(bad, "/tmp/x")


def test_a_concurrent_download_that_finished_first_is_kept_not_replaced(univr_home, monkeypatch):
    """Two processes fetching one checkpoint at once (an evaluator and an indexer): the one that
    finishes second must not remove the first one's folder, which a model may be reading."""
    _put_adapter()
    store = type(get_store())
    real = store.download
    dest = univr_home / "cache" / PREFIX / "adapter"
    theirs: dict[str, int] = {}

    def download(self, key, path):  # noqa: ANN001, ANN202
        if not dest.exists():  # the other process publishes its copy while this one downloads
            dest.mkdir(parents=True)
            (dest / "adapter_model.safetensors").write_bytes(b"weights")
            (dest / "adapter_config.json").write_bytes(b'{"r": 16}')
            theirs["inode"] = (dest / "adapter_model.safetensors").stat().st_ino
        return real(self, key, path)

    monkeypatch.setattr(store, "download", download)
    assert checkpoint_adapter(PREFIX) == dest
    assert (dest / "adapter_model.safetensors").stat().st_ino == theirs["inode"]
    assert [p.name for p in dest.parent.iterdir()] == ["adapter"]  # no partial download left


def test_a_leftover_folder_without_a_config_is_replaced_by_the_download(univr_home):
    _put_adapter()
    dest = univr_home / "cache" / PREFIX / "adapter"
    dest.mkdir(parents=True)
    (dest / "adapter_model.safetensors").write_bytes(b"half")  # never published by this code
    assert checkpoint_adapter(PREFIX) == dest
    assert (dest / "adapter_model.safetensors").read_bytes() == b"weights"
    assert (dest / "adapter_config.json").is_file()
