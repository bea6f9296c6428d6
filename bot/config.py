"""Settings from the environment, plus an optional TOML file for routing.

Secrets come only from the environment and are ``SecretStr``, so neither
``repr(settings)`` nor a log line can show them. ``load_settings`` turns any
problem into one ``ConfigError`` line naming the variable and what it expects.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.leads import KNOWN_BACKENDS

BACKEND_NAMES = KNOWN_BACKENDS

EXPECTS = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from the Slack app's OAuth & Permissions page",
    "SLACK_SIGNING_SECRET": "the signing secret from the Slack app's Basic Information page",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for Socket Mode",
    "SLACK_API_URL": "a URL such as https://slack.com/api/",
    "PORT": "a TCP port number, 1-65535",
    "LEADBOT_DEFAULT_BACKEND": f"one of {', '.join(BACKEND_NAMES)}",
    "LEADBOT_ADMINS": "comma-separated Slack user IDs, e.g. U012AB3CD,U045EF6GH",
    "LEADBOT_CONFIG": "the path of a readable TOML file",
    "LEADBOT_SELF_LINK": "true or false",
    "LEADBOT_PHONE_REGION": "a two-letter country code such as IN or US",
    "LEADBOT_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "LEADBOT_WORKERS": "a number of threads from 1 to 64",
    "LEADBOT_DIGEST_RATE": "digest messages per second, above 0 and at most 1000",
    "LEADBOT_CAPILLARY_URL": "the cluster URL, e.g. https://apac.api.capillarytech.com",
    "LEADBOT_LEADSAPI_URL": "the REST leads API's base URL, e.g. https://crm.example.com/api",
}


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line for the operator."""


class FileConfig(BaseModel):
    """What ``LEADBOT_CONFIG`` may hold: routing and per-backend defaults, no secrets."""

    model_config = {"extra": "forbid"}

    channels: dict[str, str] = Field(default_factory=dict)
    feeds: dict[str, str] = Field(default_factory=dict)  # backend -> channel that gets every new lead's card
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _known_backends(cls, value: dict[str, str]) -> dict[str, str]:
        for channel, backend in value.items():
            if backend not in BACKEND_NAMES:
                raise ValueError(f"channel {channel} routes to unknown backend {backend!r}")
        return value

    @field_validator("backends")
    @classmethod
    def _options_of_known_backends(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for backend in value:
            if backend not in ("capillary", "leadsapi"):
                raise ValueError(f"[backends.{backend}]: only capillary and leadsapi take settings here")
        return value

    @field_validator("feeds")
    @classmethod
    def _feeds_of_known_backends(cls, value: dict[str, str]) -> dict[str, str]:
        for backend in value:
            if backend not in BACKEND_NAMES:
                raise ValueError(f"[feeds] names unknown backend {backend!r}")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", hide_input_in_errors=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    port: int = Field(3000, ge=1, le=65535)
    leadbot_db: Path = Path("leadbot.db")
    leadbot_default_backend: str = "local"
    leadbot_admins: Annotated[frozenset[str], NoDecode] = frozenset()
    leadbot_config: Path | None = None
    leadbot_self_link: bool = False
    leadbot_phone_region: str | None = None
    leadbot_log_level: str = "INFO"
    leadbot_workers: int = Field(4, ge=1, le=64)
    leadbot_work_process: bool = True
    leadbot_digest_rate: float = Field(10.0, gt=0, le=1000)  # digest DMs per second at most
    leadbot_capillary_url: str | None = None
    leadbot_capillary_username: str | None = None
    leadbot_capillary_password: SecretStr | None = None
    leadbot_capillary_token: SecretStr | None = None
    leadbot_leadsapi_url: str | None = None
    leadbot_leadsapi_token: SecretStr | None = None

    _file: FileConfig = PrivateAttr(default_factory=FileConfig)

    @property
    def file(self) -> FileConfig:
        return self._file

    @field_validator("leadbot_admins", mode="before")
    @classmethod
    def _split_admins(cls, value: Any) -> Any:
        if isinstance(value, str):
            ids = [part.strip() for part in value.split(",") if part.strip()]
            bad = [i for i in ids if i[:1] not in ("U", "W") or not i.isalnum()]
            if bad:
                raise ValueError(f"not Slack user IDs: {', '.join(bad)}")
            return frozenset(ids)
        return value

    @field_validator("leadbot_default_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value.lower() not in BACKEND_NAMES:
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

    @field_validator("leadbot_capillary_url", "leadbot_leadsapi_url")
    @classmethod
    def _backend_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("leadbot_phone_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value and (len(value) != 2 or not value.isalpha()):
            raise ValueError("not a country code")
        return value.upper() if value else None

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

    def is_admin(self, slack_user: str) -> bool:
        return slack_user in self.leadbot_admins


def _require_token(value: SecretStr | None, name: str, prefix: str) -> None:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{name} is not set: expected {EXPECTS[name]}")
    if not value.get_secret_value().startswith(prefix):
        raise ConfigError(f"{name} does not start with {prefix!r}: expected {EXPECTS[name]}")


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "configuration"
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        expects = EXPECTS.get(name, "a valid value")
        raise ConfigError(f"{name} is invalid ({reason}): expected {expects}") from None
    if settings.leadbot_config is not None:
        settings._file = _load_file(settings.leadbot_config)
    _check_backend_credentials(settings)
    return settings


def _check_backend_credentials(settings: Settings) -> None:
    """A backend is configured when its URL and credentials are set; half a configuration is a mistake."""
    cap_login = settings.leadbot_capillary_username or settings.leadbot_capillary_password
    cap_any = cap_login or settings.leadbot_capillary_token
    if settings.leadbot_capillary_url and not cap_any:
        raise ConfigError(
            "LEADBOT_CAPILLARY_URL is set without credentials: expected LEADBOT_CAPILLARY_TOKEN (OAuth) or"
            " LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD (till)"
        )
    if cap_login and not (settings.leadbot_capillary_username and settings.leadbot_capillary_password):
        raise ConfigError("LEADBOT_CAPILLARY_USERNAME and LEADBOT_CAPILLARY_PASSWORD go together: set both")
    if cap_any and not settings.leadbot_capillary_url:
        raise ConfigError(f"LEADBOT_CAPILLARY_URL is not set: expected {EXPECTS['LEADBOT_CAPILLARY_URL']}")
    if settings.leadbot_leadsapi_url and settings.leadbot_leadsapi_token is None:
        raise ConfigError("LEADBOT_LEADSAPI_URL is set without LEADBOT_LEADSAPI_TOKEN: expected the API token")
    if settings.leadbot_leadsapi_token is not None and not settings.leadbot_leadsapi_url:
        raise ConfigError(f"LEADBOT_LEADSAPI_URL is not set: expected {EXPECTS['LEADBOT_LEADSAPI_URL']}")


class CapillaryOptions(BaseModel):
    """``[backends.capillary]`` in LEADBOT_CONFIG."""

    model_config = {"extra": "forbid"}

    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    type: str = "SKU"
    org_source_id: int = -1
    till_id: int | None = None  # createdBy on follow-ups (Capillary requires one)
    extended_fields: dict[str, Any] = Field(default_factory=dict)  # sent with every new lead


class LeadsApiOptions(BaseModel):
    """``[backends.leadsapi]`` in LEADBOT_CONFIG."""

    model_config = {"extra": "forbid"}

    timeout: float = Field(15.0, gt=0, le=120)
    connect_timeout: float = Field(5.0, gt=0, le=60)
    auth_header: str = "Authorization"  # the seed documents no scheme, only "403 Access denied"
    auth_scheme: str = "Bearer"  # "" sends the token alone
    business: list[int] = Field(default_factory=list)  # business ids every new lead is filed under
    state: str = "Active"
    closed_statuses: list[str] = Field(default_factory=lambda: ["won", "lost", "closed"])


BACKEND_OPTIONS: dict[str, type[BaseModel]] = {"capillary": CapillaryOptions, "leadsapi": LeadsApiOptions}


def backend_options(settings: Settings, name: str) -> Any:
    """The validated ``[backends.NAME]`` table (defaults where absent); a mistake is a ConfigError."""
    model = BACKEND_OPTIONS[name]
    try:
        return model.model_validate(settings.file.backends.get(name, {}))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"LEADBOT_CONFIG [backends.{name}] {where}: {reason}") from None


def _load_file(path: Path) -> FileConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"LEADBOT_CONFIG cannot be read ({exc.strerror}): expected {EXPECTS['LEADBOT_CONFIG']}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"LEADBOT_CONFIG {path} is not valid TOML ({exc})") from None
    try:
        return FileConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"LEADBOT_CONFIG {path}: {where}: {reason}") from None
