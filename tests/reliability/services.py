"""Private, restartable instances of the services a fault test stops and starts: each owned by the
test, on its own free port, in its own temp folder. The shared services on the default ports are
never touched (other tests use them at the same time)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, up: bool = True, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout:.0f} s")


class _Restartable:
    """A private server a test can take down and bring back; subclasses define start() and
    stop()."""

    restarts = 0

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1


class PrivateRedis(_Restartable):
    """``redis-server`` with an append-only file, so queued messages survive a restart (as a
    production broker is configured); stop is a clean SIGTERM (the AOF is flushed)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="univr-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        wait_port(self.port, up=False)

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivatePostgres(_Restartable):
    """A PostgreSQL cluster of its own (initdb + pg_ctl as the ``postgres`` OS user: initdb refuses
    root), trust auth on 127.0.0.1 only. ``restart`` is pg_ctl stop -m fast + start: every client
    connection is cut, as in a real database restart or fail-over."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries are not installed")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="univr-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.restarts = 0
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.dir}"
            " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        wait_port(self.port)

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        wait_port(self.port, up=False)

    def close(self) -> None:
        try:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        except Exception:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRabbitMQ(_Restartable):
    """A RabbitMQ node of its own (own node name, AMQP and distribution ports, mnesia and log
    folders, no plugins). Its mnesia folder survives ``restart``, so durable queues and persistent
    messages come back, as on a real broker restart."""

    def __init__(self) -> None:
        exe = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not os.path.exists(exe):
            found = shutil.which("rabbitmq-server")
            if found is None:
                raise RuntimeError("rabbitmq-server is not installed")
            exe = found
        self.exe = exe
        self.dir = Path(tempfile.mkdtemp(prefix="univr-rmq-"))
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"univr{self.port}@localhost"
        (self.dir / "plugins").write_text("[].\n")
        for cookie in (Path("/var/lib/rabbitmq/.erlang.cookie"), Path.home() / ".erlang.cookie"):
            if cookie.exists():
                shutil.copy(cookie, self.dir / ".erlang.cookie")
                os.chmod(self.dir / ".erlang.cookie", 0o400)
                break
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "plugins"),
            RABBITMQ_PID_FILE=str(self.dir / "pid"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "none"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.dir / "none-adv.config"),
            HOME=str(self.dir),
        )
        return env

    def start(self) -> None:
        (self.dir / "pid").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [self.exe],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, timeout=180)

    def _beam_pid(self) -> int | None:
        try:
            return int((self.dir / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """A clean broker shutdown (SIGTERM to the Erlang VM): queued persistent messages are
        kept."""
        pid = self._beam_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait(timeout=120)
        wait_port(self.port, up=False)

    def close(self) -> None:
        pid = self._beam_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RestartableS3(_Restartable):
    """moto's S3 server (a real HTTP endpoint) that can go away and come back on the same port.
    moto keeps its buckets in this process's memory, so the data outlives a server restart, as a
    MinIO restart keeps its disks: only the endpoint is unavailable while it is down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_port(self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        wait_port(self.port, up=False)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
