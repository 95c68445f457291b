"""The hostile media corpus through a real synthesis job (worker processes, embedded broker): every
case ends as a valid clip or as a job-event row with a clear reason; no crash, no hang, nothing
lost."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.reliability.figures import record
from tests.reliability.hostile_media import build_hostile_corpus


@pytest.mark.slow
def test_hostile_corpus(tmp_path):
    import json
    import time

    t0 = time.monotonic()
    cases = build_hostile_corpus(tmp_path / "hostile")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(
        UNIVR_HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        UNIVR_BROKER__SOFT_TIME_LIMIT_S="60",
        UNIVR_BROKER__HARD_TIME_LIMIT_S="90",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shared.cli import main; main()",
            "synth",
            "run",
            str(tmp_path / "hostile" / "manifest.jsonl"),
            "--json",
            "--workers",
            "2",
            "--timeout",
            "600",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["state"] == "completed"
    items = summary["items"]
    assert len(items) == len(cases), "every manifest entry is an item: nothing dropped"
    rows, problems = [], []
    for case in cases:
        item = next(
            it
            for it in items
            if it["item"].endswith(case.path)
            or it["item"] == case.path
            or it["item"].endswith(case.path.split("/")[-1])
        )
        outcome = "clip" if item["state"] == "done" and item["clips"] > 0 else item["state"]
        rows.append((case.name, case.expect, outcome, item["reason"] or ""))
        if item["state"] not in ("done", "rejected"):  # never 'failed': no crash loops
            problems.append((case.name, item["state"], item["reason"]))
        if item["state"] == "rejected" and not (item["reason"] and len(item["reason"]) > 8):
            problems.append((case.name, "no clear reason", item["reason"]))
        if (
            case.expect == "clip"
            and outcome != "clip"
            or case.expect == "reject"
            and outcome != "rejected"
        ):
            problems.append((case.name, f"expected {case.expect}, got {outcome}", item["reason"]))
    record(
        "hostile media corpus",
        faults=len(cases),
        expected=len(cases),
        completed=sum(1 for it in items if it["state"] in ("done", "rejected")),
        lost=len(cases) - sum(1 for it in items if it["state"] in ("done", "rejected")),
        duplicated=max(0, len(items) - len(cases)),
        errors=len(problems),
        wall_s=time.monotonic() - t0,
        clips=sum(1 for r in rows if r[2] == "clip"),
        rejected=sum(1 for r in rows if r[2] == "rejected"),
    )
    print("\nhostile media: case, expected, outcome, reason")
    for row in rows:
        print(f"  {row[0]:<22} {row[1]:<7} {row[2]:<9} {row[3][:90]}")
    assert not problems, problems
