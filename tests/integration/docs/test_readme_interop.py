"""README's "Use the outputs with other tools" runs: each snippet marked ``<!-- interop: NAME -->``
is taken from README.md and run on real outputs: a small synthesis run (real worker, embedded
broker), its Parquet snapshot, its index promoted to the live alias, a LoRA adapter saved as the
trainer saves it, and `univr eval run --format mteb` on UVRB-mini. The ``send_task`` snippet
publishes to an in-memory broker; the message is read back and its task name, queue and arguments
are checked against univr's registered Celery app."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.integration.trainer.conftest import univr

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def snippet(name: str) -> str:
    found = re.search(rf"<!-- interop: {name} -->\n```\w*\n(.*?)```", README, flags=re.S)
    assert found, f"README has no snippet {name!r}"
    return found.group(1)


def run(code: str, replace: dict[str, str]) -> tuple[dict, str]:
    """Execute ``code`` after replacing README's example values; returns (namespace, stdout)."""
    for old, new in replace.items():
        assert old in code, f"{old!r} is not in the snippet"
        code = code.replace(old, new)
    ns: dict = {"__name__": "readme_snippet"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - README's own snippet
    return ns, out.getvalue()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A home with a synthesized corpus (`univr synth run`, a real worker), a snapshot of it and a
    live index (`univr data snapshot`, `index build`, `index promote`, run in this process)."""
    import os

    from typer.testing import CliRunner

    from shared.cli import build_app
    from shared.world import generate

    root = tmp_path_factory.mktemp("interop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNIVR_")}
    env.update(UNIVR_HOME=str(root / "home"), HF_HUB_OFFLINE="1")
    generate(root / "raw", 2, seed=12, workers=1)
    univr("synth", "run", str(root / "raw" / "manifest.jsonl"), "--workers", "1", env=env)

    def cli(*args: str) -> dict:
        res = CliRunner().invoke(build_app(), [*args, "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    with _home(root / "home"):
        snap = cli("data", "snapshot", "--name", "interop")
        built = cli("index", "build")
        cli("index", "promote", built["version"], "--force")
    return {"home": root / "home", "snapshot": snap, "built": built}


@contextlib.contextmanager
def _home(path: Path) -> Iterator[Path]:
    """This process on the univr home ``path`` (fresh settings and engines, reset afterwards)."""
    from shared.config import get_settings
    from shared.db.session import reset_engines

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNIVR_HOME", str(path))
        get_settings.cache_clear()
        reset_engines()
        try:
            yield path
        finally:
            reset_engines()
            get_settings.cache_clear()


@pytest.fixture
def home(outputs: dict) -> Iterator[Path]:
    with _home(outputs["home"]) as path:
        yield path


def _documented_payload() -> set[str]:
    text = README[README.index("**The search index with `qdrant-client`.**") :]
    text = text[text.index("payload") : text.index("A query must")].replace(
        "(`clip` | `video`)", ""
    )
    return set(re.findall(r"`(\w+)`", text))


def test_qdrant_snippet_reads_the_live_collection(home: Path, outputs: dict) -> None:
    from services.api.search import search
    from shared.vectors import get_qdrant

    ns, out = run(snippet("qdrant"), {'".univr/qdrant"': repr(str(home / "qdrant"))})
    ns["client"].close()
    assert ns["size"] == ns["embedder"].dim == 128  # the tiny model's hidden size
    assert ns["meta"]["model_id"] == outputs["built"]["model_id"]
    assert outputs["built"]["version"].startswith("univr-" + ns["meta"]["model_id"][:20])
    hits = ns["hits"]
    assert hits and len(out.strip().splitlines()) == len(hits)
    assert all(h.payload["kind"] == "clip" for h in hits)
    assert set(hits[0].payload) == _documented_payload()
    # the same clips, in the same order, as univr's own search
    client = get_qdrant()
    try:
        ours = search(ns["embedder"], client, text="a red circle", top_k=20)
    finally:
        client.close()
    assert [str(h.id) for h in hits] == [r["id"] for r in ours if r["kind"] == "clip"][:5]


def test_snapshot_snippet_reads_the_parquet_shards(home: Path, outputs: dict) -> None:
    snap = outputs["snapshot"]
    prefix = f"objects/snapshots/{snap['id']}"
    ns, _ = run(snippet("snapshot"), {"objects/snapshots/<id>": str(home / prefix)})
    rows = sum(shard["rows"] for shard in snap["shards"])
    assert len(ns["df"]) == ns["ds"].num_rows == rows > 0
    assert isinstance(ns["df"]["target"].iloc[0], dict)
    assert {"id", "task", "split", "query", "target", "hard_negatives"} <= set(
        ns["ds"].column_names
    )


def test_peft_snippet_embeds_as_univr_does(tiny_model_dir: Path, tmp_path: Path) -> None:
    from services.trainer.setup import _lora
    from shared.config import get_settings
    from shared.model import TASK_INSTRUCTIONS, Embedder, EmbedInput, build_prompt
    from shared.model.portable import save_adapter

    trained = Embedder(str(tiny_model_dir))
    _lora(trained, get_settings().train)
    torch.manual_seed(5)
    with torch.no_grad():  # a trained-looking adapter (LoRA's B starts at zero)
        for name, p in trained.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    adapter = tmp_path / "runs" / "my-run" / "adapter"
    save_adapter(trained.model, adapter, str(tiny_model_dir))  # as `univr train run` saves it
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert not Path(config["base_model_name_or_path"]).is_absolute()

    example = '"Qwen/Qwen2.5-VL-3B-Instruct", "runs/my-run/adapter"'
    ns, _ = run(snippet("peft"), {example: f"{str(tiny_model_dir)!r}, {str(adapter)!r}"})
    text, task = "a red car turning left", "T2V"
    assert ns["prompt"] == build_prompt(text, instruction=TASK_INSTRUCTIONS[task])
    want = Embedder(str(tiny_model_dir), str(adapter)).embed(
        [EmbedInput(text=text, instruction=TASK_INSTRUCTIONS[task])]
    )[0]
    assert np.allclose(ns["vector"].numpy(), want, atol=1e-5)


def _table() -> list[tuple[str, str, str]]:
    text = README[README.index("**Jobs through Celery's `send_task`.**") :]
    return re.findall(r"^\| `([\w.]+)` \| `(\w+)` \| (.*) \|$", text[: text.index("```")], re.M)


def test_celery_snippet_sends_what_univr_workers_run() -> None:
    import inspect

    from kombu import Exchange, Queue

    import services.evaluator.tasks  # noqa: F401 - registers the tasks
    import services.indexer.tasks  # noqa: F401
    import services.synth.tasks  # noqa: F401
    import services.trainer.tasks  # noqa: F401
    from shared.queue import QUEUES, get_celery, route_for

    ns, _ = run(snippet("celery"), {"amqp://guest:guest@localhost:5672//": "memory://"})
    app = ns["app"]
    theirs = get_celery()
    assert {
        (q.name, q.exchange.name, q.exchange.type, q.routing_key) for q in app.conf.task_queues
    } == {
        (q.name, q.exchange.name, q.exchange.type, q.routing_key) for q in theirs.conf.task_queues
    }
    assert set(QUEUES) == {q.name for q in app.conf.task_queues}
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(
            Queue("train", Exchange("univr", type="direct"), routing_key="train")
        )
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.headers["task"] == "trainer.run"
    args, kwargs, _ = message.decode()
    assert args == [ns["job"], ns["params"]] and kwargs == {}

    table = _table()
    assert len(table) == 6
    for name, queue_name, arguments in table:
        assert name in theirs.tasks, name
        assert route_for(name) == queue_name, name
        params = list(inspect.signature(theirs.tasks[name].run).parameters)
        expected = ["event", "payload"] if arguments.startswith("kwargs") else ["job_id", params[1]]
        assert params[:2] == expected, (name, params)
    per_item = {"synth.media": "media", "synth.pairs": "media", "synth.caption": "caption"}
    for name, queue_name in {**per_item, "synth.io_download": "io"}.items():
        assert name in theirs.tasks and route_for(name) == queue_name, name


def test_mteb_snippets(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from services.evaluator.mini import build_mini
    from shared.cli import build_app

    build_mini(tmp_path / "uvrb", seed=1, n=3, long_n=2)
    args = shlex.split(snippet("mteb-run").strip())[1:]
    swap = {"/data/UVRB": str(tmp_path / "uvrb"), "Alibaba-NLP/GVE-3B": str(tiny_model_dir)}
    args = [swap.get(a, a) for a in args] + ["--datasets", "MSRVTT,MS-TI"]
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(build_app(), args)
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "gve3b.json").read_text())
    _, out = run(snippet("mteb-read"), {})
    printed = dict(line.split() for line in out.strip().splitlines())
    assert printed == {
        f"UVRB-{name}": str(scores["score"]) for name, scores in report["datasets"].items()
    }
