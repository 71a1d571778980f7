import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from lmm_vqa.cli import expand_inputs, main
from lmm_vqa.results import read_rows


@pytest.fixture()
def mixed_folder(videos, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for key in ("h264", "av1", "zero_bytes", "not_video", "truncated"):
        shutil.copy(videos[key], folder / videos[key].name)
    shutil.copy(videos["image"], folder / "sub" / "still.png")
    (folder / "readme.md").write_text("not media, not an input")
    return folder


def test_score_folder_mixing_good_and_broken_files(checkpoint, mixed_folder, tmp_path, capsys):
    out = tmp_path / "results.csv"
    code = main(["score", str(mixed_folder), "--model", str(checkpoint("llava")), "--out", str(out), "--quiet"])
    assert code == 1  # some inputs failed
    rows = read_rows(out)
    assert len(rows) == 6  # one row per media file, none dropped, readme.md ignored
    warnings = {r["path"].rsplit("/", 1)[1]: r["warning"] for r in rows}
    assert warnings.pop("truncated.mp4").startswith("decoded 1 of 2 sampled frames")  # flagged, not silent
    assert set(warnings.values()) == {""}
    status = {r["path"].rsplit("/", 1)[1]: r["status"] for r in rows}
    assert status == {"h264.mp4": "ok", "av1.mkv": "ok", "zero_bytes.mp4": "error", "notes.mp4": "error",
                      "truncated.mp4": "ok", "still.png": "ok"}
    for r in rows:
        assert (r["error"] == "") == (r["status"] == "ok")
        assert float(r["seconds"]) >= 0
        if r["status"] == "ok":
            frame_scores = json.loads(r["frame_scores"])
            assert len(frame_scores) == int(r["num_frames"]) >= 1
            assert abs(float(r["score"]) - sum(frame_scores) / len(frame_scores)) < 1e-5
    assert "4/6 scored, 2 failed" in capsys.readouterr().out


def test_resume_skips_ok_rows_and_retries_errors(checkpoint, mixed_folder, tmp_path):
    out = tmp_path / "results.jsonl"
    model = str(checkpoint("qwen2_vl"))
    # A run that was interrupted after two videos, one of which had failed.
    main(["score", str(mixed_folder / "h264.mp4"), "--model", model, "--out", str(out), "--quiet"])
    with open(out, "a") as f:
        f.write(json.dumps({"path": str(mixed_folder / "av1.mkv"), "status": "error", "error": "killed"}) + "\n")
    first = read_rows(out)[0]
    code = main(["score", str(mixed_folder), "--model", model, "--out", str(out), "--quiet"])
    rows = read_rows(out)
    assert code == 1 and len(rows) == 6
    assert rows[0] == first  # kept as it was, not recomputed
    assert sum(r["path"].endswith("av1.mkv") for r in rows) == 1
    assert next(r for r in rows if r["path"].endswith("av1.mkv"))["status"] == "ok"
    # Nothing left to do except the broken files.
    main(["score", str(mixed_folder), "--model", model, "--out", str(out), "--quiet"])
    assert len(read_rows(out)) == 6


def test_all_ok_exits_zero_and_list_inputs(checkpoint, videos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{videos['h264']}\n# a comment\n\n{videos['vp9']}\n")
    table = tmp_path / "list.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([["path", "mos"], [str(videos["hevc"]), "3.2"], [str(videos["h264"]), "4"]])
    assert expand_inputs([str(listing), str(table)]) == [str(videos[k]) for k in ("h264", "vp9", "hevc")]
    out = tmp_path / "r.csv"
    code = main(["score", str(listing), str(table), "--model", str(checkpoint("llava_onevision")),
                 "--out", str(out), "--mode", "clip", "--frames", "uniform:2", "--batch-size", "2", "--quiet"])
    assert code == 0
    assert [r["status"] for r in read_rows(out)] == ["ok"] * 3


def test_missing_input_gets_an_error_row(checkpoint, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["score", str(tmp_path / "gone.mp4"), "--model", str(checkpoint("llava")), "--out", str(out),
                 "--quiet"]) == 1
    (row,) = read_rows(out)
    assert row["status"] == "error" and "no such file" in row["error"]


@pytest.mark.parametrize("flags,message", [
    (["--batch-size", "0"], "--batch-size must be at least 1"), (["--batch-size", "-1"], "--batch-size must be"),
    (["--workers", "0"], "--workers must be at least 1"), (["--max-frames", "0"], "--max-frames must be"),
    (["--device", "tpu"], "is not a device"), (["--device", "cuda:7"], "cuda:7"),
    (["--model", "./nope"], "./nope: no such folder"), (["--model", "/abs/nope"], "/abs/nope: no such folder"),
    (["--model", "a/b/c"], "no such folder"), (["--device", "cpu", "--devices", "cpu,cpu"], "cannot be used together"),
    (["--device", "cpu", "--dtype", "fp8"], "--dtype fp8 needs a CUDA GPU of compute capability >= 8.9"),
    (["--fp8-scaling", "tensor"], "--fp8-scaling applies to --dtype fp8 only")])
def test_flags_are_checked_before_anything_loads(videos, tmp_path, capsys, monkeypatch, flags, message):
    import lmm_vqa.checkpoints

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the flags were checked")

    monkeypatch.setattr(lmm_vqa.checkpoints, "load_scorer", never)
    assert main(["score", str(videos["h264"]), "--out", str(tmp_path / "r.csv"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()  # nothing written for a run that cannot start


def test_out_is_checked_before_the_model_loads(videos, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    assert main(["score", str(videos["h264"]), "--out", str(tmp_path / "a_file" / "r.csv")]) == 2
    assert "a_file is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "ro").mkdir(mode=0o500)
    if not os.access(tmp_path / "ro", os.W_OK):  # root may write anywhere
        assert main(["score", str(videos["h264"]), "--out", str(tmp_path / "ro" / "r.csv")]) == 2
        assert "permission denied" in capsys.readouterr().err


def test_an_unreachable_hub_id_fails_at_once_with_one_line(videos, tmp_path, capsys, monkeypatch):
    import time

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens on the discard port: no network
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    assert main(["score", str(videos["h264"]), "--model", "some-org/some-model", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 30
    assert "some-org/some-model" in err and "cannot be reached" in err and "folder" in err


def test_interrupting_says_what_was_written_and_how_to_resume(checkpoint, videos, tmp_path, capsys, monkeypatch):
    from lmm_vqa.results import ResultWriter

    write, calls = ResultWriter.write, []

    def write_then_interrupt(self, row):
        write(self, row)
        calls.append(row)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ResultWriter, "write", write_then_interrupt)
    paths = [str(videos[k]) for k in ("h264", "hevc", "vp9", "portrait")]
    out = tmp_path / "r.csv"
    assert main(["score", *paths, "--model", str(checkpoint("llava")), "--out", str(out), "--quiet"]) == 130
    assert f"interrupted: 2 of 4 inputs written to {out}; rerun the same command to resume" in capsys.readouterr().err
    assert len(read_rows(out)) == 2


def test_a_folder_without_videos_is_named(checkpoint, videos, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "r.csv"
    assert main(["score", str(tmp_path / "empty"), "--model", str(checkpoint("llava")), "--out", str(out)]) == 1
    assert f"no input videos found in {tmp_path / 'empty'}" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "empty"), str(videos["h264"]), "--model", str(checkpoint("llava")),
                 "--out", str(out), "--quiet"]) == 0
    assert f"no videos or images in folder {tmp_path / 'empty'}" in capsys.readouterr().err


def test_csv_rows_end_in_a_newline_only(checkpoint, videos, tmp_path):
    out = tmp_path / "r.csv"
    assert main(["score", str(videos["h264"]), "--model", str(checkpoint("llava")), "--out", str(out), "--quiet"]) == 0
    assert b"\r" not in out.read_bytes()


def test_bad_flags_fail_clearly(checkpoint, videos, tmp_path, capsys):
    assert main(["score", str(videos["h264"]), "--model", str(checkpoint("llava")), "--frames", "every:2",
                 "--out", str(tmp_path / "r.csv")]) == 2
    assert "bad frame sampling" in capsys.readouterr().err
    assert main(["score", str(videos["h264"]), "--model", str(checkpoint("llava")),
                 "--out", str(tmp_path / "r.txt")]) == 2
    assert ".csv or .jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("argv,shows", [(["--help"], "score"), (["train", "--help"], "shipped configs"),
                                        (["score", "--help"], "--overwrite")])
def test_help_imports_no_torch(argv, shows):
    code = ("import sys; from lmm_vqa import cli\n"
            f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert shows in result.stdout


def test_synth_without_its_extra_says_which_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if scikit-image were not installed
    assert main(["synth", str(tmp_path / "d"), "--sources", "1"]) == 2
    assert "pip install 'lmm-vqa[synth]'" in capsys.readouterr().err


def test_no_model_uses_the_bundled_demo_model(videos, tmp_path, capsys):
    out = tmp_path / "demo.csv"
    assert main(["score", str(videos["h264"]), str(videos["portrait"]), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "DEMO model" in err and "synthetic" in err
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    from lmm_vqa.checkpoints import demo_model_path, load_scorer

    demo = load_scorer(demo_model_path())  # the same model, loaded by its path
    for r in rows:
        assert abs(float(r["score"]) - demo.score_video(r["path"])["score"]) < 1e-5
    assert main(["explain", str(videos["h264"]), "--json", "--with-score", "--max-new-tokens", "5"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answer"] and abs(answer["score"] - float(rows[0]["score"])) < 1e-5


def test_demo_model_is_small_and_complete():
    from lmm_vqa.checkpoints import demo_model_path
    from lmm_vqa.scoring import SCORER_FILE

    folder = demo_model_path()
    assert (folder / SCORER_FILE).is_file() and (folder / "model.safetensors").is_file()
    assert sum(f.stat().st_size for f in folder.iterdir()) < 25 * 2 ** 20


def test_scoring_on_several_devices_merges_into_one_file(videos, checkpoint, tmp_path):
    """--devices runs one process per device (two CPU processes here; GPUs in the benchmark)."""
    model = str(checkpoint("llava"))
    inputs = [str(videos[k]) for k in ("h264", "hevc", "vp9", "av1", "portrait", "one_frame", "zero_bytes")]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    # every scoring flag reaches the device processes
    flags = ["--dtype", "fp32", "--frames", "fps:4", "--max-frames", "3", "--mode", "frame", "--prompt", "score_frame",
             "--batch-size", "3", "--workers", "1"]
    assert main(["score", *inputs, "--model", model, "--out", str(one), "--quiet", *flags]) == 1  # zero_bytes fails
    assert main(["score", *inputs, "--model", model, "--out", str(two), "--quiet", "--devices", "cpu,cpu",
                 *flags]) == 1
    a = {r["path"]: r for r in read_rows(one)}
    b = {r["path"]: r for r in read_rows(two)}
    assert a.keys() == b.keys() == set(inputs)
    for path in inputs:
        assert a[path]["status"] == b[path]["status"]
        if a[path]["status"] == "ok":
            assert abs(float(a[path]["score"]) - float(b[path]["score"])) < 1e-5
    assert {int(r["num_frames"]) for r in b.values() if r["status"] == "ok"} == {1, 3}  # --max-frames 3 arrived
    # resume: a rerun keeps the ok rows and retries only the failure
    assert main(["score", *inputs, "--model", model, "--out", str(two), "--quiet", "--devices", "cpu,cpu",
                 *flags]) == 1
    assert len(read_rows(two)) == len(inputs)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_rerun_with_other_settings_is_refused_and_overwrite_starts_afresh(checkpoint, videos, tmp_path, capsys,
                                                                         suffix):
    out = tmp_path / f"r{suffix}"
    llava, qwen = str(checkpoint("llava")), str(checkpoint("qwen2_vl"))
    assert main(["score", str(videos["h264"]), "--model", llava, "--out", str(out), "--quiet"]) == 0
    first = read_rows(out)
    for other in (["--model", qwen], ["--model", llava, "--frames", "fps:2"], ["--model", llava, "--mode", "clip"],
                  ["--model", llava, "--prompt", "score_clip"]):
        capsys.readouterr()
        assert main(["score", str(videos["h264"]), str(videos["vp9"]), *other, "--out", str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "other settings" in err and "--overwrite" in err, err
        assert read_rows(out) == first, "a refused run leaves the file as it was"
    # the same settings resume; --overwrite starts afresh with the new ones
    assert main(["score", str(videos["h264"]), str(videos["vp9"]), "--model", llava, "--out", str(out),
                 "--quiet"]) == 0
    assert read_rows(out)[0] == first[0] and len(read_rows(out)) == 2
    assert main(["score", str(videos["vp9"]), "--model", qwen, "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert [r["path"] for r in read_rows(out)] == [str(videos["vp9"])]
    assert json.loads(out.with_name(out.name + ".run.json").read_text())["model"] == qwen


def test_a_model_trained_again_into_the_same_folder_does_not_resume(checkpoint, videos, tmp_path, capsys):
    """The folder's path is the same, its weights are not: resuming would keep the old model's scores."""
    import os
    import shutil

    model, out = tmp_path / "model", tmp_path / "r.csv"
    shutil.copytree(checkpoint("llava"), model)
    assert main(["score", str(videos["h264"]), "--model", str(model), "--out", str(out), "--quiet"]) == 0
    weights = model / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))  # as an export over it leaves it
    capsys.readouterr()
    assert main(["score", str(videos["h264"]), str(videos["vp9"]), "--model", str(model), "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "weights:" in err and "--overwrite" in err, err
    assert main(["score", str(videos["h264"]), "--model", str(model), "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    record = json.loads(out.with_name("r.csv.run.json").read_text())
    record.pop("weights")  # as an earlier version wrote it: the path alone decides, as before
    out.with_name("r.csv.run.json").write_text(json.dumps(record))
    assert main(["score", str(videos["h264"]), str(videos["vp9"]), "--model", str(model), "--out", str(out),
                 "--quiet"]) == 0
    assert len(read_rows(out)) == 2


def test_a_file_without_a_settings_record_resumes_with_a_warning(checkpoint, videos, tmp_path, capsys):
    out = tmp_path / "r.csv"
    model = str(checkpoint("llava"))
    assert main(["score", str(videos["h264"]), "--model", model, "--out", str(out), "--quiet"]) == 0
    out.with_name("r.csv.run.json").unlink()  # as written by an older version, or by hand
    capsys.readouterr()
    assert main(["score", str(videos["h264"]), str(videos["vp9"]), "--model", model, "--out", str(out),
                 "--quiet"]) == 0
    assert "no record of the settings" in capsys.readouterr().err and len(read_rows(out)) == 2


def test_an_unexpected_error_is_one_line_not_a_traceback(monkeypatch, capsys):
    def boom(inputs):
        raise RuntimeError("something broke")

    monkeypatch.setattr("lmm_vqa.cli.expand_inputs", boom)
    assert main(["score", "x.mp4"]) == 3
    err = capsys.readouterr().err
    assert "RuntimeError: something broke" in err and "LMM_VQA_DEBUG" in err and "Traceback" not in err


def test_torchrun_ranks_score_their_shares_into_one_file(videos, checkpoint, tmp_path):
    """The launch users already have: torchrun (as accelerate launch) starts one `lmm-vqa score` per rank;
    two CPU ranks (gloo) here."""
    import socket

    model = str(checkpoint("llava"))
    inputs = [str(videos[k]) for k in ("h264", "hevc", "vp9", "av1", "portrait")]
    single, ranked = tmp_path / "single.csv", tmp_path / "ranked.csv"
    assert main(["score", *inputs, "--model", model, "--out", str(single), "--quiet"]) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(port), "-m", "lmm_vqa.cli", "score", *inputs, "--model", model, "--out", str(ranked),
           "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "5/5 scored, 0 failed" in result.stdout
    a = {r["path"]: float(r["score"]) for r in read_rows(single)}
    b = {r["path"]: float(r["score"]) for r in read_rows(ranked)}
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-5 for k in a)
    assert not list(tmp_path.glob("ranked.csv.rank*")), "the part files are merged and removed"
    assert json.loads((tmp_path / "ranked.csv.run.json").read_text())["model"] == model


def test_ranks_of_an_interrupted_run_are_not_lost(videos, checkpoint, tmp_path):
    """A part file left by a killed multi-process run is folded into the results on the rerun, not redone."""
    model = str(checkpoint("llava"))
    out = tmp_path / "r.csv"
    assert main(["score", str(videos["h264"]), "--model", model, "--out", str(tmp_path / "one.jsonl"), "--quiet"]) == 0
    row = read_rows(tmp_path / "one.jsonl")[0]
    row["score"] = 4.321  # as that rank wrote it: a rerun must keep it, not score the video again
    (tmp_path / "r.csv.rank1.jsonl").write_text(json.dumps(row) + "\n")
    inputs = [str(videos[k]) for k in ("h264", "hevc", "vp9")]
    assert main(["score", *inputs, "--model", model, "--out", str(out), "--quiet", "--devices", "cpu,cpu"]) == 0
    rows = {r["path"]: r for r in read_rows(out)}
    assert set(rows) == set(inputs) and float(rows[str(videos["h264"])]["score"]) == 4.321
    assert not list(tmp_path.glob("r.csv.rank*"))
    # with --overwrite an earlier run's parts are discarded with its rows
    (tmp_path / "r.csv.rank1.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["score", *inputs, "--model", model, "--out", str(out), "--quiet", "--devices", "cpu,cpu",
                 "--overwrite"]) == 0
    assert float({r["path"]: r for r in read_rows(out)}[str(videos["h264"])]["score"]) != 4.321
