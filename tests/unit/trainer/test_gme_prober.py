"""A GME-family prober (SPEC §4.2: the paper's epoch-1 prober Ψ_1 is GME-7B, a Qwen2-VL model):
the tiny Qwen2-VL bundle (`univr model tiny --arch qwen2_vl`) loads as ``train.prober`` and probes
all seven training tasks, while the model being trained is a Qwen2.5-VL one."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from services.trainer import loop
from services.trainer.data import PairBatcher
from shared.config import TrainSettings
from shared.model import Embedder
from shared.model.prompts import TASK_INSTRUCTIONS
from shared.storage import get_store


def _put_jpeg(key: str, pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    get_store().put_bytes(key, buf.getvalue(), "image/jpeg")
    return key


def _clip(name: str, rng: np.random.Generator) -> dict:
    """A stored clip: 8 frames of a coloured square moving on a plain background, and a keyframe."""
    colour = rng.integers(0, 256, 3)
    frames = []
    for i in range(8):
        img = np.full((64, 64, 3), 40, np.uint8)
        img[20:40, 4 + i * 6 : 24 + i * 6] = colour
        frames.append(_put_jpeg(f"clips/{name}/frames/{i:02d}.jpg", img))
    keyframe = _put_jpeg(
        f"clips/{name}/keyframe.jpg",
        np.asarray(Image.open(io.BytesIO(get_store().get_bytes(frames[4])))),
    )
    return {"video": {"clip_id": name, "frames": frames, "fps": 4.0}, "image": keyframe}


def _pairs() -> list[dict]:
    """Three pairs of each of the seven tasks, with every kind of side they use."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        clip, other = _clip(f"c{i}", rng), _clip(f"d{i}", rng)
        text = {"text": f"a square moves right, number {i}"}
        video, image = {"video": clip["video"]}, {"image": clip["image"]}
        sides = {
            "T2T": (text, {"text": f"the square slides to the right {i}"}),
            "T2I": (text, image),
            "T2V": (text, video),
            "TI2V": ({"text": "now it is blue", "image": other["image"]}, video),
            "TV2V": ({"text": "faster", "video": other["video"]}, video),
            "I2V": (image, video),
            "V2V": ({"video": other["video"]}, video),
        }
        for task, (query, target) in sides.items():
            out.append({"task": task, "video_id": f"v{i}", "query": query, "target": target})
    return out


def test_the_qwen2_vl_tiny_bundle_loads_as_the_prober_and_probes_all_seven_tasks(
    tmp_path, tiny_model_dir
):
    from shared.model.cli import app

    out = tmp_path / "gme-tiny"
    result = CliRunner().invoke(app, ["tiny", "--out", str(out), "--arch", "qwen2_vl"])
    assert result.exit_code == 0, result.output
    trained = Embedder(tiny_model_dir, device="cpu")
    assert trained.model.config.model_type == "qwen2_5_vl"

    ts = TrainSettings(prober=str(out))
    prober = loop.epoch_prober(1, ts, trained)
    assert (
        prober is not trained and type(prober.model).__name__ == "Qwen2VLForConditionalGeneration"
    )
    assert (
        loop.epoch_prober(2, ts, trained) is trained
    )  # later epochs probe the model being trained

    batcher = PairBatcher(_pairs())
    alignment = loop.probe_alignment(prober, batcher, 3)
    assert sorted(alignment) == sorted(TASK_INSTRUCTIONS)  # all seven
    assert all(math.isfinite(r) and -1.0 <= r <= 1.0 for r in alignment.values())
    # the prober's own view of the tasks, not the trained model's
    mine = loop.probe_alignment(trained, batcher, 3)
    assert any(abs(alignment[t] - mine[t]) > 1e-4 for t in alignment)


def test_an_unknown_arch_is_refused(tmp_path):
    from shared.model.cli import app

    result = CliRunner().invoke(app, ["tiny", "--out", str(tmp_path / "x"), "--arch", "llava"])
    assert result.exit_code != 0 and "unknown arch" in result.output
