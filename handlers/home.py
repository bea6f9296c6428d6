"""The App Home tab: each user's open leads, with the same buttons as on cards.

The tab is published with ``views.publish`` when the user opens it, when they
press something on it, and after they (or someone assigning them a lead)
change a lead anywhere, once they have opened it at least once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from handlers.blocks import HOME_REFRESH, HOME_SEARCH, HomeData, HomeLead, home_view
from handlers.cards import status_option
from handlers.context import Deps
from handlers.payloads import mapping_of, text_of
from handlers.render import ERROR_MARK
from services.errors import LeadError
from services.models import Lead

log = logging.getLogger("leadbot")

EVENTS = ("app_home_opened",)  # the manifest subscribes to exactly these
READ_AT_MOST = 100  # per backend; the tab shows the most urgent few and counts these
HOME_MATCHES = 10  # the search box's best matches shown on the tab


def home_data(deps: Deps, user: str, notice: str | None = None, query: str | None = None) -> HomeData:
    service = deps.service
    items: list[HomeLead] = []
    counts: Counter[str] = Counter()
    unreadable: list[str] = []
    total = 0
    links = deps.people.links(user)
    for link in links:
        try:
            backend = service.backends.get(link.backend)
            page = service.search(backend=link.backend, owner_user=user, limit=READ_AT_MOST)
            statuses = backend.statuses() if backend.capabilities.status else []
        except LeadError as exc:
            unreadable.append(f"{link.backend}: {exc.message}")
            continue
        except Exception:  # one backend's bug must not blank the whole tab
            log.exception("home for %s: reading %s failed", user, link.backend)
            unreadable.append(f"{link.backend}: Leadbot could not read it (see the log)")
            continue
        total += page.total
        for lead in page.leads:
            option = status_option(service, lead)
            counts[option.label if option else lead.status] += 1
            items.append(HomeLead(lead=lead, status=option, statuses=statuses))
    items.sort(key=lambda h: _urgency(h.lead))
    matches, matches_total, match_notes = _matches(deps, user, query) if query else ([], 0, [])
    return HomeData(
        query=query,
        matches=matches,
        matches_total=matches_total,
        match_notes=match_notes,
        leads=items,
        total=total,
        counts=dict(counts.most_common()),
        links=[(link.backend, link.staff_id) for link in links],
        assignment_dms=deps.people.assignment_dms(user),
        reminders=deps.reminders.settings(user).describe(),
        now=service.clock(),
        unreadable=unreadable,
        notice=notice,
    )


def _matches(deps: Deps, user: str, query: str) -> tuple[list[HomeLead], int, list[str]]:
    """The search box's best matches across the user's backends, as ``/lead find`` has them."""
    service = deps.service
    try:
        found = service.search_across(user, text=query, limit=HOME_MATCHES)
    except LeadError as exc:
        return [], 0, [f"{ERROR_MARK} {exc.message}"]
    statuses: dict[str, list] = {}
    items = []
    for lead in found.leads:
        if lead.backend not in statuses:
            backend = service.backends.get(lead.backend)
            try:
                statuses[lead.backend] = backend.statuses() if backend.capabilities.status else []
            except LeadError:
                statuses[lead.backend] = []
        items.append(HomeLead(lead=lead, status=status_option(service, lead), statuses=statuses[lead.backend]))
    notes = [f"{ERROR_MARK} {u.backend} could not be read: {u.why[:200]}" for u in found.unread]
    notes += [f"{title} cannot be searched by text" for title in found.not_searchable]
    return items, found.total, notes


def home_query(body: dict[str, Any]) -> str | None:
    """What the tab's search box last looked for (kept in the view, so a press on a match keeps them shown)."""
    try:
        kept = json.loads(text_of(mapping_of(body.get("view")).get("private_metadata")) or "{}")
    except ValueError:
        return None
    query = text_of(mapping_of(kept).get("q"))
    return query[:200] if query else None


def _urgency(lead: Lead) -> tuple[int, float]:
    # Due and overdue first (oldest first), then the rest by next follow-up, undated last.
    if lead.next_follow_up is None:
        return (1, 0.0)
    return (0, lead.next_follow_up.timestamp())


def publish_home(deps: Deps, user: str, notice: str | None = None, query: str | None = None) -> None:
    """Draw ``user``'s tab (with ``query``'s matches). Best effort: a failure is logged, the next open redraws it."""
    try:
        view = home_view(home_data(deps, user, notice, query))
        deps.poster.call("views.publish", user_id=user, view=view, paced=False)
    except SlackApiError as exc:
        log.warning("App Home for %s not published: %s", user, exc.response.get("error"))
    except Exception:
        log.exception("App Home for %s not published", user)


def home_opened(deps: Deps, user: str) -> None:
    if not deps.prefs.user(user).home_opened:
        deps.prefs.set_user(user, home_opened=True)  # from now on it is redrawn after changes that concern them
    publish_home(deps, user)


class HomeResponder:
    """Takes a reply meant for a message and shows it at the top of the user's App Home instead.

    An action on the App Home has no ``response_url``: the tab itself is where
    the user looks, so the outcome (or the error) is drawn into it.
    """

    def __init__(self, deps: Deps, user: str, query: str | None = None) -> None:
        self.deps = deps
        self.user = user
        self.query = query

    def __call__(self, text: str | None = None, **_: Any) -> None:
        notice = text or None
        if notice and not notice.startswith(ERROR_MARK):
            notice = f":white_check_mark: {notice}"
        publish_home(self.deps, self.user, notice, self.query)


def from_home(body: dict[str, Any]) -> bool:
    container = mapping_of(body.get("container"))
    view = mapping_of(body.get("view"))
    return container.get("type") == "view" and view.get("type", "home") == "home"


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def opened(ack: Ack, event: dict[str, Any]) -> None:
        ack()
        user = text_of(event.get("user"))
        if event.get("tab", "home") != "home" or not user:
            return  # the Messages tab: nothing to draw
        deps.after_ack(HomeResponder(deps, user), lambda: home_opened(deps, user))

    @app.action(HOME_SEARCH)
    def search(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        user = text_of(mapping_of(body.get("user")).get("id"))
        actions = body.get("actions")
        action = mapping_of(actions[0]) if isinstance(actions, list) and actions else {}
        query = (text_of(action.get("value")) or "").strip()[:200] or None  # empty: the search is put away
        if user:
            deps.after_ack(HomeResponder(deps, user, query), lambda: publish_home(deps, user, query=query), home=True)

    @app.action(HOME_REFRESH)
    def refresh(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        if not deps.presses.first_of_burst(body):
            return  # pressed again while the first redraw is on its way
        user = body["user"]["id"]
        query = home_query(body)
        deps.after_ack(HomeResponder(deps, user, query), lambda: publish_home(deps, user, query=query))
