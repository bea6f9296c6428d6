"""`/lead link|unlink|whoami|notify|remind|previews`: people, their links and their settings."""

from __future__ import annotations

from handlers.context import Reply, error_reply
from handlers.digests import send_now
from handlers.invocation import Invocation, need_args
from handlers.parsing import is_user, split_options, user_id
from handlers.render import escape
from services.errors import Code, Invalid, NotAllowed, Person

LINK_USAGE = "/lead link @user STAFF_ID [backend=NAME] [replace=yes]  ·  /lead link STAFF_ID [backend=NAME] (yourself)"


def cmd_link(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend", "replace"), LINK_USAGE)
    replace = _yes(opts.get("replace"), "replace", LINK_USAGE)
    people = inv.deps.people
    backend = inv.service.backends.get(opts.get("backend") or inv.service.backends.default)
    if len(bare) == 2 and is_user(bare[0].text):
        target, staff = user_id(bare[0].text, inv.user), inv.plain(bare[1].text)
    elif len(bare) == 1 and not is_user(bare[0].text):
        target, staff = inv.user, inv.plain(bare[0].text)
        mine = people.staff_id(inv.user, backend.name)
        if mine is not None and mine != staff and not replace:  # most likely a colleague's ID without the @
            raise Invalid(
                "that would replace your own link ({mine} in {backend}); to link someone else, mention them: {example}",
                usage=LINK_USAGE,
                mine=Code(mine),
                backend=backend.name,
                example=Code(f"/lead link @name {staff}"),
            )
    else:
        raise Invalid("give a person (mention them with @) and their staff ID", usage=LINK_USAGE)
    before = people.staff_id(target, backend.name)
    link = people.link(inv.actor, target, staff, backend.name, replace=replace)
    said = f"Linked <@{link.slack_user}> to `{escape(link.staff_id)}` in {link.backend}."
    if before is not None and before != link.staff_id:
        said += f" This replaced `{escape(before)}` ({escape(people.held_by(backend, before))})."
    return Reply(text=said)


def _yes(value: str | None, key: str, usage: str) -> bool:
    if value is None:
        return False
    if value.lower() in ("yes", "true", "1"):
        return True
    raise Invalid("{key} takes {yes}", usage=usage, key=Code(f"{key}="), yes=Code("yes"))


UNLINK_USAGE = "/lead unlink @user|me [backend=NAME] [to=@user | keep=yes]"


def cmd_unlink(inv: Invocation) -> Reply:
    bare, opts = split_options(inv.tokens, ("backend", "to", "keep"), UNLINK_USAGE)
    if len(bare) != 1:
        raise Invalid("give the person to unlink", usage=UNLINK_USAGE)
    target = user_id(bare[0].text, inv.user)
    people, service = inv.deps.people, inv.service
    backend = service.backends.get(opts.get("backend") or service.backends.default)
    staff = people.staff_id(target, backend.name)
    moved = 0
    people.require_may_link(inv.actor, target, unlinking=True)  # before any of their leads is touched
    if staff is not None and not _yes(opts.get("keep"), "keep", UNLINK_USAGE):
        held = people.open_leads(backend, staff)
        if held and not opts.get("to"):
            names = ", ".join(lead.ref for lead in held[:5]) + (" …" if len(held) > 5 else "")
            raise Invalid(
                "{who} still owns {count} open lead(s) in {backend} ({names}); give them to someone first"
                " ({to}) or keep them under the old ID ({keep})",
                usage=UNLINK_USAGE,
                who=Person(target),
                count=len(held),
                backend=backend.name,
                names=names,
                to=Code(f"/lead unlink @… to=@name backend={backend.name}"),
                keep=Code("keep=yes"),
            )
        if held:
            new_owner = user_id(opts["to"], inv.user)
            people.require_link(inv.actor, backend)
            for lead in held:
                service.assign(inv.actor, lead.ref, new_owner)
                moved += 1
    link = people.unlink(inv.actor, target, backend.name)
    said = f"Unlinked <@{link.slack_user}> from `{escape(link.staff_id)}` in {link.backend}."
    if moved:
        said += f" Their {moved} open lead(s) went to <@{user_id(opts['to'], inv.user)}> first."
    return Reply(text=said)


WHOAMI_USAGE = "/lead whoami"


def cmd_whoami(inv: Invocation) -> Reply:
    need_args(inv, WHOAMI_USAGE, 0, 0)
    links = inv.deps.people.links(inv.user)
    lines = [f"You are <@{inv.user}>" + (" (Leadbot admin)." if inv.actor.is_admin else ".")]
    lines.append(f"Time zone: {escape(inv.tz() or 'UTC')}")
    if links:
        lines.append("Linked as: " + ", ".join(f"`{escape(link.staff_id)}` in {link.backend}" for link in links))
    elif inv.actor.is_admin:
        lines.append("You are not linked to any backend yet; link yourself with `/lead link @you STAFF_ID`.")
    else:
        lines.append("You are not linked to any backend yet; an admin can run `/lead link @you STAFF_ID`.")
    dms = "on" if inv.deps.people.assignment_dms(inv.user) else "off"
    lines.append(f"Assignment DMs: {dms} (`/lead notify on|off`)")
    lines.append(f"Daily digest: {inv.deps.reminders.settings(inv.user).describe()} (`/lead remind …`)")
    return Reply(text="\n".join(lines))


NOTIFY_USAGE = "/lead notify on|off"


def cmd_notify(inv: Invocation) -> Reply:
    need_args(inv, NOTIFY_USAGE, 1, 1)
    choice = _on_off(inv, NOTIFY_USAGE)
    inv.deps.people.set_assignment_dms(inv.actor, choice)
    if choice:
        return Reply(text="You will get a DM when someone else assigns you a lead.")
    return Reply(text="You will no longer get DMs when someone assigns you a lead. `/lead notify on` undoes this.")


REMIND_USAGE = "/lead remind on|off|at HH:MM|now"


def cmd_remind(inv: Invocation) -> Reply:
    words = [t.text.lower() for t in inv.tokens]
    need_args(inv, REMIND_USAGE, 0, 3 if words[:1] == ["at"] else 2)  # at 7:30 am
    reminders = inv.deps.reminders
    if not words:
        setting = reminders.settings(inv.user)
        return Reply(text=f"Your daily follow-up digest is {setting.describe()}.\n{REMIND_USAGE}")
    if words in (["on"], ["off"]):
        reminders.set_on(inv.actor, words[0] == "on")
        setting = reminders.settings(inv.user)
        if setting.on:
            return Reply(
                text=f"Your daily follow-up digest is on: a DM at {setting.at:%H:%M} your time"
                " on days something is due."
            )
        return Reply(text="No more daily digests. `/lead remind on` brings them back.")
    if words[0] == "at":
        if len(words) < 2:
            raise Invalid("say when, e.g. {example}", usage=REMIND_USAGE, example=Code("/lead remind at 08:30"))
        at = reminders.set_at(inv.actor, " ".join(words[1:]))
        return Reply(
            text=f"Your daily follow-up digest will come at {at:%H:%M}, your time (Slack's time zone for you)."
        )
    if words == ["now"]:
        return _remind_now(inv)
    raise Invalid("I don't know {words} here", usage=REMIND_USAGE, words=Code(" ".join(words)))


def _remind_now(inv: Invocation) -> Reply:
    """Today's digest at once, counted as today's (so it does not come again at the set time)."""
    if not inv.deps.people.links(inv.user):
        raise Invalid("you are not linked to a staff ID anywhere, so no leads are yours yet")
    outcome = send_now(inv.deps, inv.user)
    if outcome == "empty":
        return Reply(text="Nothing is due today. :tada: `/lead list mine` shows your open leads.")
    if outcome == "taken":
        return Reply(text="Today's digest was already sent; `/lead list mine due` lists what is due.")
    if outcome == "sent":
        return Reply(text="Today's digest is in your DMs from Leadbot.")
    return error_reply("the digest could not be sent just now; Leadbot will try again")


PREVIEWS_USAGE = "/lead previews on|off"


def cmd_previews(inv: Invocation) -> Reply:
    need_args(inv, PREVIEWS_USAGE, 0, 1)
    if not inv.channel:
        raise Invalid("previews are set per channel: run this in the channel", usage=PREVIEWS_USAGE)
    if not inv.tokens:
        state = "on" if inv.deps.prefs.channel(inv.channel).previews else "off"
        return Reply(text=f"Lead previews are {state} in this channel.\n{PREVIEWS_USAGE} (Leadbot admins)")
    choice = _on_off(inv, PREVIEWS_USAGE)
    with inv.service.audit.action(inv.actor, "previews", None, f"{'on' if choice else 'off'} in {inv.channel}"):
        if not inv.actor.is_admin:
            raise NotAllowed("only Leadbot admins can turn lead previews on or off")
        inv.deps.prefs.set_channel(inv.channel, previews=choice)
    if not choice:
        return Reply(text=f"<@{inv.user}> turned lead previews off in this channel.", in_channel=True)
    return Reply(
        text=(
            f"<@{inv.user}> turned lead previews on: a message here that names a lead (e.g. `local:7`)"
            " gets its name, status, owner and next follow-up in a thread, never contact details."
            " Leadbot must be a member of the channel (`/invite @Leadbot`)."
        ),
        in_channel=True,
    )


def _on_off(inv: Invocation, usage: str) -> bool:
    choice = inv.tokens[0].text.lower()
    if choice not in ("on", "off"):
        raise Invalid("{value} is neither on nor off", usage=usage, value=Code(inv.tokens[0].text))
    return choice == "on"
