"""The `refundwatch` command as a new user meets it: one database whatever the folder,
said aloud; --version; keys list and revoke; defaults in help; a port in use is one line."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import cli
from app.config import get_settings
from app.db.migrate import alembic_config, upgrade_to_head


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data dir of its own, no database URL, the command run from another folder."""
    folder = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("REFUNDWATCH_DATA_DIR", str(folder))
    monkeypatch.delenv("REFUNDWATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("REFUNDWATCH_BOOTSTRAP_ADMIN_KEY", raising=False)
    monkeypatch.chdir(elsewhere)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("refundwatch ")


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "(default: 8000)" in out and "(default: 127.0.0.1)" in out


def test_keys_are_created_listed_and_revoked_in_the_one_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--name", "erp", "--scope", "ingest"]) == 0
    created = capsys.readouterr()
    key = created.out.strip()
    assert key.startswith("rw_")
    assert f"database: sqlite:///{data_dir.resolve()}/refundwatch.db" in created.err
    assert not (Path.cwd() / "refundwatch.db").exists()

    assert cli.main(["keys", "list"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    key_id, prefix, name, scopes, state = line.split("\t")
    assert (name, scopes, state) == ("erp", "ingest", "active")
    assert key.startswith(prefix.rstrip("…"))

    assert cli.main(["keys", "revoke", key_id]) == 0
    assert cli.main(["keys", "list"]) == 0
    [revoked] = capsys.readouterr().out.strip().splitlines()
    assert revoked.split("\t")[-1].startswith("revoked ")
    assert cli.main(["keys", "revoke", key_id]) == cli.EXIT_USAGE


def test_a_port_in_use_is_one_clear_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port}" in err[0]


def test_a_percent_encoded_password_reaches_the_database_as_written() -> None:
    url = "postgresql://refundwatch:p%40ss%25word@127.0.0.1:5432/refundwatch"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url


def test_migrate_takes_a_percent_encoded_password(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite URLs carry no password")
    scheme, rest = database_url.split("://", 1)
    user_and_host = rest.split("@", 1)[-1]
    # The test server trusts local connections: the password is parsed, not checked.
    upgrade_to_head(f"{scheme}://postgres:p%40ss%25word@{user_and_host}")
