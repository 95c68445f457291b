"""Tasks the queue tests run in a real worker process: each writes a marker file."""

from pathlib import Path

from shared.queue import get_celery

app = get_celery()


@app.task(name="synth.io_touch")
def touch(path: str, text: str) -> str:
    Path(path).write_text(text)
    return text


@app.task(name="evaluator.on_checkpoint_ready")
def on_checkpoint_ready(event: str, payload: dict) -> None:
    Path(payload["marker"]).write_text(event)


@app.task(name="synth.io_threads")
def threads(path: str) -> int:
    import torch

    n = torch.get_num_threads()
    Path(path).write_text(str(n))
    return n
