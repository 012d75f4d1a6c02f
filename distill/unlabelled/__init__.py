"""Unlabelled images: predictions, pseudo-labels, vDNA ordering and bucketed adaptation."""
