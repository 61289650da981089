"""The README's example runs against the real daemon and prints the files."""

import os
import pathlib
import re
import subprocess
import sys

from conftest import LIMIT

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example(daemon):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    env = dict(os.environ, ASSETD_SOCKET=daemon.socket,
               PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[1] / "src"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=LIMIT)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    assert "model.splat" in lines and os.path.exists(lines["model.splat"])
    assert "rohan: completed 100%" in out.stderr
