"""Intake channels: the ways a request reaches the hotline, built in or plugged in.

A channel has a ``name``, turns its raw input into the common ticket draft
(``to_draft``), and may mount HTTP routes and/or run a background task. Channels
are found through the Python entry point group ``hotline.intake_channels``; each
entry point names a class (or any callable) that makes the channel with no
arguments. The built-in channels are listed here and always present; a plugin
cannot take a built-in's name. See the README, "Write a channel plugin".
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter

from services.intake.intake import Intake
from services.intake.protection import ChannelGuard
from services.intake.status import StatusProjection
from services.intake.textparse import guess_category, guess_place
from shared.directory import Directory
from shared.domain import Channel, Citizen, TicketDraft
from shared.settings import IntakeSettings

logger = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "hotline.intake_channels"
BUILTIN: dict[str, str] = {
    "web": "services.intake.channels.web:WebChannel",
    "agent": "services.intake.channels.agent:AgentChannel",
    "open311": "services.intake.channels.open311:Open311Channel",
    "sms": "services.intake.channels.sms:SmsChannel",
    "email": "services.intake.channels.email:EmailChannel",
}


@dataclass
class ChannelContext:
    """What intake hands every channel."""

    intake: Intake
    settings: IntakeSettings
    directory: Directory
    guard: ChannelGuard
    status: StatusProjection
    clock: Callable[[], datetime]


@runtime_checkable
class IntakeChannel(Protocol):
    name: str

    def to_draft(self, raw: Any, ctx: ChannelContext) -> TicketDraft:
        """The common ticket draft made of the channel's raw input."""

    def routes(self, ctx: ChannelContext) -> APIRouter | None:
        """HTTP routes to mount on intake's app, if any."""

    def background(self, ctx: ChannelContext) -> Coroutine[Any, Any, None] | None:
        """A task to run for the life of the service, if any (e.g. a listener)."""


class BaseChannel:
    """Defaults for a channel with no routes or no background task."""

    name = ""

    def routes(self, ctx: ChannelContext) -> APIRouter | None:
        return None

    def background(self, ctx: ChannelContext) -> Coroutine[Any, Any, None] | None:
        return None


def _make(target: Callable[[], Any], origin: str) -> IntakeChannel | None:
    try:
        channel = target()
    except Exception:
        logger.exception("intake channel %s could not be made", origin)
        return None
    if not isinstance(channel, IntakeChannel) or not channel.name:
        logger.error(
            "intake channel %s is not a channel (name, to_draft, routes, background)", origin
        )
        return None
    return channel


def _builtin(name: str) -> IntakeChannel:
    module, attr = BUILTIN[name].split(":")
    channel = _make(getattr(importlib.import_module(module), attr), name)
    if channel is None:
        raise RuntimeError(f"built-in intake channel {name} is broken")
    return channel


def discover() -> list[IntakeChannel]:
    """The built-in channels, then every plugin of the entry point group. A plugin
    that fails to load is logged and left out: one broken plugin must not keep the
    hotline's front door shut."""
    channels = [_builtin(name) for name in BUILTIN]
    names = set(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in names:
            logger.error("intake channel plugin %s: the name is taken; ignored", ep.value)
            continue
        try:
            target = ep.load()
        except Exception:
            logger.exception("intake channel plugin %s could not be loaded", ep.value)
            continue
        channel = _make(target, ep.value)
        if channel is not None and channel.name != ep.name:
            logger.error("intake channel plugin %s calls itself %r; ignored", ep.name, channel.name)
        elif channel is not None:
            channels.append(channel)
            names.add(channel.name)
            logger.info("intake channel plugin %s loaded from %s", channel.name, ep.value)
    return channels


def channel_names() -> list[str]:
    return [*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))]


def free_text_draft(
    channel: Channel,
    text: str,
    ctx: ChannelContext,
    citizen: Citizen | None,
    external_id: str | None,
) -> TicketDraft:
    """A draft of a request that came as free text (SMS, email): the place and the
    category are read from the words; no place found sends it to the fallback
    district, which the rules leave to manual dispatch."""
    district, town = guess_place(text, ctx.directory)
    return TicketDraft(
        channel=channel,
        district=district or ctx.settings.fallback_district,
        town=town,
        category=guess_category(text),
        text=text,
        citizen=citizen,
        external_id=external_id,
    )
