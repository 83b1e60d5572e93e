"""Inspection on the training-time axis: what a model computes on a fixed probe pack, step by step.

* ``probe_pack`` - the fixed held-out sequences, their disjoint mask patterns and the corpus statistics
  (unigram, bigram) that the stage meter compares against; built once per run, stored in its folder;
* ``reductions`` - one snapshot of a model on the pack: per head a fingerprint, per token a surprisal,
  embeddings of the frequent words, the probes' scores, dependency accuracy per head;
* ``schedule`` - at which steps snapshots are taken (0, 1, 2, 4, ... then a regular interval);
* ``store`` - snapshots as small ``.npz`` files in ``RUN/inspect/``, written atomically;
* ``recorder`` - the trainer's seam: takes the snapshots a run is due, rank 0 only;
* ``views`` - what the window and the CLI show, computed from stored snapshots (no model needed);
* ``probes`` and ``conllu`` - the user's probe files and treebanks, read and checked;
* ``from_checkpoints`` - snapshots of a run recorded before this feature, from its checkpoints.

No Qt: the window shows these through ``workbench.gui.panels.inspect_panel``.
"""

# The views of a run's inspection (``views.table``, ``inspect --view``); here so that the command line
# can list them without importing torch.
VIEWS = ("heads", "classes", "words", "stages", "embeddings", "neighbours", "probes", "syntax", "passage")
