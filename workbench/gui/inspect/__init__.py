"""The Inspect panel's parts (``workbench.gui.panels.inspect_panel`` lays them out and drives them).

* ``loaded_run`` - a run's snapshots and what every view needs from all of them, read on a worker;
* ``tab`` - what a view is to the panel (drawn once per pair of runs, then once per step) and the plot
  over steps that several views share;
* one module per view: ``heads_tab``, ``learned_tab``, ``embeddings_tab``, ``probes_tab``, ``syntax_tab``;
* ``widgets`` - the painted widgets: head tiles, an attention map, the surprisal-coloured passage.
"""
