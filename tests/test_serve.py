"""`lmm-vqa serve`: the real server on a free localhost port with a tiny checkpoint, talked to over HTTP."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lmm_vqa.checkpoints import load_scorer
from lmm_vqa.serve import Busy, ModelWorker, ServeSettings, create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, seconds: float = 120, headers=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", headers=headers, timeout=2).status_code in (200, 401):
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


@pytest.fixture(scope="module")
def server(checkpoint, videos, tmp_path_factory):
    """A server in this process (uvicorn in a thread): its worker can be reached by the tests."""
    import uvicorn

    allowed = tmp_path_factory.mktemp("allowed")
    shutil.copy(videos["h264"], allowed / "inside.mp4")
    scorer = load_scorer(checkpoint("llava"), device="cpu", frames="fps:5", max_frames=3)
    settings = ServeSettings(max_upload_mb=1, max_seconds=30, queue_size=16, timeout_s=120, allow_dirs=(str(allowed),))
    app = create_app(scorer, settings, {"model": "tiny llava"})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    yield {"url": url, "scorer": scorer, "app": app, "allowed": allowed}
    server.should_exit = True
    thread.join(10)


def upload(path, name=None, kind="video/mp4"):
    return {"file": (name or path.name, path.read_bytes(), kind)}


def test_one_upload_gets_the_cli_row(server, videos):
    r = httpx.post(server["url"] + "/api/score", files=upload(videos["h264"]), timeout=60)
    assert r.status_code == 200, r.text
    row = r.json()
    expected = server["scorer"].score_video(videos["h264"])
    assert row["path"] == "h264.mp4" and row["status"] == "ok"
    assert {k for k in expected if k != "seconds"} <= set(row)  # the CLI row's fields
    assert row["score"] == pytest.approx(expected["score"], abs=1e-6)
    assert row["frame_scores"] == pytest.approx(expected["frame_scores"], abs=1e-6)


def test_the_pages_request_decodes_its_upload_once(server, videos, monkeypatch):
    """thumbnails=true (the page): the frames decoded for the thumbnails and the follow-up chat are the ones the
    model scores; the file is decoded once, and a file that cannot be decoded still gets the model's error row."""
    scorer = server["scorer"]
    loads = []
    real_load = scorer.load
    monkeypatch.setattr(scorer, "load", lambda path: loads.append(path) or real_load(path))
    r = httpx.post(server["url"] + "/api/score", files=upload(videos["h264"]), data={"thumbnails": "true"}, timeout=60)
    assert r.status_code == 200, r.text
    row = r.json()
    assert len(loads) == 1 and len(row["thumbnails"]) == row["num_frames"] == 3 and row["chat_id"]
    assert row["score"] == pytest.approx(scorer.score_video(videos["h264"])["score"], abs=1e-6)
    for stream in ("false", "true"):
        bad = httpx.post(server["url"] + "/api/score", files=upload(videos["not_video"]),
                         data={"thumbnails": "true", "stream": stream}, timeout=60)
        if stream == "false":
            assert bad.status_code == 422 and "notes.mp4" in bad.json()["detail"]["error"]
        else:
            assert _events(bad)[-1][0] == "error" and _events(bad)[-1][1]["status"] == 422


def test_a_batch_keeps_its_order_and_marks_what_failed(server, videos):
    files = [("files", (p.name, p.read_bytes(), "video/mp4")) for p in (videos["h264"], videos["not_video"])]
    files.append(("files", ("still.png", videos["image"].read_bytes(), "image/png")))
    r = httpx.post(server["url"] + "/api/score/batch", files=files, timeout=60)
    assert r.status_code == 200, r.text
    rows = r.json()
    assert [x["path"] for x in rows] == ["h264.mp4", "notes.mp4", "still.png"]
    assert [x["status"] for x in rows] == ["ok", "error", "ok"]
    assert "not a decodable video: notes.mp4" in rows[1]["error"]  # the client's name, no server folder


def test_requests_arriving_together_are_batched_and_none_is_lost(server, videos):
    names = [f"clip{i:02d}.mp4" for i in range(12)]
    before = httpx.get(server["url"] + "/api/health").json()

    def post(name):
        return httpx.post(server["url"] + "/api/score", files=upload(videos["h264"], name), timeout=120)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(post, names))
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["path"] for r in responses] == names  # each answer is its own request's
    after = httpx.get(server["url"] + "/api/health").json()
    assert after["requests"] - before["requests"] == 12
    assert after["batches"] - before["batches"] < 12, "concurrent requests shared forward passes"


def _events(response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        kind = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), "message")
        data = next(line[6:] for line in block.splitlines() if line.startswith("data: "))
        out.append((kind, json.loads(data)))
    return out


def test_explain_streams_server_sent_events_and_follow_ups_keep_the_video(server, videos):
    r = httpx.post(server["url"] + "/api/explain", files=upload(videos["h264"]), data={"question": "Is it blurry?"},
                   timeout=120)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r)
    assert events[-1][0] == "done" and all(kind == "message" for kind, _ in events[:-1]) and len(events) > 1
    chat_id = events[-1][1]["chat_id"]
    again = _events(httpx.post(server["url"] + "/api/explain", data={"chat_id": chat_id, "question": "And noise?"},
                               timeout=120))
    assert again[-1] == ("done", {"chat_id": chat_id})
    assert httpx.post(server["url"] + "/api/explain", data={"chat_id": "nope"}).status_code == 404


def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(server, videos, tmp_path):
    url = server["url"]
    empty = httpx.post(url + "/api/score", files={"file": ("e.mp4", b"", "video/mp4")})
    assert empty.status_code == 400 and "e.mp4: empty file" in empty.json()["detail"]
    junk = httpx.post(url + "/api/score", files=upload(videos["not_video"]))
    assert junk.status_code == 422 and "not a decodable video: notes.mp4" in junk.json()["detail"]["error"]
    assert "lmm-vqa-serve" not in junk.text  # no server folders in answers
    truncated = httpx.post(url + "/api/score", files=upload(videos["truncated"]), timeout=60)
    assert truncated.status_code == 200 and "decoded" in truncated.json()["warning"]
    text = httpx.post(url + "/api/score", files={"file": ("a.txt", b"hello", "text/plain")})
    assert text.status_code == 415 and "is not a video or an image" in text.json()["detail"]
    missing = httpx.post(url + "/api/score", data={"thumbnails": "true"})
    assert missing.status_code == 422 and "file" in missing.text
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (2 * 2 ** 20))  # over the 1 MiB limit
    assert httpx.post(url + "/api/score", files=upload(big)).status_code == 413
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:  # a huge declared size
        sock.sendall(b"POST /api/score HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 99999999999\r\n\r\n--b\r\n")
        answer = b""
        while chunk := sock.recv(4096):  # the server answers and closes, without reading the body
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "the limit is" in answer
    for path in ("../../../etc/passwd", str(server["allowed"] / ".." / "outside.mp4"), "/etc/passwd"):
        r = httpx.post(url + "/api/score/path", json={"path": path})
        assert r.status_code == 403 and "--allow-dir" in r.json()["detail"]
    inside = httpx.post(url + "/api/score/path", json={"path": str(server["allowed"] / "inside.mp4")}, timeout=60)
    assert inside.status_code == 200 and inside.json()["status"] == "ok"
    assert httpx.get(url + "/api/health").json()["status"] == "ok"


def test_a_full_queue_answers_503_with_retry_after(server, videos):
    worker: ModelWorker = server["app"].state.worker
    release = threading.Event()
    busy = worker.call(release.wait)  # the model's thread is busy until released
    while not busy.running():
        time.sleep(0.01)
    try:
        waiting = [worker.call(lambda: None) for _ in range(worker.jobs.maxsize)]
        with pytest.raises(Busy):
            worker.call(lambda: None)
        r = httpx.post(server["url"] + "/api/score", files=upload(videos["h264"]))
        assert r.status_code == 503 and r.headers["retry-after"] == "5" and "busy" in r.json()["detail"]
    finally:
        release.set()
    for future in waiting:
        future.result(30)
    assert httpx.post(server["url"] + "/api/score", files=upload(videos["h264"]), timeout=60).status_code == 200


def test_a_streamed_score_reports_its_progress_then_the_row(server, videos):
    """stream=true: `progress` events (queued with the jobs ahead of it, decoding, then the keyframes scored
    out of the video's keyframes) and the row; behind a busy model the upload says how many wait before it."""
    worker: ModelWorker = server["app"].state.worker
    release = threading.Event()
    busy = worker.call(release.wait)
    while not busy.running():
        time.sleep(0.01)
    ahead = worker.call(lambda: None)  # one more job waiting
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, server["url"] + "/api/score", files=upload(videos["h264"]),
                              data={"stream": "true"}, timeout=120)
        time.sleep(1.0)
        release.set()
        r = pending.result()
    ahead.result(30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r)
    assert [k for k, _ in events][-1] == "result" and all(k == "progress" for k, _ in events[:-1])
    assert events[0][1] == {"stage": "queued", "ahead": 1} and events[1][1] == {"stage": "decoding"}
    row = events[-1][1]
    assert row["path"] == "h264.mp4" and row["status"] == "ok"
    scored = [(e["done"], e["total"]) for _, e in events[2:-1]]
    assert all(e["stage"] == "scoring" for _, e in events[2:-1])
    assert scored[-1] == (row["num_frames"], row["num_frames"])  # every keyframe, counted as batches finish
    assert [d for d, _ in scored] == sorted(set(d for d, _ in scored))
    bad = _events(httpx.post(server["url"] + "/api/score", files=upload(videos["not_video"]), data={"stream": "true"},
                             timeout=60))
    assert bad[-1][0] == "error" and bad[-1][1]["status"] == 422 and "notes.mp4" in bad[-1][1]["detail"]["error"]


def test_the_model_and_the_schema_describe_themselves(server):
    model = httpx.get(server["url"] + "/api/model").json()
    assert model["model"] == "tiny llava" and model["levels"] == ["bad", "poor", "fair", "good", "excellent"]
    schema = httpx.get(server["url"] + "/openapi.json").json()
    assert {"/api/score", "/api/score/batch", "/api/score/path", "/api/explain", "/api/health"} <= set(schema["paths"])
    page = httpx.get(server["url"] + "/")
    assert page.status_code == 200 and "<script>" in page.text and "http" not in page.text.split("<script>")[0].lower()


def test_the_cli_serves_with_a_token(checkpoint, videos):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lmm_vqa.cli", "serve", "--model", str(checkpoint("llava")),
                             "--port", str(port), "--token", "s3cret", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, 300)
        assert httpx.get(url + "/api/health").status_code == 401
        ok = httpx.post(url + "/api/score", files=upload(videos["image"], kind="image/png"),
                        headers={"Authorization": "Bearer s3cret"}, timeout=60)
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_page_in_a_real_browser(server, videos, tmp_path):
    """Headless Chromium (Debian's, driven by Selenium) opens the page, uploads a video, and finds the
    score, a thumbnail and a plotted point per keyframe, and a streamed explanation."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("needs Debian's chromium and chromium-driver (installed by .ci/run)")
    import os

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1500"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    expected = server["scorer"].score_video(videos["h264"])
    try:
        browser.get(server["url"] + "/")
        browser.find_element(By.ID, "file").send_keys(str(videos["h264"]))
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: b.find_element(By.ID, "score").text)
        assert float(browser.find_element(By.ID, "score").text) == pytest.approx(expected["score"], abs=1e-3)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#frames img")) == expected["num_frames"]
        points = browser.find_element(By.ID, "curve").get_attribute("points").split()
        assert len(points) == expected["num_frames"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#levels .bar")) == 5
        browser.find_element(By.ID, "why").click()
        wait.until(lambda b: b.find_element(By.ID, "answer").text and b.find_element(By.ID, "why").is_enabled())
        assert "[error]" not in browser.find_element(By.ID, "answer").text
        browser.save_screenshot(str(tmp_path / "page.png"))
        if os.environ.get("LMM_VQA_SCREENSHOT"):  # how docs/serve.png was made
            shutil.copy(tmp_path / "page.png", os.environ["LMM_VQA_SCREENSHOT"])
    finally:
        browser.quit()
