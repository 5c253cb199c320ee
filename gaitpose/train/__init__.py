"""Student training (torch): dataset and augmentation, loss, training loop, checkpoints, CLI.

Only ``config`` is importable without torch; everything else needs the ``train`` extra.
"""
