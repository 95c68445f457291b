"""Issue 16, item 2: on the procedural world, mined hard negatives teach held-out text→video
retrieval better than random ones: after the same number of steps, held-out t2v R@1 is higher with
``train.hard_negative_source: mined`` than with the snapshot's random negatives, for two seeds.

The run is set up as the paper's is, where hard negatives matter:
- the model being tuned starts pretrained, as Qwen2.5-VL does: the tiny bundle is first trained
  on another world (disjoint videos, random negatives) and merged (`univr train export`'s
  function). It is also the epoch-1 prober, and its nearest neighbours are already the near
  duplicates worth mining. From the random-weight bundle, whose epoch-1 neighbours are two hubs,
  mined and random were within the seed noise (README: Mined hard negatives);
- the run is long enough for the in-batch and random negatives to be easy: the training split is
  passed ~10 times (60 steps a pass), and past the first passes only the mined ones still teach;
- the world comes in twins (pairs of videos one captioned attribute apart, held out together), so
  held-out R@1 needs the fine distinctions mined negatives teach."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import WORLD_SEED, WORLD_TASKS, home_env

PRETRAIN_SEED, PRETRAIN_VIDEOS, PRETRAIN_STEPS = WORLD_SEED + 100, 320, 400
# 448 training videos and 802 held-out ones: most of the world is held out, since the difference
# is a few points of R@1 and a query is 0.12 % of it (with 190 held-out queries mined led on seeds
# 3 and 7 by 10 and 0 queries)
VIDEOS, TWINS, HELDOUT = 1280, 2, 0.65
STEPS = 600
BATCH = 16
NEGATIVES = {"T2V": 1, "T2I": 0}  # SPEC Table 7's, for both sources


def _train(snapshot: str, model: str, out: Path, seed: int, heldout: float, **overrides) -> dict:
    """A run of its own (``out``'s name and the seed make its id: the home is shared)."""
    from services.trainer.loop import TrainConfig, train

    steps = overrides.pop("steps", STEPS)
    return train(
        TrainConfig(
            snapshot=snapshot,
            model=model,
            sampler="uniform",
            steps=steps,
            batch_size=BATCH,
            seed=seed,
            out=str(out),
            preset="tiny",
            heldout_fraction=heldout,
            run_id=f"mined-learning-{out.name}-{seed}",
            overrides=overrides,
        )
    )


@pytest.fixture(scope="module")
def pretrained(world_home, tmp_path_factory) -> str:
    """The tiny bundle trained on a world of its own and merged: the start of every run."""
    from services.trainer.export import export_merged
    from shared.world.snapshot import build_world_snapshot

    with pytest.MonkeyPatch.context() as mp:
        home_env(world_home, mp)
        snapshot = build_world_snapshot(
            PRETRAIN_VIDEOS, seed=PRETRAIN_SEED, tasks=WORLD_TASKS, hard_negatives=1, twins=TWINS
        )
        root = tmp_path_factory.mktemp("pretrain")
        result = _train(
            snapshot, world_home["model"], root / "pretrain", 1, 0.2, steps=PRETRAIN_STEPS
        )
        return str(export_merged(result["run_id"], None, root / "merged"))


@pytest.fixture(scope="module")
def twin_world(world_home) -> str:
    """The world the runs tune on (rendered once for both seeds)."""
    from shared.world.snapshot import build_world_snapshot

    with pytest.MonkeyPatch.context() as mp:
        home_env(world_home, mp)
        return build_world_snapshot(
            VIDEOS, seed=WORLD_SEED, tasks=WORLD_TASKS, hard_negatives=1, twins=TWINS
        )


@pytest.mark.slow
@pytest.mark.timeout(3600)  # four ~100 s runs and the pretraining on one idle core; longer loaded
@pytest.mark.parametrize("seed", [3, 7])
def test_mined_negatives_beat_random_ones(
    world_home, pretrained, twin_world, monkeypatch, tmp_path, seed
):
    home_env(world_home, monkeypatch)
    r1 = {}
    for source in ("random", "mined"):
        result = _train(
            twin_world,
            pretrained,
            tmp_path / source,
            seed,
            HELDOUT,
            hard_negative_source=source,
            mined_negatives_per_task=NEGATIVES,
            task_hard_negatives=NEGATIVES,
        )
        r1[source] = result["heldout_t2v_r1_after"]
        print(
            f"seed {seed} {source}: held-out t2v R@1 {result['heldout_t2v_r1_before']:.3f} -> "
            f"{r1[source]:.3f} on {result['heldout_queries']} clips in {result['wall_seconds']} s"
        )
    assert r1["mined"] > r1["random"]
