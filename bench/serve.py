"""Serving throughput and latency: micro-batching against one request at a time, same checkpoint, same run.

Starts ``grec serve`` twice on loopback (``--max_batch 32`` and ``--max_batch 1``, both with
``--threads`` torch threads) and sends each the same requests from ``--clients`` concurrent
clients (each keeps one connection and sends its next request when the last is answered):
``--requests`` in all, the histories of ``--records`` (grec records' test.json) in turn. Prints
throughput, p50 and p99 latency per setting and the ratios batched / batch-1, and writes them to
``--out`` (docs/bench/serve.json).

    .venv/bin/python bench/serve.py --checkpoint outputs/demo/sidlm/train/best \\
        --records outputs/demo/sidlm/records/test.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provenance import provenance

from grec.base.io import write_json
from grec.serve.client import Client, ServerProcess

ROOT = Path(__file__).resolve().parent.parent


def load(server: ServerProcess, histories: list[list[str]], clients: int, requests: int, k: int) -> dict:
    client = Client(server.url)
    for history in histories[:4]:  # warm-up: first calls build the rankers
        client.recommend(history, k=k)
    latencies: list[float] = []

    def worker(offset: int) -> None:
        for n in range(offset, requests, clients):
            started = time.perf_counter()
            client.recommend(histories[n % len(histories)], k=k)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    metrics = client.call("GET", "/metrics")[1]
    batches = next(float(line.split()[1]) for line in metrics.splitlines() if line.startswith("grec_batch_size_count"))
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(latencies) / seconds, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "mean_batch": round((len(latencies) + 4) / batches, 2),
    }


def machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a sidlm best/ or last/ folder")
    parser.add_argument("--records", required=True, help="grec records' test.json: the histories to send")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--num_beams", type=int, default=20)
    parser.add_argument("--max_batch", type=int, default=32)
    parser.add_argument("--max_wait_ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where both servers run the model")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "serve.json"))
    args = parser.parse_args()
    histories = [[str(i) for i in r["history"]] for r in json.loads(Path(args.records).read_text())]
    rows = {}
    for name, batch in (("batched", args.max_batch), ("batch1", 1)):
        flags = ["--max_batch", str(batch), "--max_wait_ms", str(args.max_wait_ms), "--threads", str(args.threads)]
        flags += ["--num_beams", str(args.num_beams), "--device", args.device, "--log_level", "warning"]
        server = ServerProcess(args.checkpoint, *flags, env={"OMP_NUM_THREADS": str(args.threads)})
        try:
            rows[name] = load(server, histories, args.clients, args.requests, args.k)
        finally:
            server.stop()
        print(f"{name:8s} (--max_batch {batch}): {rows[name]}", flush=True)
    result = {
        "command": "python bench/serve.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if k != "out"),
        "machine": machine(args.device),
        **rows,
        "throughput_ratio": round(rows["batched"]["throughput_rps"] / rows["batch1"]["throughput_rps"], 2),
        "p99_ratio": round(rows["batched"]["p99_ms"] / rows["batch1"]["p99_ms"], 2),
    }
    print(f"throughput ratio (batched / batch-1): {result['throughput_ratio']}x; p99 ratio: {result['p99_ratio']}x")
    write_json(Path(args.out), {**provenance(), **result})


if __name__ == "__main__":
    main()
