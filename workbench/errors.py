"""Errors a user can cause, each carrying a message written for a person.

The CLI prints ``error: <message>`` and exits with status 2; the GUI shows the
message in a dialog. Anything that is not a ``WorkbenchError`` is a bug and
keeps its traceback in the log file instead.
"""


class WorkbenchError(Exception):
    """Base class for every error caused by the user's input."""


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
