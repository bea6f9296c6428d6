"""Slack listeners: parse commands and payloads, call services, render Block Kit."""

from __future__ import annotations

from slack_bolt import App

from handlers import actions, command, home, previews, shortcuts, views
from handlers.context import Deps

EVENT_TYPES = (*home.EVENTS, *previews.EVENTS)
EVENT_SCOPES = previews.SCOPES


def register(app: App, deps: Deps) -> None:
    """Every listener (the notifier that tells people what happened is subscribed by the app factory)."""
    command.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
    home.register(app, deps)
    shortcuts.register(app, deps)
    previews.register(app, deps)
