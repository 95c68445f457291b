"""Multi-index hashing of 64-bit perceptual hashes: a hash cut into ``n`` contiguous bands. Two
hashes within ``max_bits`` bits differ in at most ``max_bits`` bands, so with ``max_bits + 1``
bands (pigeonhole) they agree exactly on at least one: an indexed equality lookup on the bands
finds every true match, and an exact Hamming check on those few candidates decides."""

from __future__ import annotations

HASH_BITS = 64


def n_bands(max_bits: int) -> int:
    """The band count that misses no hash within ``max_bits`` (at most one band per bit)."""
    if not 0 <= max_bits < HASH_BITS:
        raise ValueError(f"max_bits must lie in [0, {HASH_BITS}), not {max_bits}")
    return max_bits + 1


def signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v  # stored in a signed 64-bit column


def bands(phash: str, n: int) -> list[tuple[int, int]]:
    """``(band, value)`` of a hex pHash cut into ``n`` bands of near-equal width."""
    h = int(phash, 16)
    out = []
    for b in range(n):
        lo, hi = b * HASH_BITS // n, (b + 1) * HASH_BITS // n
        out.append((b, signed((h >> lo) & ((1 << (hi - lo)) - 1))))
    return out


def band_rows(clip_id: str, phash: str, n: int) -> list[dict[str, int | str]]:
    whole = signed(int(phash, 16))
    return [
        {"scheme": n, "band": b, "value": v, "clip_id": clip_id, "hash": whole}
        for b, v in bands(phash, n)
    ]
