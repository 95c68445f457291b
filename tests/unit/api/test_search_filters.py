"""query_kind and build_filter, applied by a real (in-memory) Qdrant."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import models

from services.api.search import build_filter, query_kind
from services.indexer.collections import PAYLOAD_INDEXES

IMG, VID = object(), np.zeros((8, 4, 4, 3), np.uint8)


@pytest.mark.parametrize(
    ("text", "image", "video", "kind"),
    [
        ("a dog", None, None, "T2V"),
        (None, IMG, None, "I2V"),
        (None, None, VID, "V2V"),
        ("", IMG, None, "I2V"),
        ("red", IMG, None, "TI2V"),
        ("then", None, VID, "TV2V"),
        ("", None, VID, "V2V"),
    ],
)
def test_query_kind(text, image, video, kind):
    assert query_kind(text, image, video) == kind


@pytest.mark.parametrize("args", [(None, None, None), ("", None, None)])
def test_an_empty_query_is_refused(args):
    with pytest.raises(ValueError, match="needs"):
        query_kind(*args)


POINTS = [  # id, source, source_uri, dataset, snapshot, kind, duration
    (1, "s-a", "s3://b/a/", ["mini"], ["snap1"], "clip", 2.0),
    (2, "s-a", "s3://b/a/", [], [], "video", 6.0),
    (3, "s-b", "/data/b", ["mini", "big"], ["snap1", "snap2"], "clip", 4.0),
    (4, "s-b", "/data/b", ["big"], ["snap2"], "clip", 0.5),
]


@pytest.fixture
def points(qdrant):
    qdrant.create_collection(
        "c", vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    for f, schema in PAYLOAD_INDEXES.items():
        qdrant.create_payload_index("c", f, schema)
    qdrant.upsert(
        "c",
        points=[
            models.PointStruct(
                id=i,
                vector=[1.0, float(i)],
                payload={
                    "source": s,
                    "source_uri": u,
                    "dataset": d,
                    "snapshot": sn,
                    "kind": k,
                    "duration_s": t,
                },
            )
            for i, s, u, d, sn, k, t in POINTS
        ],
    )
    return qdrant


def _ids(client, flt) -> set[int]:  # noqa: ANN001
    return {p.id for p in client.scroll("c", scroll_filter=flt, limit=100)[0]}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {1, 2, 3, 4}),
        ({"source": "s-a"}, {1, 2}),
        ({"source": "/data/b"}, {3, 4}),
        ({"source": "nope"}, set()),
        ({"dataset": "mini"}, {1, 3}),
        ({"dataset": "snap2"}, {3, 4}),
        ({"dataset": "big", "source": "s3://b/a/"}, set()),
        ({"kind": "video"}, {2}),
        ({"kind": "clip", "dataset": "big"}, {3, 4}),
        ({"min_duration": 2.0}, {1, 2, 3}),
        ({"max_duration": 2.0}, {1, 4}),
        ({"min_duration": 2.0, "max_duration": 2.0}, {1}),
        ({"min_duration": 0.0}, {1, 2, 3, 4}),
        ({"max_duration": 0.0}, set()),
    ],
)
def test_filters_select_the_right_points(points, kwargs, expected):
    flt = build_filter(**kwargs)
    assert (flt is None) == (not kwargs)
    assert _ids(points, flt) == expected


def test_inverted_duration_bounds_are_refused():
    with pytest.raises(ValueError, match="above"):
        build_filter(min_duration=5, max_duration=1)
