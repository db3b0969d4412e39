"""Runs that exercise every part of a run search, and the searches that read them: the tracking server's lean
search (docker/lib/mlflow_oci/run_search.py) must answer each exactly as MLflow's own SqlAlchemyStore does.

The runs, made through MLflow's store: two experiments; metrics with NaN, infinities, negative values and
several steps; runs that lack the metric, param or tag a search sorts on; names set as attributes and only
as the mlflow.runName tag; equal start times (the run id breaks ties); every status; deleted runs; dataset
inputs with tags; a logged model as an output.
"""
from __future__ import annotations

import math
import random

from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput, Metric, Param, RunStatus, RunTag, ViewType
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

RUNS_PER_EXPERIMENT = 23
STATUSES = ("FINISHED", "FAILED", "RUNNING", "KILLED", "SCHEDULED")

ORDERS = ([], ["metrics.`loss` DESC"], ["metrics.loss ASC"], ["params.lr ASC"], ["tags.`team` DESC"],
          ["attributes.start_time ASC"], ["attributes.run_name"], ["attributes.end_time DESC"],
          ["metrics.acc DESC", "params.lr DESC"], ["tags.team", "attributes.status DESC"])
FILTERS = ("", "metrics.loss > 0.5", "metrics.acc < 0.3", "params.lr = '0.01'", "tags.team LIKE 'vis%'",
           "attributes.status = 'FINISHED'", "attributes.run_name ILIKE '%run-1%'", "datasets.name = 'wine'",
           "params.optimizer != 'sgd' and metrics.loss <= 10")
VIEWS = (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL)


def make_runs(store, seed: int = 7) -> list[str]:
    """The experiments' ids, after filling them."""
    rng = random.Random(seed)
    experiment_ids = [store.create_experiment(f"lean-search-{index}") for index in range(2)]
    model = store.create_logged_model(experiment_ids[0], name="wine-model")
    for experiment_id in experiment_ids:
        for index in range(RUNS_PER_EXPERIMENT):
            named = index % 3 != 0
            tags = [] if named else [RunTag(MLFLOW_RUN_NAME, f"tagged-run-{index}")]
            start = 1_767_225_600_000 + (index // 4) * 60_000  # four runs share each start time
            run = store.create_run(experiment_id, f"user-{index % 4}", start, tags,
                                   f"run-{index}" if named else None)
            run_id = run.info.run_id
            store.log_batch(run_id, _metrics(rng, index, start), _params(rng, index), _tags(index))
            store.update_run_info(run_id, RunStatus.from_string(STATUSES[index % len(STATUSES)]),
                                  start + 1000 * (index % 7) if index % 5 else None, None)
            if index % 4 == 1:
                store.log_inputs(run_id, [DatasetInput(
                    Dataset("wine" if index % 8 == 1 else "iris", f"digest{index}", "local", "/data"),
                    [InputTag("mlflow.data.context", "training")])])
            if index == 2 and experiment_id == experiment_ids[0]:
                store.log_outputs(run_id, [LoggedModelOutput(model.model_id, 1)])
            if index % 6 == 5:
                store.delete_run(run_id)
    return experiment_ids


def _metrics(rng: random.Random, index: int, start: int) -> list[Metric]:
    special = {0: math.nan, 4: math.inf, 8: -math.inf, 12: -3.5}
    metrics = []
    if index % 7 != 3:  # some runs have no loss
        for step in range(3):
            value = special.get(index, rng.uniform(0, 2)) if step == 2 else rng.uniform(0, 2)
            metrics.append(Metric("loss", value, start + step, step))
    if index % 2 == 0:
        metrics.append(Metric("acc", rng.random(), start, 0))
    return metrics


def _params(rng: random.Random, index: int) -> list[Param]:
    params = [Param("optimizer", ("adam", "sgd", "rmsprop")[index % 3])]
    if index % 5 != 2:
        params.append(Param("lr", rng.choice(("0.1", "0.01", "0.001"))))
    return params


def _tags(index: int) -> list[RunTag]:
    return [RunTag("team", ("vision", "nlp", "vis-ops")[index % 3])] if index % 4 != 3 else []


def searches(experiment_ids: list[str]):
    """(experiment_ids, filter, view, order_by, page size) for every combination that tells stores apart."""
    for order_by in ORDERS:
        for filter_string in FILTERS:
            yield experiment_ids, filter_string, ViewType.ACTIVE_ONLY, order_by, 10
    for view in VIEWS:
        for order_by in (ORDERS[0], ORDERS[1], ORDERS[4]):
            yield experiment_ids[:1], "", view, order_by, 7


def every_page(store, experiment_ids, filter_string, view, order_by, page_size) -> list[tuple]:
    """Every page of one search, each as (its runs as MLflow's dict, its token); NaN compares equal by repr."""
    pages, token = [], None
    while True:
        page = store.search_runs(experiment_ids, filter_string, view, page_size, order_by, token)
        pages.append((repr([_comparable(run) for run in page]), page.token))
        token = page.token
        if not token:
            return pages


def _comparable(run) -> dict:
    as_dict = run.to_dictionary()
    as_dict["data"]["metrics"] = sorted((metric.key, repr(metric.value), metric.timestamp, metric.step)
                                        for metric in run.data._metric_objs)
    return as_dict
