"""Training batches: every process takes its own slice of one global batch (no two processes
train on the same pairs), and hard negatives fall in the same groups as the positives, so a hard
negative from the positive's own cluster is masked out of the loss."""

from __future__ import annotations

import torch

from services.trainer.data import PairBatcher, clip_groups, group_of, hard_group, to_inputs
from services.trainer.loss import infonce


def _video(clip: str) -> dict:
    return {
        "video": {"clip_id": clip, "frames": [f"clips/{clip}/frames/{i:02d}.jpg" for i in range(8)]}
    }


def _pairs(n: int = 40) -> list[dict]:
    """Synth-shaped pairs: T2V/I2V per clip; clips of video v share dedup cluster ``d<v>``; hard
    negatives are bare clip references (as services/synth writes them)."""
    out = []
    for i in range(n):
        clip, vid, cluster = f"c{i}", f"v{i // 2}", f"d{i // 2}"
        neg = _video(f"c{(i + 7) % n}")
        out.append(
            {
                "id": f"t{i}",
                "task": "T2V",
                "video_id": vid,
                "dedup_cluster": cluster,
                "query": {"text": f"caption {i}"},
                "target": _video(clip),
                "hard_negatives": [neg],
            }
        )
        out.append(
            {
                "id": f"i{i}",
                "task": "I2V",
                "video_id": vid,
                "dedup_cluster": cluster,
                "query": {"image": f"clips/{clip}/key/00.jpg"},
                "target": _video(clip),
                "hard_negatives": [],
            }
        )
        out.append(
            {
                "id": f"v{i}",
                "task": "TV2V",
                "video_id": vid,
                "dedup_cluster": cluster,
                "query": {"text": "then", **_video(clip)},
                "target": _video(f"c{(i + 1) % n}"),
            }
        )
    return out


def test_ranks_take_disjoint_slices_of_the_same_global_batch():
    pairs, world, b = _pairs(), 4, 3
    for task in ("T2V", "I2V"):
        single = PairBatcher(pairs, seed=11).batch(task, b * world)
        ranks = [PairBatcher(pairs, seed=11) for _ in range(world)]
        for _step in range(3):
            slices = [r.local_batch(task, b, rank, world) for rank, r in enumerate(ranks)]
            ids = [p["id"] for s in slices for p in s]
            assert all(len(s) == b for s in slices)
            assert len(set(ids)) == b * world  # no pair trained twice in a step
            assert (
                len({group_of(p) for s in slices for p in s}) == b * world
            )  # distinct groups across ranks
            if _step == 0:
                assert ids == [p["id"] for p in single]  # the global batch of one process
            assert all(r.rng.bit_generator.state == ranks[0].rng.bit_generator.state for r in ranks)


def test_hard_negatives_share_the_positives_group_definition():
    pairs = _pairs()
    groups = clip_groups(pairs)
    # the clip's group is its positive pairs' group, not the group of the TV2V pair that targets it
    assert (
        groups["c3"] == group_of(pairs[3 * 3]) == group_of(pairs[2 * 3])
    )  # c2, c3: video v1, cluster d1
    _, _, hard, g, hg = to_inputs([pairs[0]], "T2V", groups)  # c0's negative is c7 (cluster d3)
    assert len(hard) == 1 and hg == [group_of(pairs[7 * 3])] and hg != g
    # a negative that carries its own cluster uses it; an unknown clip hashes its id
    assert hard_group({"video": {"clip_id": "x"}, "dedup_cluster": "d3"}, groups) == group_of(
        pairs[7 * 3]
    )
    assert hard_group({"video": {"clip_id": "x"}}, groups) != hard_group(
        {"video": {"clip_id": "y"}}, groups
    )


def test_a_hard_negative_from_the_positives_cluster_is_masked():
    pairs = _pairs()
    groups = clip_groups(pairs)
    batch = [
        dict(pairs[0], hard_negatives=[_video("c1"), _video("c9")])
    ]  # c1: same cluster (d0) as c0; c9: d4
    _, _, _, g, hg = to_inputs(batch, "T2V", groups)
    assert hg[0] == g[0] != hg[1]
    q = torch.nn.functional.normalize(
        torch.randn(1, 4, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    y = torch.nn.functional.normalize(
        torch.randn(1, 4, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    h = torch.cat([q, -q])  # c1 looks exactly like the query: it would dominate if it were counted
    loss = infonce(q, y, torch.tensor(g), 0.05, h, torch.tensor(hg))["loss"]
    only_c9 = infonce(q, y, torch.tensor(g), 0.05, h[1:], torch.tensor(hg[1:]))["loss"]
    assert torch.allclose(loss, only_c9)
    counted = infonce(q, y, torch.tensor(g), 0.05, h, torch.tensor([12345, hg[1]]))["loss"]
    assert counted > loss + 1
