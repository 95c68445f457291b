"""Training progress where the user looks: on a terminal a rich bar with loss, lr, σ, task,
samples/s and ETA; piped, one-line records, repeated by a heartbeat while a long step runs."""

from __future__ import annotations

import io
import threading

from services.trainer.progress import TrainProgress


def test_terminal_shows_a_bar_with_the_step_fields():
    buf = io.StringIO()
    # a fixed width: rich otherwise reads COLUMNS, which other tests' CLI runners change
    with TrainProgress(10, 0, 10.0, stream=buf, tty=True, width=200) as bar:
        bar.note("logdir /x/tensorboard")
        for step in range(1, 4):
            bar.update(step, 8, 0.5 / step, 1e-3, 0.1, "T2V")
    text = buf.getvalue()
    assert "logdir /x/tensorboard" in text
    assert "3/10" in text and "loss 0.1667" in text and "σ 0.100" in text and "task T2V" in text
    assert "samples/s" in text and "\x1b[" in text  # drawn with terminal control codes
    assert "train step" not in text  # no log records on a terminal


def test_piped_logs_records_and_a_heartbeat_during_a_long_step():
    buf = io.StringIO()
    with TrainProgress(100, 0, 0.05, stream=buf, tty=False) as bar:
        bar.update(1, 8, 0.9, 1e-3, 0.1, "T2I")
        threading.Event().wait(1.0)  # a long step: nothing calls update
        bar.update(2, 8, 0.8, 1e-3, 0.1, "T2I")
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("train step 1/100 loss 0.9000 lr 1.00e-03 σ 0.100 task T2I")
    assert "ETA" in lines[0] and "\x1b[" not in buf.getvalue()
    repeated = [line for line in lines if line.startswith("train step 1/100")]
    assert len(repeated) >= 3  # the heartbeat repeated the last state while step 2 ran
    assert any(line.startswith("train step 2/100 loss 0.8000") for line in lines)


def test_mlflow_without_the_package_is_a_clear_error(monkeypatch, tmp_path):
    import sys

    import pytest

    from services.trainer.tracking import NoTracker, open_tracker

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"needs the mlflow package \(pip install mlflow\)"):
        open_tracker("mlflow", tmp_path / "tb", "run", {})
    assert isinstance(open_tracker("none", tmp_path / "tb", "run", {}), NoTracker)
    assert not (tmp_path / "tb").exists()
