"""Fixtures shared by every test: an isolated univr home per test, and the real services.

Services (PostgreSQL, RabbitMQ, Redis) are on localhost on the development machine. Locally a
missing service skips its tests; with ``CI=true`` it fails them, so CI cannot pass by skipping.

`make test` runs the suite on ``TEST_WORKERS`` pytest-xdist processes. Each test has its own home,
database and temp folder, and the fault-injection tests start private services; what is shared is
the broker on localhost (queue names are the configuration's), so every test that uses it (the
``rabbitmq_url`` and ``redis_url`` fixtures) runs in one worker, one after another; the other
tests of a file run in one worker (its module fixtures are built once). Each worker's
torch (and its subprocesses') gets cores / workers threads: two processes each with torch's
default of a thread per core slow each other down many times over (shared/threads.py).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.config import get_settings
from shared.threads import cpu_cores

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1:  # set before torch is loaded: inherited by every process a test starts
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(max(1, cpu_cores() // _WORKERS)))
SHARED_BROKER_FIXTURES = {"rabbitmq_url", "redis_url"}

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

POSTGRES_ADMIN_URL = os.environ.get(
    "UNIVR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("UNIVR_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("UNIVR_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """xdist groups (``--dist loadgroup``): the tests on the shared broker form one; every other
    test is grouped with its file, so a module's fixtures are built once, in one worker."""
    for item in items:
        uses_broker = SHARED_BROKER_FIXTURES & set(getattr(item, "fixturenames", ()))
        group = "shared-broker" if uses_broker else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


def service_address(url: str) -> tuple[str, int]:
    """The host and port a service URL points at (the scheme's default port when it names none)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    return parts.hostname or "localhost", parts.port or DEFAULT_PORTS[scheme]


DEFAULT_PORTS = {"postgresql": 5432, "amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379}


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, url: str) -> None:
    """Skip (locally) or fail (in CI) unless the service at ``url`` accepts connections."""
    host, port = service_address(url)
    if _port_open(host, port):
        return
    msg = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{msg}; CI requires it (see DESIGN.md for how to start it)")
    pytest.skip(msg)


@pytest.fixture(autouse=True)
def univr_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own embedded-profile home, and a fresh Settings."""
    home = tmp_path / "univr-home"
    monkeypatch.setenv("UNIVR_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for key in list(os.environ):
        if (
            key.startswith("UNIVR_")
            and key not in {"UNIVR_HOME", "UNIVR_ARTIFACTS"}
            and not key.startswith("UNIVR_TEST_")
        ):
            monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL)
    from sqlalchemy import create_engine, text

    name = f"univr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The fresh database of ``postgres_url`` as univr's database for one test
    (``UNIVR_DATABASE__URL``), with fresh Settings and engines (reset again afterwards)."""
    from shared.db.session import reset_engines

    monkeypatch.setenv("UNIVR_DATABASE__URL", postgres_url)
    get_settings.cache_clear()
    reset_engines()
    yield postgres_url
    reset_engines()


@pytest.fixture
def rabbitmq_url() -> str:
    require_service("RabbitMQ", RABBITMQ_URL)
    return RABBITMQ_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2.5-VL bundle, built once per test session."""
    from shared.model.tiny import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("tiny-bundle"), seed=0)


_SCREENSHOTS: list[tuple[str, Path]] = []


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    """``screenshot(name)``: where a browser test saves a screenshot (``$UNIVR_ARTIFACTS`` if set,
    else the test's tmp folder). Each one is attached to the test's report (a ``screenshot``
    property, in JUnit XML too) and listed in a "screenshots" section at the end of the run."""

    def path(name: str) -> Path:
        root = Path(os.environ.get("UNIVR_ARTIFACTS") or tmp_path)
        root.mkdir(parents=True, exist_ok=True)
        shot = root / name
        _SCREENSHOTS.append((request.node.nodeid, shot))
        request.node.user_properties.append(("screenshot", str(shot)))
        return shot

    return path


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    shots = [(test, shot) for test, shot in _SCREENSHOTS if shot.exists()]
    if shots:
        terminalreporter.section("screenshots")
        for test, shot in shots:
            terminalreporter.write_line(f"{shot}  ({test}, {shot.stat().st_size} bytes)")
