"""The indexed near-duplicate lookup (multi-index hashing) answers exactly as comparing with every
stored clip: on 10⁴ random stored hashes and queries planted at every distance around them, for
every ``max_bits`` from 0 to the configured threshold, no match is missed and none is invented."""

from __future__ import annotations

import numpy as np
import pytest

from services.synth import dedup
from shared.config import get_settings
from shared.db import init_db, session_scope, upsert
from shared.db.hash_bands import band_rows, bands, n_bands
from shared.db.models import Clip, ClipHashBand, Frame, Video
from shared.media.analysis import hamming

N_STORED = 10_000
N_QUERIES = 250  # per max_bits


def _flip(h: int, k: int, rng: np.random.Generator) -> int:
    for bit in rng.choice(64, size=k, replace=False):
        h ^= 1 << int(bit)
    return h


def _brute(
    ph: str, stored: list[tuple[str, str, str]], hashes: np.ndarray, video_id: str, max_bits: int
) -> str | None:
    """Every stored clip compared (the exhaustive check the index replaces); ``hashes`` holds the
    stored hashes as integers, in ``stored``'s order."""
    dist = np.unpackbits(
        (hashes ^ np.uint64(int(ph, 16))).view(np.uint8).reshape(-1, 8), axis=1
    ).sum(1)
    close = sorted(
        (stored[i] for i in np.nonzero(dist <= max_bits)[0] if stored[i][2] != video_id),
        key=lambda row: row[0],
    )
    assert all(hamming(ph, h) <= max_bits for _, h, _ in close)
    return close[0][0] if close else None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def corpus(request, monkeypatch) -> list[tuple[str, str, str]]:
    """10⁴ stored clips with random hashes (and some in tight clusters), over 50 videos; one in
    ten is kept but not stored (no Frame rows), which never counts as a duplicate. On SQLite the
    candidates are verified in Python, on PostgreSQL in SQL."""
    if request.param == "postgres":
        from shared.db.session import reset_engines

        monkeypatch.setenv("UNIVR_DATABASE__URL", request.getfixturevalue("postgres_url"))
        get_settings.cache_clear()
        reset_engines()
        request.addfinalizer(reset_engines)
    init_db()
    rng = np.random.default_rng(7)
    top = get_settings().synth.dedup_hamming
    hashes = [(int(hi) << 32) | int(lo) for hi, lo in rng.integers(0, 2**32, (N_STORED, 2))]
    for i in range(0, 2000, 10):  # clusters: ten hashes within a few bits of each other
        for j in range(1, 10):
            hashes[i + j] = _flip(hashes[i], int(rng.integers(0, top + 3)), rng)
    rows = [(f"c{i:05d}", f"{h:016x}", f"v{i % 50}") for i, h in enumerate(hashes)]
    with session_scope() as s:
        upsert(s, Video, [{"id": f"v{i}", "uri": f"/v{i}"} for i in range(51)])
        for start in range(0, N_STORED, 2000):
            part = rows[start : start + 2000]
            upsert(
                s,
                Clip,
                [
                    {"id": c, "video_id": v, "start_ms": 0, "end_ms": 1, "kept": True, "phash": h}
                    for c, h, v in part
                ],
            )
            upsert(
                s,
                Frame,
                [
                    {"id": f"f{c}", "clip_id": c, "index": 0, "time_ms": 0, "object_key": "k"}
                    for k, (c, _, _) in enumerate(part)
                    if int(c[1:]) % 10 != 3
                ],
            )
            for mb in range(top + 1):
                upsert(
                    s,
                    ClipHashBand,
                    [r for c, h, _ in part for r in band_rows(c, h, n_bands(mb))],
                    key=("scheme", "band", "value", "clip_id"),
                    update=[],
                )
    return [r for r in rows if int(r[0][1:]) % 10 != 3]


def test_band_layout_misses_no_hash_within_max_bits():
    rng = np.random.default_rng(1)
    for max_bits in range(0, 17):
        n = n_bands(max_bits)
        for _ in range(200):
            h = int(rng.integers(0, 2**62)) << 2
            other = _flip(h, max_bits, rng)
            assert set(bands(f"{h:016x}", n)) & set(bands(f"{other:016x}", n))


def test_indexed_lookup_equals_brute_force_for_every_threshold(corpus):
    rng = np.random.default_rng(11)
    top = get_settings().synth.dedup_hamming
    assert top >= 1
    hashes = np.array([int(h, 16) for _, h, _ in corpus], dtype=np.uint64)
    for max_bits in range(top + 1):
        found = 0
        for q in range(N_QUERIES):
            base_id, base, _ = corpus[int(rng.integers(len(corpus)))]
            k = int(rng.integers(0, max_bits + 3))  # at, within and beyond the threshold
            ph = (
                f"{_flip(int(base, 16), k, rng):016x}"
                if q % 8
                else f"{int(rng.integers(0, 2**62)) << 2:016x}"
            )
            video = f"v{int(rng.integers(0, 51))}"
            with session_scope() as s:
                got = dedup.find_duplicate(s, ph, video, max_bits)
            want = _brute(ph, corpus, hashes, video, max_bits)
            assert got == want, (max_bits, ph, video)
            found += want is not None
        assert found > N_QUERIES // 4  # the planted queries do hit
