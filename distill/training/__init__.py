"""Training: the training core, the student and teacher trainers on it, and the run configs, run
folders, checkpoints and provenance they write."""
