"""Ships journal records to OCI Logging (Logging ingestion's PutLogs, with the instance principal): the audit
trail (audit.py's lines) to one custom log, everything else to another.

    journalctl --output=json --after-cursor=C -u ... | head -n 5000 | python3 -m mlflow_oci.log_shipper

Reads `journalctl --output=json` records on stdin, one JSON object a line, and prints one JSON line:
{"cursor": the last record shipped (null: none), "entries": n, "audit": n}. The caller keeps that cursor and
starts after it next time, so a record is shipped at least once; an entry's id is derived from its record's
cursor, so a record shipped twice is recognisable. Bounded: records arrive in chunks of at most --chunk-bytes,
each shipped before the next is read; an entry's text is cut at --entry-bytes (OCI takes entries under 1 MB).

Nothing secret leaves: passwords in URIs, Authorization headers, basic and bearer credentials, tokens (JWTs),
`password=`-style settings, private keys and pre-authenticated request paths are replaced before shipping.

Settings: MLFLOW_LOG_OCID (the service log), MLFLOW_AUDIT_LOG_OCID (the audit trail; unset: the service log).
Exit codes: 0 all shipped, 2 bad settings, 3 OCI refused or could not be reached (the cursor says how far it got).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import uuid
from datetime import datetime, timezone

AUDIT_PREFIX = '{"audit":'
ID_NAMESPACE = uuid.UUID("6f1c3a52-8d2e-4b1f-9a77-0c9e5b1d2a40")
SCRUBS = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), "[private key removed]"),
    # up to the last @ of the word: a password may hold @ and / itself (more cut than needed beats a leak)
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+):\S*@", re.I), r"\1:***@"),
    (re.compile(r"(\bauthorization\s*[:=]\s*)[^\r\n\"]+", re.I), r"\1***"),
    (re.compile(r"\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}", re.I), r"\1 ***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "***"),
    (re.compile(r"((?:password|passwd|secret|token|api[_-]?key|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&;]+",
                re.I), r"\1***"),
    (re.compile(r"/p/[A-Za-z0-9_+=:.-]{16,}/"), "/p/***/"),  # a pre-authenticated request's secret path
)


def scrub(text: str) -> str:
    for pattern, replacement in SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def _message(record: dict) -> str:
    message = record.get("MESSAGE", "")
    if isinstance(message, list):  # journald gives non-UTF-8 messages as a list of bytes
        message = bytes(message).decode("utf-8", errors="replace")
    return message if isinstance(message, str) else str(message)


def _time(record: dict) -> str:
    micros = int(record.get("__REALTIME_TIMESTAMP", 0))
    moment = datetime.fromtimestamp(micros / 1e6, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entry(record: dict, entry_bytes: int) -> tuple[bool, dict]:
    """(is an audit line, the LogEntry) of one journal record."""
    message = scrub(_message(record))
    audit = message.startswith(AUDIT_PREFIX)
    unit = record.get("_SYSTEMD_UNIT") or record.get("SYSLOG_IDENTIFIER") or "unknown"
    data = message if audit else json.dumps({"unit": unit, "message": message}, ensure_ascii=False)
    if len(data.encode()) > entry_bytes:
        data = data.encode()[:entry_bytes].decode("utf-8", errors="ignore") + "…[cut]"
    ident = str(uuid.uuid5(ID_NAMESPACE, record.get("__CURSOR") or message))
    return audit, {"data": data, "id": ident, "time": _time(record)}


def chunks(lines, chunk_bytes: int):
    """Lists of journal records, each at most chunk_bytes of input (and at least one record)."""
    chunk, size = [], 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if chunk and size + len(line) > chunk_bytes:
            yield chunk
            chunk, size = [], 0
        try:
            record = json.loads(line)
        except ValueError:
            continue  # not a journal record (a truncated last line): nothing to ship
        chunk.append(record)
        size += len(line)
    if chunk:
        yield chunk


class Shipper:
    def __init__(self, client, service_log: str, audit_log: str, source: str):
        self.client, self.service_log, self.audit_log, self.source = client, service_log, audit_log, source

    def put(self, log_ocid: str, kind: str, entries: list[dict]) -> None:
        from oci.loggingingestion.models import LogEntry, LogEntryBatch, PutLogsDetails

        batch = LogEntryBatch(entries=[LogEntry(**e) for e in entries], source=self.source, type=f"mlflow.{kind}",
                              defaultlogentrytime=entries[0]["time"])
        self.client.put_logs(log_ocid, PutLogsDetails(specversion="1.0", log_entry_batches=[batch]))

    def ship(self, records: list[dict], entry_bytes: int) -> tuple[int, int]:
        audit, service = [], []
        for record in records:
            is_audit, log_entry = entry(record, entry_bytes)
            (audit if is_audit else service).append(log_entry)
        if service:
            self.put(self.service_log, "service", service)
        if audit:
            self.put(self.audit_log, "audit", audit)
        return len(audit) + len(service), len(audit)


def main(argv=None, stdin=None, client=None) -> int:
    parser = argparse.ArgumentParser(prog="log_shipper", description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-bytes", type=int, default=512 * 1024)
    parser.add_argument("--entry-bytes", type=int, default=64 * 1024)
    args = parser.parse_args(argv)
    service_log = os.environ.get("MLFLOW_LOG_OCID", "")
    audit_log = os.environ.get("MLFLOW_AUDIT_LOG_OCID", "") or service_log
    if not service_log.startswith("ocid1.log."):
        print("log_shipper: set MLFLOW_LOG_OCID to the OCID of the custom log (ocid1.log....)", file=sys.stderr)
        return 2
    if client is None:
        from mlflow_oci import auth

        client = auth.logging_client()
    shipper = Shipper(client, service_log, audit_log, socket.gethostname())
    cursor, shipped, audited, code = None, 0, 0, 0
    try:
        for records in chunks(stdin or sys.stdin, args.chunk_bytes):
            count, audit = shipper.ship(records, args.entry_bytes)
            cursor = records[-1].get("__CURSOR", cursor)
            shipped, audited = shipped + count, audited + audit
    except Exception as exc:  # the SDK's service and connection errors: say so, keep what was shipped
        from mlflow_oci.auth import first_line

        print(f"log_shipper: OCI Logging refused or could not be reached: {first_line(exc)}", file=sys.stderr)
        code = 3
    print(json.dumps({"cursor": cursor, "entries": shipped, "audit": audited}))
    return code


if __name__ == "__main__":
    sys.exit(main())
