"""What the stages of one worker share: its app, its settings and the configuration the
composition root (`citybrain.worker.build_worker`) loads once per worker (the city pack,
the feeds, the dispatch configuration), each loaded the first time a stage asks for it.
Stages share nothing else: no module of `agents/` holds state at module level."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import TYPE_CHECKING

from citybrain.settings import Settings, environment

if TYPE_CHECKING:
    from citybrain.dispatch.channels import Channels
    from citybrain.dispatch.plan import DispatchContext
    from citybrain.feeds.definition import Feed
    from citybrain.geo.address import Gazetteer, GazetteerEntry
    from citybrain.geo.geotag import Geotagger
    from citybrain.geo.index import GeoIndex
    from citybrain.geo.pack import CityPack
    from citybrain.streams.app import App


class StageContext:
    """One worker's app, settings and configuration."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        #: set when deliveries were queued (by the dispatch or the status stage): the
        #: outbox sends them without waiting for its next tick
        self.outbox_wake = asyncio.Event()

    @cached_property
    def pack(self) -> CityPack:
        from citybrain.geo.pack import load_pack

        return load_pack(self.settings.city_pack)

    @cached_property
    def gazetteer(self) -> Gazetteer:
        from citybrain.geo.address import load_gazetteer

        return load_gazetteer(self.pack, self.stored_register())

    def stored_register(self) -> list[GazetteerEntry]:
        """The newest address register `citybrain geo gazetteer import` stored for the
        city pack; without the database, none (the pack's own gazetteer still places)."""
        import psycopg

        from citybrain.db.registers import newest_register
        from citybrain.logs import get_logger

        try:
            with psycopg.connect(self.settings.conninfo(), connect_timeout=5) as conn:
                entries = newest_register(conn, self.pack.spec.pack)
        except psycopg.Error as exc:
            get_logger(__name__).warning("address register not loaded", error=str(exc))
            return []
        if entries:
            get_logger(__name__).info("address register loaded", entries=len(entries))
        return entries

    @cached_property
    def geo_index(self) -> GeoIndex:
        """The city pack's regions indexed once, for the geotagger and the jurisdictions."""
        from citybrain.geo.index import GeoIndex

        return GeoIndex(self.pack)

    @cached_property
    def geotagger(self) -> Geotagger:
        from citybrain.geo.geotag import Geotagger

        return Geotagger(self.geo_index, self.gazetteer)

    @cached_property
    def feeds(self) -> list[Feed]:
        from citybrain.feeds.definition import (
            feed_folders,
            load_feeds,
            select_feeds,
            with_city_devices,
        )

        folders = feed_folders(self.settings.feeds_dir)
        feeds = with_city_devices(load_feeds(*folders), self.settings.city_pack)
        return select_feeds(feeds, self.settings.normalize_feeds)

    @cached_property
    def dispatch(self) -> DispatchContext:
        """Routes, departments, SLA policy, working hours and jurisdictions."""
        from citybrain.dispatch.places import Jurisdictions
        from citybrain.dispatch.plan import DispatchContext
        from citybrain.dispatch.routing import dispatch_files, load_routing
        from citybrain.dispatch.sla import SLA_FILE, WorkingHours, load_sla_policy

        s = self.settings
        routing = load_routing(*dispatch_files(s))
        policy = load_sla_policy(s.sla_file or SLA_FILE)
        return DispatchContext(
            routing=routing,
            policy=policy,
            hours=WorkingHours.of(policy),
            jurisdictions=Jurisdictions(self.pack, self.geo_index),
        )

    @cached_property
    def channels(self) -> Channels:
        """Each department's destinations (webhook secrets from the environment)."""
        from citybrain.dispatch.channels import Channels

        return Channels.of(self.dispatch.routing, environment())
