"""`dev.py bench`: every script runs, the summary prints, and any failure or miss fails it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dev


def test_a_missed_target_fails_the_run_after_every_script_and_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "_helper.py").write_text("raise SystemExit('a helper is not a benchmark')\n")
    (bench / "a_miss.py").write_text("print('{\"ok\": false}')\nraise SystemExit(1)\n")
    (bench / "b_crash.py").write_text("raise RuntimeError('database down')\n")
    (bench / "c_fine.py").write_text('print("working")\nprint(\'{"ok": true}\')\n')
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    assert dev.bench([]) == 1
    out = capsys.readouterr()
    summary = json.loads(out.out[out.out.index('{\n  "a_miss"') :])
    assert summary == {"a_miss": {"ok": False}, "b_crash": None, "c_fine": {"ok": True}}
    assert "a_miss, b_crash" in out.err
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    assert dev.bench(["c_fine"]) == 0
