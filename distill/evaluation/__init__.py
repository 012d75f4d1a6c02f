"""Evaluation shared by every trainer and command: metrics, PNG panels, test-time augmentation, and
the statistics that turn seeds into intervals."""
