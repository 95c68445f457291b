"""The indexer's integration tests share the API's corpus and live-index fixtures (promotion is
tested while searches run)."""

from tests.integration.api.conftest import api, clip_home  # noqa: F401
