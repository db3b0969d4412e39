"""The upgrade's health gate: the replaced tracking VM is up, runs the MLflow version it was given, and passes
doctor's checks. Returns the problems (none: healthy).

A new VM boots, installs and starts in several minutes on OCI, so /health is polled until `wait_seconds`
have passed; doctor runs once it answers. `probe()`, asked every `probe_seconds` while waiting, may end the
wait early with the reason the VM gives (a migration that failed does not start later).
"""
from __future__ import annotations

import time
from dataclasses import replace

from orm_pack.mlflow_api import doctor, http_client


def check(target: doctor.DoctorTarget, version: str, wait_seconds: float, poll_seconds: float = 10.0,
          probe=None, probe_seconds: float = 60.0) -> list[str]:
    endpoint = http_client.Endpoint(target.tracking_url, target.username, target.password, target.timeout,
                                    verify_tls=target.verify_tls, ca_file=target.ca_file)
    deadline = time.monotonic() + wait_seconds
    next_probe = time.monotonic() + min(probe_seconds, wait_seconds / 12)
    last = "no answer"
    while True:
        try:
            answer = endpoint.request("GET", "/health", auth=False)
            if answer.status == 200:
                break
            last = f"GET /health answered {answer.status}"
        except OSError as exc:
            last = f"no answer ({exc})"
        if time.monotonic() > deadline:
            return [f"the tracking server was not up within {wait_seconds:.0f}s: {last}"]
        if probe is not None and time.monotonic() >= next_probe:
            reason = probe()
            if reason:
                return [f"the tracking server is not up ({last}) and will not be: {reason}"]
            next_probe = time.monotonic() + probe_seconds
        time.sleep(poll_seconds)
    problems = []
    served = doctor.served_version(endpoint)
    if served != version:
        problems.append(f"the tracking server runs MLflow {served}, not {version}")
    checks = doctor.run(replace(target, artifact_mb=1, serving_url=None))
    # Whether the example model carries its alias says nothing about the server's health.
    problems += [f"doctor {c.name}: {c.detail}" for c in checks if not c.passed and c.name != "alias"]
    return problems
