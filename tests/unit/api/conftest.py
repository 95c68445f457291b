"""An in-memory Qdrant client for the API's unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def qdrant():
    from qdrant_client import QdrantClient

    client = QdrantClient(location=":memory:")
    yield client
    client.close()
