"""The platform API: search, job submission for every service, clips and thumbnails, status,
metrics, the dashboard; API keys. Routes live in ``routes/`` (one module per resource)."""
