"""grec serve, as a real process on a free loopback port: answers, refusals, reload under load, SIGHUP,
graceful shutdown, and the page at / in headless Chromium."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import ROOT, built_once, read_jsonl

from grec.records import RecordsConfig, build_records
from grec.serve.client import ServerProcess
from grec.train import TrainConfig, train

TOKEN = "test-token"


class Server(ServerProcess):
    """``grec serve`` in a child process with the admin token set (or not), one torch thread."""

    def __init__(self, checkpoint: Path, log: Path, *flags: str, token: str | None = TOKEN):
        env = {"OMP_NUM_THREADS": "1", "GREC_ADMIN_TOKEN": token or ""}
        super().__init__(checkpoint, *flags, log=log, env=env)
        self.call = self.client.call

    def recommend(self, history, **fields):
        return self.call("POST", "/recommend", {"history": history, **fields})


@pytest.fixture(scope="module")
def checkpoints(ml100k, ml100k_sid, tiny_llama_dir, tmp_path_factory):
    """Two fully fine-tuned tiny checkpoints (seeds 0 and 1) of one sidlm-style run, and its test records."""
    return built_once(tmp_path_factory, "serve", lambda folder: _train(folder, ml100k, ml100k_sid, tiny_llama_dir))


def _train(folder, ml100k, ml100k_sid, tiny_llama_dir):
    build_records(
        RecordsConfig(
            data=str(ml100k), sid=str(ml100k_sid), out=str(folder / "records"), max_history=5, sample=32, seed=0
        )
    )
    for seed in (0, 1):
        train(
            TrainConfig(
                base_model=str(tiny_llama_dir),
                train_data_path=[str(folder / "records" / "train.json")],
                sid=str(ml100k_sid),
                output_dir=str(folder / f"run{seed}"),
                batch_size=16,
                micro_batch_size=16,
                num_epochs=1,
                finetune="full",
                learning_rate=3e-3,
                seed=seed,
            )
        )


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "serve.log"  # this worker's own: the checkpoints are shared
    flags = ("--max_batch", "8", "--max_wait_ms", "50", "--reload_root", str(checkpoints), "--body_timeout_s", "2")
    running = Server(checkpoints / "run0" / "last", log, *flags)
    yield running
    running.stop()


def histories(checkpoints, n=8):
    return [r["history"] for r in json.loads((checkpoints / "records" / "test.json").read_text())[:n]]


def test_recommend_returns_what_grec_infer_ranks_batched_or_not(server, checkpoints, tmp_path):
    from grec.infer import InferConfig, infer

    out = tmp_path / "infer.jsonl"
    infer(
        InferConfig(
            checkpoint=str(checkpoints / "run0" / "last"),
            test_data_path=str(checkpoints / "records" / "test.json"),
            result_json_data=str(out),
            num_beams=20,
            batch_size=4,
            sample=8,
            exclude_history=True,
        )
    )
    expected = read_jsonl(out)
    with ThreadPoolExecutor(8) as pool:  # together: the worker ranks them in shared beam searches
        answers = list(pool.map(lambda r: server.recommend(r["history"], k=10, user_id=r["user_id"]), expected))
    for record, (status, body) in zip(expected, answers):
        assert status == 200, body
        assert [i["item_id"] for i in body["items"]] == record["predict"][:10]
        assert [i["score"] for i in body["items"]] == pytest.approx(record["predict_scores"][:10], abs=1e-4)
        assert [i["rank"] for i in body["items"]] == list(range(1, 11)) and body["user_id"] == record["user_id"]
        assert body["model_version"].startswith("last-") and len(body["request_id"]) == 16
    # a smaller k is the head of the same ranking; exclude leaves items out; titles come from the catalog
    status, three = server.recommend(expected[0]["history"], k=3, exclude=[expected[0]["predict"][0]])
    assert [i["item_id"] for i in three["items"]] == expected[0]["predict"][1:4]
    assert server.call("GET", f"/items/{three['items'][0]['item_id']}")[1]["title"] == three["items"][0]["title"]
    status, found = server.call("GET", "/items?q=star%20wars")
    assert status == 200 and {"item_id": "50", "title": "Star Wars (1977)"} in found["items"]
    metrics = server.call("GET", "/metrics")[1]
    batches = int(next(line.split()[1] for line in metrics.splitlines() if line.startswith("grec_batch_size_count")))
    assert 'grec_requests_total{route="/recommend",status="200"}' in metrics and batches < 9, metrics


def test_a_failing_batch_fails_only_its_own_requests(checkpoints):
    """In process: the model worker of the server, its ranking made to fail for one batch only."""
    from grec.base.queries import RequestError
    from grec.serve.batcher import Batcher, Query
    from grec.serve.model import LoadedModel

    model = LoadedModel(checkpoints / "run0" / "last")
    recommend = model.recommender.recommend

    def flaky(histories, **kwargs):
        if any("50" in h for h in histories):
            raise RuntimeError("out of memory")
        return recommend(histories, **kwargs)

    model.recommender.recommend = flaky
    batcher = Batcher(model, max_batch=4, max_wait_ms=200)
    try:
        doomed = [batcher.submit(Query(["50", str(n)], 5, exclude_history=False)) for n in (1, 2)]
        bad = batcher.submit(Query(["no-such-item"], 5, exclude_history=False))
        for future in doomed:
            with pytest.raises(RuntimeError, match="out of memory"):
                future.result(timeout=60)
        with pytest.raises(RequestError, match=r"history\[0\]: unknown item id"):
            bad.result(timeout=60)
        fine = [batcher.submit(Query([str(n)], 5)) for n in (1, 2, 3)]
        for n, future in zip((1, 2, 3), fine):  # the next batch ranks as the Recommender does
            items, version = future.result(timeout=60)
            assert [i.item_id for i in items] == [i.item_id for i in recommend([str(n)], k=5)]
            assert version == model.version
    finally:
        batcher.close()
    assert not batcher.worker.is_alive()


def test_a_checkpoint_overwritten_in_place_changes_nothing_until_reload(checkpoints, tmp_path):
    """In process: the files under a loaded model are copied over and cut short; it answers as before."""
    from grec.serve.model import LoadedModel

    served = tmp_path / "served"
    shutil.copytree(checkpoints / "run0" / "last", served)
    model = LoadedModel(served)
    asked = histories(checkpoints, 4)
    before = [[r.item_id for r in row] for row in model.recommender.recommend(asked, k=5)]
    weights = served / "model.safetensors"
    with open(weights, "r+b") as handle:  # another run's weights written over the same file (same inode)
        handle.write((checkpoints / "run1" / "last" / "model.safetensors").read_bytes())
    assert [[r.item_id for r in row] for row in model.recommender.recommend(asked, k=5)] == before
    with open(weights, "r+b") as handle:
        handle.truncate(1000)  # a shorter file: a mapped model dies of SIGBUS at its next page fault
    assert [[r.item_id for r in row] for row in model.recommender.recommend(asked, k=5)] == before
    shutil.copy(checkpoints / "run1" / "last" / "model.safetensors", weights)
    reloaded = LoadedModel(served)
    assert (
        reloaded.version
        != model.version
        == LoadedModel(checkpoints / "run0" / "last").version.replace("last", "served")
    )
    assert reloaded.version == LoadedModel(checkpoints / "run1" / "last").version.replace("last", "served")


BAD = [
    (b'{"history": ["50"', 400, "body"),
    (b"[1, 2]", 400, "body"),
    (b'{"history": ["50"], "top_k": 3}', 400, "top_k"),
    (b'{"k": 3}', 400, "history"),
    (b'{"history": []}', 400, "history"),
    (b'{"history": "50"}', 400, "history"),
    (b'{"history": ["50", true]}', 400, "history[1]"),
    (b'{"history": ["50", "no-such-item"]}', 400, "history[1]"),
    (b'{"history": ["<a_12><b_3><c_7>"]}', 400, "history[0]"),  # SID-looking text is an unknown id, never tokens
    (b'{"history": ["50"], "k": 0}', 400, "k"),
    (b'{"history": ["50"], "k": 101}', 400, "k"),
    (b'{"history": ["50"], "k": "10"}', 400, "k"),
    (b'{"history": ["50"], "exclude": ["<a_1>"]}', 400, "exclude[0]"),
    (b'{"history": ["50"], "exclude_history": "yes"}', 400, "exclude_history"),
    (b'{"history": ["50"], "user_id": {"a": 1}}', 400, "user_id"),
    (b'{"history": ["50"], "pad": "' + b"x" * 70000 + b'"}', 413, "body"),
    (b"\xff\xfe not json", 400, "body"),
]


def test_every_bad_request_gets_a_4xx_naming_the_field_and_the_server_stays_up(server):
    for raw, status, field in BAD:
        got, body = server.call("POST", "/recommend", raw=raw)
        assert (got, body["field"]) == (status, field), (raw[:60], body)
        assert body["error"] and body["request_id"]
    assert server.call("GET", "/items/no-such-item")[0] == 404
    assert server.call("GET", "/items?q=star&limit=0")[1]["field"] == "limit"
    assert server.call("GET", "/no/such/route")[0] == 404 and server.call("GET", "/recommend")[0] == 405
    assert server.call("GET", "/items?q=%3Ca_12%3E")[1] == {"items": []}
    assert server.call("POST", "/admin/reload")[0] == 401  # the token is required
    assert server.call("POST", "/admin/reload", headers={"authorization": "Bearer wrong"})[0] == 401
    assert server.call("GET", "/health")[1]["status"] == "ready" and server.recommend(["50"])[0] == 200
    metrics = server.call("GET", "/metrics")[1]
    assert 'grec_errors_total{kind="bad_request"}' in metrics and 'grec_errors_total{kind="too_large"} 1' in metrics


def test_server_edges_answer_4xx_with_a_request_id_and_keep_serving(server, checkpoints, tmp_path):
    import socket

    status, body = server.call("GET", "/items?q=star&limit=%C2%B2")  # limit=², a digit Python cannot int()
    assert (status, body["field"]) == (400, "limit")
    status, body = server.call("POST", "/recommend", raw=b'{"history": ' + b"[" * 30000 + b"]" * 30000 + b"}")
    assert (status, body["field"]) == (400, "body") and "nested too deeply" in body["error"]
    for method, path, code in (("GET", "/nowhere", 404), ("GET", "/recommend", 405)):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request(method, path, headers={"x-request-id": "edge-1"})
        answer = connection.getresponse()
        assert answer.status == code and json.loads(answer.read())["request_id"] == "edge-1"
        assert answer.getheader("x-request-id") == "edge-1"
        assert code == 404 or answer.getheader("allow") == "POST"
    auth = {"authorization": f"Bearer {TOKEN}"}
    outside = [server.call("POST", "/admin/reload", {"checkpoint": path}, auth) for path in ("/etc", "/no/such")]
    assert outside[0][0] == outside[1][0] == 403 and outside[0][1]["error"] == outside[1][1]["error"]
    assert "--reload_root" in outside[0][1]["error"]
    head = b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    gone = socket.create_connection(("127.0.0.1", server.port))
    gone.sendall(head + b'{"history"')
    gone.close()  # went away mid-body
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    stalled.sendall(head + b'{"history"')  # and never sends the rest
    started = time.time()
    reply = stalled.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408") and time.time() - started < 10
    assert stalled.recv(4096) == b""  # the connection is closed
    assert server.recommend(["50"])[0] == 200
    counts = server.call("GET", "/metrics")[1]
    assert 'kind="internal"' not in counts and 'grec_errors_total{kind="client_closed"} 1' in counts, counts
    assert "Traceback" not in server.log.read_text()


def test_a_reload_signal_while_loading_does_not_end_the_server(checkpoints, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "grec", "serve", "--checkpoint", str(checkpoints / "run0" / "last"), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = process.stdout.readline().split()[2].rstrip("/")
        process.send_signal(signal.SIGHUP)  # the model is still loading
        from grec.serve.client import Client

        deadline = time.time() + 120
        while True:
            assert process.poll() is None, "grec serve died of a SIGHUP sent while loading"
            try:
                if Client(url).call("GET", "/health")[0] == 200:
                    break
            except ConnectionError:
                pass
            assert time.time() < deadline
            time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(timeout=60)


SAME = [  # the Python API's arguments, sent as they are to the server
    {"history": []},
    {"history": "50"},
    {"history": ["50", True]},
    {"history": ["50", "no-such-item"]},
    {"history": ["50"], "k": 2.5},
    {"history": ["50"], "k": "5"},
    {"history": ["50"], "k": True},
    {"history": ["50"], "k": 0},
    {"history": ["50"], "exclude": ["no-such-item"]},
    {"history": ["50"], "exclude": "50"},
    {"history": ["50"], "exclude_history": "yes"},
]


def test_the_python_api_and_the_server_refuse_a_bad_request_alike(server, checkpoints):
    from grec import Recommender
    from grec.base.queries import RequestError

    api = Recommender.from_pretrained(checkpoints / "run0" / "last")
    for fields in SAME:
        status, body = server.recommend(**fields)
        with pytest.raises(RequestError) as refused:
            api.recommend(**fields)
        assert (status, body["field"], body["error"]) == (400, refused.value.field, str(refused.value)), fields
    good = {"history": ["50", "172"], "k": 5, "exclude": ["181"]}
    served = [item["item_id"] for item in server.recommend(**good)[1]["items"]]
    assert served == [r.item_id for r in api.recommend(**good)] and "181" not in served


def test_reload_under_concurrent_requests_fails_none_and_mixes_no_checkpoints(server, checkpoints):
    from grec import Recommender

    users = histories(checkpoints)
    expected = {}
    for name in ("run0", "run1"):
        recommender = Recommender.from_pretrained(checkpoints / name / "last", num_beams=20)
        expected[name] = [[r.item_id for r in items] for items in recommender.recommend(users, k=5)]
    assert expected["run0"] != expected["run1"]
    auth = {"authorization": f"Bearer {TOKEN}"}
    before = server.call("GET", "/health")[1]["model_version"]
    bad = server.call("POST", "/admin/reload", {"checkpoint": str(checkpoints / "nowhere")}, auth)
    assert bad[0] == 400 and bad[1]["field"] == "checkpoint"
    assert server.call("GET", "/health")[1]["model_version"] == before  # a failed reload changes nothing

    def ask(n):
        status, body = server.recommend(users[n % len(users)], k=5)
        return n % len(users), status, body

    with ThreadPoolExecutor(6) as pool:
        early = [pool.submit(ask, n) for n in range(24)]
        time.sleep(0.2)
        reloaded = server.call("POST", "/admin/reload", {"checkpoint": str(checkpoints / "run1" / "last")}, auth)
        late = [pool.submit(ask, n) for n in range(24, 40)]
        answers = [f.result() for f in early + late]
    assert reloaded[0] == 200 and reloaded[1]["previous_version"] == before, reloaded
    versions = {before: "run0", reloaded[1]["model_version"]: "run1"}
    for n, status, body in answers:
        assert status == 200, body
        assert [i["item_id"] for i in body["items"]] == expected[versions[body["model_version"]]][n]
    assert {versions[b["model_version"]] for _, _, b in answers[24:]} == {"run1"}  # sent after the swap


def test_sighup_reloads_and_sigterm_finishes_requests_in_flight(checkpoints, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(checkpoints / "run0" / "last", served)
    server = Server(served, tmp_path / "log", "--max_batch", "1", "--num_beams", "50")
    try:
        first = server.call("GET", "/health")[1]["model_version"]
        shutil.rmtree(served)
        shutil.copytree(checkpoints / "run1" / "last", served)  # a new checkpoint in the same folder
        server.process.send_signal(signal.SIGHUP)
        deadline = time.time() + 60
        while server.call("GET", "/health")[1]["model_version"] == first:
            assert time.time() < deadline, server.log.read_text()
            time.sleep(0.2)
        users = histories(checkpoints, 8) * 4
        sent, answered = threading.Semaphore(0), threading.Event()

        def ask(history):  # send, say so, then wait for the answer
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            connection.request("POST", "/recommend", json.dumps({"history": history, "k": 50}))
            sent.release()
            status = connection.getresponse().status
            answered.set()
            return status, time.time()

        with ThreadPoolExecutor(len(users)) as pool:  # one at a time (--max_batch 1): a queue to drain
            pending = [pool.submit(ask, h) for h in users]
            for _ in users:
                assert sent.acquire(timeout=60)
            assert answered.wait(timeout=60)  # the server is working through the queue
            stopped = time.time()
            server.process.send_signal(signal.SIGTERM)
            answers = [f.result() for f in pending]
        assert server.process.wait(timeout=60) == -signal.SIGTERM  # uvicorn re-raises the signal once drained
        assert [status for status, _ in answers] == [200] * len(users), answers
        assert sum(done > stopped for _, done in answers) > len(users) // 2  # most were queued when the stop came
    finally:
        server.stop()


def test_two_replicas_behind_a_spreading_client_and_reload_refused_without_a_token(checkpoints, tmp_path):
    """docs/serve.md's scale-out example: two processes, two ports, one client spreading requests over both
    (and moving on when one is gone). Neither has GREC_ADMIN_TOKEN set, so neither reloads."""
    from grec.serve.client import Client

    origin = ["--cors_origin", "http://example.test"]
    replicas = [
        Server(checkpoints / "run0" / "last", tmp_path / f"log{n}", *flags, token=None)
        for n, flags in enumerate([origin, []])
    ]
    try:
        for replica, allowed in zip(replicas, ["http://example.test", None]):  # CORS: off unless one origin is named
            connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=60)
            connection.request("GET", "/health", headers={"origin": "http://example.test"})
            response = connection.getresponse()
            response.read()
            assert response.getheader("access-control-allow-origin") == allowed
            connection.close()
        client = Client([r.url for r in replicas])
        users = histories(checkpoints, 6)
        answers = [client.recommend(h, k=5)["items"] for h in users]
        for replica in replicas:
            metrics = replica.call("GET", "/metrics")[1]
            assert 'grec_requests_total{route="/recommend",status="200"} 3' in metrics  # three each, in turn
        status, body = replicas[0].call("POST", "/admin/reload", headers={"authorization": "Bearer anything"})
        assert status == 403 and "GREC_ADMIN_TOKEN" in body["error"]
        assert replicas[1].stop() == -signal.SIGTERM
        assert [client.recommend(h, k=5)["items"] for h in users] == answers  # the other replica answers all
    finally:
        for replica in replicas:
            replica.stop()


def test_the_page_builds_a_history_and_shows_recommendations_in_chromium(server):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    artifacts = Path(os.environ.get("GREC_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{server.port}/?history=50,172,181"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    expected = [i["item_id"] for i in server.recommend(["50", "172", "181"])[1]["items"]]
    assert "Return of the Jedi (1983)  [181]" in dom  # the history the page built from the ids (two spaces)
    assert all(f"<td>{item}</td>" in dom for item in expected), dom[-2000:]
    shot = artifacts / "serve_page.png"
    subprocess.run([*flags, "--window-size=1100,900", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
