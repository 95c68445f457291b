"""Train at test resolution (issue 16, item 3): synth stores a clip's frames at the size the
model's video preprocessing gives them (``synth.frame_side`` 0), so the embedder feeds a stored
clip with the grid and token count it feeds the clip's mp4; a fixed 224-px cap does not."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shared.config import get_settings
from shared.media.analysis import clip_frames, decode_once, stored_frame_size
from shared.model import Embedder, EmbedInput, VideoFrames
from shared.model.tiny import build_tiny_bundle
from shared.storage import get_store
from shared.world.render import encode
from tests.unit.model.test_reference_parity import REAL_LIMITS, _frames


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    """Real processor limits, so the reference's sizing alone decides the grid."""
    return Embedder(
        build_tiny_bundle(tmp_path_factory.mktemp("real"), 0, **REAL_LIMITS), device="cpu"
    )


def _store(frames, name: str) -> list[str]:
    keys = []
    for i, frame in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=90)
        keys.append(f"clips/{name}/frames/{i:02d}.jpg")
        get_store().put_bytes(keys[-1], buf.getvalue())
    return keys


def test_the_default_stores_frames_at_the_model_budget_never_enlarged():
    assert get_settings().synth.frame_side == 0
    assert stored_frame_size(1920, 1080, 0) == (504, 280)  # what the reference shrinks it to
    assert stored_frame_size(320, 240, 0) == (
        320,
        240,
    )  # the embedder enlarges it, as it does the mp4's
    assert stored_frame_size(1920, 1080, 224) == (224, 126)


@pytest.mark.parametrize(
    ("size", "side", "same"),
    [((1280, 720), 0, True), ((320, 240), 0, True), ((1280, 720), 224, False)],
)
def test_stored_frames_feed_the_tokens_the_mp4_feeds(embedder, tmp_path, size, side, same):
    w, h = size
    path = encode(_frames(w, h, 16), 8, tmp_path / f"{w}x{h}.mp4")
    an = decode_once(path, 32, side)
    frames, _ = clip_frames(an, 0.0, an.duration_s, 8)
    keys = _store(frames, f"{w}x{h}-{side}")
    stored = embedder.collate([EmbedInput(video=VideoFrames(keys, fps=4.0))])
    from_file = embedder.collate([EmbedInput(video=str(path))])
    assert (stored["video_grid_thw"].tolist() == from_file["video_grid_thw"].tolist()) is same
    tokens = [
        int((b["input_ids"] == embedder.processor.video_token_id).sum())
        for b in (stored, from_file)
    ]
    assert (tokens[0] == tokens[1]) is same
