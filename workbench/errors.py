"""Errors a user can cause, each carrying a message written for a person.

The CLI prints ``error: <message>`` and exits with status 2; the GUI shows the
message in a dialog. Anything that is not a ``WorkbenchError`` is a bug and
keeps its traceback in the log file instead.
"""


class WorkbenchError(Exception):
    """Base class for every error caused by the user's input."""


def read_user_text(path, error: type[WorkbenchError], what: str) -> str:
    """A user's UTF-8 text file (``what``: "config file", "probe file", ...), or ``error`` with a message
    that names the file: missing, unreadable, or not UTF-8."""
    from pathlib import Path

    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what} ({exc})") from None


class ConfigError(WorkbenchError):
    """A setting is unknown, of the wrong type, or out of range."""


class CorpusError(WorkbenchError):
    """A corpus path or file cannot be read as text."""


class TokenizerError(WorkbenchError):
    """A tokenizer file is corrupt or lacks what BERT needs."""


class DatasetError(WorkbenchError):
    """A prepared dataset directory is missing, incomplete or incompatible."""


class StoreError(WorkbenchError):
    """The run database cannot be opened or used."""
