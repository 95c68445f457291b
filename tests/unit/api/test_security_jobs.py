"""Jobs under attack (issue #19, findings 3, 9, 10): job params are validated per kind by the
typed contracts (sources only under the data roots or in the configured buckets, outputs only
under the home's runs, a size limit); stored jobs and the status never fail on what a client
stored; search-scope keys see no job sources or error texts."""

from __future__ import annotations

import json

import pytest

from tests.unit.api.conftest import auth


@pytest.fixture
def broker(monkeypatch):
    sent = []

    class Broker:
        def send_task(self, name, args, queue):  # noqa: ANN001, ANN202
            sent.append((name, args, queue))

    monkeypatch.setattr("shared.queue.get_celery", lambda: Broker())
    return sent


def _submit(api, kind: str, params: dict):  # noqa: ANN001, ANN202
    return api["client"].post(
        f"/v1/jobs/{kind}", json={"params": params}, headers=auth(api["keys"]["jobs"])
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("synth", {"source": "/etc"}),
        ("synth", {"source": "/"}),
        ("synth", {"source": "relative/dir"}),
        ("synth", {"source": "s3://someone-elses-bucket/x/"}),
        ("train", {"snapshot": "s", "out": "/tmp/anywhere"}),
        ("train", {"snapshot": "s", "out": "../../x"}),
        ("eval", {"uvrb": "/etc"}),
        ("eval", {"model": "/root/models/x"}),
        ("index", {"avg_a": "0.5"}),
        ("index", {"version": "../x"}),
        ("index", {"unknown": 1}),
        ("train", {"snapshot": "s", "steps": 10.0}),
    ],
)
def test_params_outside_the_contract_get_422(live_api, broker, kind, params):
    r = _submit(live_api, kind, params)
    assert r.status_code == 422, r.text
    assert broker == []


def test_a_source_under_a_data_root_is_accepted_normalised(live_api, broker, univr_home):
    root = univr_home / "data"
    (root / "raw").mkdir(parents=True)
    r = _submit(live_api, "synth", {"source": f"{root}/raw/../raw"})
    assert r.status_code == 200, r.text
    ((_, (_, params), _),) = broker
    assert params == {"source": str((root / "raw").resolve())}


def test_a_link_out_of_a_data_root_is_refused(live_api, broker, univr_home, tmp_path):
    root = univr_home / "data"
    root.mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    assert _submit(live_api, "synth", {"source": str(root / "escape")}).status_code == 422


def test_training_outputs_land_under_the_runs_folder(live_api, broker, univr_home):
    r = _submit(live_api, "train", {"snapshot": "snap", "out": "my-run"})
    assert r.status_code == 200, r.text
    ((_, (_, params), _),) = broker
    assert params["out"] == str((univr_home / "runs" / "my-run").resolve())


def test_huge_params_are_refused(live_api, broker):
    r = _submit(live_api, "index", {"model": "x" * 200_000})
    assert r.status_code == 413 and broker == []


def test_stored_jobs_with_any_text_still_read(live_api):
    """Rows written before the edge refused such text (or by a worker) must not break reads."""
    import uuid

    from shared.db import session_scope
    from shared.db.models import Job, JobState

    jid = str(uuid.uuid4())
    with session_scope() as s:
        s.add(
            Job(
                id=jid,
                kind="synth",
                state=JobState.failed,
                params={"x": "\ud800", "source": "\udc00", "n": float("nan")},
                error="bad source /srv/secret",
            )
        )
    c = live_api["client"]
    job = c.get(f"/v1/jobs/{jid}", headers=auth(live_api["keys"]["jobs"]))
    assert job.status_code == 200 and job.json()["params"]["n"] is None
    for key in ("search", "admin"):
        r = c.get("/v1/status", headers=auth(live_api["keys"][key]))
        assert r.status_code == 200, r.text
    mine = next(j for j in r.json()["jobs"] if j["id"] == jid)
    assert mine["error"].startswith("bad")  # a key that may submit jobs sees the reason
    seen = c.get("/v1/status", headers=auth(live_api["keys"]["search"])).json()
    theirs = next(j for j in seen["jobs"] if j["id"] == jid)
    assert theirs["source"] is None and theirs["error"] == "failed"
    assert "/srv/secret" not in json.dumps(seen)


def test_a_surrogate_in_job_params_is_refused_at_the_edge(live_api, broker):
    r = live_api["client"].post(
        "/v1/jobs/index",
        content='{"params": {"x": "\\ud800"}}',
        headers={**auth(live_api["keys"]["jobs"]), "content-type": "application/json"},
    )
    assert r.status_code == 422 and broker == []


def test_clips_show_no_server_paths(live_api):
    import uuid

    from shared.db import session_scope, upsert
    from shared.db.models import Clip, Source, Video

    cid, vid = str(uuid.uuid4()), str(uuid.uuid4())
    with session_scope() as s:
        upsert(s, Source, [{"id": "src", "uri": "/srv/private/raw", "kind": "directory"}])
        upsert(
            s,
            Video,
            [{"id": vid, "source_id": "src", "uri": "/srv/private/raw/a.mp4", "status": "ok"}],
        )
        upsert(
            s,
            Clip,
            [
                {
                    "id": cid,
                    "video_id": vid,
                    "start_ms": 0,
                    "end_ms": 1000,
                    "kept": True,
                    "object_key": f"clips/{cid}/clip.mp4",
                }
            ],
        )
    r = live_api["client"].get(f"/v1/clips/{cid}", headers=auth(live_api["keys"]["search"]))
    assert r.status_code == 200 and r.json()["video_id"] == vid
    assert "/srv/private" not in r.text
