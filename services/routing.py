"""Which backend a lead reference, a channel or a name means."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from services.backends.base import Backend
from services.errors import BackendGone, Code, NotFound
from services.trace import note

REF_RE = re.compile(r"^(?:(?P<backend>[A-Za-z]+):)?(?P<id>[A-Za-z0-9+_.\-]{1,64})$")
REF_USAGE = "a lead reference is BACKEND:ID (e.g. local:7) or a bare ID"


class Backends:
    """The configured backends, the default one, and the channels routed to others."""

    def __init__(
        self,
        configured: dict[str, Backend],
        *,
        default: str = "local",
        channels: dict[str, str] | None = None,
        known: Iterable[str] = (),
    ) -> None:
        if default not in configured:
            raise ValueError(f"default backend {default!r} is not configured")
        self.configured = configured
        self.default = default
        self.channels = dict(channels or {})
        self.known = frozenset(known) | set(configured)
        names = "|".join(sorted(self.known, key=len, reverse=True))
        # In running text a reference must name its backend, and a trailing full stop is punctuation.
        self._in_text = re.compile(
            rf"(?<![\w/:.@-])(?P<backend>{names}):(?P<id>\+?[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)(?![\w@])", re.I
        )

    def __iter__(self) -> Iterator[Backend]:
        return iter(self.configured.values())

    def __contains__(self, name: str) -> bool:
        return name in self.configured

    def get(self, name: str) -> Backend:
        key = name.strip().lower()
        if key in self.configured:
            return self.configured[key]
        configured = ", ".join(self.configured)
        if key in self.known:
            raise BackendGone(
                "the {backend} backend is not configured here (configured: {configured})",
                backend=Code(key),
                configured=configured,
            )
        raise NotFound(
            "there is no backend called {name} (configured: {configured})", name=Code(name), configured=configured
        )

    def for_channel(self, channel: str | None) -> Backend:
        backend = self.get(self.channels.get(channel or "", self.default))
        note(backend=backend.name)
        return backend

    def resolve(self, ref: str, channel: str | None = None) -> tuple[Backend, str]:
        match = REF_RE.match(ref.strip())
        if not match:
            raise NotFound("{ref} is not a lead reference: " + REF_USAGE, field="ref", ref=Code(ref[:80]))
        name = match["backend"]
        backend = self.get(name) if name else self.for_channel(channel)
        note(ref=f"{backend.name}:{match['id']}", backend=backend.name)
        return backend, match["id"]

    def references_in(self, text: str, limit: int = 3) -> list[str]:
        """Full lead references (``capillary:19``) to configured backends in free text, first ``limit``, once each."""
        found: list[str] = []
        for match in self._in_text.finditer(text):
            name = match["backend"].lower()
            ref = f"{name}:{match['id']}"
            if name in self.configured and ref not in found:
                found.append(ref)
                if len(found) == limit:
                    break
        return found
