"""Job parameters, per kind, as a client may submit them (``POST /v1/jobs/{kind}``): typed,
bounded, and confined — sources only under the configured data roots (``api.data_roots``) or in
the configured buckets (``api.source_buckets``), models and adapters a hub id or under a data root
or the home, training outputs only under ``<home>/runs``. A validated model's ``model_dump()`` is
what the job row stores and the worker receives."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.config import get_settings

MAX_PATH_CHARS = 1024
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
NAME = re.compile(r"^[\w.:-]{1,200}$")
STORE_PREFIX = re.compile(r"[\w.-]+(/[\w.-]+)*/?")


def data_roots() -> list[Path]:
    s = get_settings()
    roots = s.api.data_roots or [str(s.home_path / "data")]
    return [Path(os.path.realpath(r)) for r in roots]


def source_buckets() -> list[str]:
    s = get_settings()
    return s.api.source_buckets or [s.storage.bucket]


def _under(path: str, roots: list[Path]) -> str:
    """The real path (``..`` and symlinks resolved) if it lies under one of ``roots``."""
    if "\x00" in path or len(path) > MAX_PATH_CHARS:
        raise ValueError("not a usable path")
    real = Path(os.path.realpath(path))
    if not any(real == r or r in real.parents for r in roots):
        raise ValueError("must lie under a configured data root (api.data_roots)")
    return str(real)


def _source(value: str) -> str:
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        if bucket not in source_buckets() or ".." in key.split("/"):
            raise ValueError("must be in a configured bucket (api.source_buckets)")
        return value
    if not os.path.isabs(value):
        raise ValueError("must be an absolute path or an s3:// URI")
    return _under(value, data_roots())


def _readable(value: str) -> str:
    """A model or adapter: a hub id, or a folder under a data root or the home."""
    if not value or HUB_ID.fullmatch(value) and not os.path.isabs(value):
        return value
    if not os.path.isabs(value):
        raise ValueError("must be a hub id (org/name) or an absolute path")
    return _under(value, [*data_roots(), Path(os.path.realpath(get_settings().home_path))])


def _output(value: str) -> str:
    runs = Path(os.path.realpath(get_settings().home_path / "runs"))
    if "\x00" in value or len(value) > MAX_PATH_CHARS:
        raise ValueError("not a usable path")
    path = value if os.path.isabs(value) else str(runs / value)
    return _under(path, [runs])


def _store_prefix(value: str) -> str:
    if value and (not STORE_PREFIX.fullmatch(value) or ".." in value.split("/")):
        raise ValueError("must be an object-store prefix")
    return value


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Source = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_source)]
Readable = Annotated[str, Field(max_length=MAX_PATH_CHARS), AfterValidator(_readable)]
Output = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_output)]
StorePrefix = Annotated[str, Field(max_length=MAX_PATH_CHARS), AfterValidator(_store_prefix)]
Name = Annotated[str, Field(pattern=NAME.pattern, max_length=200)]
Score = Annotated[float, Field(allow_inf_nan=False)]


class _Params(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, validate_default=True
    )
    ALWAYS: ClassVar[tuple[str, ...]] = ()  # fields passed on even when the client left them out


class SynthParams(_Params):
    source: Source
    fresh: bool = False


class TrainParams(_Params):
    ALWAYS = ("out",)  # the default output folder too lies under <home>/runs
    snapshot: Name
    model: Readable = ""
    sampler: Literal["pyramid", "uniform"] = "pyramid"
    steps: int = Field(300, ge=1, le=10_000_000)
    batch_size: int = Field(16, ge=1, le=65_536)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    out: Output = "train-out"
    run_id: Annotated[str, Field(pattern=r"^[\w.-]{0,100}$")] = ""
    preset: Name = "gve"
    heldout_fraction: Score = Field(0.1, ge=0.0, lt=1.0)
    overrides: dict[Annotated[str, Field(max_length=100)], Any] = Field(
        default_factory=dict, max_length=100
    )


class EvalParams(_Params):
    uvrb: Readable = ""
    model: Readable = ""
    adapter: Readable = ""
    checkpoint: StorePrefix = ""
    datasets: list[Name] | Annotated[str, Field(max_length=2000)] | None = None
    run_id: Annotated[str, Field(pattern=r"^[\w.-]{0,100}$")] | None = None
    step: int | None = Field(None, ge=0)


class IndexParams(_Params):
    model: Readable = ""
    adapter: Readable = ""
    checkpoint: StorePrefix = ""
    source: Annotated[str, Field(max_length=MAX_PATH_CHARS)] | None = None
    dataset: Annotated[str, Field(max_length=200)] | None = None
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]{0,199}$")] | None = None
    avg_a: Score | None = None
    abilities: dict[Name, Score] | None = None
    eval_run_id: Annotated[str, Field(max_length=100)] | None = None
    force: bool = False


JOB_PARAMS: dict[str, type[_Params]] = {
    "synth": SynthParams,
    "train": TrainParams,
    "eval": EvalParams,
    "index": IndexParams,
}


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The params of a ``kind`` job as its worker will read them (the fields the client gave,
    checked and normalised); ``pydantic.ValidationError`` says what is wrong."""
    model = JOB_PARAMS[kind].model_validate(params)
    out = model.model_dump(exclude_unset=True)
    out.update({name: getattr(model, name) for name in model.ALWAYS})
    return out
