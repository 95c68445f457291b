"""UVRB-mini end to end with the tiny bundle: all 16 datasets, 9 abilities, both averages; the
check command on a good and a broken copy; a second run served from the embedding cache."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.cli import build_app


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    from services.evaluator.mini import build_mini

    root = tmp_path_factory.mktemp("uvrb")
    build_mini(root, seed=424242, n=8, long_n=3)
    return root


def test_check_accepts_mini_and_pinpoints_breakage(mini, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(build_app(), ["uvrb", "check", str(mini), "--json"])
    assert ok.exit_code == 0, ok.output
    assert all(v["ok"] for v in json.loads(ok.output).values())
    broken = tmp_path / "broken"
    shutil.copytree(mini, broken)
    (broken / "CMRB" / "jsonl" / "instances.jsonl").write_text('{"qid": "q0-0", "pos": ["nope"]}\n')
    (broken / "MSRVTT" / "jsonl" / "queries.jsonl").write_text(
        '{"id": "q0", "text": "x"}\nnot json\n'
    )
    next((broken / "PEV-K" / "videos").iterdir()).unlink()
    shutil.rmtree(broken / "VDC-D" / "jsonl")
    dream = broken / "DREAM-E" / "jsonl" / "corpus.jsonl"
    first = dream.read_text().splitlines()[0]
    dream.write_text(dream.read_text() + "\n" + first + "\n")  # a blank line, then a repeated row
    bad = runner.invoke(build_app(), ["uvrb", "check", str(broken), "--json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert "unknown corpus id" in report["CMRB"]["error"]
    assert "queries.jsonl:2: invalid JSON" in report["MSRVTT"]["error"]
    assert re.search(
        r"PEV-K/jsonl/corpus\.jsonl:\d+: video file not found", report["PEV-K"]["error"]
    )
    n_lines = len(dream.read_text().splitlines())
    assert f"DREAM-E/jsonl/corpus.jsonl:{n_lines}: duplicate id" in report["DREAM-E"]["error"]
    assert "no jsonl/ folder" in report["VDC-D"]["error"]
    assert report["LoVR-V"]["ok"]


def test_eval_run_scores_everything_and_reuses_the_cache(mini, tiny_model_dir, tmp_path, capsys):
    from services.evaluator.runner import evaluate

    first = evaluate(mini, str(tiny_model_dir), out=tmp_path / "r1.json")
    assert set(first["datasets"]) == {
        "MSRVTT",
        "DiDeMo",
        "CRB-G",
        "CRB-S",
        "VDC-O",
        "CRB-T",
        "CMRB",
        "DREAM-E",
        "LoVR-TH",
        "PEV-K",
        "LoVR-V",
        "VDC-D",
        "MS-TI",
        "MS-TV",
        "MSRVTT-I2V",
        "LoVR-C2V",
    }
    assert set(first["abilities"]) == {
        "TXT",
        "CMP",
        "VIS",
        "CG",
        "FG",
        "LC",
        "S",
        "T",
        "PR",
        "AVG_A",
        "AVG_D",
    }
    assert all(v is not None and 0 <= v <= 1 for v in first["abilities"].values())
    assert (
        first["datasets"]["CMRB"]["metric"] == "R@10"
        and first["datasets"]["MS-TI"]["metric"] == "P@1"
    )
    assert all(d["cached"] == 0 for d in first["datasets"].values())
    from shared.model import Embedder

    embedder = Embedder(str(tiny_model_dir))
    calls: list[int] = []
    embed = embedder.embed
    embedder.embed = lambda items, **kw: calls.append(len(items)) or embed(items, **kw)
    second = evaluate(mini, str(tiny_model_dir), out=tmp_path / "r2.json", embedder=embedder)
    assert all(d["cached"] == d["n_queries"] + d["n_corpus"] for d in second["datasets"].values())
    assert calls == []  # nothing embedded again: every vector came from the cache
    err = capsys.readouterr().err  # progress, one dataset at a time, on stderr (piped here)
    assert "[eval] started 0/16 datasets" in err and "[eval] done 16/16 datasets (100%)" in err
    assert second["abilities"] == first["abilities"]
    from services.evaluator.report import write_report

    html = write_report(second, tmp_path / "r.html").read_text()
    assert "GVE-7B (paper)" in html and "<svg" in html

    # the same run through the CLI, also in MTEB's results layout (served from the cache)
    res = CliRunner().invoke(
        build_app(),
        [
            "eval",
            "run",
            "--uvrb",
            str(mini),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "r3.json"),
            "--format",
            "mteb",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    folder = json.loads(res.stdout)["mteb"]
    tasks = {p.name: json.loads(p.read_text()) for p in Path(folder).glob("UVRB-*.json")}
    assert len(tasks) == 16
    cmrb = tasks["UVRB-CMRB.json"]["scores"]["test"][0]
    assert cmrb["main_score"] == first["datasets"]["CMRB"]["score"] == cmrb["recall_at_10"]
    assert (
        tasks["UVRB-MS-TI.json"]["scores"]["test"][0]["main_score"]
        == first["datasets"]["MS-TI"]["P@1"]
    )
    assert (
        json.loads((Path(folder) / "model_meta.json").read_text())["uvrb_abilities"]
        == first["abilities"]
    )
