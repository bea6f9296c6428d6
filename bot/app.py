"""Building the Bolt app and the services behind it from settings."""

from __future__ import annotations

import logging
from concurrent.futures import Executor

from slack_bolt import App
from slack_sdk import WebClient

import handlers
from bot.config import ConfigError, Settings
from bot.executor import TrackedExecutor
from bot.store import Store
from handlers.context import Deps
from services.backends.base import Backend
from services.backends.local import LocalBackend
from services.leads import LeadService

log = logging.getLogger("leadbot")


def build_backends(settings: Settings, store: Store) -> dict[str, Backend]:
    return {"local": LocalBackend(store)}


def build_service(settings: Settings, store: Store | None = None) -> LeadService:
    store = store or Store(settings.leadbot_db)
    backends = build_backends(settings, store)
    if settings.leadbot_default_backend not in backends:
        raise ConfigError(
            f"LEADBOT_DEFAULT_BACKEND is {settings.leadbot_default_backend!r}, which is not configured:"
            f" expected one of {', '.join(backends)}"
        )
    for channel, backend in settings.file.channels.items():
        if backend not in backends:
            raise ConfigError(f"LEADBOT_CONFIG routes channel {channel} to {backend!r}, which is not configured")
    return LeadService(
        store,
        backends,
        default_backend=settings.leadbot_default_backend,
        channel_backends=settings.file.channels,
        self_link=settings.leadbot_self_link,
    )


def build_app(
    settings: Settings,
    service: LeadService,
    *,
    executor: Executor | None = None,
) -> App:
    """The Bolt app: listeners ack first and hand their work to ``executor``.

    ``process_before_response=True`` returns the ack as soon as the listener
    has run, instead of polling for it every 10 ms (see FLOOR.md).
    """
    executor = executor or TrackedExecutor()
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    client = WebClient(token=token, base_url=settings.slack_api_url or WebClient.BASE_URL)
    app = App(
        client=client,
        signing_secret=secret,
        process_before_response=True,
        listener_executor=executor,
        logger=logging.getLogger("leadbot.bolt"),
    )
    deps = Deps(
        service=service,
        background=executor,
        admins=settings.leadbot_admins,
        phone_region=settings.leadbot_phone_region,
    )
    handlers.register(app, deps)
    return app
