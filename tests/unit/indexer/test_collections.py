"""Collection names: a pure function of the model id and the scope, distinct where those differ,
and valid Qdrant names for any model id."""

from __future__ import annotations

import re

import pytest

from services.indexer.collections import collection_name, scope

VALID = re.compile(r"[a-zA-Z0-9_-]{1,255}")


def test_the_name_is_stable_and_depends_on_model_and_scope():
    mid = "tiny-0123456789abcdef-cafebabe"
    assert (
        collection_name(mid)
        == collection_name(mid, scope())
        == collection_name(mid, scope(None, ""))
    )
    names = {
        collection_name(mid),
        collection_name(mid + "x"),
        collection_name(mid, scope("s1")),
        collection_name(mid, scope(None, "mini")),
        collection_name(mid, scope("s1", "mini")),
    }
    assert len(names) == 5
    assert collection_name(mid).startswith("univr-tiny-0123456789abcdef-cafebabe-")


@pytest.mark.parametrize(
    "model_id",
    ["Qwen/Qwen2.5-VL-3B-Instruct", "a" * 500, "../../etc/passwd", "模型 ✓", "-", "x:y@z#1"],
)
def test_any_model_id_gives_a_valid_name(model_id):
    assert VALID.fullmatch(collection_name(model_id))


def test_long_ids_sharing_a_prefix_do_not_collide():
    base = "checkpoint-" + "x" * 80
    assert collection_name(base + "-adapter1") != collection_name(base + "-adapter2")


def test_an_empty_model_id_is_refused():
    with pytest.raises(ValueError):
        collection_name("")
