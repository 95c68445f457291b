"""Experiment tracking of a training run (rank 0): scalars per step to TensorBoard event files
(``torch.utils.tensorboard``, the default), to MLflow, or nowhere (``train.report_to``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    where: str

    def log(self, step: int, scalars: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class NoTracker:
    where = ""

    def log(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker:
    def __init__(self, logdir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch's writer needs the tensorboard package
            raise RuntimeError(
                "train.report_to=tensorboard needs the tensorboard package "
                "(pip install tensorboard); or set UNIVR_TRAIN__REPORT_TO=none"
            ) from exc
        self.where = str(logdir.resolve())
        self.writer = SummaryWriter(log_dir=self.where)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class MlflowTracker:
    def __init__(self, run_id: str, params: dict[str, Any]) -> None:
        try:
            import mlflow
        except ImportError as exc:
            raise RuntimeError(
                "train.report_to=mlflow needs the mlflow package (pip install "
                "mlflow); or use tensorboard / none"
            ) from exc
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=run_id)
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        self.where = f"mlflow run {self.run.info.run_id} ({mlflow.get_tracking_uri()})"

    def log(self, step: int, scalars: dict[str, float]) -> None:
        self.mlflow.log_metrics({k.replace("/", "."): v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def open_tracker(report_to: str, logdir: Path, run_id: str, params: dict[str, Any]) -> Tracker:
    if report_to == "tensorboard":
        return TensorBoardTracker(logdir)
    if report_to == "mlflow":
        return MlflowTracker(run_id, params)
    return NoTracker()
