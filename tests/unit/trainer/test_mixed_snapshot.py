"""A snapshot mixing synthesized pairs with imported datasets (`--mix NAME=WEIGHT`) trains with
the tiny model; with ``train.pyramid_unit=dataset`` each dataset is a Modality Pyramid unit
(synthesized pairs as UVRD-<task>), and a dataset unit trains with the batch size its import
recorded; the manifest lists per-dataset and per-task counts and the weights."""

from __future__ import annotations

import io
import json
import tarfile

from sqlalchemy import select

from services.synth.importer.run import import_dataset, resolve
from services.synth.snapshot import create_snapshot
from services.trainer.data import PairBatcher, load_snapshot
from services.trainer.loop import TrainConfig, train
from shared.db import init_db, session_scope
from shared.db.models import TrainMetric
from shared.model.tiny import build_tiny_bundle
from shared.world.snapshot import build_world_snapshot
from tests.helpers import pairs_as_synthesized_rows

VIDEOS = 12


def _synthesized() -> None:
    """World pairs (T2V, T2I) as synthesized rows, their clips stored."""
    pairs = load_snapshot(build_world_snapshot(VIDEOS, seed=5, tasks=("T2V", "T2I"))).pairs
    pairs_as_synthesized_rows(pairs)


def _imports(tmp_path) -> None:
    from PIL import Image

    rows = [{"question": f"what is item {i}", "answer": f"item {i} is a thing"} for i in range(8)]
    (tmp_path / "faq.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    import_dataset(
        resolve("faq", path=str(tmp_path / "faq.jsonl"), format="jsonl", task="T2T",
                query="question", target="answer")
    )  # fmt: skip
    with tarfile.open(tmp_path / "cc3m.tar", "w") as tar:
        for i in range(8):
            buf = io.BytesIO()
            Image.new("RGB", (32, 32), (30 * i, 200 - 20 * i, 90)).save(buf, format="JPEG")
            for name, data in ((f"{i}.jpg", buf.getvalue()), (f"{i}.txt", f"colour {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    import_dataset(resolve("cc3m", path=str(tmp_path / "cc3m.tar"), batch_size=5))


def test_mixed_snapshot_trains_with_datasets_as_units(tmp_path):
    init_db()
    _synthesized()
    _imports(tmp_path)
    man = create_snapshot("mixed", mix={"uvrd": 1.0, "faq": 1.0, "cc3m": 0.5})
    ds = man["datasets"]
    assert ds["uvrd"]["tasks"] == {"T2V": VIDEOS, "T2I": VIDEOS}
    assert ds["faq"]["tasks"] == {"T2T": 8} and ds["faq"]["weight"] == 1.0
    assert 0 < ds["cc3m"]["pairs"] < 8 and ds["cc3m"]["batch_size"] == 5
    assert man["counts"] == {"T2V": VIDEOS, "T2I": VIDEOS + ds["cc3m"]["pairs"], "T2T": 8}

    pairs = load_snapshot(man["id"]).pairs
    units = PairBatcher(pairs, unit="dataset")
    assert units.tasks == ["UVRD-T2I", "UVRD-T2V", "cc3m", "faq"]
    assert units.task_of("cc3m") == "T2I" and units.task_of("UVRD-T2V") == "T2V"
    assert PairBatcher(pairs).tasks == ["T2I", "T2T", "T2V"]

    model = build_tiny_bundle(tmp_path / "tiny")
    sizes = {"T2V": 3, "T2I": 2, "T2T": 4}  # per-unit sizes in force: cc3m uses its recorded 5
    result = train(
        TrainConfig(
            snapshot=man["id"], model=str(model), out=str(tmp_path / "out"), run_id="mixed",
            sampler="uniform", steps=8, batch_size=2, seed=3, preset="tiny", heldout_fraction=0.0,
            overrides={"pyramid_unit": "dataset", "task_batch_size": sizes, "epochs": 1},
        )
    )  # fmt: skip
    with session_scope() as s:
        rows = s.scalars(select(TrainMetric).where(TrainMetric.run_id == "mixed")).all()
        drawn = {(r.task, r.values["batch_size"]) for r in rows}
    assert len(rows) == 8 and result
    expected = {"UVRD-T2V": 3, "UVRD-T2I": 2, "faq": 4, "cc3m": 5}
    assert {u for u, _ in drawn} >= {"cc3m", "faq"}
    assert all(size == expected[u] for u, size in drawn), drawn
