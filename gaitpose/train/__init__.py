"""Student training (torch): dataset and augmentation, loss, training loop, CLI
(the checkpoint format is ``gaitpose.nn.checkpoint``).

Only ``config`` is importable without torch; everything else needs the ``train`` extra.
"""
