"""Settings from the environment, plus an optional TOML file for routing and backend options.

Secrets come only from the environment and are ``SecretStr``, so neither
``repr(settings)`` nor a log line can show them. Each backend's variables
and options come from its ``BackendSpec`` in ``services.backends.REGISTRY``.
``load_settings`` turns any problem into one ``ConfigError`` line naming the
variable and what it expects, without echoing the value given: whatever a
setting holds may be a secret pasted into the wrong variable, so errors say
which setting and what shape was expected, never what it was.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator

from services.backends import REGISTRY
from services.backends.base import BackendSpec
from services.contact import phone_region_problem

EXPECTS = MappingProxyType(
    {
        "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from the Slack app's OAuth & Permissions page",
        "SLACK_SIGNING_SECRET": "the signing secret from the Slack app's Basic Information page",
        "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for Socket Mode",
        "SLACK_API_URL": "a URL such as https://slack.com/api/",
        "PORT": "a TCP port number, 1-65535",
        "LEADBOT_DEFAULT_BACKEND": f"one of {', '.join(REGISTRY)}",
        "LEADBOT_ADMINS": "comma-separated Slack user IDs, e.g. U012AB3CD,U045EF6GH",
        "LEADBOT_CONFIG": "the path of a readable TOML file",
        "LEADBOT_SELF_LINK": "true or false",
        "LEADBOT_PHONE_REGION": "a two-letter country code such as IN or US",
        "LEADBOT_DATE_ORDER": "DMY (03/04 is 3 April), MDY (March 4) or YMD",
        "LEADBOT_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
        "LEADBOT_LOG_FORMAT": "text or json",
        "LEADBOT_OWNERSHIP": "owner (owners and admins reassign and close leads) or open (anyone linked)",
        "LEADBOT_WORKERS": "a number of threads from 1 to 64",
        "LEADBOT_DIGEST_RATE": "digest messages per second, above 0 and at most 1000",
    }
)


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


class FileConfig(BaseModel):
    """What ``LEADBOT_CONFIG`` may hold: routing and per-backend options, no secrets."""

    model_config = {"extra": "forbid"}

    channels: dict[str, str] = Field(default_factory=dict)
    feeds: dict[str, str] = Field(default_factory=dict)  # backend -> channel that gets every new lead's card
    # Channels whose cards show customers' email and phone to everyone in them; elsewhere a card in a
    # channel shows them only to linked staff who press Contact details.
    contact_channels: list[str] = Field(default_factory=list)
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _known_backends(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, backend in value.items():
            if backend not in REGISTRY:
                raise ValueError(f"channel {channel} routes to no known backend: expected one of {', '.join(REGISTRY)}")
        return value

    @field_validator("backends")
    @classmethod
    def _options_of_known_backends(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for backend in value:
            if backend not in REGISTRY:
                raise ValueError(f"[backends.{backend}]: no such backend (known: {', '.join(REGISTRY)})")
        return value

    @field_validator("feeds")
    @classmethod
    def _feeds_of_known_backends(cls, value: dict[str, str]) -> dict[str, str]:
        for backend in value:
            if backend not in REGISTRY:
                raise ValueError(f"[feeds] {backend}: no such backend (known: {', '.join(REGISTRY)})")
        return value


class Settings(BaseModel):
    """Read from the environment by ``load_settings``: each field is the variable of its name in capitals.

    A plain model, not pydantic-settings' ``BaseSettings``: importing that (its cloud and CLI
    sources) cost 17 MB of RSS in every process, the serving one and the work process.
    """

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    port: int = Field(3000, ge=1, le=65535)
    # The address `leadbot run` listens on: this machine only, unless told (a container, behind a proxy).
    leadbot_host: str = "127.0.0.1"
    leadbot_db: str = "leadbot.db"  # a SQLite file, sqlite:///PATH, postgresql://… or memory: (a str: a URL's // stays)
    leadbot_default_backend: str = "local"
    leadbot_admins: frozenset[str] = frozenset()
    leadbot_config: Path | None = None
    leadbot_self_link: bool = False
    leadbot_phone_region: str | None = None
    leadbot_date_order: Literal["DMY", "MDY", "YMD"] | None = None  # 03/04: day first or month first
    # Who may reassign or close a lead: "owner" (its owner and admins; anyone may take an unassigned one)
    # or "open" (anyone linked, as before).
    leadbot_ownership: Literal["owner", "open"] = "owner"
    leadbot_log_level: str = "INFO"
    leadbot_log_format: Literal["text", "json"] = "text"
    leadbot_workers: int = Field(4, ge=1, le=64)
    leadbot_work_process: bool = True
    # How acked work is kept before the ack (bot/journal.py): "full" fsyncs each commit (survives
    # power loss), "normal" survives a killed process only, "off" keeps nothing (benchmarks only).
    leadbot_journal: Literal["full", "normal", "off"] = "full"
    leadbot_digest_rate: float = Field(10.0, gt=0, le=1000)  # DMs per second at most

    _file: FileConfig = PrivateAttr(default_factory=FileConfig)
    _backends: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @field_validator("leadbot_db", mode="before")
    @classmethod
    def _db_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @property
    def file(self) -> FileConfig:
        return self._file

    @property
    def backends(self) -> dict[str, BaseModel]:
        """The options of each configured backend, by name, in registry order."""
        return self._backends

    @field_validator("leadbot_admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            ids = [part.strip() for part in value.split(",") if part.strip()]
            bad = [n for n, i in enumerate(ids, 1) if i[:1] not in ("U", "W") or not i.isalnum() or len(i) > 20]
            if bad:
                # Never the values: a token pasted into the wrong variable must not reach a log.
                which = ", ".join(map(str, bad))
                raise ValueError(
                    f"entry {which} is not a Slack user ID"
                    if len(bad) == 1
                    else f"entries {which} are not Slack user IDs"
                )
            return frozenset(ids)
        return value

    @field_validator("leadbot_default_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value.lower() not in REGISTRY:
            raise ValueError("unknown backend")
        return value.lower()

    @field_validator("slack_api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("leadbot_date_order", mode="before")
    @classmethod
    def _order(cls, value: Any) -> Any:
        return value.strip().upper() or None if isinstance(value, str) else value

    @field_validator("leadbot_phone_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        problem = phone_region_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip().upper()

    @field_validator("leadbot_log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("unknown level")
        return value.upper()

    def require_slack(self) -> None:
        """Fail now, not at the first API call, when ``leadbot run`` lacks credentials.

        HTTP mode verifies request signatures; Socket Mode needs the app token instead.
        """
        _require_token(self.slack_bot_token, "SLACK_BOT_TOKEN", "xoxb-")
        if self.slack_app_token is not None:
            _require_token(self.slack_app_token, "SLACK_APP_TOKEN", "xapp-")
        elif self.slack_signing_secret is None or not self.slack_signing_secret.get_secret_value():
            raise ConfigError(f"SLACK_SIGNING_SECRET is not set: expected {EXPECTS['SLACK_SIGNING_SECRET']}")

    def secrets(self) -> list[str]:
        """Every secret value configured (Slack's and each backend's), for the log's redaction."""
        found = [value for value in (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token) if value]
        for options in self.backends.values():
            found.extend(value for value in vars(options).values() if isinstance(value, SecretStr))
        return [value.get_secret_value() for value in found if value.get_secret_value()]

    def is_admin(self, slack_user: str) -> bool:
        return slack_user in self.leadbot_admins


def _require_token(value: SecretStr | None, name: str, prefix: str) -> None:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{name} is not set: expected {EXPECTS[name]}")
    if not value.get_secret_value().startswith(prefix):
        raise ConfigError(f"{name} does not start with {prefix!r}: expected {EXPECTS[name]}")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; ``overrides`` (lower-case variable names) win, for tests and the console."""
    backend_vars = {var.name.lower() for spec in REGISTRY.values() for var in spec.env}
    given = {k: overrides.pop(k) for k in list(overrides) if k in backend_vars}
    environ = {name.lower(): value for name, value in os.environ.items()}
    from_env = {name: environ[name] for name in Settings.model_fields if name in environ}
    try:
        settings = Settings.model_validate({**from_env, **overrides})
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "configuration"
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        expects = EXPECTS.get(name, "a valid value")
        raise ConfigError(f"{name} is invalid ({reason}): expected {expects}") from None
    if settings.leadbot_config is not None:
        settings._file = _load_file(settings.leadbot_config)
    environment = {k.upper(): v for k, v in os.environ.items()} | {k.upper(): v for k, v in given.items()}
    settings._backends = {
        spec.name: options
        for spec in REGISTRY.values()
        if (options := backend_options(spec, environment, settings.file.backends.get(spec.name, {}))) is not None
    }
    return settings


def backend_options(spec: BackendSpec, environment: dict[str, Any], table: dict[str, Any]) -> BaseModel | None:
    """A backend's validated options, or None when it is not configured; a mistake is a ``ConfigError``."""
    from_env = {var.option: environment[var.name] for var in spec.env if environment.get(var.name) not in (None, "")}
    if not (spec.always or from_env):
        return None
    for option in table:
        var = spec.env_var(option)
        if var is not None:
            raise ConfigError(
                f"LEADBOT_CONFIG [backends.{spec.name}] {option}: set it in the environment as {var.name} instead"
                " (credentials and URLs are never read from the file)"
            )
    try:
        return spec.options.model_validate({**table, **from_env})
    except ValidationError as exc:
        raise ConfigError(_options_error(spec, exc)) from None


def _options_error(spec: BackendSpec, exc: ValidationError) -> str:
    error = exc.errors(include_input=False)[0]
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not error["loc"]:
        return reason  # a rule about several settings, worded by the backend
    var = spec.env_var(str(error["loc"][0]))
    if var is not None and error["type"] == "missing":
        return f"{var.name} is not set: expected {var.expects}"
    if var is not None:
        return f"{var.name} is invalid ({reason}): expected {var.expects}"
    where = ".".join(str(p) for p in error["loc"])
    return f"LEADBOT_CONFIG [backends.{spec.name}] {where}: {reason}"


def _load_file(path: Path) -> FileConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"LEADBOT_CONFIG cannot be read ({exc.strerror}): expected {EXPECTS['LEADBOT_CONFIG']}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"LEADBOT_CONFIG is not valid TOML ({exc})") from None
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"LEADBOT_CONFIG {where}: {reason}") from None
