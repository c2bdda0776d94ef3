"""`trauma-tracker pull`: configured HTTP and SQL sources, pulled from their watermarks."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner

from tests.integrations.test_http import endpoint, incident  # noqa: F401  (fixture)
from trauma_tracker.cli import main


def sources_file(tmp_path, url: str, reporting_db: str):
    path = tmp_path / "sources.toml"
    path.write_text(
        f"""
[sources.storm]
type = "http"
feed = "cc_incidents"
url = "{url}"
token_env = "TT_STORM_TOKEN"
page_size = 2
retries = 0

[sources.niche]
type = "sql"
feed = "rms_occurrences"
url_env = "TT_NICHE_URL"
query = "SELECT occurrence_ref, reported_at, hocr_code, status, updated_at FROM occurrences"
watermark_column = "updated_at"
"""
    )
    return path


def reporting_database(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'niche.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE occurrences (occurrence_ref TEXT, reported_at TEXT, hocr_code TEXT, "
            "status TEXT, updated_at TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO occurrences VALUES "
            "('OCC-1', '2025-06-01T10:00:00Z', '1/1', 'open', '2025-06-01T10:00:00Z'), "
            "('OCC-2', '2025-06-02T10:00:00Z', '8N', 'closed', '2025-06-02T10:00:00Z')"
        )
    engine.dispose()
    return url


def test_pull_reads_each_source_from_its_watermark(
    endpoint,  # noqa: F811
    database_url,
    tmp_path,
    monkeypatch,
):
    niche = reporting_database(tmp_path)
    monkeypatch.setenv("TT_SOURCES_FILE", str(sources_file(tmp_path, endpoint.url, niche)))
    monkeypatch.setenv("TT_STORM_TOKEN", "token-123")
    monkeypatch.setenv("TT_NICHE_URL", niche)
    endpoint.items = [incident(n, f"2025-06-01T10:0{n}:00Z") for n in range(1, 4)]
    runner = CliRunner()
    assert runner.invoke(main, ["--db", database_url, "init"]).exit_code == 0

    first = runner.invoke(main, ["--db", database_url, "pull", "--json"])

    assert first.exit_code == 0, first.output
    reports = json.loads(first.output)["files"]
    assert [(r["feed"], r["accepted"]) for r in reports] == [
        ("cc_incidents", 2),
        ("cc_incidents", 1),
        ("rms_occurrences", 2),
    ]
    assert endpoint.seen[0].headers["Authorization"] == "Bearer token-123"

    endpoint.items.append(incident(9, "2025-06-01T11:00:00Z"))
    second = runner.invoke(main, ["--db", database_url, "pull", "--json", "storm"])

    assert second.exit_code == 0, second.output
    assert [r["accepted"] for r in json.loads(second.output)["files"]] == [1]
    assert endpoint.seen[-1].query["since"] == "2025-06-01T10:03:00Z"


def test_pull_names_an_unknown_source(database_url, tmp_path, monkeypatch):
    path = tmp_path / "sources.toml"
    path.write_text("")
    monkeypatch.setenv("TT_SOURCES_FILE", str(path))
    result = CliRunner().invoke(main, ["--db", database_url, "pull", "nowhere"])
    assert result.exit_code == 2
    assert "no configured source named nowhere" in result.output


def test_a_bad_sources_file_is_an_error_naming_it(database_url, tmp_path, monkeypatch):
    path = tmp_path / "sources.toml"
    path.write_text('[sources.x]\ntype = "ftp"\nfeed = "units"\n')
    monkeypatch.setenv("TT_SOURCES_FILE", str(path))
    result = CliRunner().invoke(main, ["--db", database_url, "pull"])
    assert result.exit_code == 2
    assert f'{path}: [sources.x]: type must be "http" or "sql"' in result.output


def test_an_endpoint_with_a_new_cursor_on_every_empty_page_records_one_run(
    endpoint,  # noqa: F811
    database_url,
    tmp_path,
    monkeypatch,
):
    from tests.integrations.test_http import new_cursor_every_time

    endpoint.always = new_cursor_every_time(items_per_page=0)
    monkeypatch.setenv("TT_SOURCES_FILE", str(sources_file(tmp_path, endpoint.url, "unused")))
    monkeypatch.setenv("TT_STORM_TOKEN", "token-123\n")  # the newline is dropped, not sent
    monkeypatch.setenv("TT_NICHE_URL", "sqlite:///unused.sqlite")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", database_url, "init"]).exit_code == 0

    result = runner.invoke(main, ["--db", database_url, "pull", "storm"])

    assert result.exit_code == 0, result.output
    assert len(endpoint.seen) == 1
    assert endpoint.seen[0].headers["Authorization"] == "Bearer token-123"
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT source, rows FROM ingest_runs")).all()
    engine.dispose()
    assert runs == [(f"{endpoint.url} page 1", 0)]


def test_a_pull_that_hits_max_pages_stores_what_it_read_and_exits_2(
    endpoint,  # noqa: F811
    database_url,
    tmp_path,
    monkeypatch,
):
    from tests.integrations.test_http import new_cursor_every_time

    endpoint.always = new_cursor_every_time(items_per_page=2)
    path = sources_file(tmp_path, endpoint.url, "unused")
    path.write_text(path.read_text().replace("retries = 0", "retries = 0\nmax_pages = 3"))
    monkeypatch.setenv("TT_SOURCES_FILE", str(path))
    monkeypatch.setenv("TT_STORM_TOKEN", "token-123")
    monkeypatch.setenv("TT_NICHE_URL", "sqlite:///unused.sqlite")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", database_url, "init"]).exit_code == 0

    result = runner.invoke(main, ["--db", database_url, "pull", "storm", "--json"])

    assert result.exit_code == 2
    assert "the pull stopped after 3 pages (max_pages)" in result.output
    assert len(endpoint.seen) == 3
    assert "Traceback" not in result.output


def test_a_source_setting_out_of_range_is_one_line_and_exit_2(database_url, tmp_path, monkeypatch):
    path = sources_file(tmp_path, "https://cad.example/v1", "unused")
    path.write_text(path.read_text().replace("page_size = 2", "page_size = 0"))
    monkeypatch.setenv("TT_SOURCES_FILE", str(path))
    monkeypatch.setenv("TT_STORM_TOKEN", "token-123")
    monkeypatch.setenv("TT_NICHE_URL", "sqlite:///unused.sqlite")

    result = CliRunner().invoke(main, ["--db", database_url, "pull"])

    assert result.exit_code == 2
    assert result.output == (
        f"trauma-tracker: {path}: [sources.storm]: page_size: 0 is out of range: it must be "
        "between 1 and 100000\n"
    )
