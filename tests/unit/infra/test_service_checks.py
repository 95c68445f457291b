"""The suite's service checks (tests/conftest.py) probe the host and port that the UNIVR_TEST_*
URLs name, not fixed localhost ports: a service moved elsewhere is found there, and one that is not
listening is reported with the address that was tried."""

from __future__ import annotations

import socket

import pytest

from tests import conftest


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("postgresql+psycopg://postgres@db.internal:6543/test", ("db.internal", 6543)),
        ("postgresql+psycopg://postgres@10.0.0.5/test", ("10.0.0.5", 5432)),
        ("amqp://guest:guest@rabbit:5673//", ("rabbit", 5673)),
        ("amqp://guest:guest@rabbit//", ("rabbit", 5672)),
        ("redis://[::1]:6380/0", ("::1", 6380)),
        ("redis://cache/0", ("cache", 6379)),
    ],
)
def test_the_address_comes_from_the_url(url, address):
    assert conftest.service_address(url) == address


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_listening_service_at_the_urls_port_is_accepted():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        conftest.require_service("Redis", f"redis://127.0.0.1:{port}/0")  # neither skips nor fails


def test_a_service_not_at_the_urls_port_is_reported_with_that_address():
    port = _free_port()
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception), match=f"127.0.0.1:{port}"):
        conftest.require_service("RabbitMQ", f"amqp://guest:guest@127.0.0.1:{port}//")
