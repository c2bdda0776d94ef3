"""A process killed in the middle of a file leaves nothing of it; a rerun equals one clean run."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from engine.ingest.batches import Ingestor
from engine.ingest.files import ingest_files
from models.db import make_engine, migrate
from tests.feedfiles import SAMPLE_ROWS, database_state, write_csv

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import engine.ingest.batches
    from engine.ingest.batches import Ingestor
    from engine.ingest.files import ingest_files
    from models.db import make_engine

    engine.ingest.batches.CHUNK_ROWS = 500  # several writes inside the file's one transaction

    calls = []

    def progress(name, rows):
        # Killed after several chunks of the big file were written in its transaction.
        calls.append(name)
        if calls.count(name) == 4 and name.endswith("cc_incidents_big.csv"):
            os.kill(os.getpid(), signal.SIGKILL)

    ingestor = Ingestor(make_engine(sys.argv[1]), progress=progress)
    for report in ingest_files(ingestor, sys.argv[2:]):
        print(report.path, report.outcome, flush=True)
    """
)


def big_incident_file(folder):
    template = SAMPLE_ROWS["cc_incidents"][0]
    rows = [{**template, "incident_urn": f"INC-{n:05d}"} for n in range(3000)]
    return write_csv(folder / "cc_incidents_big.csv", rows)


@pytest.mark.slow
def test_killed_mid_file_then_rerun_equals_one_clean_run(database_url, tmp_path):
    units = write_csv(tmp_path / "units.csv", SAMPLE_ROWS["units"])
    incidents = big_incident_file(tmp_path)
    engine = make_engine(database_url)
    migrate(engine)

    killed = subprocess.run(
        [sys.executable, "-c", KILLER, database_url, str(units), str(incidents)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.split() == [str(units), "ok"]  # the first file finished, not the second
    after_crash = database_state(engine)
    assert after_crash["cc_incidents"] == []
    assert len(after_crash["units"]) == 2

    list(ingest_files(Ingestor(engine), [units, incidents]))
    rerun = database_state(engine)
    engine.dispose()

    clean = make_engine(f"sqlite:///{tmp_path / 'clean.sqlite'}")
    migrate(clean)
    list(ingest_files(Ingestor(clean), [units, incidents]))
    assert rerun == database_state(clean)
    assert len(rerun["cc_incidents"]) == 3000
