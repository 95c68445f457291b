"""Parity with the reference preprocessing (qwen-vl-utils' ``process_vision_info``, which the GVE
authors' code calls, SPEC §6.2/§6.3): the same frame indices, grids, pixel values, input ids and
temporal spacing, and the same embeddings, for videos from 176x144 to 1920x1080 and 0.6 s to 60 s,
and for images (the checkpoint processor's limits, no cap of our own).

The reference reads videos with decord here (torchvision 0.29 has no ``read_video``). The
reference's processor call passes the sampled fps as video metadata, as transformers 5 takes it
(SPEC §6.3.8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from shared.media.frames import sample_frames
from shared.model import Embedder, EmbedInput
from shared.model.tiny import build_tiny_bundle
from shared.world.render import encode

# (width, height, seconds, source fps): the sizes and durations UVRB's sources come in; the 60 s
# one at a low fps so that it stays small
VIDEOS = [
    (176, 144, 0.6, 25),
    (320, 240, 10, 10),
    (640, 360, 3, 10),
    (1280, 720, 2, 8),
    (1920, 1080, 1.2, 10),
    (320, 240, 60, 2),
]
REAL_LIMITS = {
    "min_pixels": 56 * 56,
    "max_pixels": 28 * 28 * 16384,
}  # Qwen2.5-VL's processor config
GVE_VIDEO = {
    "fps": 1.0,
    "max_frames": 8,
    "min_frames": 32,
    "max_pixels": 200 * 28 * 28,
}  # SPEC §6.2


def _frames(w: int, h: int, n: int) -> np.ndarray:
    """Smooth gradients that drift, and a box that crosses the frame: every frame differs."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (xx * 255 // w + i * 3) % 256
        out[i, ..., 1] = yy * 255 // h
        out[i, ..., 2] = i * 255 // max(1, n - 1)
        x0 = int((w - w // 4) * i / max(1, n - 1))
        out[i, h // 3 : h // 3 + h // 4, x0 : x0 + w // 4] = (250, 30, 30)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    return {
        case: encode(
            _frames(case[0], case[1], round(case[2] * case[3])),
            case[3],
            folder / "{}x{}-{}s-{}fps.mp4".format(*case),
        )
        for case in VIDEOS
    }


@pytest.fixture(scope="module", params=["real-limits", "tiny-limits"])
def embedder(request, tmp_path_factory):
    """The tiny model with a real checkpoint's processor limits (they never bind: the reference's
    sizing is all there is), and with the tiny bundle's own (small: the processor resizes the
    reference's frames again, as it would for a checkpoint whose config says so)."""
    limits = REAL_LIMITS if request.param == "real-limits" else {}
    return Embedder(
        build_tiny_bundle(tmp_path_factory.mktemp(request.param), 0, **limits), device="cpu"
    )


@pytest.fixture(scope="module")
def reference():
    from qwen_vl_utils import vision_process

    vision_process.FORCE_QWENVL_VIDEO_READER = "decord"
    vision_process.get_video_reader_backend.cache_clear()
    return vision_process.process_vision_info


def _reference_batch(embedder, process_vision_info, content: dict):
    """What the GVE code feeds the model: chat template + EOD, process_vision_info, processor."""
    from transformers.video_utils import VideoMetadata

    msgs = [{"role": "user", "content": [content]}]
    text = embedder.processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    images, videos, video_kwargs = process_vision_info(msgs, return_video_kwargs=True)
    _, with_meta, _ = process_vision_info(
        msgs, return_video_kwargs=True, return_video_metadata=True
    )
    kwargs = {}
    if videos:
        (video,), (fps,) = videos, video_kwargs["fps"]
        n = len(video)
        kwargs["videos"] = videos
        kwargs["videos_kwargs"] = {
            "do_sample_frames": False,
            "video_metadata": [
                VideoMetadata(total_num_frames=n, fps=fps, frames_indices=list(range(n)))
            ],
        }
    batch = embedder.processor(
        text=[text + "<|endoftext|>"], images=images, return_tensors="pt", **kwargs
    )
    indices = [int(i) for i in with_meta[0][1]["frames_indices"]] if videos else None
    return batch, indices, video_kwargs


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum())


# every video decoded in one pass; the long ones also sampled by seeking
RUNS = [(case, False) for case in VIDEOS] + [(case, True) for case in VIDEOS if case[2] >= 10]


@pytest.mark.parametrize(
    ("case", "seek"), RUNS, ids=["{}x{}-{}s".format(*c) + ("-seek" if s else "") for c, s in RUNS]
)
def test_video_inputs_match_the_reference(embedder, reference, videos, case, seek, monkeypatch):
    path = videos[case]
    if seek:  # sample by seeking (as clips of >= seek_min_frames frames are)
        monkeypatch.setattr(embedder.settings.model, "seek_min_frames", 1)
        embedder.cache = type(embedder.cache)(0)
    ref, ref_indices, video_kwargs = _reference_batch(
        embedder, reference, {"type": "video", "video": str(path), **GVE_VIDEO}
    )
    _, times = sample_frames(path, 8, seek_min_frames=embedder.settings.model.seek_min_frames)
    assert [
        round(t * case[3]) for t in times
    ] == ref_indices  # the same frames, first and last included
    assert ref_indices[0] == 0 and ref_indices[-1] == round(case[2] * case[3]) - 1

    ours = embedder.collate([EmbedInput(video=str(path))])
    assert ours["video_grid_thw"].tolist() == ref["video_grid_thw"].tolist()
    assert torch.equal(ours["input_ids"], ref["input_ids"])
    assert np.allclose(ours["second_per_grid_ts"], 2 / video_kwargs["fps"][0], rtol=1e-6)
    assert np.allclose(ours["second_per_grid_ts"], ref["second_per_grid_ts"], rtol=1e-6)
    # normalised pixels (std ~0.27 per level/255): within resampling tolerance of a few levels
    diff = (ours["pixel_values_videos"] - ref["pixel_values_videos"]).abs()
    assert float(diff.mean()) < 0.02 and float(diff.max()) < 0.5
    with torch.inference_mode():
        a, b = embedder.forward(ours), embedder.forward(ref.to(embedder.device))
    assert _cos(a[0], b[0]) >= 0.999


def test_a_320x240_frame_costs_what_it_costs_in_the_reference(embedder, reference, videos):
    """The reference's video minimum (128·28·28 per frame) enlarges a small frame; the processor's
    limits apply on top."""
    ours = embedder.collate([EmbedInput(video=str(videos[(320, 240, 10, 10)]))])
    tokens = int((ours["input_ids"] == embedder.processor.video_token_id).sum())
    limits = embedder.processor.video_processor.size
    expected = 4 * 10 * 14 if limits["longest_edge"] >= 280 * 392 else None  # 280x392 per frame
    if expected is not None:
        assert tokens == expected
    assert tokens == int(ours["video_grid_thw"].prod()) // 4


@pytest.mark.parametrize("size", [(1280, 720), (200, 120)])
def test_image_inputs_match_the_reference(embedder, reference, size):
    """Images take the checkpoint processor's limits (no cap of ours): a large image keeps every
    token the processor gives it, a small one is enlarged to its minimum."""
    w, h = size
    image = Image.fromarray(_frames(w, h, 1)[0])
    ref, _, _ = _reference_batch(embedder, reference, {"type": "image", "image": image})
    ours = embedder.collate([EmbedInput(image=image)])
    assert ours["image_grid_thw"].tolist() == ref["image_grid_thw"].tolist()
    assert torch.equal(ours["input_ids"], ref["input_ids"])
    diff = (ours["pixel_values"] - ref["pixel_values"]).abs()
    assert float(diff.mean()) < 0.02
    with torch.inference_mode():
        a, b = embedder.forward(ours), embedder.forward(ref.to(embedder.device))
    assert _cos(a[0], b[0]) >= 0.999
