"""compose.yaml validates, names every service the platform runs, only runs real commands, pins
its images, sets only real settings, keeps GPU services in the gpu profile, and gives vLLM flags
that the pinned vLLM version has."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yaml"
REQUIRED = {
    "postgres",
    "rabbitmq",
    "minio",
    "minio-init",
    "qdrant",
    "vllm",
    "migrate",
    "synth-worker",
    "caption-worker",
    "caption-worker-vllm",
    "trainer",
    "trainer-cpu",
    "evaluator",
    "indexer",
    "api",
    "evaluator-gpu",
    "indexer-gpu",
    "api-gpu",
    "flower",
    "prometheus",
    "grafana",
}

# `vllm serve` flags of the version compose pins, checked against vLLM's engine/serve arguments
# for that tag (docs.vllm.ai/en/v0.12.0: --structured-outputs-config.* replaced the removed
# --guided-decoding-backend; --limit-mm-per-prompt takes JSON). Only flags compose uses or may use.
VLLM_VERSION = "v0.12.0"
VLLM_FLAGS = {
    "--model",
    "--port",
    "--host",
    "--max-model-len",
    "--limit-mm-per-prompt",
    "--structured-outputs-config.backend",
    "--structured-outputs-config",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
    "--served-model-name",
    "--dtype",
    "--api-key",
    "--max-num-seqs",
    "--mm-processor-kwargs",
}
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


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
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )
            if wanted == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is a one-shot job"
    for stateful in ("postgres", "rabbitmq", "minio", "qdrant"):
        assert "healthcheck" in services[stateful]
    assert services["vllm"]["profiles"] == ["gpu"] and services["trainer"]["profiles"] == ["gpu"]
    assert "redis" not in services, "nothing in univr uses redis"


def _expand(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X:?error} (a required X reads as 'set')."""
    env = env or {}

    def sub(m: re.Match) -> str:
        name, op, arg = m.groups()
        if name in env:
            return env[name]
        return arg if op == "-" else "set"

    return _VAR.sub(sub, str(value))


def test_every_image_is_pinned(compose):
    for name, svc in compose["services"].items():
        image = _expand(svc["image"]) if "image" in svc else None
        assert image, f"{name} has no image name (built images need one)"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats on :latest"
        assert not image.startswith(("minio/", "docker.io/minio/")), (
            f"{name}: Docker Hub's MinIO is gone"
        )


def test_every_univr_variable_is_a_real_setting(compose, monkeypatch):
    """Each UNIVR_* a service sets names a Settings field (pydantic-settings ignores unknown ones)
    and `univr config show` resolves it to the value compose gives."""
    from shared.config import Settings

    dotenv = dict(
        ln.split("=", 1)
        for ln in (ROOT / ".env.example").read_text().splitlines()
        if "=" in ln and not ln.startswith("#")
    )
    services = dict(compose["services"], **{".env.example (env_file)": {"environment": dotenv}})
    for name, svc in services.items():
        env = {
            k: _expand(v)
            for k, v in (svc.get("environment") or {}).items()
            if k.startswith("UNIVR_")
        }
        for key in list(os.environ):
            if key.startswith("UNIVR_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        shown = Settings().resolved(mask_secrets=False)
        for key, value in env.items():
            node, model = shown, Settings
            for part in key.removeprefix("UNIVR_").lower().split("__"):
                assert part in model.model_fields, f"{name}: {key} is not a Settings field ({part})"
                ann = model.model_fields[part].annotation
                model = ann if isinstance(ann, type) and hasattr(ann, "model_fields") else None
                node = node[part]
            assert str(node) == value or node == json.loads(value), (
                f"{name}: {key}={value!r} reads {node!r}"
            )


def _gpu_reserved(svc: dict) -> bool:
    devices = (
        (svc.get("deploy") or {}).get("resources", {}).get("reservations", {}).get("devices", [])
    )
    return any("gpu" in d.get("capabilities", []) for d in devices)


def test_gpu_services_are_in_the_gpu_profile_and_profiles_do_not_overlap(compose):
    services = compose["services"]
    gpu = {n for n, s in services.items() if _gpu_reserved(s)}
    assert {"vllm", "trainer", "evaluator-gpu", "indexer-gpu", "api-gpu"} <= gpu
    for name in gpu:
        assert services[name].get("profiles") == ["gpu"], (
            f"{name} reserves a GPU outside the gpu profile"
        )
        assert services[name]["image"].startswith("${UNIVR_CUDA_IMAGE") or name == "vllm", name
        assert name == "vllm" or services[name]["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    for name, svc in services.items():
        assert len(svc.get("profiles", [])) <= 1, f"{name} is in more than one profile"
    # each profile runs exactly one of each worker kind; the core runs none of them
    for profile in ("cpu", "gpu"):
        cmds = [
            tuple(s["command"])
            for s in services.values()
            if s.get("profiles") == [profile] and s.get("command", [""])[0] == "univr"
        ]
        kinds = [c[1:3] for c in cmds]
        assert sorted(kinds) == [
            ("api", "serve"),
            ("eval", "worker"),
            ("index", "worker"),
            ("synth", "worker"),
            ("train", "worker"),
        ], (profile, kinds)


def test_only_the_gpu_profile_captions_with_vllm(compose):
    services = compose["services"]
    for name, svc in services.items():
        backend = (svc.get("environment") or {}).get("UNIVR_CAPTION__BACKEND")
        if backend == "openai":
            assert svc.get("profiles") == ["gpu"], f"{name} calls vLLM outside the gpu profile"
            assert svc["depends_on"]["vllm"]["condition"] == "service_healthy"
        elif "UNIVR_PROFILE" in (svc.get("environment") or {}):
            assert backend == "template", f"{name}: a CPU-only up must caption with the template"
    assert "UNIVR_CAPTION_BACKEND" not in (ROOT / ".env.example").read_text()


def test_vllm_flags_exist_in_the_pinned_version_and_match_the_captioner(compose):
    from shared.config import CaptionSettings

    vllm = compose["services"]["vllm"]
    assert vllm["image"] == f"vllm/vllm-openai:{VLLM_VERSION}"
    args = vllm["command"]
    flags = [a.split("=", 1)[0] for a in args if a.startswith("--")]
    unknown = set(flags) - VLLM_FLAGS
    assert not unknown, f"not flags of vLLM {VLLM_VERSION}: {unknown}"
    assert not any("guided" in a for a in args)
    limit = json.loads(args[args.index("--limit-mm-per-prompt") + 1])
    worker = compose["services"]["caption-worker-vllm"]["environment"]
    per_request = int(
        worker.get("UNIVR_CAPTION__FRAMES_PER_REQUEST", CaptionSettings().frames_per_request)
    )
    assert limit["image"] == per_request == CaptionSettings().frames_per_request


def test_images_run_as_a_user_that_owns_its_caches():
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        text = (ROOT / "docker" / dockerfile).read_text()
        user = re.findall(r"^USER (\S+)", text, re.M)
        assert user and user[-1] not in ("root", "0"), dockerfile
        env = dict(re.findall(r"(HOME|HF_HOME|UNIVR_HOME)=(\S+)", text))
        assert set(env) == {"HOME", "HF_HOME", "UNIVR_HOME"}, dockerfile
        chowned = " ".join(re.findall(r"chown [^&\n]*", text))
        for path in (env["HF_HOME"], env["UNIVR_HOME"]):
            assert path in chowned, f"{dockerfile}: {path} is not given to the user"
        assert "useradd --create-home" in text and "|| pip install" not in text


def test_no_secret_is_committed(compose):
    text = COMPOSE.read_text()
    for var in (
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "GRAFANA_PASSWORD",
        "FLOWER_PASSWORD",
        "QDRANT_API_KEY",
    ):
        assert f"${{{var}:?" in text, f"{var} must come from .env, with no default"
    assert (ROOT / ".env.example").exists()


def test_flower_and_qdrant_are_authenticated(compose):
    services = compose["services"]
    assert "FLOWER_PASSWORD" in services["flower"]["environment"]["FLOWER_BASIC_AUTH"]
    key = services["qdrant"]["environment"]["QDRANT__SERVICE__API_KEY"]
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "UNIVR_VECTORS__URL" in env:
            assert env.get("UNIVR_VECTORS__API_KEY") == key, (
                f"{name} talks to qdrant without its key"
            )


def _univr_commands(compose: dict) -> list[list[str]]:
    out = []
    for svc in compose["services"].values():
        cmd = svc.get("command")
        if isinstance(cmd, list) and cmd and cmd[0] == "univr":
            out.append(cmd[1:])
    return out


def test_univr_commands_are_real_subcommands(compose):
    """Each `univr ...` command parses (sub-commands and options exist); --help stops before running
    it."""
    from typer.testing import CliRunner

    from shared.cli import build_app

    app = build_app()
    broken = []
    for argv in _univr_commands(compose):
        result = CliRunner().invoke(app, [*argv, "--help"])
        if result.exit_code != 0 or "Usage:" not in result.output:
            why = [ln.strip("│ ") for ln in result.output.splitlines() if "No such" in ln] or [
                repr(result.exception)
            ]
            broken.append(f"univr {' '.join(argv)}: {why[0]}")
    assert not broken, "compose.yaml runs commands univr does not have:\n" + "\n".join(broken)


@pytest.mark.skipif(
    not shutil.which("docker-compose") and not os.environ.get("CI"),
    reason="docker-compose not installed (make tools)",
)
def test_docker_compose_config_validates(tmp_path):
    """Debian's docker-compose validates the file against the compose schema (no engine needed)."""
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    shutil.copytree(ROOT / "docker", tmp_path / "docker")
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    proc = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (tmp_path / ".env").unlink()
    proc = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "in .env" in proc.stderr, proc.stderr


def test_the_qdrant_client_sends_the_api_key_compose_gives_it(compose, monkeypatch):
    """shared.vectors builds its client from the settings compose sets: every request carries the
    key in Qdrant's `api-key` header (checked against a local HTTP server that records headers)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from shared.config import Settings
    from shared.vectors import get_qdrant

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("api-key"))
            data = json.dumps({"result": {"collections": []}, "status": "ok", "time": 0.0}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = compose["services"]["indexer-gpu"]["environment"]
        key = _expand(env["UNIVR_VECTORS__API_KEY"], {"QDRANT_API_KEY": "k-123"})
        monkeypatch.setenv("UNIVR_PROFILE", "stack")
        monkeypatch.setenv("UNIVR_VECTORS__URL", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("UNIVR_VECTORS__API_KEY", key)
        get_qdrant(Settings()).get_collections()
    finally:
        server.shutdown()
    assert seen == ["k-123"]
