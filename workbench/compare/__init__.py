"""Comparing runs as the Compare panel shows them, without Qt: the view model and its plot math."""
