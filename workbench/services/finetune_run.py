"""One fine-tuning comparison, for the CLI's ``finetune`` and the window's Fine-tune panel alike: read the
labelled data (a file, a built-in task, an optional held-out file), fine-tune every arm over every seed
(``train.finetune.compare_arms``), record the comparison in the run history, export the fine-tuned model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from workbench.errors import ConfigError
from workbench.train.finetune import Comparison, FinetuneConfig


@dataclass
class FinetuneRequest:
    source: str                              # a pre-training run folder, checkpoint or export
    data: str                                # a labelled .csv/.tsv/.jsonl, or a built-in task (``builtin:...``)
    config: FinetuneConfig = field(default_factory=FinetuneConfig)
    dev: str | None = None                   # the held-out file; None: a share of ``data``
    text_column: str | None = None
    pair_column: str | None = None
    label_column: str | None = None
    export: str | None = None                # write the fine-tuned pre-trained arm (first seed) here


@dataclass
class FinetuneOutcome:
    comparison: Comparison
    train_examples: int
    heldout_examples: int
    label_names: list[str]
    columns: str                             # how the file's columns were read ("" for a built-in task)
    recorded_run: int | None                 # the comparison's run id in the database, if recorded
    stopped: bool = False                    # stopped before the end: nothing recorded

    @property
    def summary(self) -> dict:
        return self.comparison.summary()


def run_finetune(request: FinetuneRequest, repository=None, on_point: Callable | None = None,
                 should_stop: Callable[[], bool] | None = None, on_data: Callable | None = None) -> FinetuneOutcome:
    """Read, fine-tune, record (when ``repository`` is given and the comparison ran to its end), export.
    ``on_data(train, heldout)`` is called once the data is read, before any training."""
    from workbench.data.labelled import BUILTIN_TASKS, read_labelled, split
    from workbench.train.finetune import compare_arms

    config = request.config
    config.validate()
    source = BUILTIN_TASKS.get(request.data, request.data)
    if request.dev and _same_file(request.dev, request.data):
        raise ConfigError(f"finetune: --dev {request.dev} is the --data file itself: held-out scores would be "
                          f"measured on the training examples")
    columns = (request.text_column, request.pair_column, request.label_column)
    data = read_labelled(source, *columns)
    if request.dev:
        train, heldout = data, read_labelled(request.dev, *columns, label_names=data.label_names)
    else:
        train, heldout = split(data, config.heldout_fraction)
    if on_data is not None:
        on_data(train, heldout)
    comparison = compare_arms(request.source, train, heldout, config, on_point, should_stop=should_stop)
    stopped = bool(should_stop and should_stop())
    recorded = None
    if repository is not None and comparison.arms and not stopped:
        from workbench.services.finetune_record import record_comparison

        recorded = record_comparison(repository, comparison, config, str(request.source), source)
    if request.export and not stopped:
        from workbench.interop.huggingface import export_classifier

        export_classifier(comparison.model, comparison.tokenizer, train.label_names, request.export,
                          str(request.source), comparison.max_length)
    return FinetuneOutcome(comparison, len(train), len(heldout), list(train.label_names), data.columns or "",
                           recorded, stopped)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:            # one of them is missing or built-in: reading it says so
        return False
