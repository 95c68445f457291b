"""Settings: profiles, env and YAML overrides, secret masking."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shared.config import Settings, get_settings


def test_embedded_profile_is_self_contained(univr_home):
    s = Settings()
    assert s.profile == "embedded"
    assert s.database.url == f"sqlite:///{univr_home.resolve() / 'univr.db'}"
    assert s.storage.backend == "local" and s.storage.local_root.startswith(
        str(univr_home.resolve())
    )
    assert s.vectors.path.startswith(str(univr_home.resolve())) and not s.vectors.url
    assert s.broker.url == "filesystem://"


def test_stack_profile_points_at_services(monkeypatch):
    monkeypatch.setenv("UNIVR_PROFILE", "stack")
    s = Settings()
    assert s.database.url.startswith("postgresql")
    assert s.storage.backend == "s3"
    assert s.vectors.url.startswith("http")
    assert s.broker.url.startswith("amqp://")


def test_env_overrides_nested_fields(monkeypatch):
    monkeypatch.setenv("UNIVR_TRAIN__LR", "0.001")
    monkeypatch.setenv("UNIVR_BROKER__URL", "redis://localhost:6379/3")
    s = Settings()
    assert s.train.lr == pytest.approx(1e-3)
    assert s.broker.url == "redis://localhost:6379/3"


def test_yaml_file_loses_to_env(tmp_path, monkeypatch):
    cfg = tmp_path / "univr.yaml"
    cfg.write_text("train:\n  lr: 0.5\n  epochs: 7\nsynth:\n  min_clip_s: 2.5\n")
    monkeypatch.setenv("UNIVR_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("UNIVR_TRAIN__LR", "0.25")
    s = Settings()
    assert s.train.epochs == 7 and s.synth.min_clip_s == 2.5
    assert s.train.lr == 0.25


def test_yaml_must_be_a_mapping(tmp_path, monkeypatch):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("- just\n- a list\n")
    monkeypatch.setenv("UNIVR_CONFIG_FILE", str(cfg))
    with pytest.raises(ValueError, match="mapping"):
        Settings()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("UNIVR_PROFILE", "stack")
    monkeypatch.setenv("UNIVR_BROKER__URL", "amqp://admin:hunter2@rabbit:5672//")
    monkeypatch.setenv("UNIVR_STORAGE__SECRET_KEY", "s3cr3t")
    text = json.dumps(Settings().resolved())
    assert "hunter2" not in text and "s3cr3t" not in text
    assert "amqp://admin:****@rabbit:5672//" in text
    clear = Settings().resolved(mask_secrets=False)
    assert clear["storage"]["secret_key"] == "s3cr3t"


@pytest.mark.parametrize("profile", ["embedded", "stack"])
def test_config_show_cli(profile, monkeypatch):
    from shared.cli import build_app

    monkeypatch.setenv("UNIVR_PROFILE", profile)
    get_settings.cache_clear()
    result = CliRunner().invoke(build_app(), ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["profile"] == profile
