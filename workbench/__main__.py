"""The program's entry point: the ``pretrain-workbench`` command, ``python -m workbench`` and the bundle."""


def entry() -> int:
    """``workbench.cli.main`` on the command line, in a process whose malloc takes transparent huge pages
    where that gains (``workbench.train.allocator.restart_with_huge_pages``: the first start is replaced
    by a second before the command line is even read: the restart costs 0.1-0.2 s, the CLI's imports 0.7)."""
    from workbench.train.allocator import restart_with_huge_pages

    restart_with_huge_pages()
    from workbench.cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(entry())
