"""The search API (FastAPI) and the dashboard it serves."""
