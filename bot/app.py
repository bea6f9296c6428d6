"""Building the Bolt app and the services behind it from settings."""

from __future__ import annotations

import functools
import logging
from typing import Any

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient

import handlers
from bot.config import ConfigError, Settings, backend_options
from bot.executor import InlineExecutor, TrackedExecutor
from bot.pacing import PacedPoster
from bot.retrier import OutboxRunner
from bot.scheduler import DigestScheduler
from bot.store import Store
from handlers.context import Background, Deps
from handlers.digests import DigestSender
from handlers.notices import report_queued_write
from services.backends.base import Backend
from services.backends.local import LocalBackend
from services.leads import LeadService
from services.reminders import Reminders

log = logging.getLogger("leadbot")


def build_backends(settings: Settings, store: Store, *, transport: Any = None) -> dict[str, Backend]:
    """``local`` always; each remote backend whose URL and credentials are set.

    ``transport`` (an httpx transport) is for tests that fake a backend in-process.
    """
    backends: dict[str, Backend] = {"local": LocalBackend(store)}
    if settings.leadbot_capillary_url or settings.leadbot_leadsapi_url:
        # Imported only when configured: httpx and tenacity cost ~20 MB in each process.
        from services.backends.capillary import CapillaryBackend
        from services.backends.http import HttpSettings
        from services.backends.leadsapi import LeadsApiBackend
    if settings.leadbot_capillary_url:
        options = backend_options(settings, "capillary")
        backends["capillary"] = CapillaryBackend(
            store,
            HttpSettings(
                settings.leadbot_capillary_url,
                connect_timeout=options.connect_timeout,
                read_timeout=options.timeout,
            ),
            username=settings.leadbot_capillary_username,
            password=settings.leadbot_capillary_password,
            token=settings.leadbot_capillary_token,
            lead_type=options.type,
            org_source_id=options.org_source_id,
            till_id=options.till_id,
            extended_fields=options.extended_fields,
            transport=transport,
        )
    if settings.leadbot_leadsapi_url:
        options = backend_options(settings, "leadsapi")
        backends["leadsapi"] = LeadsApiBackend(
            store,
            HttpSettings(
                settings.leadbot_leadsapi_url,
                connect_timeout=options.connect_timeout,
                read_timeout=options.timeout,
            ),
            token=settings.leadbot_leadsapi_token,
            auth_header=options.auth_header,
            auth_scheme=options.auth_scheme,
            business=options.business,
            state=options.state,
            closed_statuses=tuple(options.closed_statuses),
            transport=transport,
        )
    return backends


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


def _drop_token_unused_warning(record: logging.LogRecord) -> bool:
    # Bolt falls back to $SLACK_BOT_TOKEN when given a client and then warns that it
    # is unused; we pass the client on purpose, to honour SLACK_API_URL.
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_app(
    settings: Settings,
    service: LeadService,
    *,
    executor: Background | None = None,
    verify_requests: bool = True,
) -> App:
    """The Bolt app: listeners ack first and hand their work to ``executor``.

    ``process_before_response=True`` returns the ack as soon as the listener
    has run, instead of polling for it every 10 ms (see FLOOR.md).
    ``verify_requests=False`` is only for the work process, whose requests were
    verified by the serving process and reach it over a private pipe.
    """
    executor = executor or TrackedExecutor()
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    client = build_client(settings)
    bolt_logger = logging.getLogger("leadbot.bolt")
    bolt_logger.addFilter(_drop_token_unused_warning)
    # Bolt compares the logger's own level (not the effective one) with DEBUG before
    # formatting a debug line per middleware per request; NOTSET (0) would always pass.
    bolt_logger.setLevel(logging.getLogger("leadbot").getEffectiveLevel())
    app = App(
        client=client,
        signing_secret=secret,
        process_before_response=True,
        request_verification_enabled=verify_requests,
        logger=bolt_logger,
    )
    handlers.register(app, build_deps(settings, service, executor, client))
    return app


def build_client(settings: Settings, *, retries: bool = True) -> WebClient:
    """``retries=False``: no automatic resend on a connection error, for posts that must not be doubled."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = WebClient(token=token, base_url=settings.slack_api_url or WebClient.BASE_URL)
    if not retries:
        client = WebClient(token=token, base_url=client.base_url, timeout=15, retry_handlers=[])
    return client


def build_deps(settings: Settings, service: LeadService, executor: Background, client: WebClient) -> Deps:
    return Deps(
        service=service,
        background=executor,
        client=client,
        admins=settings.leadbot_admins,
        phone_region=settings.leadbot_phone_region,
        feeds=settings.file.feeds,
        poster=PacedPoster(build_client(settings, retries=False), settings.leadbot_digest_rate),
    )


def build_digest_scheduler(settings: Settings, service: LeadService, **options: Any) -> DigestScheduler:
    """Daily digests, from a loop over the store (see bot/scheduler.py)."""
    deps = build_deps(settings, service, InlineExecutor(), build_client(settings))
    sender = DigestSender(deps, Reminders(service), deps.poster)
    return DigestScheduler(sender, lambda: service.clock(), **options)


def build_outbox_runner(settings: Settings, service: LeadService, **options: Any) -> OutboxRunner:
    """The background retrier of queued writes, reporting to people through Slack."""
    deps = build_deps(settings, service, InlineExecutor(), build_client(settings))
    return OutboxRunner(service, functools.partial(report_queued_write, deps), **options)
