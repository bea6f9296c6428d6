"""Slack's request signature, checked on the bytes as they arrived, before anything reads them.

``v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")`` over the raw body, with the
timestamp at most five minutes from now either way. Unlike
``slack_sdk.signature.SignatureVerifier`` this takes any bytes (Slack signs
bytes; a body that is not UTF-8 is simply not Slack's), any header values
(a timestamp that is not a number is refused, not a ``ValueError``), and it
never logs: Bolt's own check logged the whole body of every refused request at
INFO, so Leadbot turns Bolt's off and uses this one (``bot.app.LeadbotApp``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

TOLERANCE = 5 * 60  # seconds either way, as Slack documents


class Signature:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self._clock = clock

    def valid(self, body: bytes | str, timestamp: str | None, signature: str | None) -> bool:
        if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        if abs(self._clock() - int(timestamp)) > TOLERANCE:
            return False
        raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        expected = "v0=" + hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape"))
