"""No secret a database URL carries reaches a message, the error log, the window or a run's record."""

from __future__ import annotations

import pytest

from workbench.cli import main
from workbench.redaction import redact_url, remember_url, scrub, url_secrets

PASSWORD = "Hunter2-pw"
SSL_PASSWORD = "Key-Phrase-9"
QUERY_URL = (f"postgresql+psycopg:///wb?host=/nonexistent-socket-dir&user=alice&password={PASSWORD}"
             f"&sslpassword={SSL_PASSWORD}")
USER_URL = f"postgresql+psycopg://alice:{PASSWORD}@127.0.0.1:1/wb"


@pytest.mark.parametrize("url, kept", [
    (QUERY_URL, ["postgresql+psycopg:///wb?host=/nonexistent-socket-dir&user=alice&password=***"]),
    (USER_URL, ["postgresql+psycopg://alice:***@127.0.0.1:1/wb"]),
    ("postgresql://bob:p%40ss@db.example/wb?sslmode=require", ["bob:***@db.example/wb?sslmode=require"]),
    ("mssql+pyodbc://u:pw@dsn?Authentication=x&access_token=tok123", ["u:***@dsn", "access_token=***"]),
    ("sqlite:////home/me/runs.db", ["sqlite:////home/me/runs.db"]),
])
def test_every_secret_of_a_url_is_hidden_and_the_rest_kept(url, kept):
    shown = redact_url(url)
    for part in kept:
        assert part in shown
    for secret in url_secrets(url):
        assert secret not in shown


def test_a_remembered_password_is_hidden_wherever_it_appears():
    remember_url("postgresql://carol:Verbatim-Secret-42@host/db")
    assert scrub("driver said: authentication with 'Verbatim-Secret-42' failed") == \
        "driver said: authentication with '***' failed"
    assert scrub("conninfo: host=x password=abc user=y") == "conninfo: host=x password=*** user=y"
    assert scrub("tokens_per_second=1234 mlm_loss=2.5") == "tokens_per_second=1234 mlm_loss=2.5"


@pytest.mark.parametrize("url", [QUERY_URL, USER_URL])
def test_cli_errors_name_the_database_without_its_secrets(url, capsys):
    assert main(["runs", "--db", url]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "***" in lines[0], err
    assert PASSWORD not in err and SSL_PASSWORD not in err
    assert "WORKBENCH_DB" in err          # the note on keeping a password off the command line


def test_the_error_log_keeps_no_secret_of_the_command_line(monkeypatch, tmp_path, capsys):
    from workbench.commands import history

    def crash(args):
        raise RuntimeError(f"bug while talking to {args.db}")

    monkeypatch.setattr(history, "cmd_runs", crash)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    from workbench.error_log import log_path

    assert main(["runs", "--db", USER_URL]) == 1
    err = capsys.readouterr().err
    log = log_path().read_text(encoding="utf-8")
    assert "RuntimeError" in log and "alice:***@127.0.0.1" in log
    assert PASSWORD not in log and PASSWORD not in err


def test_the_window_about_box_and_error_dialogs_hide_the_password(qtbot, tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QSettings

    from workbench.gui.main_window import MainWindow

    window = MainWindow(db=str(tmp_path / "runs.db"), data_dir=tmp_path / "data",
                        settings=QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                        prepare_on_start=False)
    qtbot.addWidget(window)
    window.db_url = remember_url(QUERY_URL)
    about = window.about_text()
    assert "password=***" in about and PASSWORD not in about and SSL_PASSWORD not in about
    window.show_error("Cannot open the database", f"could not connect with password {PASSWORD}")
    assert PASSWORD not in window.last_error and "***" in window.last_error
