"""One source of truth for training knobs (issue 16 item 4): ``UNIVR_TRAIN__*`` and the YAML file
reach every field, a preset fills only what nothing above it set, caller values win only when
given; the gve preset carries SPEC Table 7; an epoch is one pass over the task-weighted data when
the run is given in epochs."""

from __future__ import annotations

import pytest

from services.trainer.runconfig import TrainConfig, pass_steps, schedule
from services.trainer.step import limit_hard_negatives
from shared.config import TrainSettings, get_settings


@pytest.fixture
def env(monkeypatch):
    def set_env(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(f"UNIVR_TRAIN__{k}", v)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


def test_environment_reaches_sampler_batch_size_and_seed(env):
    env(SAMPLER="uniform", BATCH_SIZE="8", SEED="7")
    ts = TrainConfig(snapshot="s").train_settings()
    assert (ts.sampler, ts.batch_size, ts.seed) == ("uniform", 8, 7)
    # a caller's value wins only when given
    ts = TrainConfig(snapshot="s", seed=9).train_settings()
    assert (ts.sampler, ts.batch_size, ts.seed) == ("uniform", 8, 9)


def test_a_preset_fills_only_what_nothing_above_it_set(env):
    env(LR="0.002", PRESET="tiny")
    ts = TrainConfig(snapshot="s").train_settings()
    assert ts.preset == "tiny" and ts.lr == 0.002  # env over the preset's lr 1e-3
    assert ts.temperature == 0.05  # the preset's value where env is silent
    assert TrainConfig(snapshot="s", preset="gve").train_settings().temperature == 0.03


def test_yaml_file_reaches_every_run_field(env, tmp_path, monkeypatch):
    cfg = tmp_path / "univr.yaml"
    cfg.write_text(
        "train:\n  steps: 11\n  heldout_fraction: 0.25\n  report_to: none\n"
        "  epochs: 2\n  steps_per_epoch: 4\n"
    )
    monkeypatch.setenv("UNIVR_CONFIG_FILE", str(cfg))
    env(STEPS="12")  # env over the file
    ts = TrainConfig(snapshot="s").train_settings()
    assert (ts.steps, ts.heldout_fraction, ts.report_to, ts.epochs, ts.steps_per_epoch) == (
        12,
        0.25,
        "none",
        2,
        4,
    )


def test_gve_preset_is_table7_unless_batch_size_is_given(env):
    ts = TrainConfig(snapshot="s").train_settings()
    assert ts.preset == "gve" and ts.task_batch_size == {
        "T2T": 64,
        "T2I": 32,
        "T2V": 64,
        "TI2V": 64,
        "TV2V": 64,
        "I2V": 64,
        "V2V": 64,
    }
    assert ts.task_hard_negatives == {
        "T2T": 0,
        "T2I": 0,
        "T2V": 1,
        "TI2V": 1,
        "TV2V": 1,
        "I2V": 0,
        "V2V": 0,
    }
    assert TrainConfig(snapshot="s", batch_size=8).train_settings().task_batch_size == {}
    both = TrainConfig(snapshot="s", batch_size=8, overrides={"task_batch_size": {"T2V": 3}})
    assert both.train_settings().task_batch_size == {"T2V": 3}
    assert TrainConfig(snapshot="s", preset="tiny").train_settings().task_batch_size == {}


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig(snapshot="s", preset="huge").train_settings()
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig(snapshot="s", overrides={"bacth_size": 3}).train_settings()


def test_an_epoch_is_one_pass_over_the_task_weighted_data():
    ts = TrainSettings(batch_size=8, task_batch_size={"T2V": 64, "T2I": 32}, epochs=3)
    counts = {"T2V": 130, "T2I": 33, "V2V": 17}
    assert pass_steps(counts, ts, 1) == 3 + 2 + 3  # ceil(130/64) + ceil(33/32) + ceil(17/8)
    assert pass_steps(counts, ts, 2) == 2 + 1 + 2  # global batches of size × 2 processes
    plan = schedule(ts, counts, 1)
    assert (plan.total_steps, plan.epochs, plan.steps_per_epoch) == (24, 3, 8)
    assert [plan.epoch_of(s) for s in (0, 7, 8, 23)] == [1, 1, 2, 3]
    # a run given in steps: its epochs split it (σ ramps over the whole run)
    fixed = schedule(ts.model_copy(update={"steps": 30}), counts, 1)
    assert (fixed.total_steps, fixed.steps_per_epoch, fixed.epoch_of(29)) == (30, 10, 3)
    # an explicit epoch length wins; steps beyond epochs × length stay in the last epoch
    set_len = schedule(ts.model_copy(update={"steps": 30, "steps_per_epoch": 4}), counts, 1)
    assert (set_len.steps_per_epoch, set_len.epoch_of(11), set_len.epoch_of(29)) == (4, 3, 3)


def test_hard_negatives_per_task_are_capped():
    batch = [{"id": 1, "hard_negatives": [{"a": 1}, {"a": 2}]}, {"id": 2}]
    assert limit_hard_negatives(batch, None) is batch
    assert [len(p["hard_negatives"]) for p in limit_hard_negatives(batch, 1)] == [1, 0]
    assert [len(p["hard_negatives"]) for p in limit_hard_negatives(batch, 0)] == [0, 0]
    assert len(batch[0]["hard_negatives"]) == 2  # the snapshot's pairs are left as they are
