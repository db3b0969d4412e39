"""A large artifact through the oci:// store's multipart path (per-upload PARs, parts straight from the client
to Object Storage) vs the same file sent with the OCI SDK's UploadManager straight to Object Storage, both
against the loopback Object Storage fake (tests/ocifakes/server.py, in a process of its own; parts on disk).

The MLflow run goes through `orm-pack local up --artifacts-destination oci://… --oci-endpoint <fake>` with an
API key, the auth proxy (TLS) in front: MLflow's client asks the tracking server to start the upload, PUTs
the parts to the PAR URLs it gets, then asks it to commit. Printed: seconds and MB/s of each, their ratio
(target >= 80 %), the tracking server's peak RSS growth over the upload (sum over its processes, sampled
every 0.2 s; target < 100 MB), and the bytes the fake took through PARs vs through the server's signed calls.
Both sides use the same part size and the same number of parallel parts (MLflow's thread pool size).

    .venv/bin/python benchmarks/bench_large_data.py [--gib 5] [--part-mib 64]

Measured 2026-12-07 (UTC) on the shared 2-core development VM (x86_64, 23 GB RAM, one virtio disk, other
engineers' jobs running), 5 GiB, 64 MiB parts, 4 in parallel:

| run | UploadManager straight to the fake | MLflow multipart via local up | ratio | tracking RSS growth | signed bytes |
|---|---|---|---|---|---|
| `--rounds 1`, load ~3 | 27.7 s, 185 MiB/s | 26.1 s, 196 MiB/s | 106 % | 15.9 MiB | 5.0 KiB |
| `--rounds 2`, load ~8 | 75.4 / 66.8 s (best 77 MiB/s) | 58.2 / 38.0 s (best 135 MiB/s) | 176 % | 15.9 MiB | 5.0 KiB |

Both are bound by the fake (one Python process writing parts to disk) and the shared disk, not by the
network; what the benchmark shows is that the MLflow path adds no bottleneck of its own and the tracking
server carries none of the bytes (all 5120 MiB reached the fake through the PARs).
"""
import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_runtime_common import REPO_ROOT, local_runtime, tree_memory_kib

sys.path.insert(0, str(REPO_ROOT / "tests"))

BUCKET = "bench-artifacts"
MIB = 1 << 20


def serve_fake(pipe, directory: str) -> None:
    """The fake in a child process: an API key it knows, written to an OCI config file; reports
    (url, config path, stored sizes and received bytes) and serves until told to stop."""
    from ocifakes.server import InstanceCloud

    from ormfake.keys import ApiKey, write_oci_config

    cloud = InstanceCloud().start()
    key = ApiKey.generate()
    cloud.add_api_key(key.key_id, key.public_key, key.user)
    cloud.create_bucket(BUCKET)
    cloud.grant(buckets=[BUCKET], par_buckets=[BUCKET], instance=key.user)
    config = write_oci_config(Path(directory), key)
    pipe.send((cloud.url, str(config), cloud.namespace))
    while True:
        command = pipe.recv()
        if command == "stop":
            break
        if command == "mark":
            pipe.send(len(cloud.transfers))
        elif isinstance(command, tuple) and command[0] == "since":
            received = {}
            for _, _, kind, _, size, _ in cloud.transfers[command[1]:]:
                received[kind] = received.get(kind, 0) + size
            pipe.send(received)
        elif isinstance(command, tuple) and command[0] == "object":
            matches = [(n, o) for n, o in cloud.buckets[BUCKET].items() if n.endswith(command[1])]
            found = []
            for name, stored in matches:
                digest = hashlib.md5()
                for chunk in stored.stream(0, stored.size):
                    digest.update(chunk)
                found.append((name, stored.size, digest.hexdigest()))
                stored.delete()  # free the disk for the next run
                del cloud.buckets[BUCKET][name]
            pipe.send(found)
    cloud.stop()


def make_file(path: Path, size: int) -> str:
    """`size` bytes of random blocks; returns their MD5 (hex)."""
    block = os.urandom(64 * MIB)
    digest = hashlib.md5()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = block[:min(left, len(block))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


class PeakRss:
    """Samples the tracking server's tree RSS every 0.2 s while running."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.base = tree_memory_kib(pid)[0]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_memory_kib(self.pid)[0])
            time.sleep(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=5, help="artifact size in GiB (default 5)")
    parser.add_argument("--part-mib", type=int, default=64, help="part size in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=2, help="each upload this many times, alternating (best kept)")
    args = parser.parse_args()
    size, part = int(args.gib * 1024 * MIB), args.part_mib * MIB

    import oci
    from mlflow.store.artifact.artifact_repo import ArtifactRepository

    workers = ArtifactRepository.max_workers.fget(None)  # MLflow's thread pool for parts
    with tempfile.TemporaryDirectory(prefix="bench-large-") as work:
        work = Path(work)
        ours, theirs = multiprocessing.Pipe()
        fake = multiprocessing.Process(target=serve_fake, args=(theirs, str(work)), daemon=True)
        fake.start()
        url, config, namespace = ours.recv()
        source = work / "weights.bin"
        md5 = make_file(source, size)
        print(f"artifact {size / MIB:.0f} MiB, parts of {args.part_mib} MiB, {workers} in parallel; "
              f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")

        client = oci.object_storage.ObjectStorageClient(oci.config.from_file(config), service_endpoint=url)
        manager = oci.object_storage.UploadManager(client, allow_multipart_uploads=True,
                                                   allow_parallel_uploads=True, parallel_process_count=workers)

        def stored_whole(suffix: str) -> None:
            ours.send(("object", suffix))
            [(_, stored, stored_md5)] = ours.recv()
            assert (stored, stored_md5) == (size, md5), (stored, stored_md5)

        os.environ["OCI_CONFIG_FILE"] = config
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"
        sdk_times, mlflow_times, growth, received = [], [], [], {}
        with local_runtime(False, artifacts_destination=f"oci://{BUCKET}@{namespace}/bench", oci_endpoint=url) \
                as (endpoints, direct):
            from mlflow import MlflowClient

            os.environ.update(MLFLOW_TRACKING_SERVER_CERT_PATH=str(endpoints.ca_file),
                              MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE=str(part),
                              MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE=str(min(part, size)))
            os.environ.pop("MLFLOW_TRACKING_INSECURE_TLS", None)
            mlflow = MlflowClient(endpoints.tracking_url)
            experiment = mlflow.create_experiment(f"bench-large-{time.time_ns()}")
            tracking = next(r.pid for r in endpoints.services if r.name == "tracking")
            for _ in range(args.rounds):
                # the OCI SDK's UploadManager straight to the fake
                started = time.monotonic()
                manager.upload_file(namespace, BUCKET, "direct/weights.bin", str(source), part_size=part)
                sdk_times.append(time.monotonic() - started)
                stored_whole("direct/weights.bin")
                # MLflow's multipart path through orm-pack local up
                run = mlflow.create_run(experiment).info.run_id
                ours.send("mark")
                mark = ours.recv()
                with PeakRss(tracking) as rss:
                    started = time.monotonic()
                    mlflow.log_artifact(run, str(source), "model")
                    mlflow_times.append(time.monotonic() - started)
                growth.append(rss.peak - rss.base)
                ours.send(("since", mark))
                received = ours.recv()
                stored_whole("/model/weights.bin")
        sdk_seconds, mlflow_seconds = min(sdk_times), min(mlflow_times)
        print("rounds (s): UploadManager " + " ".join(f"{t:.1f}" for t in sdk_times) + "; MLflow multipart "
              + " ".join(f"{t:.1f}" for t in mlflow_times))
        print(f"UploadManager straight to the fake   {sdk_seconds:7.1f} s  {size / MIB / sdk_seconds:7.1f} MiB/s (best)")
        print(f"MLflow multipart via local up        {mlflow_seconds:7.1f} s  {size / MIB / mlflow_seconds:7.1f} MiB/s (best)")
        print(f"ratio (multipart / UploadManager)    {sdk_seconds / mlflow_seconds:7.0%}   (target >= 80 %)")
        print(f"tracking server RSS growth, peak     {max(growth) / 1024:7.1f} MiB (target < 100 MiB; "
              f"{rss.base / 1024:.0f} MiB before)")
        print(f"bytes the fake took in the last MLflow upload: through PARs {received.get('par', 0) / MIB:.1f} MiB, "
              f"through the server's signed calls {received.get('api-key', 0) / 1024:.1f} KiB")
        ours.send("stop")
        fake.join(60)


if __name__ == "__main__":
    main()
