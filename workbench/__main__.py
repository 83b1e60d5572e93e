"""``python -m workbench`` is the same as the ``pretrain-workbench`` command."""

from workbench.cli import entry

if __name__ == "__main__":
    raise SystemExit(entry())
