"""The example streams a turn and exits cleanly (no runtime thread outlives the interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def test_the_example_streams_a_turn_and_exits_cleanly(server, token, tmp_path) -> None:
    # From a folder of its own: the example runs on the installed package alone.
    example = tmp_path / "stream_turn.py"
    example.write_text((ROOT / "examples/python/stream_turn.py").read_text())
    for _ in range(3):
        finished = subprocess.run(
            [sys.executable, str(example), "[[bash:echo hi from bash]]"],
            env={**os.environ, "PROLIFERATE_URL": server.url, "PROLIFERATE_TOKEN": token},
            cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )
        assert finished.returncode == 0, finished.stderr
        assert "[tool bash]" in finished.stdout and "hi from bash" in finished.stdout
