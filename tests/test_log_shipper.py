"""docker/lib/mlflow_oci/log_shipper.py against a loopback fake of OCI Logging ingestion (tests/ocifakes): journal
records (`journalctl --output=json`, systemd's documented JSON export: one object a line with __CURSOR,
__REALTIME_TIMESTAMP in microseconds, MESSAGE, _SYSTEMD_UNIT) reach the service log and the audit log with the
instance principal's signed requests, with no secret in them, in bounded requests, and resume where they stopped.
The fake enforces PutLogs' documented shape and its rule that an entry is under 1 MB."""
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ocifakes.server import InstanceCloud

LIB = Path(__file__).resolve().parents[1] / "docker" / "lib"
SECRETS = ("Db-p@ss:word/1", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LWFsaWNlIn0.c2lnbmF0dXJlLXZhbHVl",
           "YWxpY2U6c2VjcmV0LXBhc3N3b3Jk", "T0K3N-s3cr3t", "kPq3Zr8vWx2Yt6Uo1Mn4Lb7Hc9Jd0Fe5")


@pytest.fixture
def cloud():
    server = InstanceCloud().start()
    yield server
    server.stop()


def record(n: int, message: str, unit: str = "mlflow-tracking.service") -> str:
    return json.dumps({"__CURSOR": f"s=abc;i={n:x}", "__REALTIME_TIMESTAMP": str(1796000000000000 + n * 1000),
                       "MESSAGE": message, "_SYSTEMD_UNIT": unit, "_HOSTNAME": "mlflow-tracking"})


def ship(cloud, lines: list[str], *args, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment.update(cloud.runtime_env(), PYTHONPATH=str(LIB), **env)
    return subprocess.run([sys.executable, "-m", "mlflow_oci.log_shipper", *args], input="\n".join(lines) + "\n",
                          env=environment, capture_output=True, text=True, timeout=120)


def test_records_reach_their_logs_without_secrets(cloud):
    service, audit = cloud.add_log("mlflow-service"), cloud.add_log("mlflow-audit")
    cloud.grant_log(service)
    cloud.grant_log(audit)
    audit_line = '{"audit":"mlflow","user":"alice","action":"runs/delete","run_id":"a1b2"}'
    lines = [
        record(1, "tracking-entrypoint: backend store: mysql+pymysql://mlflow:Db-p@ss:word/1@10.0.2.10:3306/mlflow"),
        record(2, audit_line),
        record(3, f"GET /api/2.0/mlflow/users/current Authorization: Bearer {SECRETS[1]}", unit="nginx.service"),
        record(4, f"client sent Authorization: Basic {SECRETS[2]}"),
        record(5, f'settings: {{"client_secret": "{SECRETS[3]}", "password": "{SECRETS[3]}"}}'),
        record(6, f"PUT https://objectstorage.us-ashburn-1.oraclecloud.com/p/{SECRETS[4]}/n/ns/b/bucket/o/model.pkl"),
        record(7, "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
    ]
    shipped = ship(cloud, lines, MLFLOW_LOG_OCID=service, MLFLOW_AUDIT_LOG_OCID=audit)
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout) == {"cursor": "s=abc;i=7", "entries": 7, "audit": 1}
    assert [e["data"] for e in cloud.logs[audit]] == [audit_line]
    texts = [json.loads(e["data"]) for e in cloud.logs[service]]
    assert [t["unit"] for t in texts] == ["mlflow-tracking.service", "nginx.service"] + ["mlflow-tracking.service"] * 4
    assert "mysql+pymysql://mlflow:***@10.0.2.10:3306/mlflow" in texts[0]["message"]
    everything = json.dumps(cloud.logs)
    for secret in SECRETS + ("MIIEowIBAAKCAQEA",):
        assert secret not in everything
    first = datetime.fromtimestamp(1796000000.001, tz=timezone.utc)  # record 1's __REALTIME_TIMESTAMP
    assert cloud.logs[service][0]["time"] == first.strftime("%Y-%m-%dT%H:%M:%S.001Z")
    assert all(e["source"] == cloud.logs[audit][0]["source"] and e["type"] == "mlflow.service" for e in cloud.logs[service])
    # the instance principal's signed calls only
    assert {kind for method, path, kind, _ in cloud.requests if path.startswith("/20200831/")} == {"session-token"}


def test_large_input_goes_in_bounded_requests_and_a_huge_line_is_cut(cloud):
    service = cloud.add_log("mlflow-service")
    cloud.grant_log(service)
    lines = [record(n, f"line {n} " + "x" * 900) for n in range(1, 301)] + [record(301, "y" * (3 * 1024 * 1024))]
    shipped = ship(cloud, lines, "--chunk-bytes", "65536", MLFLOW_LOG_OCID=service)
    assert shipped.returncode == 0, shipped.stderr
    assert json.loads(shipped.stdout)["entries"] == 301
    pushes = [t for t in cloud.transfers if t[1].endswith("/actions/push")]
    assert len(pushes) >= 5 and max(size for _, _, _, _, size, _ in pushes) < 1024 * 1024
    assert cloud.logs[service][-1]["data"].endswith("…[cut]")


def test_a_log_it_may_not_write_stops_it_where_it_got_and_the_next_run_resumes(cloud):
    service, audit = cloud.add_log("mlflow-service"), cloud.add_log("mlflow-audit")
    cloud.grant_log(service)  # the audit log is not granted (yet)
    lines = [record(1, "started"), record(2, "more")]
    lines_2 = [record(3, '{"audit":"mlflow","user":"bob","action":"experiments/create"}')]
    first = ship(cloud, lines + lines_2, "--chunk-bytes", "200", MLFLOW_LOG_OCID=service, MLFLOW_AUDIT_LOG_OCID=audit)
    assert first.returncode == 3 and "NotAuthorizedOrNotFound" in first.stderr, first.stderr
    assert json.loads(first.stdout)["cursor"] == "s=abc;i=2"  # the caller starts after this one next time
    cloud.grant_log(audit)
    again = ship(cloud, lines_2, MLFLOW_LOG_OCID=service, MLFLOW_AUDIT_LOG_OCID=audit)
    assert again.returncode == 0 and json.loads(again.stdout)["cursor"] == "s=abc;i=3"
    assert [json.loads(e["data"])["user"] for e in cloud.logs[audit]] == ["bob"]


def test_without_a_log_ocid_it_says_what_to_set(cloud):
    shipped = ship(cloud, [record(1, "x")])
    assert shipped.returncode == 2 and "MLFLOW_LOG_OCID" in shipped.stderr


def test_the_fake_refuses_what_oci_refuses(cloud):
    """An entry of 1 MB or more, and a request without specversion 1.0, are refused (the SDK is bypassed here)."""
    import oci

    service = cloud.add_log("mlflow-service")
    cloud.grant_log(service)
    sys.path.insert(0, str(LIB))
    os.environ.update(cloud.runtime_env())
    try:
        from mlflow_oci import auth

        auth._identity = None
        client = auth.logging_client()
        big = oci.loggingingestion.models.LogEntry(data="z" * (1024 * 1024), id="1", time="2026-12-07T00:00:00.000Z")
        batch = oci.loggingingestion.models.LogEntryBatch(entries=[big], source="s", type="t")
        with pytest.raises(oci.exceptions.ServiceError) as refused:
            client.put_logs(service, oci.loggingingestion.models.PutLogsDetails(specversion="1.0",
                                                                                 log_entry_batches=[batch]))
        assert refused.value.status == 400 and "less than 1 MB" in refused.value.message
    finally:
        for name in cloud.runtime_env():
            os.environ.pop(name, None)
        auth._identity = None
        sys.path.remove(str(LIB))
