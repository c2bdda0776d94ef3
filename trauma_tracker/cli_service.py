"""`trauma-tracker run` (the web app and the scheduler) and `trauma-tracker scheduler` (the
scheduler alone), registered on `main` by `register` (the line at the bottom of cli.py).

`run` is a small supervisor: the scheduler in a process of its own, and the web app under
gunicorn (`serve`) in another; both log JSON lines to stderr. SIGTERM (or Ctrl-C) is passed to
both: gunicorn finishes the requests in flight, and the scheduler lets its job in progress
finish (each job is a transaction: what it did not commit rolls back), then returns. If
either child stops by itself, the other is stopped too and `run` exits non-zero, so systemd
can restart the whole service.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trauma_tracker.cli_options import fail

if TYPE_CHECKING:  # cli.py imports this module at its end
    from trauma_tracker.cli import Context

log = logging.getLogger("trauma_tracker.run")

# How long `run` waits for its children after passing a stop on, before killing them: a
# job in progress finishes first (a large ingest takes a while).
STOP_TIMEOUT_SECONDS = 120.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM it if `run` dies (Linux), so a killed `run` leaves no
    scheduler or server behind (under systemd, the unit's cgroup is stopped anyway)."""
    import ctypes  # here, not at the top: `trauma-tracker --help` need not wait for it

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return  # not Linux: nothing to ask for
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum, _frame):
        log.info("stop requested", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _check_drop_dirs(obj: Context) -> None:
    for folder in obj.settings.drop_dirs:
        if not Path(folder).is_dir():
            fail(f"TT_DROP_DIRS: {folder} is not a folder (create it, or fix the setting)")


@click.command("scheduler")
@click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
@click.pass_obj
def scheduler_command(obj: Context, log_level: str) -> None:
    """Run the scheduler alone: intake from TT_DROP_DIRS, pulls, evaluation, notifications,
    escalations, nightly retention and audit checkpoint. On PostgreSQL several may run; one
    is active and the others stand by. On SQLite a second one exits (status 1)."""
    from trauma_tracker import logging_setup
    from trauma_tracker.scheduler import run_scheduler

    logging_setup.configure(log_level.upper())
    _check_drop_dirs(obj)
    engine = obj.current_engine()
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        code = run_scheduler(obj.settings, stop, engine=engine)
    except ValueError as error:  # a database the scheduler can't be elected on
        fail(str(error))
    if code == 1:
        click.echo("trauma-tracker: another scheduler is already running (see the log)", err=True)
    sys.exit(code)


def _metrics_dir() -> tuple[Path, bool]:
    """PROMETHEUS_MULTIPROC_DIR for the children: the operator's (emptied of a previous
    run's files) or a new private folder removed at the end; returns it and whether it is ours.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        return folder, False
    import tempfile

    return Path(tempfile.mkdtemp(prefix="trauma-tracker-metrics-")), True


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
@click.pass_obj
def run_command(obj: Context, host: str, port: int, log_level: str) -> None:
    """Run the web app (under gunicorn, as `serve`) and the scheduler, each in its own
    process, until SIGTERM or Ctrl-C."""
    from trauma_tracker import logging_setup

    logging_setup.configure(log_level.upper())
    if "serve" not in click.get_current_context().find_root().command.commands:
        fail("the web app's `serve` command is not installed in this build")
    _check_drop_dirs(obj)
    obj.current_engine()  # the schema is current, or exit 2 saying what to do
    env = {
        **os.environ,
        "TT_DATABASE_URL": obj.settings.database_url,
        "TT_RULES_DIR": str(obj.settings.rules_dir),
    }
    sys.exit(supervise(env, host, port, log_level))


def supervise(
    env: dict[str, str],
    host: str,
    port: int,
    log_level: str,
    *,
    workers: int | None = None,
    on_serving=None,
) -> int:
    """The scheduler and the web server as children with `env`, until a stop (SIGTERM,
    Ctrl-C) or until one of them ends; returns the exit status. `on_serving` is called once
    the web server answers /healthz."""
    metrics_dir, ours = _metrics_dir()
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    command = [sys.executable, "-m", "trauma_tracker"]
    serve = [*command, "serve", "--host", host, "--port", str(port)]
    if workers is not None:
        serve += ["--workers", str(workers)]
    stop = threading.Event()
    _stop_on_signals(stop)
    children: dict[str, subprocess.Popen] = {}
    code = 0
    try:
        children["scheduler"] = subprocess.Popen(
            [*command, "scheduler", "--log-level", log_level],
            env=env,
            preexec_fn=_die_with_parent,
        )
        children["web"] = subprocess.Popen(serve, env=env, preexec_fn=_die_with_parent)
        log.info(
            "running",
            extra={name: child.pid for name, child in children.items()} | {"port": port},
        )
        announced = on_serving is None
        while not stop.wait(0.25):
            ended = {name: c.returncode for name, c in children.items() if c.poll() is not None}
            if ended:
                for name, returncode in ended.items():
                    log.error("child stopped", extra={"child": name, "returncode": returncode})
                code = next(iter(ended.values())) or 1
                break
            if not announced and _answers(host, port):
                on_serving()
                announced = True
    finally:
        _stop_children(children, metrics_dir)
        if ours:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _answers(host: str, port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop_children(children: dict[str, subprocess.Popen], metrics_dir: Path) -> None:
    from prometheus_client import multiprocess

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("child did not stop in time: killed", extra={"child": name})
            child.kill()
            child.wait()
        multiprocess.mark_process_dead(child.pid, str(metrics_dir))
    log.info("stopped", extra={n: c.returncode for n, c in children.items()})


@click.command("demo")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dir",
    "folder",
    default="demo-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo's force, database and messages live.",
)
@click.option("--fresh", is_flag=True, help="Make a new force instead of reusing the last.")
@click.pass_obj
def demo_command(obj: Context, port: int, folder: Path, fresh: bool) -> None:
    """A synthetic force (600 people, 3 years, with faults) ingested and evaluated into
    FOLDER, the scheduler running, notifications going to a local mail server and a local
    Teams webhook (kept in FOLDER/mail and FOLDER/teams), served on http://127.0.0.1:PORT
    with the persona picker. A second run reuses the force unless --fresh."""
    from trauma_tracker import demo, logging_setup
    from trauma_tracker.sinks import MailSink, TeamsSink

    logging_setup.configure("WARNING")  # the console shows the demo's progress instead

    def say(message: str) -> None:
        click.echo(message, err=True)

    started = time.monotonic()
    demo.prepare(folder, obj.settings.rules_dir, fresh=fresh, say=say)
    folder = folder.resolve()
    try:
        mail = MailSink(folder / "mail").start()
    except ImportError:
        fail("the demo's mail server needs aiosmtpd: pip install -e '.[dev]'")
    teams = TeamsSink(folder / "teams").start()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TT_")},
        "TT_DATABASE_URL": demo.database_url(folder),
        "TT_RULES_DIR": str(obj.settings.rules_dir),
        "TT_DEV_LOGIN": "1",
        "TT_BASE_URL": base,
        "TT_SMTP_URL": mail.url,
        "TT_EMAIL_FROM": "trauma-tracker@demo.example",
        "TT_TEAMS_WEBHOOK_URL": teams.url,
        "TT_DROP_DIRS": str(folder / "drop"),
    }

    def serving() -> None:
        say(
            f"\nTrauma Tracker demo: {base} (pick a persona; ready in "
            f"{time.monotonic() - started:.0f} s)\n"
            f"  notifications: {folder / 'mail'} (email) and {folder / 'teams'} (Teams cards)\n"
            f"  drop folder: {folder / 'drop'} (copy a feed file in)\n"
            "  Ctrl-C to stop."
        )

    try:
        code = supervise(env, "127.0.0.1", port, "WARNING", workers=2, on_serving=serving)
    finally:
        mail.stop()
        teams.stop()
    sys.exit(code)


def register(group: click.Group) -> None:
    """Add `run`, `scheduler` and `demo` to the command line."""
    group.add_command(run_command)
    group.add_command(scheduler_command)
    group.add_command(demo_command)
