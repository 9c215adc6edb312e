"""Opening a study's storage: a journal file on this machine, or a database shared by several.

A database URL gets the driver that is installed (a plain `postgresql://` is read by psycopg 3,
or by psycopg2 where only that is installed), one line naming the problem and its fix when the
driver is missing, the server cannot be reached or refuses the login, and retries on first
contact: workers started at the same moment on a new database all try to create Optuna's tables,
and all but one lose that race ("CREATE TYPE ... already exists"), which is no reason to stop.
"""

from __future__ import annotations

import importlib.util
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FIRST_CONTACT_TRIES = 8  # attempts at the tables and the study, about 10 s in all with the back-off
POSTGRES_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))  # (module, SQLAlchemy driver name)
POSTGRES_FIX = "pip install 'rnn-workbench[postgres]'"


class StorageError(ValueError):
    """A study's storage that cannot be opened, said in one line with what to do about it."""


def is_database(storage: str) -> bool:
    return "://" in storage


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:  # not a URL at all: nothing in it reads as a password
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def database_url(url: str) -> str:
    """`url` with the driver SQLAlchemy should use for it: for a bare postgresql:// the one installed."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        for module, driver in POSTGRES_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return f"postgresql+{driver}://{rest}"
        raise StorageError(f"--storage {shown_url(url)}: no PostgreSQL driver is installed; {POSTGRES_FIX}")
    if scheme.startswith("postgresql+"):
        module = scheme.split("+", 1)[1]
        if importlib.util.find_spec(module) is None:
            raise StorageError(f"--storage {shown_url(url)}: its driver {module} is not installed; "
                               f"{POSTGRES_FIX} (or pip install {module})")
    return url


def _server(url: str) -> tuple[str, str, str, str]:
    """(host:port, createdb's -h/-p, user, database) as the URL gives them, for messages."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"postgresql": 5432, "mysql": 3306}.get(parts.scheme.split("+")[0], "")
    except ValueError:
        return "?", "?", "?", "?"
    host = parts.hostname or "localhost"
    at = f"-h {host}" + (f" -p {parts.port}" if parts.port else "")
    return (f"{host}:{port}" if port else host), at, parts.username or "(none given)", parts.path.lstrip("/")


def explain(url: str, exc: BaseException) -> StorageError:
    """One line for an error met opening a database, naming the server and the fix where known."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    low = text.lower()
    where, at, user, name = _server(url)
    if isinstance(exc, ImportError) or "failed to import db access module" in low:
        return StorageError(f"--storage {shown_url(url)}: its database driver is not installed; "
                            f"{POSTGRES_FIX}")
    if "could not parse" in low or "can't load plugin" in low or where == "?" or \
            (isinstance(exc, ValueError) and not hasattr(exc, "orig")):
        return StorageError(f"--storage {shown_url(url)}: not a database URL Optuna can open (e.g. "
                            "postgresql://user@host/database, sqlite:///path): " + text[:200])
    if "password authentication failed" in low or "role" in low and "does not exist" in low or \
            "no password supplied" in low or "authentication" in low:
        return StorageError(f"--storage {shown_url(url)}: the server at {where} refused the login of user "
                            f"{user}: {text[:200]}")
    if "database" in low and "does not exist" in low:
        return StorageError(f"--storage {shown_url(url)}: the server at {where} has no database {name!r}: "
                            f"create it (createdb {at} {name})")
    if "connection refused" in low or "could not connect" in low or "connection to server" in low or \
            "timeout" in low or "name or service not known" in low or "could not translate host" in low:
        return StorageError(f"--storage {shown_url(url)}: cannot reach the database server at {where}: is it "
                            f"running, and listening on that host and port? ({text[:160]})")
    return StorageError(f"--storage {shown_url(url)}: cannot open the study's database: {text[:240]}")


def _racing(exc: BaseException) -> bool:
    """Whether `exc` is what a worker gets for creating the schema or the study beside another."""
    text = str(getattr(exc, "orig", None) or exc).lower()
    return "already exists" in text or "duplicate key" in text or "unique constraint" in text or \
        "deadlock" in text


def first_contact(make: Any, url: str) -> Any:
    """`make()` (a storage or a study), retried with a jittered back-off while it loses a creation race."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    for attempt in range(FIRST_CONTACT_TRIES):
        try:
            return make()
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise explain(url, exc) from None
        except StorageError:
            raise
        except ValueError as exc:  # a URL its parser could not read (a bad port, say)
            raise explain(url, exc) from None
        except DBAPIError as exc:
            if not _racing(exc) or attempt == FIRST_CONTACT_TRIES - 1:
                raise explain(url, exc) from None
        time.sleep(random.uniform(0.1, 0.3) * (attempt + 1))
    raise AssertionError("unreachable")


def open_storage(storage: str) -> Any:
    """An Optuna storage for a database URL, or a journal file for a plain path (StorageError if not)."""
    import optuna

    if not is_database(storage):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(storage)
        return optuna.storages.JournalStorage(backend)
    url = database_url(storage)
    # pool_pre_ping: a sweep lives for hours, and a server restart in between drops pooled connections
    return first_contact(lambda: optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}),
                         storage)
