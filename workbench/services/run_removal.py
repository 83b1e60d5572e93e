"""Deleting a run: its rows, and its folder only when the folder provably belongs to it.

Shared by ``runs delete`` and the Runs panel. The folder path stored in the
database is never trusted on its own (anyone who can write a shared database
could point it anywhere): ``workbench.ownership.remove_run_folder`` removes it
only when its marker names this run of this database, and then only the
entries the workbench wrote.
"""

from __future__ import annotations

from workbench.errors import WorkbenchError
from workbench.ownership import folder_in_use, remove_run_folder


class DeleteError(WorkbenchError):
    """A run cannot be deleted now."""


def delete_run(repository, run_id: int) -> str:
    """Delete run ``run_id``; returns a sentence for a person saying what happened to its files."""
    run = repository.get(run_id)
    if run.status in ("running", "paused") or (run.run_dir and folder_in_use(run.run_dir)):
        raise DeleteError(f"run {run.id} is {run.status if run.status in ('running', 'paused') else 'in use'}; "
                          "stop it first")
    removal = remove_run_folder(run.run_dir, run.id, repository.database_id)
    repository.delete(run.id)
    if removal.removed:
        return f"deleted run {run.id} ({run.name}) and its folder {removal.message}"
    return f"deleted run {run.id} ({run.name})" + (f"; {removal.message}" if removal.message else "")
