"""The benchmarks run (smoke mode) and write the JSON they promise. Timings are never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/SCRIPT --quick ARGS; a failure shows its stderr."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_recurrent_speed_quick_writes_json(tmp_path):
    out = tmp_path / "speed.json"
    done = _bench("recurrent_speed.py", "--out", str(out))
    report = json.loads(out.read_text())
    variants = {row["variant"] for row in report["rows"]}
    assert {"torch.nn.GRU", "gru/reference", "gru/fused", "mingru/scan", "ligru/reference"} <= variants
    for row in report["rows"]:
        assert row["train_s"] > 0 and row["infer_s"] > 0
        if row["variant"] == "torch.nn.GRU":
            assert row["train_ratio"] == 1.0
    assert "x nn.GRU" in done.stdout


def test_handset_quick_writes_json_and_plot(tmp_path, data_dir):
    out = tmp_path / "handset.json"
    done = _bench("handset.py", "--data", str(data_dir), "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [(r["decoding"], r["tilt_db_per_octave"]) for r in rows] == [
        ("greedy", 0.0), ("greedy", 4.0), ("beam+lm+rescore", 0.0), ("beam+lm+rescore", 4.0),
    ]  # fmt: skip
    assert all(r["words"] == rows[0]["words"] > 0 and r["errors"] >= 0 for r in rows)  # the same utterances
    assert (tmp_path / "handset.png").stat().st_size > 0
    assert "tilted handset" in done.stdout


def test_loader_speed_quick_writes_json(tmp_path, data_dir):
    out = tmp_path / "loader.json"
    _bench("loader_speed.py", "--data", str(data_dir), "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [r["workers"] for r in rows] == [0, 1, 2]
    assert all(r["audio_s"] == rows[0]["audio_s"] > 0 for r in rows)  # every worker count serves the same audio


def test_streaming_benchmark_quick_writes_json(tmp_path, data_dir):
    out = tmp_path / "streaming.json"
    done = _bench("streaming.py", "--data", str(data_dir), "--out", str(out), cwd=tmp_path)
    report = json.loads(out.read_text())
    assert report["latency"]["rtf_one_thread"] > 0
    assert [r["streams"] for r in report["concurrency"]] == [1, 4, 4]
    assert [r["batched"] for r in report["concurrency"]] == [True, True, False]
    assert all(r["tick_ms_p95"] >= r["tick_ms_p50"] > 0 for r in report["concurrency"])
    assert report["trained"] == bool(report["wer"])  # accuracy only for a trained model, never made up
    assert "concurrent streams" in done.stdout


def test_server_load_quick_writes_json(tmp_path, data_dir):
    """Two real-time Vosk clients against a `gruasr serve` subprocess (stopped after), finals decoded in threads
    and in processes: the report has both rows, the clients got every reply, the served text is what the same
    audio gives streamed in process, and the decoding processes' memory is counted with the server's."""
    out = tmp_path / "server_load.json"
    done = _bench("server_load.py", "--data", str(data_dir), "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [r["decode_in"] for r in rows] == ["threads", "processes"]
    for row in rows:
        assert (row["clients"], row["torch_threads"], row["cpu_hog"]) == (2, 1, False)
        assert row["errors"] == 0 and row["same_text"] == 2
        assert row["wer_served"] == row["wer_in_process"]
        assert row["reply_ms_p95"] >= row["reply_ms_p50"] > 0
    assert rows[1]["rss_mb_end"] > rows[0]["rss_mb_end"]  # two more interpreters, each with an LM
    assert "gruasr serve under load" in done.stdout


def test_thread_layout_quick_writes_json(tmp_path, data_dir):
    out = tmp_path / "thread_layout.json"
    done = _bench("thread_layout.py", "--data", str(data_dir), "--out", str(out))
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["streams"], row["torch_threads"], row["thread"], row["cpu_hog"]) == (2, 1, "worker", False)
    assert row["tick_ms_p95"] >= row["tick_ms_p50"] > 0 and row["ticks"] == 3
    assert "one 100 ms streaming tick" in done.stdout


def test_server_abuse_quick_writes_json(tmp_path, data_dir):
    """Three good real-time calls, clean and beside a small attack (malformed, unauthenticated and slow clients on
    every protocol) against one `gruasr serve` subprocess: the server survives, every hostile session ends with a
    clear refusal, and the good calls get the clean run's transcripts."""
    out = tmp_path / "server_abuse.json"
    done = _bench("server_abuse.py", "--data", str(data_dir), "--out", str(out))
    report = json.loads(out.read_text())
    assert report["abuse"]["alive"] and report["abuse"]["errors"] == 0
    assert report["same_text"] == report["clients"] == 3
    assert not report["unclear_outcomes"]
    outcomes = report["abuse"]["attack"]["outcomes"]
    assert sum(outcomes.values()) == 120 + 30 + 4
    assert outcomes["rest flac claims hours: http 413"] == 10 and outcomes["unauth vosk: close 1008"] > 0
    assert report["abuse"]["refusals"]["unauthorized"] == 30
    assert "the attack" in done.stdout


def test_deploy_speed_quick_writes_json(tmp_path, data_dir):
    """torch fp32/int8 and ONNX fp32/int8 on the same 12 + 12 utterances (no peers in --quick): every column filled."""
    out = tmp_path / "deploy.json"
    done = _bench("deploy_speed.py", "--data", str(data_dir), "--out", str(out), "--peers-python", "/nonexistent")
    report = json.loads(out.read_text())
    assert [r["engine"] for r in report["rows"]] == ["torch", "torch-int8", "onnx", "onnx-int8"]
    assert report["utterances"] == {"an4": 12, "fsdd_numbers": 12} and report["peers"] == []
    for row in report["rows"]:
        assert 0 <= row["wer_an4"] < 1 and 0 <= row["wer_fsdd_numbers"] < 1
        # the mean may pass the p95 when a few chunks are very slow (a shared machine): both only need to exist
        assert row["rtf_an4"] > 0 and row["chunk_ms_p95"] > 0 and row["chunk_ms_mean"] > 0
        assert row["peak_rss_offline_mb"] > 0 and row["install_mb"] > 0 and row["model_mb"] > 0
        assert {c["threads"] for c in row["concurrency"]} == {1, 2} and {c["streams"] for c in row["concurrency"]} <= {
            4,
            8,
        }
    onnx = {r["engine"]: r for r in report["rows"]}
    assert onnx["onnx-int8"]["model_mb"] < 0.3 * onnx["onnx"]["model_mb"]
    assert "| onnx-int8 |" in done.stdout


@pytest.mark.parametrize("split", ["test", "dev"])
def test_int8_layers_quick_writes_json(tmp_path, data_dir, split):
    """The float export, every int8 variant and the torch rows decode the same 12 + 12 utterances (of the test sets,
    or of AN4's dev speakers and FSDD dev numbers); files shrink with int8."""
    out = tmp_path / "int8_layers.json"
    _bench("int8_layers.py", "--data", str(data_dir), "--split", split, "--torch", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["split"] == split
    torch_rows = {r["variant"]: r for r in report["rows"] if r["variant"].startswith("torch")}
    assert set(torch_rows) == {"torch float", "torch int8 (torch.ao: GRU and output layer)"}
    assert all(0 <= r["an4"] <= 1 and 0 <= r["fsdd_numbers"] <= 1 for r in torch_rows.values())
    rows = {r["variant"]: r for r in report["rows"] if not r["variant"].startswith("torch")}
    export = "convolutions int8 weight-only (the export)"
    assert len(rows) == 9 and {"float (no int8)", "all int8", "first convolution float", export} <= set(rows)
    assert all(0 <= r["an4"] <= 1 and 0 <= r["fsdd_numbers"] <= 1 for r in rows.values())
    assert rows["all int8"]["mb"] < rows["first convolution float"]["mb"] < 0.35 * rows["float (no int8)"]["mb"]
    assert rows["all int8"]["mb"] < rows[export]["mb"] < rows["first convolution float"]["mb"]  # int8 in the file
    assert all(0 < r["step_ms_1"] < r["step_ms_300"] for r in rows.values())  # 300 streams cost more than one


def test_ddp_speed_quick_writes_json(tmp_path, data_dir):
    """One process and two torchrun (gloo) processes train the same tiny recipe; both rows measured."""
    out = tmp_path / "ddp_speed.json"
    _bench("ddp_speed.py", "--data", str(data_dir), "--out", str(out), cwd=tmp_path)
    report = json.loads(out.read_text())
    assert [r["ranks"] for r in report["rows"]] == [1, 2]
    assert all(r["audio_s_per_s"] > 0 and r["train_seconds"] > 0 for r in report["rows"])
    assert report["rows"][0]["audio_seconds"] == report["rows"][1]["audio_seconds"]  # the same epochs' audio


def test_presets_quick_writes_json(tmp_path, data_dir):
    """The two smallest size presets train a step each on real manifests; their sizes are the presets' own."""
    out = tmp_path / "presets.json"
    _bench("presets.py", "--data", str(data_dir), "--out", str(out), cwd=tmp_path)
    rows = json.loads(out.read_text())["rows"]
    assert [r["preset"] for r in rows] == ["xs", "s"]
    assert 400_000 < rows[0]["parameters"] < 800_000 < 1_200_000 < rows[1]["parameters"] < 2_000_000
    assert all(r["audio_s_per_s"] > 0 and r["minutes_per_audio_hour"] > 0 for r in rows)
    # step memory: weights x 4 (parameters, gradients, two Adam moments) + activations, larger for the larger model
    assert all(r["step_mb"] > r["activations_mb"] > 0 for r in rows) and rows[0]["step_mb"] < rows[1]["step_mb"]


def test_gpu_kit_and_the_gpu_check_smoke_run(tmp_path, data_dir):
    """The kit holds AN4 as 8 kHz FLAC with manifests and FSDD as FLAC; the GPU script runs its whole path on the
    CPU with a tiny model (CUDA tests skipped): throughput rows, a trained model, test WERs, the model archive."""
    import soundfile as sf

    from gruasr.data.manifest import read_manifest

    kit, out = tmp_path / "kit", tmp_path / "out"
    command = [sys.executable, str(ROOT / "scripts" / "gpu_kit.py"), "--data", str(data_dir), "--out", str(kit)]
    done = subprocess.run([*command, "--limit", "20"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    test = read_manifest(kit / "an4" / "test.jsonl")
    assert len(test) == 20
    info = sf.info(test[0].audio)
    assert (info.samplerate, info.format) == (8000, "FLAC") and abs(info.duration - test[0].duration) < 0.05
    assert len(list((kit / "fsdd" / "recordings").glob("*.flac"))) == 240

    env = {**os.environ, "KIT": str(kit), "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], capture_output=True,
                         text=True, env=env, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    assert {r["unit"] for r in report["train_speed"]["throughput"]} == {"gru", "mingru"}
    assert len(report["run"]["history"]) == 1 and set(report["wer"]) == {"an4", "numbers"}
    assert (out / "model.tar.gz").stat().st_size > 0 and "== CUDA tests" in (out / "gpu_check.log").read_text()


def test_deploy_speed_capacity_quick_writes_every_count(tmp_path, data_dir):
    """--capacity: both ONNX engines at every stream count and thread count, finals decoded in the tick, in a
    thread and in a process, none skipped."""
    out = tmp_path / "capacity.json"
    _bench("deploy_speed.py", "--capacity", "--concurrency-threads", "1", "--data", str(data_dir), "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    cells = {(r["engine"], r["threads"], r["finals"], r["streams"]) for r in rows}
    assert cells == {(e, 1, f, n) for e in ("onnx", "onnx-int8") for f in ("tick", "thread", "process") for n in (4, 8)}
    assert all(r["tick_ms_p95"] >= r["tick_ms_p50"] > 0 for r in rows)
    # handed to a decoding thread or process (4 s of 8 streams end utterances), every final is decoded by the end
    handed = [r for r in rows if r["finals"] != "tick"]
    assert sum(r["finals_handed"] for r in handed) > 0
    assert all(r["finals_decoded"] == r["finals_handed"] for r in handed)
