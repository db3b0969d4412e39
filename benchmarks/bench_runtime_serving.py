"""Serving latency of the wine model: raw `mlflow models serve` vs our endpoint (nginx TLS + basic
auth -> supervisor's legacy adapter -> the same kind of model server), legacy pandas-split payload.
Target: p50/p99 through proxy + adapter <= 1.2 x raw.

    .venv/bin/python benchmarks/bench_runtime_serving.py [--requests 400]
"""
import argparse
import importlib.util
import json
import os
import re
import sys
import time

import requests
import urllib3
from bench_runtime_common import REPO_ROOT, free_port, local_runtime, percentile, processes, summary

COLUMNS = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
           "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol"]
ROW = [6.2, 0.66, 0.48, 1.2, 0.029, 29, 75, 0.98, 3.33, 0.39, 12.8]


def train_and_promote() -> None:
    spec = importlib.util.spec_from_file_location("wine_train", REPO_ROOT / "examples" / "wine" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--experiment-name", "bench-serving"])
    from mlflow import MlflowClient
    MlflowClient().set_registered_model_alias("wine-quality", "champion", "1")


def latencies(session, url, body, headers, count, **kwargs) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = session.post(url, data=body, headers=headers, verify=False, timeout=60, **kwargs)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return samples


def wait_ok(session, url, body, headers, timeout=300, **kwargs):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if session.post(url, data=body, headers=headers, verify=False, timeout=30, **kwargs).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer 200 within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint (default 400)")
    args = parser.parse_args()
    urllib3.disable_warnings()

    # The supervisor's registry polls share the CPU with the measured path: poll at a calmer pace.
    with local_runtime(serving=True, poll_seconds=5) as (endpoints, _direct):
        os.environ["MLFLOW_TRACKING_URI"] = endpoints.tracking_url
        train_and_promote()
        raw_port = free_port()
        env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
        raw = processes.start("raw-serve", [sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                            "models:/wine-quality/1", "-h", "127.0.0.1", "-p", str(raw_port),
                                            "--env-manager", "local"], env, endpoints.state.logs / "raw.log")
        try:
            auth = (endpoints.credentials.username, endpoints.credentials.password)
            legacy = (json.dumps({"columns": COLUMNS, "data": [ROW]}),
                      {"Content-Type": "application/json; format=pandas-split"})
            current = (json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}}),
                       {"Content-Type": "application/json"})
            proxy_url = f"{endpoints.serving_url}/invocations"
            raw_url = f"http://127.0.0.1:{raw_port}/invocations"
            # The supervisor's own port, from the rendered proxy config: the adapter without nginx.
            upstream = re.search(r"server (127\.0\.0\.1:\d+);", (endpoints.state.nginx / "serving.conf").read_text())
            adapter_url = f"http://{upstream.group(1)}/invocations"
            with requests.Session() as proxy_session, requests.Session() as raw_session, \
                    requests.Session() as adapter_session:
                wait_ok(proxy_session, proxy_url, *legacy, auth=auth)
                wait_ok(raw_session, raw_url, *current)
                samples = {"raw": [], "adapter": [], "proxy": []}
                block = 50
                for _ in range(max(1, args.requests // block)):  # interleaved blocks
                    samples["raw"] += latencies(raw_session, raw_url, *current, block)
                    samples["adapter"] += latencies(adapter_session, adapter_url, *legacy, block)
                    samples["proxy"] += latencies(proxy_session, proxy_url, *legacy, block, auth=auth)
            print("wine model, 1 row per request, sequential keep-alive client")
            print(f"raw mlflow models serve (dataframe_split, http):    {summary(samples['raw'])}")
            print(f"adapter -> serve (pandas-split, http):              {summary(samples['adapter'])}")
            print(f"nginx TLS+auth -> adapter -> serve (pandas-split):  {summary(samples['proxy'])}")
            for name, fraction in (("p50", 0.5), ("p99", 0.99)):
                ratio = percentile(samples["proxy"], fraction) / percentile(samples["raw"], fraction)
                print(f"{name} ratio proxy/raw: {ratio:.2f}x")
        finally:
            processes.stop(raw.pid)


if __name__ == "__main__":
    main()
