"""README's synth section lists the stages and the filters in the order they run, with the config
knob of each (issue 17's acceptance): every pipeline field of ``SynthSettings`` is named there, the
steps appear in ``stages.STAGES`` order, and the filters in the order the code runs them
(temporal dynamics in the media step; rectification, then consistency, in the caption step)."""

from __future__ import annotations

from pathlib import Path

from services.synth import stages
from shared.config import SynthSettings

README = Path(__file__).resolve().parents[3] / "README.md"
HEADING = "### V-SynFlow: stages and filters, in order"
# fields documented elsewhere: web downloads (README "Sources from URLs"), `univr data import`,
# snapshot shards and the garbage collector (README "The full stack", "Import external datasets")
ELSEWHERE = {"download", "import_max_member_bytes", "snapshot_shard_rows", "gc_grace_s"}


def _section() -> str:
    text = README.read_text()
    start = text.index(HEADING)
    return text[start : text.index("\n### ", start + len(HEADING))]


def test_every_pipeline_knob_is_named():
    section = _section()
    missing = [
        name
        for name in SynthSettings.model_fields
        if name not in ELSEWHERE and f"`{name}" not in section and f"synth.{name}" not in section
    ]
    assert missing == []
    assert "`caption.backend`" in section


def test_stages_and_filters_in_the_order_they_run():
    section = _section()
    assert stages.STAGES == ("media", "caption", "pairs")
    steps = [section.index(f"**{s}** (`synth.{s}`)") for s in stages.STAGES]
    assert steps == sorted(steps)
    filters = [
        section.index(f)
        for f in ("*temporal dynamics*", "*annotation rectification*", "*cross-modal consistency*")
    ]
    assert filters == sorted(filters)
    assert steps[0] < filters[0] < steps[1] < filters[1] < filters[2] < steps[2]
