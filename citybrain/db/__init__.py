"""Database administration from the shell: migrations and status."""
