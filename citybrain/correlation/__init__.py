"""Correlation: fusing reports of one real-world problem into one incident (pure core)."""
