"""`/lead list` and `/lead find`: leads from every backend the user reads, a page at a time, with More/Previous."""

from __future__ import annotations

import re
from typing import Any

from handlers import blocks
from handlers.cards import row_blocks
from handlers.context import Deps, Reply
from handlers.invocation import Invocation
from handlers.parsing import is_user, split_options, user_id
from handlers.render import escape
from services.errors import Code, Invalid, LeadError
from services.models import LeadsAcross

LIST_USAGE = "/lead list [mine|@user|unassigned] [STATUS] [due] [backend=NAME] [sub=SUB-STATUS]"
FIND_USAGE = "/lead find TEXT [backend=NAME]  (part of a name, an email, a phone or a company)"
PAGE_SIZE = 10
STATE_KEYS = ("o", "n", "s", "u", "d", "b", "t", "offset")


def cmd_list(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend", "sub"), LIST_USAGE)
    state: dict[str, Any] = {"offset": 0}
    for token in bare:
        word = token.text.lower()
        if word == "mine" and "o" not in state and "n" not in state:
            state["o"] = inv.user
        elif word == "unassigned" and "o" not in state and "n" not in state:
            state["n"] = True
        elif is_user(token.text) and "o" not in state and "n" not in state:
            state["o"] = user_id(token.text, inv.user)
        elif word == "due":
            state["d"] = True
        elif "s" not in state and not is_user(token.text) and word not in ("mine", "unassigned"):
            state["s"] = inv.plain(token.text)
        else:
            raise Invalid("I don't know what to do with {extra}", usage=LIST_USAGE, extra=Code(token.text))
    if opts.get("backend"):
        state["b"] = inv.service.backends.get(opts["backend"]).name
    if opts.get("sub"):
        state["u"] = inv.plain(opts["sub"])
    return list_page(inv.deps, inv.user, inv.channel, state)


def cmd_find(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend",), FIND_USAGE)
    text = inv.plain(" ".join(t.text for t in bare)).strip()
    if not text:
        raise Invalid("say what to look for: part of a name, an email, a phone or a company", usage=FIND_USAGE)
    state: dict[str, Any] = {"t": text[:200], "offset": 0}
    if opts.get("backend"):
        state["b"] = inv.service.backends.get(opts["backend"]).name
    return list_page(inv.deps, inv.user, inv.channel, state)


USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{1,20}$")


def _checked(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` from a button is untrusted: the keys a list knows, each of its type, or "out of date"."""
    state = {k: v for k, v in state.items() if k in STATE_KEYS}
    stale = Invalid("this list is out of date; run {command} again", command=Code("/lead list"))
    if not isinstance(state.get("o"), str | None) or (state.get("o") and not USER_ID_RE.match(state["o"])):
        raise stale
    for key in ("s", "u", "b", "t"):
        if key in state and (not isinstance(state[key], str) or len(state[key]) > 200):
            raise stale
    for key in ("d", "n"):
        if key in state and not isinstance(state[key], bool):
            raise stale
    offset = state.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 10_000:
        raise stale
    return state


def list_page(deps: Deps, user: str, channel: str | None, state: dict[str, Any]) -> Reply:
    """One page of a list or a search; ``state`` may come back from a button, so it is read as untrusted."""
    state = _checked(state)
    service = deps.service
    found = service.search_across(
        user,
        channel=channel,
        backend=state.get("b"),
        owner_user=state.get("o"),
        unassigned=bool(state.get("n")),
        status=state.get("s"),
        sub_status=state.get("u"),
        due=bool(state.get("d")),
        text=state.get("t"),
        offset=int(state.get("offset", 0)),
        limit=PAGE_SIZE,
    )
    title = list_title(deps, user, state, found)
    rows = [row_blocks(service, deps.people, lead, contact="t" in state) for lead in found.leads]
    message = blocks.list_message(
        rows,
        title=title,
        total=found.total,
        offset=found.offset,
        page_size=PAGE_SIZE,
        state=state,
        more=found.more,
        notes=_notes(found),
    )
    return Reply(text=f"{title} ({found.total})", blocks=message)


def list_title(deps: Deps, user: str, state: dict[str, Any], found: LeadsAcross) -> str:
    """Exactly what the page shows: whose, which status, due or not, from which backends."""
    where = _backends(found.backends)
    if state.get("t") is not None:
        return f"Leads matching “{escape(state['t'])}”{where}"
    status = state.get("s")
    kind = f"{escape(_status_label(deps, status))} leads" if status else "open leads"
    if state.get("o") == user:
        title = f"Your {kind}"
    elif state.get("o"):
        title = f"<@{state['o']}>'s {kind}"
    elif state.get("n"):
        title = f"Unassigned {kind}"
    else:
        title = kind[:1].upper() + kind[1:]
    if state.get("u"):
        title += f" · {escape(state['u'])}"
    if state.get("d"):
        title += " · due now"
    return title + where


def _status_label(deps: Deps, status: str) -> str:
    for backend in deps.service.backends:
        try:
            return backend.status_option(status).label
        except LeadError:  # a backend without this status (or down) names it no better
            continue
    return status


def _backends(titles: list[str]) -> str:
    if not titles:
        return ""
    names = [escape(t) for t in titles]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f" on {joined}"


def _notes(found: LeadsAcross) -> list[str]:
    return [f":warning: {escape(u.backend)} could not be read: {escape(u.why[:200])}" for u in found.unread]
