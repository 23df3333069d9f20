"""Fault injection and hostile input against the real local stack (`citybrain chaos`).

`traffic` makes unique-id raw records and reads back what landed, `faults` kills and
restarts workers, the broker and PostgreSQL, `receiver` is a webhook endpoint that can be
taken down, `scenarios` runs one fault each and returns its figures, `report` prints them.
The same scenario functions run at full size from the command and small from
`tests/faults/`.
"""
