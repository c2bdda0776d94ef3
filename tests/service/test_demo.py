"""`trauma-tracker demo`: a force prepared once, served with the persona picker, with the
scheduler delivering to the demo's own mail and Teams sinks."""

from __future__ import annotations

import signal

import pytest
import requests

from tests.service.processes import start, wait_until
from trauma_tracker.sinks import free_port


def _serving(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
def test_demo_serves_a_prepared_force_and_reuses_it(tmp_path):
    folder = tmp_path / "demo"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "demo.log"
    demo = start(["demo", "--port", str(port), "--dir", str(folder)], log)
    try:
        assert wait_until(lambda: _serving(base), 240), log.read_text()[-3000:]
        assert (folder / "READY").exists()
        assert sorted(p.name for p in (folder / "feeds").glob("people*.csv"))
        # The persona picker is on (loopback), and the force's alerts are being delivered
        # to the demo's sinks, kept where an admin can read them.
        assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
        assert wait_until(lambda: any((folder / "mail").iterdir()), 120), log.read_text()[-3000:]
        # The banner follows the demo's own check that the server answers, which may come a
        # moment after ours.
        banner = f"Trauma Tracker demo: {base}"
        assert wait_until(lambda: banner in log.read_text(), 30), log.read_text()[-3000:]
        text = log.read_text()
        assert "ingested" in text and "evaluating" in text  # progress was shown
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=120) == 0

    again = start(["demo", "--port", str(port), "--dir", str(folder)], log)
    try:
        assert wait_until(lambda: _serving(base), 120)
        assert "reusing the demo force" in log.read_text()
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=120) == 0
