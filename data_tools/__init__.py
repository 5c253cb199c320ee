"""Data tools: read recordings into a frame store, pseudo-label them with a teacher, split by recording."""
