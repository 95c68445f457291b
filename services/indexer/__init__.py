"""Serving: Qdrant collections per model version, promotion by alias swap, search API, dashboard."""
