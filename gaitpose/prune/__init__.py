"""Network-slimming channel pruning of the pose student with Torch-Pruning (torch imported lazily)."""
