"""Prompt search (`promptkit optimize`): class prompts chosen by the teacher they make.

``feature_bank`` runs a frozen backbone once on fixed views of every image; ``quick_teacher`` is
the objective a trial pays: a light head trained under frozen class vectors, scored on held-out
train images (val is never seen by a search).
"""
