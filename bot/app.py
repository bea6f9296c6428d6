"""The composition root: one set of dependencies per process, built from settings.

``build_runtime`` opens the store, builds each configured backend from the
registry, and wires the services, the Slack client, the one pacer every
message goes through, the one time-zone source and the notifier. Everything
else (the Bolt app, the outbox runner, the digest scheduler) is built on a
runtime, so a process never holds two of anything.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.internals import build_context
from slack_sdk import WebClient

import handlers
from bot import redact
from bot.busy import BusyNotices
from bot.config import ConfigError, Settings
from bot.executor import TrackedExecutor
from bot.pacing import PacedPoster
from bot.retrier import OutboxRunner
from bot.scheduler import DigestScheduler
from bot.signing import Signature
from bot.slots import SlotFreeingClient, waiting, waiting_long
from bot.stores import open_store
from bot.telemetry import Telemetry
from handlers import payloads
from handlers.backpressure import refuse_when_busy
from handlers.claims import RequestClaims
from handlers.context import Background, Deps
from handlers.digests import DigestSender
from handlers.notifier import SlackNotifier
from handlers.timezones import Names, TimeZones
from services.audit import Audit
from services.backends import REGISTRY
from services.backends.base import Backend, BackendContext
from services.clock import Clock, utcnow
from services.events import Events
from services.leads import LeadService
from services.outbox import Outbox
from services.people import People
from services.ports import Store
from services.reminders import Reminders
from services.routing import Backends
from services.trace import TRACE, note, tracing

log = logging.getLogger("leadbot")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    service: LeadService
    deps: Deps
    telemetry: Telemetry
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for backend in self.service.backends:
            backend.close()
        self.store.close()


def build_backends(
    settings: Settings,
    store: Store,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
    observe: Callable[[str, str, float, str], None] | None = None,
) -> Backends:
    """Each configured backend from its spec, the default one and the channel routes checked."""
    context = BackendContext(store=store, clock=clock, sleep=sleep, observe=observe, waiting=waiting_long)
    configured: dict[str, Backend] = {
        name: REGISTRY[name].build(options, context) for name, options in settings.backends.items()
    }
    if settings.leadbot_default_backend not in configured:
        raise ConfigError(
            f"LEADBOT_DEFAULT_BACKEND is {settings.leadbot_default_backend!r}, which is not configured:"
            f" expected one of {', '.join(configured)}"
        )
    for channel, backend in settings.file.channels.items():
        if backend not in configured:
            raise ConfigError(f"LEADBOT_CONFIG routes channel {channel} to {backend!r}, which is not configured")
    return Backends(
        configured,
        default=settings.leadbot_default_backend,
        channels=settings.file.channels,
        known=REGISTRY,
    )


# Slack's Web API answers in well under a second; past 5 s the call is given up (and, for a post, looked
# for before it is sent again: bot/pacing.py), so one stuck call holds one request, not the process.
WEB_API_TIMEOUT = 5


def build_client(settings: Settings) -> WebClient:
    """One Web API client per process. No automatic resend on a connection error: a post must never be doubled.

    While a call waits on Slack, the work slot of the request making it is free (bot/slots.py).
    """
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return SlotFreeingClient(
        token=token,
        base_url=settings.slack_api_url or WebClient.BASE_URL,
        timeout=WEB_API_TIMEOUT,
        retry_handlers=[],
        ssl=tls_context(),
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every call, in every client of the process (Bolt hands the context to the client
    it makes per request): without one, urllib loads the CA bundle afresh for each HTTPS connection to
    Slack, and making one loads it too (20 ms)."""
    return ssl.create_default_context()


def build_runtime(
    settings: Settings,
    *,
    store: Store | None = None,
    background: Background | None = None,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Runtime:
    """Everything the process needs; ``sleep`` is how backends wait between retried reads."""
    redact.install()  # from here on, no log record of this process carries a response URL or an email
    store = store or open_store(settings.leadbot_db)
    telemetry = Telemetry()
    backends = build_backends(settings, store, clock, sleep, observe=telemetry.backend_call)
    audit = Audit(store.audit, clock)
    people = People(
        store.links,
        store.prefs,
        backends,
        audit,
        self_link=settings.leadbot_self_link,
        ownership=settings.leadbot_ownership,
        clock=clock,
    )
    service = LeadService(
        backends, people, Outbox(store.outbox), audit, Events(), clock=clock, writes=store.writes, atomic=store.atomic
    )
    client = build_client(settings)
    deps = Deps(
        service=service,
        people=people,
        reminders=Reminders(service, store.prefs, store.digests),
        prefs=store.prefs,
        claims=RequestClaims(store.requests),
        background=background or TrackedExecutor(settings.leadbot_workers),
        client=client,
        poster=PacedPoster(client, settings.leadbot_digest_rate, pause=sleep),
        pause=sleep,
        waiting=waiting,
        busy_notice=BusyNotices(),
        timezones=TimeZones(client, store.prefs, clock),
        names=Names(client),
        admins=settings.leadbot_admins,
        phone_region=settings.leadbot_phone_region,
        date_order=settings.leadbot_date_order,
        feeds=settings.file.feeds,
        contact_channels=frozenset(settings.file.contact_channels),
    )
    service.events.subscribe(SlackNotifier(deps))
    return Runtime(settings=settings, store=store, service=service, deps=deps, telemetry=telemetry)


def _drop_token_unused_warning(record: logging.LogRecord) -> bool:
    # Bolt falls back to $SLACK_BOT_TOKEN when given a client and then warns that it
    # is unused; we pass the client on purpose, to honour SLACK_API_URL.
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


class LeadbotApp(App):
    """Bolt's app, with the signature and the payload's shape checked before Bolt reads anything.

    Bolt's own signature check is off: it logged the whole body of every request it
    refused, at INFO. ``dispatch`` (the tests, the console, Socket Mode) checks the
    signature with ``bot.signing`` and then the envelope; the HTTP server, which has
    checked the signature on the raw bytes already, calls ``dispatch_signed``.
    """

    def __init__(self, *, signing_secret: str | None, verify_requests: bool, **options: Any) -> None:
        super().__init__(
            signing_secret=signing_secret,
            request_verification_enabled=False,
            raise_error_for_unhandled_request=True,  # answered by handlers' error handler, without the body
            # Named, Bolt does not walk the caller's stack (inspect.stack(): 27 ms an app) to name it. Not
            # "leadbot": Bolt sets the level and handlers of the logger named after the app, and that is ours.
            name="leadbot-app",
            **options,
        )
        self.verify_requests = verify_requests
        # Asked first with each request's body: a response instead of dispatching it (the busy refusal).
        self.before_dispatch: Callable[[Any], BoltResponse | None] | None = None
        # Without a secret (Socket Mode needs none) every HTTP request is refused: fail closed.
        self.signature = Signature(signing_secret) if signing_secret else None

    def signed(self, body: bytes | str, timestamp: str | None, signature: str | None) -> bool:
        """Whether Slack signed ``body``; a refusal is logged without the body."""
        if not self.verify_requests:
            return True
        if self.signature is not None and self.signature.valid(body, timestamp, signature):
            return True
        log.info("refused a request without a valid signature (%d bytes)", len(body))
        return False

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        # Slack's certificate check does nothing and Bolt answers it unsigned (before its signature check).
        ssl_check = isinstance(req.body, dict) and req.body.get("ssl_check") == "1"
        if req.mode == "http" and not ssl_check:
            timestamp = (req.headers.get("x-slack-request-timestamp") or [None])[0]
            signature = (req.headers.get("x-slack-signature") or [None])[0]
            if not self.signed(req.raw_body, timestamp, signature):
                return refused()
        return self.dispatch_signed(req)

    def dispatch_signed(self, req: BoltRequest) -> BoltResponse:
        _read_form_again(req)
        wrong = payloads.problem(req.body, req.raw_body)
        if wrong is not None:
            log.info("refused a malformed request: %s", wrong)
            return BoltResponse(
                status=400, body=json.dumps({"error": f"malformed request: {wrong}"}), headers=JSON_HEADERS
            )
        fields = payloads.request_fields(req.body)
        if TRACE.get() is not None:  # the HTTP server's trace of this request: what it is about goes on it
            note(**fields)
            return self._dispatch_checked(req)
        with tracing(**fields, request=uuid.uuid4().hex[:8]):
            return self._dispatch_checked(req)

    def _dispatch_checked(self, req: BoltRequest) -> BoltResponse:
        refusal = self.before_dispatch(req.body) if self.before_dispatch is not None else None
        return refusal if refusal is not None else super().dispatch(req)


JSON_HEADERS = {"content-type": "application/json"}


def _read_form_again(req: BoltRequest) -> None:
    """Read a form body Bolt took for an interaction because the word "payload" is somewhere in it.

    Bolt's parser looks for the text ``payload`` anywhere in the body and, finding no
    ``payload=`` field, reads the request as empty: ``/lead note local:1 the payload is
    ready`` was answered 404. Such a body is read as the form it is.
    """
    if req.body or "payload" not in req.raw_body or req.content_type == "application/json":
        return
    fields = dict(parse_qsl(req.raw_body, keep_blank_values=True))
    if fields and "payload" not in fields:
        req.body = fields
        req.context = build_context(BoltContext(dict(req.context)), fields)


def refused() -> BoltResponse:
    return BoltResponse(status=401, body=json.dumps({"error": "invalid request"}), headers=JSON_HEADERS)


def build_app(runtime: Runtime, *, verify_requests: bool = True) -> LeadbotApp:
    """The Bolt app: listeners ack first and hand their work to the runtime's background executor.

    ``process_before_response=True`` returns the ack as soon as the listener
    has run, instead of polling for it every 10 ms (bench/README.md).
    ``verify_requests=False`` is only for the work process, whose requests were
    verified by the serving process and reach it over a private pipe.
    """
    settings = runtime.settings
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt_logger = logging.getLogger("leadbot.bolt")
    bolt_logger.addFilter(_drop_token_unused_warning)
    # Bolt compares the logger's own level (not the effective one) with DEBUG before
    # formatting a debug line per middleware per request; NOTSET (0) would always pass.
    bolt_logger.setLevel(logging.getLogger("leadbot").getEffectiveLevel())
    app = LeadbotApp(
        client=runtime.deps.client,
        signing_secret=secret,
        verify_requests=verify_requests,
        process_before_response=True,
        logger=bolt_logger,
    )
    handlers.register(app, runtime.deps)
    app.before_dispatch = refuse_when_busy(runtime.deps)
    return app


def build_digest_scheduler(runtime: Runtime, **options: Any) -> DigestScheduler:
    """Daily digests, from a loop over the store (see bot/scheduler.py)."""
    options.setdefault("pruned", (runtime.store.writes.prune,))
    options.setdefault("counted", runtime.telemetry.digest)
    return DigestScheduler(DigestSender(runtime.deps), runtime.store.requests, runtime.service.clock, **options)


def build_outbox_runner(runtime: Runtime, **options: Any) -> OutboxRunner:
    """The background retrier of queued writes; the notifier tells people how they ended."""
    return OutboxRunner(runtime.service, **options)
