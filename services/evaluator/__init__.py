"""UVRB: the Universal Video Retrieval Benchmark, end to end (SPEC §1)."""
