"""Posting messages: every one goes through the process's one poster (paced, waiting out 429s).

A post that fails is logged with what was lost; it never turns an action
that succeeded into an error for the person who acted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

if TYPE_CHECKING:
    from handlers.context import Deps, MessageAt

log = logging.getLogger("leadbot")

# Where the bot may not post a thread reply (a private channel it is not in, a DM between two
# people): the card itself still shows the last action, so the reply is only skipped.
CANNOT_POST_HERE = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "cannot_reply_to_message",
    }
)


def post_message(
    deps: Deps, where: str | MessageAt, text: str, blocks: list[dict[str, Any]] | None = None, *, what: str
) -> bool:
    """Post ``text`` (and ``blocks``) to a channel or DM (a user ID), or in a message's thread."""
    message: dict[str, Any] = {"text": text, "unfurl_links": False}
    if isinstance(where, str):
        message["channel"] = where
    else:
        message |= {"channel": where.channel, "thread_ts": where.ts}
    if blocks is not None:
        message["blocks"] = blocks
    try:
        deps.poster.post(**message)
    except SlackApiError as exc:
        error = exc.response.get("error")
        # In a thread of a channel the bot is not in, not posting is expected; a DM or a feed that fails is not.
        expected = error in CANNOT_POST_HERE and "thread_ts" in message
        level = logging.INFO if expected else logging.WARNING
        log.log(level, "%s to %s not sent (%s): %.200s", what, message["channel"], error, text)
        return False
    except Exception:
        log.exception("%s to %s not sent: %.200s", what, message["channel"], text)
        return False
    return True
