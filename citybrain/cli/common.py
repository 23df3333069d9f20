"""What every command module shares: the settings (invalid ones exit 2 with the reason) and
a red error line with its exit status."""

from __future__ import annotations

import typer

from citybrain.settings import Settings, get_settings


def cli_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        typer.secho(f"invalid settings:\n{exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)
