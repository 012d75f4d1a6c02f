"""The distillation stage of promptkit, one package per concern.

``datasets`` (segmentation data, with the synthetic street renderer in ``datasets.street``),
``kd`` (KD losses, terms, teacher outputs and the view bank), ``evaluation`` (metrics, panels,
test-time augmentation, seed statistics), ``training`` (the training core, the student and
teacher trainers, run configs, folders and checkpoints), ``unlabelled`` (prediction,
pseudo-labels, vDNA, adaptation) and ``compare`` (the style x KD x seed grid and the demo).
Each package imports only those listed before it; README "Design" says where new code goes.
"""
