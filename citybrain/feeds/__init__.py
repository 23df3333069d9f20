"""Feeds: definitions (data), the pure normaliser, and alarm rules."""
