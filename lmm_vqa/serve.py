"""`lmm-vqa serve`: one process holds the model once and serves a web page and a JSON API.

- `GET /`: the page (no build step, nothing fetched from elsewhere): drop a video or image, see the score,
  the level distribution, the keyframes with their scores and a plot over time, ask why.
- `POST /api/score` (one upload, form field `file`), `POST /api/score/batch` (form fields `files`),
  `POST /api/score/path` (JSON `{"path": ...}`, only under an `--allow-dir`): result rows with the CLI's
  fields. `POST /api/explain`: the model's answer streamed as server-sent events. `GET /api/health`,
  `GET /api/model`; the OpenAPI schema at `/openapi.json`, its pages at `/docs`.

One thread runs the model. Requests wait in a bounded queue (full: 503 with Retry-After); the scoring jobs
waiting when the model frees up are scored together, their frames batched onto the device the way the
CLI batches them. Uploads are bounded in size and duration, written to a private folder and deleted as
soon as they are decoded; each request has a time limit. Bound to 127.0.0.1 unless told otherwise; with
`--token` every API call needs `Authorization: Bearer TOKEN`.
"""

import asyncio
import atexit
import base64
import io
import json
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel

PAGE = Path(__file__).resolve().parent / "static" / "index.html"
UPLOAD_TYPES = ("video/", "image/", "application/octet-stream")


@dataclass
class ServeSettings:
    max_upload_mb: float = 500.0  # per request
    max_seconds: float = 600.0  # video duration
    queue_size: int = 64  # jobs waiting for the model; more get 503
    timeout_s: float = 600.0  # per request
    batch_size: int = 8
    decode_workers: int = 2
    token: str | None = None
    allow_dirs: tuple = ()  # server-side folders /api/score/path may read
    chat_ttl_s: float = 1800.0  # how long a video's frames stay for follow-up questions
    max_chats: int = 64


class Busy(Exception):
    """The model's queue is full."""


class ModelWorker:
    """The one thread that uses the model. Jobs come from a bounded queue; every scoring job waiting when
    the thread is free is run together (`Scorer.score_paths` batches their frames across videos)."""

    def __init__(self, scorer, settings: ServeSettings):
        self.scorer, self.settings = scorer, settings
        self.jobs: queue.Queue = queue.Queue(settings.queue_size)
        self.stats = {"requests": 0, "batches": 0, "videos": 0, "errors": 0}
        self.thread = threading.Thread(target=self._run, name="lmm-vqa-model", daemon=True)
        self.thread.start()

    def _put(self, job) -> Future:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise Busy from None
        self.stats["requests"] += 1
        return job[-1]

    def score(self, paths: list[str]) -> Future:
        """A future of one row per path, in order. Its `progress` list holds, per path, None until the video is
        decoded, then (prompts scored, prompts): keyframes in frame mode."""
        future = Future()
        future.progress = [None] * len(paths)
        return self._put(("score", list(paths), future))

    def call(self, fn) -> Future:
        """Run `fn()` in the model's thread (generation, which must not overlap scoring)."""
        return self._put(("call", fn, Future()))

    def _run(self):
        while True:
            job = self.jobs.get()
            if job[0] == "call":
                self._finish(job[-1], job[1])
                continue
            group = [job]
            while True:  # every scoring job already waiting joins this batch
                try:
                    nxt = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt[0] == "call":
                    self.jobs.put(nxt)  # after this batch
                    break
                group.append(nxt)
            self._score_group(group)

    def _finish(self, future: Future, fn):
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as e:  # noqa: BLE001  (handed to the request, which answers with it)
            future.set_exception(e)

    def _score_group(self, group):
        group = [job for job in group if job[-1].set_running_or_notify_cancel()]  # running: progress can say so
        paths = [p for _, ps, _ in group for p in ps]
        owner = [(fut, i) for _, ps, fut in group for i in range(len(ps))]  # each path's request and place in it
        self.stats["batches"] += 1
        self.stats["videos"] += len(paths)

        def progress(index, done, total):
            fut, i = owner[index]
            fut.progress[i] = (done, total)

        try:
            rows = list(self.scorer.score_paths(paths, batch_size=self.settings.batch_size,
                                                num_workers=self.settings.decode_workers, progress=progress))
        except BaseException as e:  # noqa: BLE001
            for *_, fut in group:
                fut.set_exception(e)
            return
        self.stats["errors"] += sum(r["status"] != "ok" for r in rows)
        start = 0
        for _, ps, fut in group:
            fut.set_result(rows[start:start + len(ps)])
            start += len(ps)


def duration_s(path: str) -> float:
    """A video's declared duration from its header (0 for images and files that declare none)."""
    from lmm_vqa.video import IMAGE_EXTENSIONS

    if path.lower().endswith(IMAGE_EXTENSIONS):
        return 0.0
    import av

    try:
        with av.open(path) as container:
            if container.duration:
                return container.duration / 1e6
            stream = container.streams.video[0] if container.streams.video else None
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, IndexError):
        pass  # not a video: the scorer says so
    return 0.0


def thumbnails(frames: np.ndarray, width: int = 160) -> list[str]:
    """Keyframes as small JPEG data URLs, for the page."""
    from PIL import Image

    out = []
    for f in frames:
        img = Image.fromarray(f)
        img.thumbnail((width, width))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
        out.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


class TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request body larger than `limit` bytes is refused with 413 before it is read,
    when its Content-Length says so, and as soon as it passes the limit otherwise (chunked uploads)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send, f"request of {int(declared) / 2 ** 20:.1f} MiB declared; the limit is "
                                            f"{self.limit / 2 ** 20:.0f} MiB")
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise TooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except TooLarge:
            if not started:
                await self._refuse(send, f"request larger than the limit of {self.limit / 2 ** 20:.0f} MiB")

    @staticmethod
    async def _refuse(send, message: str):
        body = json.dumps({"detail": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class PathRequest(BaseModel):
    path: str


def create_app(scorer, settings: ServeSettings | None = None, model_info: dict | None = None):
    """The FastAPI app around a loaded scorer."""
    settings = settings or ServeSettings()
    worker = ModelWorker(scorer, settings)
    workdir = Path(tempfile.mkdtemp(prefix="lmm-vqa-serve-"))
    atexit.register(shutil.rmtree, workdir, True)
    chats: dict[str, tuple[float, object]] = {}  # id -> (last use, Chat)
    chats_lock = threading.Lock()
    allow = [Path(d).resolve() for d in settings.allow_dirs]
    app = FastAPI(title="lmm-vqa", version="1", summary="Video quality scores and explanations from an LMM.",
                  description=__doc__)
    app.state.worker, app.state.settings = worker, settings
    app.add_middleware(BodyLimit, limit=int(settings.max_upload_mb * 2 ** 20) + 2 ** 16)  # + the form's own bytes

    def authorised(request: Request):
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given, f"Bearer {settings.token}"):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    async def save(upload: UploadFile, folder: Path) -> Path:
        kind = (upload.content_type or "").lower()
        if not kind.startswith(UPLOAD_TYPES):
            raise HTTPException(415, f"{upload.filename or 'the upload'}: content type {kind or 'none'!r} is not a "
                                     "video or an image")
        name = Path(upload.filename or "upload").name or "upload"  # no folders from the client
        path = folder / f"{uuid.uuid4().hex[:8]}_{name}"
        limit, size = settings.max_upload_mb * 2 ** 20, 0
        with open(path, "wb") as out:
            while chunk := await upload.read(2 ** 20):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"{name}: larger than the limit of {settings.max_upload_mb:g} MiB")
                out.write(chunk)
        if size == 0:
            raise HTTPException(400, f"{name}: empty file")
        seconds = duration_s(str(path))
        if seconds > settings.max_seconds:
            raise HTTPException(413, f"{name}: {seconds:.0f} s long; the limit is {settings.max_seconds:g} s")
        return path

    async def run(future: Future):
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"not done within {settings.timeout_s:g} s") from None

    def queued(fn, *args) -> Future:
        try:
            return fn(*args)
        except Busy:
            raise HTTPException(503, "the model is busy: too many requests waiting; retry shortly",
                                headers={"Retry-After": "5"}) from None

    def remember_chat(frames: np.ndarray) -> str:
        from lmm_vqa.explain import Chat

        chat_id = uuid.uuid4().hex
        now = time.monotonic()
        with chats_lock:
            for key in [k for k, (t, _) in chats.items() if now - t > settings.chat_ttl_s]:
                del chats[key]
            while len(chats) >= settings.max_chats:
                del chats[min(chats, key=lambda k: chats[k][0])]
            chats[chat_id] = (now, Chat(scorer, frames))
        return chat_id

    def public(row: dict, name: str) -> dict:
        """The row as the client knows its file: its own name, never the server's folder."""
        server = row["path"]
        return {**row, "path": name, "error": row.get("error", "").replace(server, name)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return PAGE.read_text()

    @app.get("/api/health", dependencies=[Depends(authorised)])
    def health():
        return {"status": "ok", "queued": worker.jobs.qsize(), **worker.stats}

    @app.get("/api/model", dependencies=[Depends(authorised)])
    def model():
        from dataclasses import asdict

        return {**(model_info or {}), "settings": asdict(scorer.config), "levels": list(scorer.levels.words),
                "extra_columns": list(scorer.extra_columns),
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_seconds": settings.max_seconds,
                           "queue_size": settings.queue_size, "timeout_s": settings.timeout_s}}

    @app.post("/api/score", dependencies=[Depends(authorised)])
    async def score(file: UploadFile = File(..., description="a video or an image"),
                    thumbnails_: bool = Form(False, alias="thumbnails",
                                             description="also return the keyframes as small JPEGs and keep "
                                                         "them for questions (the page does)"),
                    stream: bool = Form(False, description="answer with server-sent events: `progress` "
                                                           "({stage: queued, ahead}, then {stage: decoding}, then "
                                                           "{stage: scoring, done, total} as keyframes are scored), "
                                                           "then `result` (the row) or `error` ({status, detail})")):
        """Score one upload: the CLI's row (score 1-5, score_01, level probabilities, per-frame scores)."""
        folder = Path(tempfile.mkdtemp(dir=workdir))
        name, decoded = file.filename, None
        try:
            path = await save(file, folder)
            name = name or path.name
            if thumbnails_:  # the page also wants the frames: decode once, here, and hand them to the model
                try:
                    decoded = await asyncio.to_thread(scorer.load, str(path))
                except ValueError:
                    pass  # the model's thread tries the file itself and answers with its error row
            ahead = worker.jobs.qsize()
            future = queued(worker.score, [(str(path), decoded) if decoded is not None else str(path)])
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

        async def finish() -> dict:
            try:
                row = public((await run(future))[0], name)
                if decoded is not None and row["status"] == "ok":
                    row["thumbnails"] = await asyncio.to_thread(thumbnails, decoded.frames)
                    row["timestamps_s"] = [round(float(t), 3) for t in decoded.timestamps_s]
                    row["chat_id"] = remember_chat(decoded.frames)
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # the upload does not outlive its request
            if row["status"] != "ok":
                raise HTTPException(422, {"error": row["error"], "row": row})
            return row

        if not stream:
            return await finish()

        async def events():
            yield f"event: progress\ndata: {json.dumps({'stage': 'queued', 'ahead': ahead})}\n\n"
            result = asyncio.ensure_future(finish())
            while not (future.running() or future.done()):
                await asyncio.sleep(0.05)
            yield f"event: progress\ndata: {json.dumps({'stage': 'decoding'})}\n\n"
            told = None
            while True:  # each change of (keyframes scored, keyframes) as the model gets through them, the last too
                finished = future.done()
                if future.progress[0] is not None and future.progress[0] != told:
                    told = future.progress[0]
                    yield f"event: progress\ndata: {json.dumps({'stage': 'scoring', 'done': told[0], 'total': told[1]})}\n\n"
                if finished:
                    break
                await asyncio.sleep(0.05)
            try:
                yield f"event: result\ndata: {json.dumps(await result)}\n\n"
            except HTTPException as e:
                yield f"event: error\ndata: {json.dumps({'status': e.status_code, 'detail': e.detail})}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/api/score/batch", dependencies=[Depends(authorised)])
    async def score_batch(files: list[UploadFile] = File(..., description="videos or images")):
        """Score several uploads: one row each, in order; a file that fails is an error row."""
        folder = Path(tempfile.mkdtemp(dir=workdir))
        try:
            paths = [await save(f, folder) for f in files]
            rows = await run(queued(worker.score, [str(p) for p in paths]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return [public(r, f.filename or p.name) for r, f, p in zip(rows, files, paths)]

    @app.post("/api/score/path", dependencies=[Depends(authorised)])
    async def score_path(body: PathRequest):
        """Score a file on the server, only under a folder the server was started with (--allow-dir)."""
        target = Path(body.path).resolve()
        if not allow or not any(target.is_relative_to(d) for d in allow):
            raise HTTPException(403, "reading files on the server is allowed only under its --allow-dir folders"
                                     if allow else "this server reads no files of its own (start it with --allow-dir)")
        if not target.is_file():
            raise HTTPException(404, f"no such file under the allowed folders: {body.path}")
        return (await run(queued(worker.score, [str(target)])))[0]

    @app.post("/api/explain", dependencies=[Depends(authorised)])
    async def explain(question: str = Form("", description="default: the shipped explain prompt"),
                      chat_id: str = Form("", description="a chat_id from /api/score (thumbnails=true): ask "
                                                          "about that video again, with the history"),
                      file: UploadFile | None = File(None, description="a video or image, when no chat_id")):
        """The model's answer about a video, streamed as server-sent events: `data: {"text": ...}` pieces,
        then `event: done` with `{"chat_id": ...}` for follow-up questions."""
        from lmm_vqa.explain import default_question

        if chat_id:
            with chats_lock:
                if chat_id not in chats:
                    raise HTTPException(404, "unknown or expired chat_id: score the video again")
                chats[chat_id] = (time.monotonic(), chats[chat_id][1])
        elif file is not None:
            folder = Path(tempfile.mkdtemp(dir=workdir))
            try:
                path = await save(file, folder)
                from lmm_vqa.video import VideoError

                try:
                    frames = (await asyncio.to_thread(scorer.load, str(path))).frames
                except VideoError as e:
                    raise HTTPException(422, str(e)) from None
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            chat_id = remember_chat(frames)
        else:
            raise HTTPException(422, "give a file or a chat_id")
        chat = chats[chat_id][1]
        pieces: queue.Queue = queue.Queue()

        def generate():
            try:
                for piece in chat.ask_stream(question or default_question()):
                    pieces.put(("text", piece))
            except Exception as e:  # noqa: BLE001  (sent to the client as an error event)
                pieces.put(("error", f"{type(e).__name__}: {e}"))
            pieces.put(("done", None))

        queued(worker.call, generate)

        async def events():
            deadline = time.monotonic() + settings.timeout_s
            while True:
                try:
                    kind, value = pieces.get_nowait()
                except queue.Empty:
                    if time.monotonic() > deadline:
                        yield f"event: error\ndata: {json.dumps({'error': 'timed out'})}\n\n"
                        return
                    await asyncio.sleep(0.02)
                    continue
                if kind == "text":
                    yield f"data: {json.dumps({'text': value})}\n\n"
                elif kind == "error":
                    yield f"event: error\ndata: {json.dumps({'error': value})}\n\n"
                else:
                    yield f"event: done\ndata: {json.dumps({'chat_id': chat_id})}\n\n"
                    return

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def serve(scorer, host: str = "127.0.0.1", port: int = 8000, settings: ServeSettings | None = None,
          model_info: dict | None = None) -> None:
    import uvicorn

    app = create_app(scorer, settings, model_info)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("LMM_VQA_LOG_LEVEL", "warning"))
