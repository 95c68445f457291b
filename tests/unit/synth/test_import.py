"""`univr data import`: a generated fixture in each of the four formats (Parquet, JSON lines,
WebDataset with images and videos inside, an HF ``save_to_disk`` folder) becomes pairs of its task
type tagged with its dataset, with the preset's Neg/BS recorded; bad records are counted with their
reasons (a hostile archive's oversized member is never read); a snapshot lists per-dataset and
per-task counts."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from services.synth.importer.run import import_dataset, read_info, resolve
from services.synth.snapshot import create_snapshot
from shared.cli import build_app
from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.models import Pair
from shared.storage import get_store
from tests.helpers import small_videos

N = 6


def _jpeg(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), (40 * i % 255, 90, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _tar(path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _pairs(dataset: str) -> list[Pair]:
    with session_scope() as s:
        return list(s.scalars(select(Pair).where(Pair.dataset == dataset).order_by(Pair.id)))


def test_parquet_msmarco_preset_gives_text_pairs_with_negatives(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"query": f"q{i}", "positive": f"doc {i}", "negative": f"other {i}"} for i in range(N)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    info = import_dataset(resolve("msmarco", path=str(tmp_path)))
    assert info["pairs"] == N and info["task"] == "T2T"
    assert (info["hard_negatives"], info["batch_size"]) == (2, 64)  # SPEC Table 6
    pairs = _pairs("msmarco")
    assert {p.query["text"] for p in pairs} == {f"q{i}" for i in range(N)}
    assert all(p.hard_negatives[0]["text"].startswith("other") for p in pairs)
    assert read_info("msmarco")["pairs"] == N
    again = import_dataset(resolve("msmarco", path=str(tmp_path)))  # idempotent
    assert again["pairs"] == N and len(_pairs("msmarco")) == N


def test_jsonl_with_dotted_fields_and_bad_records_counted(tmp_path):
    recs = [{"Q": f"question {i}", "txt_posFacts": [{"fact": f"fact {i}"}]} for i in range(N)]
    recs.append({"Q": "no fact", "txt_posFacts": []})
    (tmp_path / "webqa.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    info = import_dataset(resolve("webqa", path=str(tmp_path / "webqa.jsonl")))
    assert info["pairs"] == N and info["skipped"] == {"no text": 1}
    assert {p.target["text"] for p in _pairs("webqa")} == {f"fact {i}" for i in range(N)}


def test_webdataset_images_and_videos_stored_and_oversized_member_refused(tmp_path, monkeypatch):
    store = get_store()
    members = []
    for i in range(N):
        members += [(f"s/{i:05d}.jpg", _jpeg(i)), (f"s/{i:05d}.txt", f"a caption {i}".encode())]
    members += [("s/bad.jpg", b"not a jpeg"), ("s/bad.txt", b"broken image")]
    _tar(tmp_path / "cc3m-000.tar", members)
    info = import_dataset(resolve("cc3m", path=str(tmp_path / "cc3m-000.tar")))
    assert info["pairs"] == N and info["task"] == "T2I" and info["hard_negatives"] == 3
    assert info["skipped"] == {"image does not decode": 1}
    pairs = _pairs("cc3m")
    assert all(store.exists(p.target["image"]) for p in pairs)

    videos = small_videos(tmp_path / "v", 2, seed=3)
    vids = []
    for i, v in enumerate(videos):
        meta = json.dumps({"Caption": f"video caption {i}"}).encode()
        vids += [(f"{i:05d}.mp4", v.read_bytes()), (f"{i:05d}.json", meta)]
    limit = max(v.stat().st_size for v in videos) + 1
    vids += [("huge.mp4", b"\0" * (limit + 1)), ("huge.json", b"{}")]
    _tar(tmp_path / "ivid.tar", vids)
    monkeypatch.setenv("UNIVR_SYNTH__IMPORT_MAX_MEMBER_BYTES", str(limit))
    monkeypatch.setenv("UNIVR_SYNTH__FRAMES_PER_CLIP", "2")
    get_settings.cache_clear()
    info = import_dataset(resolve("internvid-flt", path=str(tmp_path / "ivid.tar")))
    assert info["pairs"] == 2 and info["task"] == "T2V"
    assert sum(info["skipped"].values()) == 1
    assert info["skipped_examples"] == [
        {"key": "huge", "reason": f"member huge.mp4 is {limit + 1} bytes, over {limit}"}
    ]
    for p in _pairs("internvid-flt"):
        video = p.target["video"]
        assert p.query["text"].startswith("video caption")
        assert len(video["frames"]) == 2 and all(store.exists(k) for k in video["frames"])


def test_hf_save_to_disk_folder_with_image_feature(tmp_path):
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    imgs = [PILImage.open(io.BytesIO(_jpeg(i))) for i in range(N)]
    ds = Dataset.from_dict(
        {"text": [f"a dress {i}" for i in range(N)], "image": imgs},
        features=Features({"text": Value("string"), "image": Image()}),
    )
    ds.save_to_disk(str(tmp_path / "fashion"))
    info = import_dataset(resolve("fashion200k", path=str(tmp_path / "fashion")))
    assert info["pairs"] == N and (info["hard_negatives"], info["batch_size"]) == (1, 32)
    assert all(get_store().exists(p.target["image"]) for p in _pairs("fashion200k"))


def test_cli_import_then_snapshot_lists_datasets_and_tasks(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(N)]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    args = ["data", "import", "myqa", str(tmp_path / "qa.jsonl"), "--format", "jsonl"]
    args += ["--task", "T2T", "--query-col", "question", "--target-col", "answer", "--json"]
    res = CliRunner().invoke(build_app(), args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["pairs"] == N
    bad = CliRunner().invoke(
        build_app(), ["data", "import", "x", str(tmp_path), "--format", "jsonl"]
    )
    assert bad.exit_code == 2 and "--task" in bad.output
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"query": f"m{i}", "positive": f"d{i}", "negative": f"n{i}"} for i in range(4)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ms.parquet")
    import_dataset(resolve("msmarco", path=str(tmp_path / "ms.parquet")))
    man = create_snapshot("mixed")
    assert man["datasets"]["myqa"]["tasks"] == {"T2T": N}
    assert man["datasets"]["msmarco"]["hard_negatives"] == 2
    assert man["counts"] == {"T2T": N + 4}


@pytest.fixture(autouse=True)
def _db():
    init_db()


def test_s3_prefix_is_read_through_a_temporary_copy(tmp_path, monkeypatch):
    """An ``s3://`` source: the prefix's objects (relative media paths kept) are fetched and read
    like a local folder; an object over ``synth.max_file_bytes`` is refused before any fetch."""
    from services.synth.importer import remote
    from shared.storage import LocalStore

    bucket = LocalStore(tmp_path / "bucket")
    recs = [{"caption": f"news {i}", "image_path": f"img/{i}.jpg"} for i in range(3)]
    recs.append({"caption": "escape", "image_path": "../../etc/hostname"})  # hostile: refused
    bucket.put_bytes("vn/data.json", json.dumps(recs).encode(), "application/json")
    for i in range(3):
        bucket.put_bytes(f"vn/img/{i}.jpg", _jpeg(i), "image/jpeg")
    monkeypatch.setattr(remote, "bucket_store", lambda name: bucket)
    spec = resolve("visualnews", path="s3://raw/vn", format="jsonl")
    # the reader takes *.json and *.jsonl files only: the images are media, found by path
    info = import_dataset(spec)
    assert info["pairs"] == 3 and info["task"] == "T2I"
    assert list(info["skipped"]) == [
        "media path '../../etc/hostname' is outside the dataset's folder"
    ]
    assert {p.query["text"] for p in _pairs("visualnews")} == {"news 0", "news 1", "news 2"}
    monkeypatch.setenv("UNIVR_SYNTH__MAX_FILE_BYTES", "100")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="over 100"):
        import_dataset(spec)
