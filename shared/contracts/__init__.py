"""Typed contracts for what crosses a service boundary (one module per concern)."""
