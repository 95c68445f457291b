"""The demo's epoch-1 prober: trained on world videos whose seeds are disjoint from the demo's
snapshot and UVRB-mini, merged, and named as the prober of every training run; off with 0 steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.demo import pipeline
from services.demo.pipeline import DemoOptions, _train_and_score
from services.demo.prober import PROBER_SEED_OFFSET, train_prober
from services.demo.stages import StageRunner


class FakeRunner(StageRunner):
    """Records every `univr` command instead of running it; answers with canned JSON."""

    def __init__(self, out: Path) -> None:
        super().__init__(out=out, env={})
        self.calls: list[list[str]] = []

    def univr(self, stage: str, args, *, json_out: bool = False) -> Any:  # noqa: ANN001
        self.calls.append(list(args))
        if args[:2] == ["media", "snapshot"]:
            return {"id": "snap-prober"}
        if args[:2] == ["train", "run"]:
            return {
                "run_id": "run-p",
                "steps": int(args[args.index("--steps") + 1]),
                "adapter": "a",
                "heldout_t2v_r1_before": 0.1,
                "heldout_t2v_r1_after": 0.4,
            }
        if args[:2] == ["eval", "run"]:
            return {"abilities": {"AVG_A": 0.1}}
        return ""


def _opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_prober_trains_on_other_seeds_and_is_merged(tmp_path):
    runner = FakeRunner(tmp_path)
    rec = train_prober(runner, tmp_path, "tiny", seed=7, videos=96, steps=120, batch_size=16)
    snap, run, export = runner.calls
    assert snap[:2] == ["media", "snapshot"] and _opt(snap, "--videos") == "96"
    # the demo's world uses seed 7 and UVRB-mini seed 100007: the prober's videos are other ones
    assert int(_opt(snap, "--seed")) == 7 + PROBER_SEED_OFFSET
    assert run[:2] == ["train", "run"] and _opt(run, "--snapshot") == "snap-prober"
    assert _opt(run, "--steps") == "120" and _opt(run, "--model") == "tiny"
    assert export[:2] == ["train", "export"] and _opt(export, "--run") == "run-p"
    assert rec["path"] == _opt(export, "--out") and rec["steps"] == 120
    assert rec["heldout_t2v_r1_after"] == 0.4


def test_prober_steps_zero_turns_it_off(tmp_path):
    runner = FakeRunner(tmp_path)
    assert train_prober(runner, tmp_path, "tiny", seed=7, videos=96, steps=0, batch_size=16) == {
        "path": None,
        "steps": 0,
    }
    assert runner.calls == []


def test_every_training_run_names_the_prober_when_there_is_one(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "_evaluate", lambda *a, **k: {"abilities": {"AVG_A": 0.1}})
    opts = DemoOptions(out=tmp_path, seeds=2)
    for n, (prober, expected) in enumerate((({"path": "/p"}, "/p"), ({"path": None}, None))):
        runner = FakeRunner(tmp_path / f"demo{n}")
        _train_and_score(runner, opts, {"id": "s"}, "tiny", prober, {})
        runs = [c for c in runner.calls if c[:2] == ["train", "run"]]
        assert len(runs) == 4  # pyramid and uniform, two seeds each
        for run in runs:
            assert (_opt(run, "--prober") if "--prober" in run else None) == expected
