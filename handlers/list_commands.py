"""`/lead list`: leads matching filters, a page at a time, with More/Previous."""

from __future__ import annotations

import re
from typing import Any

from handlers import blocks
from handlers.cards import row_blocks
from handlers.context import Deps, Reply
from handlers.invocation import Invocation
from handlers.parsing import is_user, split_options, user_id
from handlers.render import escape
from services.errors import Code, Invalid

LIST_USAGE = "/lead list [mine|@user] [STATUS] [due] [backend=NAME] [sub=SUB-STATUS]"
PAGE_SIZE = 10


def cmd_list(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend", "sub"), LIST_USAGE)
    state: dict[str, Any] = {"offset": 0}
    for token in bare:
        word = token.text.lower()
        if word == "mine":
            state["o"] = inv.user
        elif is_user(token.text):
            state["o"] = user_id(token.text, inv.user)
        elif word == "due":
            state["d"] = True
        elif "s" not in state:
            state["s"] = inv.plain(token.text)
        else:
            raise Invalid("I don't know what to do with {extra}", usage=LIST_USAGE, extra=Code(token.text))
    if opts.get("backend"):
        state["b"] = opts["backend"]
    if opts.get("sub"):
        state["u"] = inv.plain(opts["sub"])
    if "s" in state:
        backends = inv.service.backends
        backend = backends.get(state["b"]) if "b" in state else backends.for_channel(inv.channel)
        state["s"] = backend.status_option(state["s"]).value
    return list_page(inv.deps, inv.user, inv.channel, state)


USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{1,20}$")


def list_page(deps: Deps, user: str, channel: str | None, state: dict[str, Any]) -> Reply:
    """One page of a list; ``state`` may come back from a button, so it is read as untrusted."""
    state = {k: v for k, v in state.items() if k in ("o", "s", "u", "d", "b", "offset")}
    if not isinstance(state.get("o"), str | None) or (state.get("o") and not USER_ID_RE.match(state["o"])):
        raise Invalid("this list is out of date; run {command} again", command=Code("/lead list"))
    for key in ("s", "u", "b"):
        if key in state and not isinstance(state[key], str):
            raise Invalid("this list is out of date; run {command} again", command=Code("/lead list"))
    if not isinstance(state.get("offset", 0), int) or not 0 <= state.get("offset", 0) <= 100_000:
        raise Invalid("this list is out of date; run {command} again", command=Code("/lead list"))
    service = deps.service
    page = service.search(
        channel=channel,
        backend=state.get("b"),
        owner_user=state.get("o"),
        status=state.get("s"),
        sub_status=state.get("u"),
        due=bool(state.get("d")),
        offset=int(state.get("offset", 0)),
        limit=PAGE_SIZE,
    )
    title_parts = ["mine" if state.get("o") == user else (f"<@{state['o']}>" if state.get("o") else "all open leads")]
    if state.get("s"):
        title_parts.append(escape(state["s"]))
    if state.get("u"):
        title_parts.append(escape(state["u"]))
    if state.get("d"):
        title_parts.append("due")
    title = " · ".join(title_parts)
    rows = [row_blocks(service, deps.people, lead) for lead in page.leads]
    message = blocks.list_message(
        rows, title=title, total=page.total, offset=page.offset, page_size=PAGE_SIZE, state=state
    )
    return Reply(text=f"Leads: {title} ({page.total})", blocks=message)
