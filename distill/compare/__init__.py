"""`distill compare` and the demo: the grid of prompt styles x KD terms x seeds, its tables and intervals."""
