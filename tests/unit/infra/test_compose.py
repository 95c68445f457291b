"""compose.yaml validates, names every service the platform runs, and only runs real commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yaml"
REQUIRED = {"postgres", "rabbitmq", "redis", "minio", "minio-init", "qdrant", "vllm", "migrate", "synth-worker",
            "caption-worker", "trainer", "evaluator", "indexer", "api", "flower", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_platform_service_is_there(compose):
    assert REQUIRED <= set(compose["services"])


def test_dependencies_exist_and_are_health_gated(compose):
    services = compose["services"]
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            wanted = cond["condition"]
            if wanted == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy, but it has no healthcheck"
            if wanted == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot job"
    for stateful in ("postgres", "rabbitmq", "redis", "minio", "qdrant"):
        assert "healthcheck" in services[stateful]
    assert services["vllm"]["profiles"] == ["gpu"] and services["trainer"]["profiles"] == ["gpu"]


def test_no_secret_is_committed(compose):
    text = COMPOSE.read_text()
    for var in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "MINIO_ROOT_PASSWORD", "GRAFANA_PASSWORD"):
        assert f"${{{var}:?" in text, f"{var} must come from .env, with no default"
    assert (ROOT / ".env.example").exists()


def _univr_commands(compose: dict) -> list[list[str]]:
    out = []
    for svc in compose["services"].values():
        cmd = svc.get("command")
        if isinstance(cmd, list) and cmd and cmd[0] == "univr":
            out.append(cmd[1:])
    return out


def test_univr_commands_are_real_subcommands(compose):
    """Each `univr ...` command parses (sub-commands and options exist); --help stops before running it."""
    from typer.testing import CliRunner

    from shared.cli import build_app

    app = build_app()
    broken = []
    for argv in _univr_commands(compose):
        result = CliRunner().invoke(app, [*argv, "--help"])
        if result.exit_code != 0 or "Usage:" not in result.output:
            why = [ln.strip("│ ") for ln in result.output.splitlines() if "No such" in ln] or [repr(result.exception)]
            broken.append(f"univr {' '.join(argv)}: {why[0]}")
    assert not broken, "compose.yaml runs commands univr does not have:\n" + "\n".join(broken)


@pytest.mark.skipif(not shutil.which("docker-compose") and not os.environ.get("CI"), reason="docker-compose not installed (make tools)")
def test_docker_compose_config_validates(tmp_path):
    """Debian's docker-compose validates the file against the compose schema (no engine needed)."""
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    shutil.copytree(ROOT / "docker", tmp_path / "docker")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    proc = subprocess.run(["docker-compose", "-f", "compose.yaml", "config", "-q"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
