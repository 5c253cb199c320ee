"""Benchmarks: the student against the teacher and against reference pose networks, on this machine.

``gaitpose bench`` (``benchmarks.suite``) runs them all in one process so every figure in
``bench.md`` was measured under the same load, on the same crops and the same video.
"""
