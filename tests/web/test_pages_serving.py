"""`trauma-tracker serve`: what it refuses, and a real gunicorn with several workers that share
no state a request depends on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import requests

from tests.web.conftest import build_web_force
from trauma_tracker.cli_web import check_serving, is_loopback
from trauma_tracker.settings import Settings, WebSettings


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("tracker.force.example", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_dev_login_is_refused_off_loopback_and_says_why():
    settings = Settings(secret_key="k", web=WebSettings(dev_login=True))
    with pytest.raises(click.UsageError, match="only allowed when the server listens on loopback"):
        check_serving(settings, "0.0.0.0")


def test_a_secret_key_is_required_unless_it_is_the_demo_on_loopback():
    with pytest.raises(click.UsageError, match="TT_SECRET_KEY is required"):
        check_serving(Settings(), "127.0.0.1")
    with pytest.raises(click.UsageError, match="TT_SECRET_KEY is required"):
        check_serving(Settings(), "0.0.0.0")
    demo = check_serving(Settings(web=WebSettings(dev_login=True)), "127.0.0.1")
    assert demo.secret_key and len(demo.secret_key) >= 48
    given = check_serving(Settings(secret_key="from-the-operator"), "0.0.0.0")
    assert given.secret_key == "from-the-operator"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(database_url: str, rules: Path, *args: str, env: dict[str, str]):
    command = [sys.executable, "-m", "trauma_tracker", "--db", database_url, "--rules", str(rules)]
    return subprocess.Popen(
        [*command, *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_refuses_the_dev_login_on_a_public_address(tmp_path):
    from tests.forcedata import write_rules

    process = _cli(
        f"sqlite:///{tmp_path / 't.sqlite'}",
        write_rules(tmp_path / "rules"),
        "serve",
        "--host",
        "0.0.0.0",
        env={"TT_DEV_LOGIN": "1"},
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "TT_DEV_LOGIN=1" in output and "loopback" in output


@pytest.mark.slow
def test_several_workers_accept_each_others_sessions_and_tokens(tmp_path):
    """The demo's generated key is made once, before the workers start: a cookie or token
    from one worker works on every other one."""
    from tests.forcedata import write_rules

    url = f"sqlite:///{tmp_path / 'web.sqlite'}"
    rules = write_rules(tmp_path / "rules")
    build_web_force(url, rules).force.close()
    port = _free_port()
    process = _cli(
        url, rules, "serve", "--port", str(port), "--workers", "3", env={"TT_DEV_LOGIN": "1"}
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # workers boot slowly on a busy machine
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=20).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the server did not start")
            time.sleep(0.2)
        token = requests.post(
            f"{base}/dev/token", json={"staff_id": "P100", "roles": []}, timeout=20
        ).json()["access_token"]
        answers = set()
        for _ in range(30):
            # A new connection each time, so gunicorn hands requests to different workers.
            response = requests.get(
                f"{base}/me",
                headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                timeout=20,
                allow_redirects=False,
            )
            answers.add(response.status_code)
        assert answers == {200}
        assert requests.get(f"{base}/readyz", timeout=20).json()["status"] == "ready"
        # The session cookie of the persona picker is not marked Secure on loopback.
        session = requests.Session()
        page = session.get(f"{base}/dev/login", timeout=20)
        token_field = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        signed = session.post(
            f"{base}/dev/login",
            data={"csrf_token": token_field, "staff_id": "P200"},
            allow_redirects=False,
            timeout=20,
        )
        assert signed.status_code == 302
        assert "secure" not in signed.headers["Set-Cookie"].lower()
        assert all(session.get(f"{base}/team", timeout=20).status_code == 200 for _ in range(10))
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert output.count("Booting worker") == 3
    assert "Authorization" not in output and token not in output
