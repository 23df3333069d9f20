"""`citybrain api`: serve the department API and Open311."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings


def api(
    host: Annotated[str | None, typer.Option(help="Listen address (CITYBRAIN_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (CITYBRAIN_API_PORT).")] = None,
) -> None:
    """Serve the department API and Open311 (OpenAPI document at /openapi.json, docs at
    /docs)."""
    import uvicorn

    from citybrain.api.app import create_app
    from citybrain.logs import configure_logging

    s = cli_settings()
    configure_logging(s.log_level, s.log_format)
    uvicorn.run(create_app(s), host=host or s.api_host, port=port or s.api_port, log_config=None)
