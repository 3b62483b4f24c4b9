"""benchmarks/features_speed.py runs (smoke mode) on real audio and writes the JSON it promises; no timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_features_speed_quick_writes_json(tmp_path, data_dir):
    out = tmp_path / "speed.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "features_speed.py"), "--quick", "--threads", "1"]
        + ["--data", str(data_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRUASR_DATA": ""},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    meta, rows = report["meta"], report["rows"]
    assert meta["audio"].startswith("real") and meta["threads"] == 1 and meta["audio_seconds"] > 1
    assert meta["config"]["num_mel_bins"] == 80 and meta["config"]["sample_rate"] == 8000
    names = [row["implementation"] for row in rows]
    assert {"gruasr Fbank", "kaldi-native-fbank", "torch.stft + mel (plain, not Kaldi)"} <= set(names)
    assert any(name.startswith("gruasr StreamingFbank") for name in names)
    for row in rows:
        assert row["seconds"] > 0 and row["audio_s_per_s"] > 0 and row["x_knf"] > 0
        assert set(row) == {"implementation", "device", "seconds", "audio_s_per_s", "x_knf"}
    assert next(r for r in rows if r["implementation"] == "kaldi-native-fbank")["x_knf"] == 1.0
    assert "audio s / s" in done.stdout
