"""Dispatch: routing, SLA deadlines, delivery, escalation (pure parts)."""
