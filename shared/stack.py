"""`make stack`: every service compose.yaml defines, as host processes, without Docker.

compose.yaml is the one source of truth: each service's ``command``, ``environment`` (anchors,
``${VAR:-default}`` interpolation, ``env_file``), ``profiles``, ``depends_on`` and ``restart`` are
read from it at start, so a command that breaks in compose breaks here too. Services that run the
univr image run their command as it is (``univr ...`` / ``celery ...`` from this virtual
environment) under honcho; restarted when they exit, as compose's ``restart: unless-stopped``
does. Images that are not univr are replaced by what this host has:

- postgres, rabbitmq, redis: the servers already on localhost (checked; the database is created);
- minio: moto's S3 server; minio-init: its buckets, made here;
- qdrant: the Qdrant REST stand-in on Qdrant's engine (``bench/_qdrant_rest_standin.py``);
- vllm: not started: captions come from the ``template`` captioner (UNIVR_CAPTION_BACKEND);
- prometheus, grafana: not started (no binary here); the API still serves ``/metrics``.

Compose host names in the environment (``postgres:5432``, ``minio:9000``...) become the local
addresses; named volumes become folders under ``.stack/volumes``; ``UNIVR_HOME`` is
``.stack/home``; logs are ``.stack/<service>.log``. Ctrl-C stops every process.

Size: one command; most of it is compose's own rules (variables, volumes, profiles) read
faithfully.

    python -m shared.stack [--set VAR=VALUE ...] [--only svc,svc] [--dir .stack]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# the interpolation variables compose reads from .env, with values for this host's servers
HOST_DEFAULTS = {
    "POSTGRES_USER": "postgres",
    "POSTGRES_PASSWORD": "postgres",
    "POSTGRES_DB": "univr_stack",
    "RABBITMQ_USER": "guest",
    "RABBITMQ_PASSWORD": "guest",
    "MINIO_ROOT_USER": "univr",
    "MINIO_ROOT_PASSWORD": "univr-secret",
    "BUCKET": "univr",
    "UNIVR_CAPTION_BACKEND": "template",
    "GRAFANA_PASSWORD": "admin",
    "QDRANT_API_KEY": "univr-stack-qdrant",
    "FLOWER_PASSWORD": "univr-stack-flower",
}
# where each compose host's port is served on this host (``--port NAME=PORT`` changes one)
LOCAL_PORTS = {
    "postgres": 5432,
    "rabbitmq": 5672,
    "redis": 6379,
    "minio": 9000,
    "qdrant": 6333,
    "api": 8080,
    "flower": 5555,
}
EXTERNAL = ("postgres", "rabbitmq", "redis")  # already running on localhost
NOT_HERE = {
    "vllm-openai": "captions come from the template captioner (UNIVR_CAPTION_BACKEND)",
    "prometheus": "no Prometheus binary here; the API serves /metrics",
    "grafana": "no Grafana binary here",
}
_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's variable syntax: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        val = variables.get(name)
        missing = val is None or (op is not None and op.startswith(":") and val == "")
        if op in (":-", "-") and missing:
            return interpolate(arg, variables)
        if op in (":?", "?") and missing:
            raise ValueError(f"compose variable {name}: {arg or 'required'}")
        return val or ""

    return _VAR.sub(sub, value)


def _walk(obj: Any, variables: dict[str, str]) -> Any:
    if isinstance(obj, str):
        return interpolate(obj, variables)
    if isinstance(obj, list):
        return [_walk(v, variables) for v in obj]
    if isinstance(obj, dict):
        return {k: _walk(v, variables) for k, v in obj.items()}
    return obj


@dataclass
class Service:
    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    one_shot: bool  # restart: "no" (migrate): runs to completion before the others start
    depends_on: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    @property
    def image_name(self) -> str:
        return self.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]

    @property
    def is_univr(self) -> bool:
        return self.image_name.startswith("univr")


def _env_list(env: Any) -> dict[str, str]:
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def load(compose: Path, variables: dict[str, str]) -> list[Service]:
    """The services of ``compose`` with their values interpolated from ``variables``."""
    data = _walk(yaml.safe_load(compose.read_text()), variables)
    services = []
    for name, spec in (data.get("services") or {}).items():
        command = spec.get("command") or []
        if isinstance(command, str):
            command = shlex.split(command)
        if spec.get("entrypoint"):
            entry = spec["entrypoint"]
            command = (shlex.split(entry) if isinstance(entry, str) else list(entry)) + list(
                command
            )
        deps = spec.get("depends_on") or []
        services.append(
            Service(
                name=name,
                image=str(spec.get("image", "")),
                command=[str(c) for c in command],
                env=_env_list(spec.get("environment")),
                one_shot=str(spec.get("restart")) == "no",
                depends_on=list(deps),
                profiles=list(spec.get("profiles") or []),
            )
        )
    return services


def volumes_of(compose: Path) -> dict[str, str]:
    """Mount path → named volume, over every service (``models:/models`` → {"/models":
    "models"})."""
    data = yaml.safe_load(compose.read_text())
    out = {}
    for spec in (data.get("services") or {}).values():
        for vol in spec.get("volumes") or []:
            parts = str(vol).split(":")
            if len(parts) >= 2 and not parts[0].startswith((".", "/")):
                out[parts[1]] = parts[0]
    return out


def localise(
    env: dict[str, str], ports: dict[str, int], volumes: dict[str, str], state: Path
) -> dict[str, str]:
    """Compose host names → 127.0.0.1 and this host's port; volume mount paths → folders."""
    out = {}
    for key, value in env.items():
        for host, port in ports.items():
            value = re.sub(rf"(^|[/@]){re.escape(host)}:\d+", rf"\g<1>127.0.0.1:{port}", value)
        for mount, vol in volumes.items():
            if value == mount or value.startswith(mount + "/"):
                value = str(state / "volumes" / vol) + value[len(mount) :]
        out[key] = value
    return out


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer on 127.0.0.1:{port} in {timeout:.0f} s")
        time.sleep(0.1)


def _executable(command: list[str], bin_dir: Path = BIN) -> list[str]:
    """``univr`` / ``celery`` as this virtual environment has them; ``celery`` without its script
    (a venv used through its python only, a package installed without scripts) runs as
    ``python -m celery``."""
    local = bin_dir / command[0]
    if local.exists():
        return [str(local), *command[1:]]
    if command[0] == "celery" and not shutil.which("celery"):
        return [sys.executable, "-m", "celery", *command[1:]]
    return command


@dataclass
class Stack:
    compose: Path
    state: Path
    variables: dict[str, str]
    ports: dict[str, int]
    only: set[str] | None = None
    profiles: tuple[str, ...] = ("cpu",)  # compose's --profile: a service with profiles runs only
    standins: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def selected(self, svc: Service) -> bool:
        """``--only`` names services; otherwise those without profiles and those of a chosen one."""
        if self.only is not None:
            return svc.name in self.only
        return not svc.profiles or bool(set(svc.profiles) & set(self.profiles))

    def services(self) -> list[Service]:
        return load(self.compose, self.variables)

    def env_of(self, svc: Service) -> dict[str, str]:
        """This host's environment (a ``UNIVR_*`` knob set here reaches every service), then
        ``env_file``, then the service's compose environment, localised."""
        env = {
            "UNIVR_HOME": str(self.state / "home"),
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # as a container's: the worker's Celery node name (two on one host must differ)
            "HOSTNAME": f"{svc.name}.{socket.gethostname()}",
            **self.env_file(),
            **svc.env,
        }
        if env.get("UNIVR_MODEL__DEVICE", "").startswith("cuda") and not shutil.which("nvidia-smi"):
            env["UNIVR_MODEL__DEVICE"] = "cpu"  # a gpu-profile service on a host without a GPU
        return localise(env, self.ports, volumes_of(self.compose), self.state)

    def env_file(self) -> dict[str, str]:
        path = self.compose.parent / ".env"
        if not path.exists():
            return {}
        from dotenv import dotenv_values

        return {k: v or "" for k, v in dotenv_values(path).items()}

    # --- stand-ins -------------------------------------------------------------------------
    def _standin(self, name: str, cmd: list[str], port: int) -> None:
        log = open(self.state / f"{name}.log", "ab")  # noqa: SIM115 - the process writes it until stopped
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
        )
        self.standins.append((name, proc))
        print(
            f"stack | {name:<16} stand-in started with pid {proc.pid} on 127.0.0.1:{port}",
            flush=True,
        )
        wait_port(port, name)

    def start_standins(self, services: list[Service]) -> None:
        for svc in services:
            kind = svc.image_name
            if svc.is_univr:
                continue
            port = self.ports.get(svc.name)
            if svc.name in EXTERNAL or kind in EXTERNAL:
                if not port_open(port or LOCAL_PORTS[kind]):
                    raise RuntimeError(
                        f"{svc.name}: nothing answers on 127.0.0.1:{port}; start it first"
                    )
                print(f"stack | {svc.name:<16} on this host, 127.0.0.1:{port}", flush=True)
            elif kind == "minio":
                self._standin(
                    svc.name,
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    self.ports[svc.name],
                )
            elif kind == "qdrant":
                self._standin(
                    svc.name,
                    [
                        sys.executable,
                        str(ROOT / "bench" / "_qdrant_rest_standin.py"),
                        "--port",
                        str(port),
                        "--data",
                        str(self.state / "qdrant"),
                    ],
                    self.ports[svc.name],
                )
            elif kind == "mc":
                self.make_buckets()
                print(f"stack | {svc.name:<16} buckets made", flush=True)
            else:
                why = NOT_HERE.get(kind, "no stand-in for this image")
                print(f"stack | {svc.name:<16} not started: {why}", flush=True)

    def make_buckets(self) -> None:
        from minio import Minio

        v = self.variables
        client = Minio(
            f"127.0.0.1:{self.ports['minio']}",
            access_key=v["MINIO_ROOT_USER"],
            secret_key=v["MINIO_ROOT_PASSWORD"],
            secure=False,
        )
        for bucket in (v.get("BUCKET") or "univr", "raw"):
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)

    def make_database(self) -> None:
        import psycopg

        v = self.variables
        with psycopg.connect(
            host="127.0.0.1",
            port=self.ports["postgres"],
            user=v["POSTGRES_USER"],
            password=v["POSTGRES_PASSWORD"],
            dbname="postgres",
            autocommit=True,
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (v["POSTGRES_DB"],)
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{v["POSTGRES_DB"]}"')

    def ensure_model(self, services: list[Service]) -> None:
        """The model compose names, if it is a folder this host can build (the tiny bundle)."""
        for path in {
            self.env_of(svc).get("UNIVR_MODEL__NAME_OR_PATH", "")
            for svc in services
            if svc.is_univr
        }:
            if path.startswith("/") and not Path(path, "config.json").exists():
                print(f"stack | building the tiny model bundle at {path}", flush=True)
                subprocess.run(
                    [str(BIN / "univr"), "model", "tiny", "--out", path],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

    def stop_standins(self) -> None:
        for _, proc in self.standins:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.standins:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    # --- univr services --------------------------------------------------------------------
    def run(self) -> int:
        from honcho.manager import Manager

        self.state.mkdir(parents=True, exist_ok=True)
        services = [s for s in self.services() if self.selected(s)]
        try:
            self.start_standins(services)
            self.make_database()
            self.ensure_model(services)
            for svc in services:
                if svc.is_univr and svc.one_shot:
                    print(
                        f"stack | {svc.name:<16} (one-shot) {shlex.join(svc.command)}", flush=True
                    )
                    subprocess.run(
                        _executable(svc.command), env=self.env_of(svc), check=True, cwd=ROOT
                    )
            manager = Manager(_LogPrinter(self.state))
            table = {}
            for svc in services:
                if svc.is_univr and not svc.one_shot:
                    cmd = shlex.join(_executable(svc.command))
                    # compose's restart: unless-stopped (a killed worker comes back, as its
                    # container would)
                    loop = (
                        f"while :; do {cmd};"
                        f' echo "{svc.name} exited ($?): restarting"; sleep 1; done'
                    )
                    manager.add_process(svc.name, loop, env=self.env_of(svc), cwd=str(ROOT))
                    table[svc.name] = shlex.join(svc.command)
            (self.state / "services.json").write_text(json.dumps(table, indent=2))
            manager.loop()
            return manager.returncode or 0
        finally:
            self.stop_standins()


class _LogPrinter:
    """honcho's printer, plus one log file per process under the state folder."""

    def __init__(self, state: Path) -> None:
        from honcho.printer import Printer

        self.printer = Printer(sys.stdout, width=16)
        self.state = state
        self.files: dict[str, Any] = {}

    def write(self, message: Any) -> None:
        self.printer.write(message)
        name = message.name or "stack"
        if name not in self.files:
            self.files[name] = open(self.state / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115
        data = (
            message.data.decode("utf-8", "replace")
            if isinstance(message.data, bytes)
            else message.data
        )
        self.files[name].write(data)
        self.files[name].flush()
        started = re.match(r"(\S+) started \(pid=(\d+)\)", data) if name == "system" else None
        if (
            started
        ):  # pids.json: each service's process (its restart loop; the command is its child)
            pids = (
                json.loads((self.state / "pids.json").read_text())
                if (self.state / "pids.json").exists()
                else {}
            )
            pids[started.group(1)] = int(started.group(2))
            (self.state / "pids.json").write_text(json.dumps(pids))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="compose.yaml's services as host processes (no Docker)."
    )
    p.add_argument("--compose", type=Path, default=ROOT / "compose.yaml")
    p.add_argument("--dir", type=Path, default=ROOT / ".stack", help="logs, PIDs and state")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="a compose variable (as in .env), e.g. RABBITMQ_PASSWORD=x",
    )
    p.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="where a compose host is served here, e.g. rabbitmq=5673",
    )
    p.add_argument(
        "--only", default="", help="comma-separated services (default: all of the profile)"
    )
    p.add_argument(
        "--profile",
        default="cpu",
        help="compose profiles whose services run, comma-separated (default: cpu)",
    )
    a = p.parse_args(argv)
    state = a.dir.resolve()
    variables = {
        **HOST_DEFAULTS,
        "EMBED_MODEL": str(state / "home" / "models" / "tiny"),
        **{k: v for k, v in os.environ.items()},
    }
    stack = Stack(
        a.compose,
        state,
        variables,
        dict(LOCAL_PORTS),
        {s for s in a.only.split(",") if s} or None,
        tuple(p for p in a.profile.split(",") if p),
    )
    variables.update(stack.env_file())
    variables.update(dict(kv.split("=", 1) for kv in a.set))
    stack.ports.update({k: int(v) for k, v in (kv.split("=", 1) for kv in a.port)})
    (state / "pids.json").unlink(missing_ok=True)
    return stack.run()


if __name__ == "__main__":
    sys.exit(main())
