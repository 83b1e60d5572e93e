"""Entry point of the bundled application: the same ``entry`` as the ``pretrain-workbench`` command."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()        # worker processes of a frozen app start through this file
    from workbench.__main__ import entry

    sys.exit(entry())
