"""Reliability suite: the figures table printed at the end of the session, and private,
restartable services for the fault scenarios."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.reliability import figures


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if not figures.ROWS:
        return
    form = "full" if figures.FULL else "short (make reliability runs the full form)"
    terminalreporter.section(f"reliability figures — {form}")
    for line in figures.table():
        terminalreporter.write_line(line)


def _private(cls, what: str):  # noqa: ANN001, ANN202
    try:
        return cls()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(f"{what}: {exc}")
        pytest.skip(f"{what}: {exc}")


@pytest.fixture(scope="module")
def private_rabbitmq() -> Iterator:
    """One node per test module (a start costs seconds); tests purge its queues before use."""
    from tests.reliability.services import PrivateRabbitMQ

    node = _private(PrivateRabbitMQ, "private RabbitMQ node")
    node.start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def private_postgres() -> Iterator:
    from tests.reliability.services import PrivatePostgres

    pg = _private(PrivatePostgres, "private PostgreSQL cluster")
    pg.start()
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture
def restartable_s3() -> Iterator:
    from tests.reliability.services import RestartableS3

    s3 = RestartableS3()
    s3.start()
    try:
        yield s3
    finally:
        s3.close()
