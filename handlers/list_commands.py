"""`/lead list`: leads matching filters, a page at a time, with More/Previous."""

from __future__ import annotations

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
            state["s"] = token.text
        else:
            raise Invalid("I don't know what to do with {extra}", usage=LIST_USAGE, extra=Code(token.text))
    if opts.get("backend"):
        state["b"] = opts["backend"]
    if opts.get("sub"):
        state["u"] = opts["sub"]
    if "s" in state:
        backends = inv.service.backends
        backend = backends.get(state["b"]) if "b" in state else backends.for_channel(inv.channel)
        state["s"] = backend.status_option(state["s"]).value
    return list_page(inv.deps, inv.user, inv.channel, state)


def list_page(deps: Deps, user: str, channel: str | None, state: dict[str, Any]) -> Reply:
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
