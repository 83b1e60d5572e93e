"""Secrets out of every text a person or a log sees: database URLs, argv, messages, tracebacks.

A SQLAlchemy URL can carry a secret in two places: the password of its user
part (``postgresql+psycopg://alice:SECRET@host/db``) and its query string
(``?password=SECRET``, ``?sslpassword=SECRET``, a token or key for a cloud
driver). ``redact_url`` hides both; ``scrub`` hides them inside any text (a
driver's error message, a traceback, a command line), plus every secret value
this process has seen in a URL it resolved (``remember_url``), wherever it
appears verbatim. Plain Python: no SQLAlchemy, no Qt (the window shows URLs
before the database is opened).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote

HIDDEN = "***"

# scheme://user:PASSWORD@ - the password runs to the last "@" before any white space, as SQLAlchemy reads it.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][\w+.-]*://[^:/@\s]*:)(?P<secret>[^\s]*)(?P<at>@)")
# name=VALUE where the name says it is a secret: query strings, libpq's "key=value" strings, argv.
_SECRET_NAME = r"[\w.-]*?(?:password|passwd|passphrase|pwd|secret|token|api_?key|access_?key|credentials?)"
_ASSIGNMENT = re.compile(
    rf"(?P<head>(?i:\b{_SECRET_NAME})\s*=\s*)(?P<secret>'[^']*'|\"[^\"]*\"|[^\s&;#'\",)]+)")
_MIN_REMEMBERED = 3  # shorter secrets are hidden where they stand (URL, name=value), not searched for everywhere

_remembered: set[str] = set()
_lock = threading.Lock()


def url_secrets(url: str) -> list[str]:
    """The secret values ``url`` holds (its password, secret query values), raw and percent-decoded."""
    found = []
    for match in _USERINFO.finditer(url):
        found.append(match["secret"])
    query = url.partition("?")[2]
    for match in _ASSIGNMENT.finditer(query):
        found.append(match["secret"].strip("'\""))
    values = []
    for value in found:
        for form in (value, unquote(value)):
            if form and form not in values:
                values.append(form)
    return values


def remember_url(url: str) -> str:
    """Note the secrets of ``url`` so that ``scrub`` hides them anywhere; returns ``url``."""
    secrets = [value for value in url_secrets(url) if len(value) >= _MIN_REMEMBERED]
    if secrets:
        with _lock:
            _remembered.update(secrets)
    return url


def redact_url(url: str) -> str:
    """``url`` with its password and every secret query value shown as ``***``."""
    return scrub(url)


def has_secret(url: str) -> bool:
    """Whether ``url`` carries a password or a secret query value."""
    return bool(url_secrets(url))


def scrub(text: str) -> str:
    """``text`` with every secret it may hold replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['head']}{HIDDEN}{m['at']}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m['head']}{HIDDEN}", text)
    with _lock:
        remembered = sorted(_remembered, key=len, reverse=True)  # a longer secret first: one may contain another
    for secret in remembered:
        text = text.replace(secret, HIDDEN)
    return text


def scrub_argv(argv: list[str]) -> list[str]:
    """A command line fit for a log: every argument scrubbed."""
    return [scrub(argument) for argument in argv]
