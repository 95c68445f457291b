"""What a pipeline stage raises for a bad input: ``Rejected``, whose message is the reason a user
reads (the item ends ``rejected``; anything else is an error the task retries)."""

from __future__ import annotations


class Rejected(Exception):
    """The input cannot become clips; the message is the reason."""
