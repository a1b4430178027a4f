"""The crowd's retries, against a scripted HTTP server on 127.0.0.1 that fails on purpose."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from annotation.simulation import crowd
from annotation.simulation.crowd import STOP_ERRORS, STOP_NO_TASK, run_crowd
from annotation.simulation.oracles import AttributeOracle

TASK = {
    "id": 7,
    "dataset": "scripted",
    "condition": {"slug": "colour", "name": "colour", "prompt": "Which is closer in colour?"},
    "anchor": {"id": 1, "image_url": "/1.png"},
    "candidates": [{"id": 3, "image_url": "/3.png"}, {"id": 2, "image_url": "/2.png"}],
    "lease_expires_at": "2030-01-01T00:00:00Z",
}
ORACLE = AttributeOracle(
    {1: {"colour": "red"}, 2: {"colour": "red"}, 3: {"colour": "blue"}}, {"colour": "colour"}
)


class ScriptedServer:
    """Serves TASK once, then 204; answers each POST with the next status in `answer_statuses`."""

    def __init__(self, answer_statuses: list[int]):
        self.answer_statuses = list(answer_statuses)
        self.answers: list[dict] = []
        self.task_served = False
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with server.lock:
                    serve = not server.task_served
                    server.task_served = True
                if not serve:
                    self.send_response(204)
                    self.end_headers()
                    return
                body = json.dumps(TASK).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers["Content-Length"])
                with server.lock:
                    server.answers.append(json.loads(self.rfile.read(length)))
                    status = server.answer_statuses.pop(0) if server.answer_statuses else 201
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(crowd, "BACKOFF_BASE_S", 0.01)


def run_one(url: str, **options):
    return run_crowd(
        base_url=url,
        dataset_slug="scripted",
        tokens=["token-0"],
        oracle=ORACLE,
        think_time_ms=0,
        progress=False,
        **options,
    )


def test_answer_retried_with_same_client_token():
    with ScriptedServer([503, 502]) as server:
        report = run_one(server.url)
    assert report.answers == 1
    assert report.errors == 0
    assert len(server.answers) == 3
    assert len({answer["client_token"] for answer in server.answers}) == 1
    assert server.answers[0]["choice"] == 2
    assert report.annotators[0].stop_reason == STOP_NO_TASK


def test_repeated_token_reply_counts_as_stored():
    with ScriptedServer([200]) as server:
        report = run_one(server.url)
    assert report.answers == 1
    assert report.errors == 0


def test_answer_given_up_after_retries():
    with ScriptedServer([503] * 10) as server:
        report = run_one(server.url, max_retries=2, max_consecutive_errors=1)
    assert report.answers == 0
    assert report.errors == 1
    assert len(server.answers) == 3
    assert "503" in report.error_samples[0]
    assert report.annotators[0].stop_reason == STOP_ERRORS


def test_rejected_answer_not_retried():
    with ScriptedServer([400]) as server:
        report = run_one(server.url, max_consecutive_errors=1)
    assert len(server.answers) == 1
    assert report.errors == 1
    assert "HTTP 400" in report.error_samples[0]


def test_unreachable_server_reported():
    with ScriptedServer([]) as server:
        url = server.url
    report = run_one(url, max_retries=1, max_consecutive_errors=1)
    assert report.answers == 0
    assert report.errors == 1
    assert "ConnectionError" in report.error_samples[0]
