"""Platform metrics for Prometheus (and the Grafana dashboard provisioned from compose): the
state the database records, read when ``/metrics`` is scraped — jobs and items by state, synthesis
events by stage, the training runs' latest loss, step, learning rate, σ and Modality Pyramid task
probabilities, the newest UVRB scores, the live index. The trainer writes these rows already
(``train_metrics``), so a run on any host shows up without a metrics endpoint of its own.

Search traffic (counters and latency the API itself observes) lives beside the routes in
``api/app.py``; this collector only reads rows, with bounded queries, so a scrape stays cheap on a
large database: items by state from the per-job counters (``shared.db.counters``, one row per job
and state), events of a recent window only (``api.metrics_events_window_s``, at most
``api.metrics_events_limit`` rows, index on time), the newest ``TRAINING_RUNS`` runs."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shared.config import get_settings
from shared.db import counters, session_scope
from shared.db.models import EvalRun, IndexVersion, Job, TrainingRun, TrainMetric

TRAINING_RUNS = 5  # runs exported: the most recently updated ones


def _label(value: object) -> str:
    return str(getattr(value, "value", value))


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        with session_scope() as s:
            yield from self._jobs(s)
            yield from self._training(s)
            yield from self._evaluation(s)

    def _jobs(self, s) -> list[Metric]:  # noqa: ANN001
        jobs = GaugeMetricFamily("univr_jobs", "Jobs by kind and state", labels=["kind", "state"])
        for kind, state, n in s.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ):
            jobs.add_metric([kind, _label(state)], n)
        items = GaugeMetricFamily(
            "univr_job_items", "Job items (videos, datasets) by state", labels=["state"]
        )
        for state, n in sorted(counters.items_by_state(s).items()):
            items.add_metric([state], n)
        api = get_settings().api
        events = GaugeMetricFamily(
            "univr_job_events",
            f"Item events of the last {api.metrics_events_window_s:g} s (at most the "
            f"{api.metrics_events_limit} newest), by stage and state (rejections and failures "
            "included)",
            labels=["stage", "state"],
        )
        recent = counters.recent_events(s, api.metrics_events_window_s, api.metrics_events_limit)
        for (stage, state), n in sorted(recent.items()):
            events.add_metric([stage, state], n)
        return [jobs, items, events]

    def _training(self, s) -> list[Metric]:  # noqa: ANN001
        labels = ["run_id", "sampler"]
        loss = GaugeMetricFamily(
            "univr_train_loss", "Training loss at the newest step", labels=labels
        )
        step = GaugeMetricFamily("univr_train_step", "Newest step with metrics", labels=labels)
        lr = GaugeMetricFamily("univr_train_lr", "Learning rate at the newest step", labels=labels)
        sigma = GaugeMetricFamily(
            "univr_train_sigma", "Modality Pyramid sigma at the newest step", labels=labels
        )
        probs = GaugeMetricFamily(
            "univr_train_task_probability",
            "Task sampling probability at the newest step",
            labels=[*labels, "task"],
        )
        running = GaugeMetricFamily(
            "univr_train_running", "1 while the run is running", labels=labels
        )
        runs = s.scalars(
            select(TrainingRun).order_by(TrainingRun.updated_at.desc()).limit(TRAINING_RUNS)
        ).all()
        for run in runs:
            key = [run.id, run.sampler]
            running.add_metric(key, 1.0 if run.state == "running" else 0.0)
            m = s.scalars(
                select(TrainMetric)
                .where(TrainMetric.run_id == run.id)
                .order_by(TrainMetric.step.desc())
                .limit(1)
            ).first()
            if m is None:
                continue
            values = m.values or {}
            step.add_metric(key, m.step)
            loss.add_metric(key, m.loss)
            if values.get("lr") is not None:
                lr.add_metric(key, values["lr"])
            if values.get("sigma") is not None:
                sigma.add_metric(key, values["sigma"])
            for task, p in sorted((values.get("probs") or {}).items()):
                probs.add_metric([*key, task], p)
        return [loss, step, lr, sigma, probs, running]

    def _evaluation(self, s) -> list[Metric]:  # noqa: ANN001
        ability = GaugeMetricFamily(
            "univr_eval_latest_score",
            "The newest UVRB run's ability scores (AVG_A, AVG_D included)",
            labels=["eval_run_id", "ability"],
        )
        latest = s.scalars(select(EvalRun).order_by(EvalRun.created_at.desc()).limit(1)).first()
        if latest is not None:
            for name, value in sorted((latest.abilities or {}).items()):
                if isinstance(value, int | float):
                    ability.add_metric([latest.id, name], value)
        live_points = GaugeMetricFamily(
            "univr_live_index_points", "Points in the live collection", labels=["version"]
        )
        live_score = GaugeMetricFamily(
            "univr_live_index_avg_a", "AVG-A of the live index's model", labels=["version"]
        )
        live = s.scalars(select(IndexVersion).where(IndexVersion.state == "live")).first()
        if live is not None:
            live_points.add_metric([live.id], live.points or 0)
            if live.avg_a is not None:
                live_score.add_metric([live.id], live.avg_a)
        return [ability, live_points, live_score]
