"""`citybrain privacy erase`: a caller's personal data erased on request (PIPL), recorded."""

from __future__ import annotations

from typing import Annotated

import typer

from citybrain.cli.common import cli_settings, fail

app = typer.Typer(help="个人信息 Personal data (PIPL): erasure on request.", no_args_is_help=True)


@app.command("erase")
def erase(
    phone: Annotated[str, typer.Option(help="The caller's number, in any usual form.")],
    operator: Annotated[str, typer.Option(help="Who erases it (recorded).")],
    reason: Annotated[str, typer.Option(help="Why, e.g. the request's reference (recorded).")],
) -> None:
    """删除来电人的个人信息并记录 Erase one caller's contacts and record who, when and why."""
    from citybrain.db.connect import connect
    from citybrain.db.privacy import erase_caller, subject_hash

    try:
        subject = subject_hash(phone)
        with connect(cli_settings(), autocommit=True, connect_timeout=5) as conn:
            erased = erase_caller(conn, phone, operator, reason)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:
        raise fail(f"cannot erase: {exc}") from exc
    typer.echo(
        f"已删除 {erased} 条联系记录 erased {erased} contact row(s) of caller {subject}; "
        "recorded in privacy_erasures"
    )
