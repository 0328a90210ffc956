"""Telling the data team when a run fails."""
