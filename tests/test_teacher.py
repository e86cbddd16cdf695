"""The optional teacher against a stub OpenAI-compatible server on 127.0.0.1 (no network)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from itdr_pipeline import teacher
from itdr_pipeline.config import Settings
from itdr_pipeline.errors import ItdrError
from itdr_pipeline.filters import FilterConfig, apply_filters
from itdr_pipeline.ingest import ingest_dataset
from itdr_pipeline.registry import get_dataset
from itdr_pipeline.tasks.base import RenderSettings
from itdr_pipeline.tasks.base import build_sequence
from itdr_pipeline.tasks.instructrec import GENERATOR, render_psearch
from itdr_pipeline.tasks.ir import render_ir
from itdr_pipeline.tasks.tui import render_tui
from itdr_pipeline.warehouse import connect
from conftest import shared_dataset

KEY_ENV = "ITDR_TEST_TEACHER_KEY"


class Stub:
    """Records each request; answers `Rewritten <n>` (or the status code it is told to)."""

    def __init__(self, status: int = 200, answer: str | None = None):
        self.requests: list[dict] = []
        self.status, self.answer = status, answer
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                payload = {"choices": [{"message": {"role": "assistant",
                                                    "content": f"  {stub.answer or 'Rewritten'} {len(stub.requests)}\n"}}]}
                data = json.dumps(payload if stub.status == 200 else {"error": "boom"}).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Stub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ml100k_con(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("teacher"), raw_dir=shared_dataset("ml-100k").parent).ensure()
    with connect(settings.warehouse) as con:
        ingest_dataset(con, get_dataset("ml-100k"), settings)
        apply_filters(con, "ml-100k", FilterConfig())
        yield con


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(teacher, "RETRY_DELAYS_S", (0.0, 0.0))


def _settings(url: str, **kw) -> RenderSettings:
    return RenderSettings(teacher_base_url=url, teacher_model="stub-model", teacher_api_key_env=KEY_ENV, **kw)


def test_rewrites_first_records_and_caches(ml100k_con, monkeypatch):
    con = ml100k_con
    monkeypatch.setenv(KEY_ENV, "sk-test")
    spec = get_dataset("ml-100k")
    grounded = render_tui(con, spec, "temporal", RenderSettings()).to_pylist()
    with Stub() as stub:
        rows = render_tui(con, spec, "temporal", _settings(stub.url, teacher_max_records=2)).to_pylist()
        assert len(stub.requests) == 2
        first = stub.requests[0]
        assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test"
        body = first["body"]
        assert (body["model"], body["temperature"], body["seed"]) == ("stub-model", 0, 42)
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        user = body["messages"][1]["content"]
        assert rows[0]["instruction"] in user and rows[0]["input"] in user
        assert user.endswith("Facts from the data:\n" + grounded[0]["output"])
        assert [r["output"] for r in rows[:3]] == ["Rewritten 1", "Rewritten 2", grounded[2]["output"]]
        assert [r["reference_generator"] for r in rows[:3]] == ["teacher:stub-model", "teacher:stub-model", "grounded-v1"]
        again = render_tui(con, spec, "temporal", _settings(stub.url, teacher_max_records=2)).to_pylist()
        assert len(stub.requests) == 2 and again == rows  # answered from teacher_cache
    assert con.execute("SELECT count(*), min(model) FROM teacher_cache").fetchall() == [(2, "stub-model")]


def test_descriptions_ablation_still_sends_the_task(ml100k_con, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    described = render_ir(ml100k_con, get_dataset("ml-100k"), "temporal", RenderSettings()).to_pylist()
    with Stub() as stub:
        rows = render_ir(ml100k_con, get_dataset("ml-100k"), "temporal",
                         _settings(stub.url + "/", teacher_max_records=1, descriptions=False)).to_pylist()
        assert rows[0]["instruction"] == "" and rows[0]["output"] == "Rewritten 1"
        assert stub.requests[0]["auth"] is None  # no key in the environment: no header
        assert stub.requests[0]["path"] == "/v1/chat/completions"
        assert stub.requests[0]["body"]["messages"][1]["content"].startswith(f"Task:\n{described[0]['instruction']}\n")


def test_server_error_is_reported_with_the_url(ml100k_con):
    with Stub(status=500) as stub:
        with pytest.raises(ItdrError) as error:
            render_tui(ml100k_con, get_dataset("ml-100k"), "temporal", _settings(stub.url, teacher_max_records=1))
        assert len(stub.requests) == 3  # one try and two retries
    message = str(error.value)
    assert f"{stub.url}/chat/completions" in message and "after 3 attempts" in message and "HTTP 500" in message


def test_connection_refused_is_reported_with_the_url(ml100k_con):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(ItdrError, match=rf"teacher request to {url}/chat/completions failed after 3 attempts: "
                                        r"ConnectionError"):
        render_tui(ml100k_con, get_dataset("ml-100k"), "temporal", _settings(url, teacher_max_records=1))


def test_needs_a_model():
    with pytest.raises(ItdrError, match="teacher_base_url and teacher_model"):
        teacher.Teacher(None, RenderSettings(teacher_base_url="http://127.0.0.1:1/v1"))


def test_instructrec_intentions_and_preferences_rewritten_never_naming_the_target(ml100k_con):
    con, spec = ml100k_con, get_dataset("ml-100k")
    seq = build_sequence(con, "ml-100k", rated=False, name="teacher_seq")
    grounded = render_psearch(con, spec, "temporal", RenderSettings(), seq).to_pylist()
    with Stub() as stub:
        rows = render_psearch(con, spec, "temporal", _settings(stub.url, teacher_max_records=3), seq).to_pylist()
        # One request per text a record shows: its intention, and its summary on a P2 template.
        shown = [json.loads(r["answer_json"]) for r in grounded[:3]]
        texts = [t for a in shown for t in (a["intention"], a["preference"]) if t]
        assert len(stub.requests) == len(texts)
        assert [m["body"]["messages"][1]["content"].rsplit("\n", 1)[1] for m in stub.requests] == texts
        for before, after in zip(grounded[:3], rows[:3]):
            answer = json.loads(after["answer_json"])
            assert answer["intention"].startswith("Rewritten ") and answer["intention"] in after["instruction"] + after["input"]
            assert after["reference_generator"] == answer["generator"] == "teacher:stub-model"
            assert after["candidate_item_ids"] == before["candidate_item_ids"] and after["output"] == before["output"]
        assert rows[3:] == grounded[3:] and rows[3]["reference_generator"] == GENERATOR
        calls = len(stub.requests)
        assert render_psearch(con, spec, "temporal", _settings(stub.url, teacher_max_records=3), seq).to_pylist() == rows
        assert len(stub.requests) == calls  # answered from teacher_cache
    # A rewrite that names the target is not used: the grounded text stays, and it is counted.
    title = con.execute("SELECT title FROM items WHERE dataset = 'ml-100k' AND item_id = ?",
                        [grounded[0]["target_item_id"]]).fetchone()[0]
    with Stub(answer=f"I want {title}, exactly") as stub:
        table = render_psearch(con, spec, "temporal", _settings(stub.url, teacher_max_records=1, seed=42), seq)
    named = table.to_pylist()
    assert named[0]["input"] == grounded[0]["input"] and named[0]["reference_generator"] == GENERATOR
    assert json.loads(table.schema.metadata[b"dropped"])["teacher_named_target"] == 1
