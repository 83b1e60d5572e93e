"""The user's folders the workbench writes to, in one place.

* data folder (``platformdirs.user_data_dir``): the run database, prepared
  datasets (``datasets/``) and runs started from the window (``runs/``);
* log folder (``platformdirs.user_log_dir``): ``errors.log``, the tracebacks
  behind the messages users saw;
* cache folder (``platformdirs.user_cache_dir``): the sample corpus text,
  rebuilt from the package whenever it is missing.

``platformdirs`` is imported when a folder is asked for, not at import time,
so that importing this module costs nothing before the window paints.
"""

from __future__ import annotations

from pathlib import Path

APP_NAME = "pretrain-workbench"


def data_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def datasets_folder() -> Path:
    return data_folder() / "datasets"


def cache_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def log_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
