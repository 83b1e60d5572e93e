"""Where the run database is: ``--db``, else ``WORKBENCH_DB``, else a file in the user data directory.

Kept apart from ``database`` so that finding the URL does not import SQLAlchemy
(the window paints before the database is opened).
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.redaction import remember_url


def default_database_url() -> str:
    from workbench.user_folders import data_folder

    return f"sqlite:///{data_folder() / 'runs.db'}"


def resolve_url(url: str | None = None) -> str:
    """``url`` if given, else ``WORKBENCH_DB``, else the default file. A bare path means SQLite."""
    url = url or os.environ.get("WORKBENCH_DB") or default_database_url()
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return remember_url(url)  # its password is hidden wherever it would be shown or logged
