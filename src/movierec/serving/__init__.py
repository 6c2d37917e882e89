"""Serving: the HTTP API and web page for any trained artifact (needs the `serve` extra)."""
