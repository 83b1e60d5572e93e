"""Pre-training Workbench: run and inspect BERT-style pre-training (MLM + NSP).

The core (config, data, model, train, store, interop, cli) never imports Qt;
the desktop window lives in ``workbench.gui``.
"""

__version__ = "0.1.0"
