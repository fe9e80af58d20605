"""Reviewing model changes: diffs of compiled graphs, weight migration."""
