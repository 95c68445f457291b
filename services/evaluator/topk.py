"""The evaluator's exact blocked top-k: the algorithm lives in shared/topk.py (the trainer's
hard-negative mining uses it too); this module keeps the evaluator's import path."""

from shared.topk import _QueryBlock, _single_threaded_here, blocked_topk

__all__ = ["blocked_topk", "_QueryBlock", "_single_threaded_here"]
