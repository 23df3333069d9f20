"""`citybrain settings`: every setting with its environment variable (or the README table)."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings
from citybrain.settings import Settings


def show_settings(
    markdown: Annotated[bool, typer.Option(help="Print the README table of settings.")] = False,
) -> None:
    """Print every setting with its environment variable and current value (secrets hidden)."""
    settings = cli_settings()
    if markdown:
        typer.echo("| variable | default | description |\n|---|---|---|")
    for name, field in Settings.model_fields.items():
        env = f"CITYBRAIN_{name.upper()}"
        if markdown:
            default = field.default
            shown = "(secret)" if "SecretStr" in str(field.annotation) else default
            if hasattr(shown, "relative_to"):
                shown = str(shown).replace(
                    str(Settings.model_fields["kafka_home"].default.parents[2]), "."
                )
            typer.echo(f"| `{env}` | `{shown}` | {field.description} |")
        else:
            typer.echo(f"{env}={getattr(settings, name)}")
