"""Exact top-k by cosine (dot product of unit vectors), in corpus blocks with a running merge, so
memory is bounded by queries × (k + block), never by queries × corpus."""

from __future__ import annotations

import numpy as np
import torch


def blocked_topk(queries: np.ndarray, corpus: np.ndarray, k: int, block: int = 4096,
                 query_block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(scores, indices), each (n_queries, min(k, n_corpus)), best first."""
    k = min(k, len(corpus))
    c = np.ascontiguousarray(corpus, dtype=np.float32)
    out_s = np.empty((len(queries), k), np.float32)
    out_i = np.empty((len(queries), k), np.int64)
    for q0 in range(0, len(queries), query_block):
        q = np.ascontiguousarray(queries[q0 : q0 + query_block], dtype=np.float32)
        best_s = torch.full((len(q), k), -torch.inf)
        best_i = torch.zeros((len(q), k), dtype=torch.long)
        for c0 in range(0, len(c), block):
            # numpy's BLAS matmul is the fast part here; torch's top-k is the fast selection
            s = torch.from_numpy(q @ c[c0 : c0 + block].T)
            kk = min(k, s.shape[1])
            bs, bi = torch.topk(s, kk, dim=1, sorted=False)
            cat_s = torch.cat([best_s, bs], dim=1)
            cat_i = torch.cat([best_i, bi + c0], dim=1)
            top_s, pos = torch.topk(cat_s, k, dim=1)
            best_s, best_i = top_s, torch.gather(cat_i, 1, pos)
        order = torch.argsort(best_s, dim=1, descending=True)
        out_s[q0 : q0 + len(q)] = torch.gather(best_s, 1, order).numpy()
        out_i[q0 : q0 + len(q)] = torch.gather(best_i, 1, order).numpy()
    return out_s, out_i
