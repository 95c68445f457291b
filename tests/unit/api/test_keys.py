"""API keys: stored hashed, scopes, revocation, malformed tokens."""

from __future__ import annotations

import pytest

from services.api.keys import check_key, create_key, list_keys, revoke_key


def test_a_key_is_stored_hashed_and_checks_with_its_scopes():
    from shared.db import session_scope
    from shared.db.models import ApiKey

    token = create_key("alice", ["search", "jobs", "search"])
    assert token.startswith("univr_")
    key_id, secret = token.split("_", 2)[1:]
    assert check_key(token) == ["jobs", "search"]
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        assert secret not in row.key_hash and token not in row.key_hash and len(row.key_hash) == 128
    assert all("key_hash" not in k and "secret" not in k for k in list_keys())


def test_wrong_secret_other_id_and_revoked_keys_fail():
    token = create_key("bob", ["search"])
    prefix, key_id, secret = token.split("_", 2)
    assert check_key(f"{prefix}_{key_id}_{secret}x") is None
    assert check_key(f"{prefix}_{'0' * 12}_{secret}") is None
    other = create_key("carol", ["admin"])
    assert (
        check_key(f"{prefix}_{key_id}_{other.split('_', 2)[2]}") is None
    )  # a secret is bound to its id
    assert revoke_key(key_id) and check_key(token) is None
    assert check_key(other) == ["admin"]
    assert revoke_key("000000000000") is False


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "univr_",
        "univr__",
        "univr_abc_def",
        "bearer univr_x_y",
        "univr_" + "a" * 12 + "_",
        "univr_ZZZZZZZZZZZZ_secret",
        "univr_" + "a" * 12 + "\x00_secret",
        "univr_" + "a" * 12 + "_" + "s" * 5000,
        "univr_%s_secret" % ("a" * 11 + "\u00e9"),
    ],
)
def test_malformed_tokens_are_rejected_without_error(token):
    create_key("x", ["search"])  # a database with a key in it
    assert check_key(token) is None


@pytest.mark.parametrize("scopes", [[], ["root"], ["search", "everything"]])
def test_unknown_or_empty_scopes_are_refused(scopes):
    with pytest.raises(ValueError, match="scopes"):
        create_key("x", scopes)
