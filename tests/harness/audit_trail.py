"""What a person does to experiments, runs, registered models and aliases through MLflow's REST API, and the audit
lines the tracking server must write for it (docker/lib/mlflow_oci/audit.py).

`do_the_writes(http, base, tag)` makes the calls with a requests session that carries the person's login, and
returns what each line must name; `audit_lines(log, since)` reads the server's log from a byte offset on."""
from __future__ import annotations

import json
from pathlib import Path

API = "/api/2.0/mlflow"


def _call(http, base: str, method: str, route: str, body: dict) -> dict:
    if method == "GET":
        answer = http.get(f"{base}{API}/{route}", params=body, timeout=60)
    else:
        answer = http.request(method, f"{base}{API}/{route}", json=body, timeout=60)
    assert answer.status_code == 200, (route, answer.status_code, answer.text[:300])
    return answer.json() if answer.content else {}


def do_the_writes(http, base: str, tag: str) -> list[tuple[str, dict]]:
    """Create, update and delete an experiment, a run, a registered model, a version and an alias, and upload an
    artifact; each write's route (the audit line's action) with the names its line must carry."""
    expected = []

    def write(method: str, route: str, body: dict, names: dict) -> dict:
        answer = _call(http, base, method, route, body)
        expected.append((route, names))
        return answer

    experiment = write("POST", "experiments/create", {"name": f"audit-{tag}"}, {})["experiment_id"]
    expected[-1][1]["experiment_id"] = experiment
    write("POST", "experiments/update", {"experiment_id": experiment, "new_name": f"audit-{tag}-renamed"},
          {"experiment_id": experiment})
    run = write("POST", "runs/create", {"experiment_id": experiment}, {"experiment_id": experiment})["run"]["info"]["run_id"]
    expected[-1][1]["run_id"] = run
    write("POST", "runs/log-parameter", {"run_id": run, "key": "lr", "value": "0.01"}, {"run_id": run})
    write("POST", "runs/set-tag", {"run_id": run, "key": "stage", "value": "secret-tag-value"}, {"run_id": run})
    # an artifact upload: MLflow's FastAPI router serves it, not Flask
    path = f"{experiment}/{run}/artifacts/audit-note.txt"
    uploaded = http.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/{path}", data=b"secret-artifact-content",
                        timeout=60)
    assert uploaded.status_code == 200, (uploaded.status_code, uploaded.text[:300])
    expected.append(("artifacts/upload", {"path": path}))
    model = f"audit-model-{tag}"
    write("POST", "registered-models/create", {"name": model}, {"name": model})
    version = write("POST", "model-versions/create", {"name": model, "source": f"runs:/{run}/model", "run_id": run},
                    {"name": model, "run_id": run})["model_version"]["version"]
    expected[-1][1]["version"] = version
    write("POST", "registered-models/alias", {"name": model, "alias": "champion", "version": version},
          {"name": model, "alias": "champion", "version": version})
    write("DELETE", "registered-models/alias", {"name": model, "alias": "champion"}, {"name": model, "alias": "champion"})
    write("DELETE", "registered-models/delete", {"name": model}, {"name": model})
    write("POST", "runs/delete", {"run_id": run}, {"run_id": run})
    write("POST", "experiments/delete", {"experiment_id": experiment}, {"experiment_id": experiment})
    # reads leave no line
    _call(http, base, "POST", "runs/search", {"experiment_ids": [experiment]})
    _call(http, base, "GET", "experiments/get", {"experiment_id": experiment})
    return expected


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def audit_lines(log: Path, since: int = 0) -> list[dict]:
    with log.open("rb") as handle:
        handle.seek(since)
        text = handle.read().decode(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"audit":')]


def check(lines: list[dict], expected: list[tuple[str, dict]], who: dict) -> None:
    """Each write has its line, in order, naming the person (`who`: user, login and with SSO the subject) and the
    targets; no line carries a value that was written."""
    writes = [line for line in lines if line.get("action") in {route for route, _ in expected}]
    assert [line["action"] for line in writes] == [route for route, _ in expected], [line.get("action") for line in lines]
    for line, (route, names) in zip(writes, expected, strict=True):
        assert {k: line.get(k) for k in who} == who, line
        assert line["status"] == 200 and line["from"] and line["time"].endswith("Z"), line
        for key, value in names.items():
            assert line.get(key) == str(value), (route, key, line)
    assert not any("runs/search" == line.get("action") or "experiments/get" == line.get("action") for line in lines)
    text = json.dumps(lines)
    assert "secret-tag-value" not in text and "0.01" not in text and "secret-artifact-content" not in text
