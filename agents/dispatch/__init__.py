"""Stages `dispatch` (incidents.v1 -> tasks, their delivery and timers) and `status`
(departments' reports and operators' task commands), the owners of the `dispatches`
table, its history and its outbox (`store.py`); delivery adapters under `notify/`."""
