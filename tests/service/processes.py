"""The service's commands as real processes, and reading their JSON-lines logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """`python -m trauma_tracker ARGS` with its stderr (the JSON log) going to `log`."""
    environment = {**os.environ, **env}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("ab") as handle:  # the child has its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "trauma_tracker", *args],
            stdout=handle,
            stderr=handle,
            env=environment,
            cwd=Path(__file__).resolve().parents[2],
        )


def log_lines(log: Path) -> list[dict]:
    """The JSON lines written so far (other lines, such as gunicorn's own, are skipped)."""
    if not log.exists():
        return []
    lines = []
    for text in log.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue
    return lines


def wait_for_log(log: Path, message: str, seconds: float = 60.0, count: int = 1) -> dict:
    """The `count`th log line whose message starts with `message`, waiting up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [
            line for line in log_lines(log) if str(line.get("message", "")).startswith(message)
        ]
        if len(found) >= count:
            return found[count - 1]
        time.sleep(0.1)
    raise AssertionError(f"no {message!r} in {log} after {seconds} s:\n{log.read_text()[-3000:]}")


def wait_until(check, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen, seconds: float = 60.0) -> int:
    """SIGTERM, then the exit status (killed after `seconds`)."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the process did not stop within its time after SIGTERM") from None
