"""Services: the one launch path of a run, shared by the command line and the window (no Qt)."""
