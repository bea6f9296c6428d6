"""``leadbot console``: the real handlers, driven from a terminal.

Each line you type becomes a signed slash command dispatched to the same Bolt
app that serves Slack; replies, cards and modals come back through a fake
Slack on 127.0.0.1 and are drawn as text. ``press N`` clicks button N of the
last output, and modals are filled in at prompts. Lazy listeners run inline,
so every reply is on screen before the next line is read.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr
from rich.console import Console as RichConsole
from rich.markup import escape
from slack_bolt import BoltRequest

from bot import slackrequests as sr
from bot.app import build_app, build_outbox_runner, build_runtime
from bot.config import ConfigError, Settings
from bot.executor import InlineExecutor
from bot.fakeslack import FakeSlack
from bot.textview import USER_RE, Button, TextView
from handlers.blocks import LEAD_FROM_MESSAGE
from services.audit import Actor
from services.errors import LeadError
from services.ports import Store
from services.when import parse_when, zone

HELP = """Type /lead commands as in Slack (try /lead help). Also:
  press N      click button N of the last output
  press N X    choose X in select N (e.g. press 5 won, press 2 @ana)
  home         open your App Home tab (your open leads, with their buttons)
  lead-from TEXT
               "Create lead from message" on a message saying TEXT
  @name        in a command, mentions a (made-up) colleague called name
  quit         leave (end of input works too)"""

HOME = "home"  # the origin of buttons on the App Home tab
CHANNEL = "CCONSOLE"

CANCEL_WORDS = ("\x1b", "/cancel")  # Esc (alone on the line), or /cancel: leave the form, nothing sent
AT_NAME_RE = re.compile(r"(?<![<\w])@([a-z][a-z0-9._-]{0,30})", re.I)


def check_console_options(user_name: str, tz: str) -> None:
    """``--user`` is a Slack-like name and ``--tz`` a real zone: a typo is said, not silently UTC or empty."""
    if not re.fullmatch(r"[a-z][a-z0-9._-]{0,30}", user_name, re.I):
        raise ConfigError(f"--user {user_name[:40]!r} is not a user name: expected letters, digits, . _ - (e.g. ana)")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--tz {tz[:60]!r} is not a time zone: expected a name such as Asia/Kolkata or UTC") from None


class Console:
    def __init__(
        self,
        settings: Settings,
        *,
        user_name: str = "you",
        admin: bool = True,
        tz: str = "UTC",
        out: RichConsole | None = None,
        store: Store | None = None,
    ) -> None:
        check_console_options(user_name, tz)
        self.out = out or RichConsole(highlight=False)
        self.tz = zone(tz).key
        self.fake = FakeSlack().start()
        self.user = self._user_id(user_name)
        self.secret = secrets.token_hex(16)
        settings = settings.model_copy(
            update={
                "slack_bot_token": SecretStr("xoxb-console"),
                "slack_signing_secret": SecretStr(self.secret),
                "slack_api_url": self.fake.api_url,
                "leadbot_admins": frozenset({self.user}) if admin else frozenset(),
            }
        )
        try:
            self.runtime = build_runtime(settings, store=store, background=InlineExecutor())
        except BaseException:
            self.fake.stop()  # a database that cannot be opened must not leave the fake Slack serving
            raise
        # The terminal is its operator's alone: its channel shows contact details, as a configured one does.
        self.runtime.deps.contact_channels = self.runtime.deps.contact_channels | {CHANNEL}
        self.service = self.runtime.service
        self.app = build_app(self.runtime)
        self.outbox = build_outbox_runner(self.runtime)
        self.view = TextView(self.out, self._name_of, self.tz)
        self.failed = False
        self._home_shown = False  # draw App Home publishes only when you are looking at it
        self._seen = 0
        self._ids = itertools.count(1)
        self._link_console_user(user_name, admin)

    @property
    def buttons(self) -> list[Button]:
        return self.view.buttons

    def _name_of(self, user_id: str) -> str:
        return self.fake.users.get(user_id, {}).get("name", user_id)

    def _user_id(self, name: str) -> str:
        user = "U" + re.sub(r"[^A-Z0-9]", "", name.upper())[:12] or "UYOU"
        if user not in self.fake.users:
            self.fake.add_user(user, name, self.tz)
        return user

    def _link_console_user(self, name: str, admin: bool) -> None:
        """A fresh console can create leads at once: link its user on local if nobody did."""
        people = self.service.people
        if people.staff_id(self.user, "local") is None and admin:
            # If that staff ID belongs to someone else in this database, /lead link fixes it.
            with contextlib.suppress(LeadError):
                people.link(Actor(slack_user=self.user, is_admin=True), self.user, name, "local")

    def close(self) -> None:
        self.fake.stop()
        self.runtime.close()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, lines: Iterator[str], *, interactive: bool = False, typed: bool = False) -> int:
        """``typed``: lines come from a person at a terminal, read with line editing and history (readline)."""
        if interactive:
            self.out.print(
                f"[bold]Leadbot console[/] — you are @{self.fake.users[self.user]['name']}"
                f" ({self.user}), time zone {self.tz}. Type [cyan]help[/] for help."
            )
        self._lines = lines
        self._typed = typed
        while True:
            line = self._next("> ", "[bold green]>[/] ") if interactive else next(self._lines, None)
            if line is None:
                break
            line = line.strip()
            if not interactive and line:
                self.out.print(f"[bold green]>[/] {escape(line)}")
            if not line or line.startswith("#"):
                continue
            if line in ("quit", "exit"):
                break
            self.handle(line)
        return 1 if self.failed else 0

    def handle(self, line: str) -> None:
        self.outbox.run_due()  # writes queued earlier, if their retry is due; outcomes show below
        self._after(200, "")
        if line in ("help", "?"):
            self.out.print(HELP)
        elif line.startswith("/lead"):
            self.slash(line[len("/lead") :].strip())
        elif line.startswith("press"):
            self.press(line[len("press") :].strip())
        elif line == "home":
            self.open_home()
        elif line.startswith("lead-from "):
            self.lead_from_message(line[len("lead-from ") :].strip())
        else:
            self.error(f"unknown console command `{line.split()[0]}`; type help")

    def error(self, message: str) -> None:
        self.failed = True
        self.out.print(f"[red]⚠ {escape(message)}[/]")

    # -- Slack's side -----------------------------------------------------------------------

    def _mentions(self, text: str) -> str:
        return AT_NAME_RE.sub(lambda m: f"<@{self._user_id(m.group(1))}|{m.group(1)}>", text)

    def _dispatch(self, request: sr.SlackRequest) -> tuple[int, str]:
        headers = {k: [v] for k, v in request.headers(self.secret).items()}
        response = self.app.dispatch(BoltRequest(body=request.body, headers=headers))
        return response.status, response.body

    def _name(self) -> str:
        return self.fake.users[self.user]["name"]

    def slash(self, text: str) -> None:
        n = next(self._ids)
        request = sr.slash_command(
            self._mentions(text),
            user=self.user,
            user_name=self._name(),
            channel=CHANNEL,
            response_url=self.fake.response_url(f"cmd{n}"),
            trigger_id=f"console.{n}.{secrets.token_hex(4)}",
        )
        self._after(*self._dispatch(request))

    def open_home(self) -> None:
        event = {"type": "app_home_opened", "user": self.user, "channel": "DCONSOLE", "tab": "home"}
        self._home_shown = True
        self._after(*self._dispatch(sr.event_callback(event, event_id=f"Ev{next(self._ids)}")))

    def lead_from_message(self, text: str) -> None:
        n = next(self._ids)
        request = sr.message_action(
            LEAD_FROM_MESSAGE,
            text,
            user=self.user,
            user_name=self._name(),
            channel=CHANNEL,
            message_ts=f"{n}.0",
            response_url=self.fake.response_url(f"short{n}"),
            trigger_id=f"console.{n}.{secrets.token_hex(4)}",
        )
        self._after(*self._dispatch(request))

    def press(self, arg: str) -> None:
        arg, _, choice = arg.partition(" ")
        if not arg.isdigit() or not 1 <= int(arg) <= len(self.buttons):
            self.error(
                f"press takes a button number from 1 to {len(self.buttons)}"
                if self.buttons
                else "there is no button to press"
            )
            return
        button = self.buttons[int(arg) - 1]
        element = {"action_id": button.action_id, "value": button.value, "text": {"type": "plain_text", "text": ""}}
        block = {"block_id": button.block_id}
        action = sr.button_action(element, block)
        if button.picks_user:
            match = USER_RE.match(self._mentions(choice.strip())) if choice.strip() else None
            if match is None:
                self.error(f"say whom to pick, e.g. press {arg} @{self._name()}")
                return
            action = sr.user_select_action(element, block, match.group(1))
        elif button.options is not None:
            labels = ", ".join(o["text"]["text"] for o in button.options)
            wanted = choice.strip().casefold()
            option = next(
                (
                    o
                    for o in button.options
                    if wanted and wanted in (o["text"]["text"].casefold(), o["value"].rpartition("|")[2].casefold())
                ),
                None,
            )
            if option is None:
                self.error(f"choose one of: {labels} (e.g. press {arg} {button.options[0]['text']['text']})")
                return
            action = sr.select_action(element, block, option)
        n = next(self._ids)
        on_home = button.origin == HOME
        request = sr.block_actions(
            action,
            user=self.user,
            user_name=self._name(),
            trigger_id=f"console.{n}.{secrets.token_hex(4)}",
            response_url=None if on_home else self.fake.response_url(f"act{n}"),
            channel=CHANNEL,
            message_ts=f"{n}.0",
            message_blocks=button.message,
            home_view={"type": "home", "id": "VHOME"} if on_home else None,
        )
        self._home_shown = self._home_shown or on_home
        self.out.print(f"[dim](pressed {escape(button.text)})[/]")
        self._after(*self._dispatch(request))

    def _after(self, status: int, body: str) -> None:
        if status != 200:
            self.error(f"the app answered {status}: {body[:200]}")
            return
        # Buttons stay pressable until an output brings new ones (an error reply has none).
        earlier, self.view.buttons = self.view.buttons, []
        if body:
            ack = json.loads(body) if body.startswith("{") else {"text": body}
            if ack.get("text") or ack.get("blocks"):
                self.render(ack, "ack")
        while self._seen < len(self.fake.calls):
            call = self.fake.calls[self._seen]
            self._seen += 1
            if call.kind == "response":
                self.render(call.body, call.name)
            elif call.name == "views.open":
                self.fill(call.answer["view"])
            elif call.name == "chat.postMessage" and call.body.get("thread_ts"):
                self.out.print(f"  [dim]↳ in the thread: {self.view.mrkdwn(call.body.get('text', ''))}[/]")
            elif call.name == "chat.postMessage":
                to = str(call.body.get("channel", ""))
                if to not in (self.user, self.fake.dm_channel(self.user)) and to[:1] in ("U", "W", "D"):
                    # Someone else's DM (an assignment, a request for a lead): shown, as theirs.
                    who = next((u for u in self.fake.users if to in (u, self.fake.dm_channel(u))), to)
                    self.out.print(f"[dim](a DM to @{escape(self._name_of(who))}, not to you:)[/]")
                self.render(call.body, call.name)
            elif call.name == "views.publish" and self._home_shown:
                self.out.print("[dim](App Home)[/]")
                self.render(call.answer["view"], HOME)
            elif call.name == "views.publish":
                self.out.print("[dim](your App Home was updated: type home to see it)[/]")
        self._home_shown = False
        if not self.view.buttons:
            self.view.buttons = earlier

    def render(self, message: dict[str, Any], origin: str) -> None:
        if self.view.render(message, origin):
            self.failed = True

    # -- modals -----------------------------------------------------------------------------

    def _next(self, plain: str, styled: str) -> str | None:
        """The next line: typed at a terminal (arrows edit it, up and down go through what was typed), or read."""
        if getattr(self, "_typed", False):
            try:
                return input(plain)
            except EOFError:
                return None
        self.out.print(styled, end="")
        return next(self._lines, None)

    def _ask(self, prompt: str) -> str | None:
        answer = self._next(f"  {prompt}: ", f"  {escape(prompt)}: ")
        if answer is not None and not self.out.is_terminal:
            self.out.print(escape(answer.strip()))  # a piped script shows its answers like typed ones
        return None if answer is None else answer.strip()

    def fill(self, view: dict[str, Any]) -> None:
        title = view.get("title", {}).get("text", "Form")
        self.out.print(f"[bold]┌ {escape(title)}[/] [dim](empty line skips an optional field)[/]")
        for block in view["blocks"]:
            if block["type"] == "context":
                self.view.block(block, view["blocks"], "modal")
        answers: dict[str, str] = {}
        errors: dict[str, str] = {}
        inputs = [b for b in view["blocks"] if b["type"] == "input"]
        pending = inputs
        while True:
            for block in pending:
                bid = block["block_id"]
                if bid in errors:
                    self.out.print(f"  [red]{escape(errors[bid])}[/]")
                label = block["label"]["text"] + ("" if block.get("optional") else " (required)")
                options = block["element"].get("options")
                if options:
                    shown = (
                        o["value"]
                        if o["value"] == o["text"]["text"] or o["value"].lower() == o["text"]["text"].lower()
                        else f"{o['value']} = {o['text']['text']}"
                        for o in options
                    )
                    label += " [" + ", ".join(shown) + "]"
                if block["element"].get("initial_value"):
                    label += f" (empty keeps “{block['element']['initial_value']}”, - clears it)"
                while True:
                    answer = self._ask(label)
                    if answer is None:
                        self.error("input ended inside the form; it was not submitted")
                        return
                    if answer in CANCEL_WORDS:
                        self.out.print("[bold]└ cancelled[/] [dim](nothing was sent)[/]")
                        return
                    problem = self._unreadable(block, answer)
                    if problem is None:
                        break
                    self.out.print(f"  [red]{escape(problem)}[/]")
                answers[bid] = answer
            errors = self._submit(view, inputs, answers)
            if errors is None:
                return
            pending = [b for b in inputs if b["block_id"] in errors]

    def _unreadable(self, block: dict[str, Any], answer: str) -> str | None:
        """Why a select's answer cannot be taken (None: it can), so the field is asked again, not the form lost."""
        element = block["element"]
        if not answer:
            return None
        if element["type"] == "static_select":
            options = element.get("options") or []
            if any(answer.lower() in (o["value"].lower(), o["text"]["text"].lower()) for o in options):
                return None
            return "choose one of: " + ", ".join(o["value"] for o in options)
        if element["type"] == "users_select" and not (
            answer.lower() == "me"
            or AT_NAME_RE.fullmatch(answer)
            or re.fullmatch(r"[a-z][a-z0-9._-]{0,30}", answer, re.I)
        ):
            return "say whom: me, or a name such as @ana"
        return None

    def _person(self, answer: str) -> str | None:
        """A users_select answer: ``me``, ``@ana`` or ``ana``."""
        if not answer:
            return None
        if answer.lower() == "me":
            return self.user
        return self._user_id(answer.lstrip("@"))

    def _submit(self, view: dict[str, Any], inputs: list[dict[str, Any]], answers: dict[str, str]):
        state: dict[str, Any] = {}
        for block in inputs:
            element, answer = block["element"], answers.get(block["block_id"], "")
            kind = element["type"]
            entry: dict[str, Any] = {"type": kind}
            if kind == "users_select":
                entry["selected_user"] = self._person(answer)
            elif kind == "datetimepicker":
                if answer:
                    try:
                        entry["selected_date_time"] = int(parse_when(answer, self.tz).timestamp())
                    except LeadError as exc:
                        return {block["block_id"]: exc.message}
            elif kind == "static_select":
                options = element.get("options") or []
                picked = next((o["value"] for o in options if answer.lower() == o["text"]["text"].lower()), answer)
                chosen = picked or (element.get("initial_option") or {}).get("value")
                entry["selected_option"] = {"value": chosen} if chosen else None
            else:
                entry["value"] = None if answer == "-" else answer or element.get("initial_value")
            state[block["block_id"]] = {element["action_id"]: entry}
        payload = {
            "type": "view_submission",
            "team": {"id": sr.TEAM},
            "user": {"id": self.user, "name": self._name()},
            "view": {**view, "state": {"values": state}},
            "trigger_id": f"console.{secrets.token_hex(4)}",
        }
        status, body = self._dispatch(sr.interaction(payload))
        ack = json.loads(body) if body else {}
        if status == 200 and ack.get("response_action") == "errors":
            self.failed = True  # a script that needed a second try at a form did not go as written
            return ack["errors"]
        self.out.print("[bold]└ submitted[/]")
        self._after(status, "")
        return None
