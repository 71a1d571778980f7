"""Load on `lmm-vqa serve`, over loopback: N concurrent clients post a video again and again for a bounded
time; requests/s, latency percentiles, and whether any answer was lost or went to the wrong request;
the model's frames/s under that load against the same model scoring the same videos as the CLI does.

    python eval/bench_serve.py --model tiny --clients 32 --seconds 60            # a tiny model on the CPU
    python eval/bench_serve.py --model /path/llava_7b --clients 32 --seconds 60 --device cuda --batch-size 32

`--model tiny` builds a tiny random LLaVA checkpoint (scores meaningless: the service is what is measured).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

import record


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--frames", default="fps:1")
    p.add_argument("--record", help="result file (default eval/results/serve_load.json)")
    args = p.parse_args(argv)

    import uvicorn

    from lmm_vqa.checkpoints import load_scorer
    from lmm_vqa.serve import ServeSettings, create_app
    from lmm_vqa.testing import build_tiny_checkpoint, write_test_videos

    work = Path(tempfile.mkdtemp())
    model = str(build_tiny_checkpoint("llava", work / "tiny")) if args.model == "tiny" else args.model
    video = write_test_videos(work / "videos")["h264"]  # 2 s, 10 fps: 2 keyframes at fps:1
    scorer = load_scorer(model, device=args.device, frames=args.frames)

    # the CLI's rate on the same work: one score_paths over as many videos as a second of service sees
    paths = [str(video)] * 64
    list(scorer.score_paths(paths[:8], batch_size=args.batch_size))
    start = time.perf_counter()
    rows = list(scorer.score_paths(paths, batch_size=args.batch_size))
    cli_fps = sum(r["num_frames"] for r in rows) / (time.perf_counter() - start)

    app = create_app(scorer, ServeSettings(batch_size=args.batch_size, queue_size=4 * args.clients, timeout_s=120))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx.get(url + "/api/health", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    data = video.read_bytes()
    stop = time.monotonic() + args.seconds
    latencies, statuses, wrong = [], {}, 0
    lock = threading.Lock()

    def client(i):
        nonlocal wrong
        with httpx.Client(timeout=120) as http:
            n = 0
            while time.monotonic() < stop:
                name = f"c{i:02d}_{n:05d}.mp4"
                t0 = time.perf_counter()
                try:
                    r = http.post(url + "/api/score", files={"file": (name, data, "video/mp4")})
                    status = r.status_code
                    ok_name = status != 200 or r.json()["path"] == name
                except httpx.HTTPError as e:
                    status, ok_name = type(e).__name__, True
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    statuses[status] = statuses.get(status, 0) + 1
                    wrong += not ok_name
                n += 1

    before = httpx.get(url + "/api/health").json()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(client, range(args.clients)))
    wall = time.perf_counter() - started
    after = httpx.get(url + "/api/health").json()
    server.should_exit = True
    served = after["videos"] - before["videos"]
    frames_per_video = rows[0]["num_frames"]
    lat = np.array(latencies)
    figures = {"clients": args.clients, "seconds": round(wall, 1), "requests": len(lat), "statuses": statuses,
               "requests_s": len(lat) / wall, "p50_ms": 1000 * float(np.percentile(lat, 50)),
               "p99_ms": 1000 * float(np.percentile(lat, 99)), "lost": sum(v for k, v in statuses.items() if k != 200),
               "wrong_answers": wrong, "videos_scored_by_the_model": served,
               "batches": after["batches"] - before["batches"],
               "service_frames_s": served * frames_per_video / wall, "cli_frames_s": cli_fps,
               "model": args.model, "device": args.device, "batch_size": args.batch_size}
    print(f"{args.clients} clients for {wall:.0f} s: {figures['requests']} requests, {figures['requests_s']:.1f}/s, "
          f"p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms; statuses {statuses}; "
          f"{wrong} answers to the wrong request; {served} videos in {figures['batches']} model batches")
    print(f"frames/s: {figures['service_frames_s']:.1f} under service load, {cli_fps:.1f} scoring the same videos "
          f"as the CLI does ({100 * figures['service_frames_s'] / cli_fps:.0f}%)")
    print(f"wrote {record.write('serve_load', figures, args.record)}")


if __name__ == "__main__":
    main()
