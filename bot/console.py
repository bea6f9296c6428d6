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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr
from rich.console import Console as RichConsole
from rich.markup import escape
from slack_bolt import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.app import build_app, build_outbox_runner, build_service
from bot.config import Settings
from bot.executor import InlineExecutor
from bot.fakeslack import TEAM, FakeSlack
from handlers.blocks import ERROR_MARK, LEAD_FROM_MESSAGE
from services.errors import LeadError
from services.leads import Actor
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

DATE_RE = re.compile(r"<!date\^(\d+)\^([^|>]*)(?:\|([^>]*))?>")
LINK_RE = re.compile(r"<(https?://[^|>]+)(?:\|([^>]*))?>")
USER_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
AT_NAME_RE = re.compile(r"(?<![<\w])@([a-z][a-z0-9._-]{0,30})", re.I)
EMOJI = {
    ":warning:": "⚠",
    ":alarm_clock:": "⏰",
    ":new:": "🆕",
    ":trophy:": "🏆",
    ":x:": "✗",
    ":star:": "★",
    ":speech_balloon:": "💬",
    ":large_green_circle:": "🟢",
    ":large_blue_circle:": "🔵",
    ":large_yellow_circle:": "🟡",
    ":large_orange_circle:": "🟠",
    ":large_purple_circle:": "🟣",
    ":large_brown_circle:": "🟤",
    ":black_circle:": "⚫",
    ":white_circle:": "⚪",
    ":file_cabinet:": "🗄",
    ":red_circle:": "🔴",
    ":double_vertical_bar:": "⏸",
    ":wastebasket:": "🗑",
    ":hourglass_flowing_sand:": "⏳",
    ":white_check_mark:": "✅",
    ":information_source:": "ℹ",
    ":inbox_tray:": "📥",
    ":no_entry_sign:": "🚫",
}


@dataclass
class Button:
    action_id: str
    value: str | None
    text: str
    block_id: str
    message: list[dict[str, Any]]
    origin: str  # the response-URL key of the message it sits on
    options: list[dict[str, Any]] | None = None  # a select: press N CHOICE
    picks_user: bool = False  # a users_select: press N @name


class Console:
    def __init__(
        self,
        settings: Settings,
        *,
        user_name: str = "you",
        admin: bool = True,
        tz: str = "UTC",
        out: RichConsole | None = None,
    ) -> None:
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
        self.service = build_service(settings)
        self.app = build_app(settings, self.service, executor=InlineExecutor())
        self.outbox = build_outbox_runner(settings, self.service)
        self.buttons: list[Button] = []
        self.failed = False
        self._home_shown = False  # draw App Home publishes only when you are looking at it
        self._seen = 0
        self._ids = itertools.count(1)
        self._link_console_user(user_name, admin)

    def _user_id(self, name: str) -> str:
        user = "U" + re.sub(r"[^A-Z0-9]", "", name.upper())[:12] or "UYOU"
        if user not in self.fake.users:
            self.fake.add_user(user, name, self.tz)
        return user

    def _link_console_user(self, name: str, admin: bool) -> None:
        """A fresh console can create leads at once: link its user on local if nobody did."""
        if self.service.staff_id(self.user, "local") is None and admin:
            # If that staff ID belongs to someone else in this database, /lead link fixes it.
            with contextlib.suppress(LeadError):
                self.service.link(Actor(slack_user=self.user, is_admin=True), self.user, name, "local")

    def close(self) -> None:
        self.fake.stop()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, lines: Iterator[str], *, interactive: bool = False) -> int:
        if interactive:
            self.out.print(
                f"[bold]Leadbot console[/] — you are @{self.fake.users[self.user]['name']}"
                f" ({self.user}), time zone {self.tz}. Type [cyan]help[/] for help."
            )
        self._lines = lines
        while True:
            if interactive:
                self.out.print("[bold green]>[/] ", end="")
            line = next(self._lines, None)
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

    def _dispatch(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
        ts = str(int(time.time()))
        headers = {
            "Content-Type": [content_type],
            "X-Slack-Request-Timestamp": [ts],
            "X-Slack-Signature": [SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)],
        }
        response = self.app.dispatch(BoltRequest(body=body, headers=headers))
        return response.status, response.body

    def slash(self, text: str) -> None:
        n = next(self._ids)
        form = {
            "team_id": TEAM,
            "channel_id": "CCONSOLE",
            "channel_name": "console",
            "user_id": self.user,
            "user_name": self.fake.users[self.user]["name"],
            "command": "/lead",
            "text": self._mentions(text),
            "response_url": self.fake.response_url(f"cmd{n}"),
            "trigger_id": f"console.{n}.{secrets.token_hex(4)}",
        }
        self._after(*self._dispatch(urlencode(form)))

    def open_home(self) -> None:
        event = {"type": "app_home_opened", "user": self.user, "channel": "DCONSOLE", "tab": "home"}
        body = {"type": "event_callback", "team_id": TEAM, "event": event, "event_id": f"Ev{next(self._ids)}"}
        self._home_shown = True
        self._after(*self._dispatch(json.dumps(body), "application/json"))

    def lead_from_message(self, text: str) -> None:
        n = next(self._ids)
        payload = {
            "type": "message_action",
            "callback_id": LEAD_FROM_MESSAGE,
            "team": {"id": TEAM},
            "user": {"id": self.user, "name": self.fake.users[self.user]["name"]},
            "channel": {"id": "CCONSOLE"},
            "message": {"type": "message", "ts": f"{n}.0", "text": text},
            "message_ts": f"{n}.0",
            "response_url": self.fake.response_url(f"short{n}"),
            "trigger_id": f"console.{n}.{secrets.token_hex(4)}",
        }
        self._after(*self._dispatch(urlencode({"payload": json.dumps(payload)})))

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
        action: dict[str, Any] = {
            "action_id": button.action_id,
            "block_id": button.block_id,
            "type": "button",
            "value": button.value,
            "action_ts": f"{time.time():.6f}",
        }
        if button.picks_user:
            match = USER_RE.match(self._mentions(choice.strip())) if choice.strip() else None
            if match is None:
                self.error(f"say whom to pick, e.g. press {arg} @{self.fake.users[self.user]['name']}")
                return
            action = {**action, "type": "users_select", "selected_user": match.group(1)}
            del action["value"]
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
            action = {**action, "type": "static_select", "selected_option": option}
            del action["value"]
        n = next(self._ids)
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": self.user, "name": self.fake.users[self.user]["name"]},
            "trigger_id": f"console.{n}.{secrets.token_hex(4)}",
            "actions": [action],
        }
        if button.origin == HOME:
            # As Slack sends it from an App Home: no channel, message or response_url.
            payload |= {"container": {"type": "view", "view_id": "VHOME"}, "view": {"type": "home", "id": "VHOME"}}
            self._home_shown = True
        else:
            payload |= {
                "channel": {"id": "CCONSOLE"},
                "container": {"type": "message", "channel_id": "CCONSOLE", "message_ts": f"{n}.0"},
                "message": {"ts": f"{n}.0", "blocks": button.message},
                "response_url": self.fake.response_url(f"act{n}"),
            }
        self.out.print(f"[dim](pressed {escape(button.text)})[/]")
        self._after(*self._dispatch(urlencode({"payload": json.dumps(payload)})))

    def _after(self, status: int, body: str) -> None:
        if status != 200:
            self.error(f"the app answered {status}: {body[:200]}")
            return
        # Buttons stay pressable until an output brings new ones (an error reply has none).
        earlier, self.buttons = self.buttons, []
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
                self.out.print(f"  [dim]↳ in the thread: {self.mrkdwn(call.body.get('text', ''))}[/]")
            elif call.name == "chat.postMessage":
                self.render(call.body, call.name)
            elif call.name == "views.publish" and self._home_shown:
                self.out.print("[dim](App Home)[/]")
                self.render(call.answer["view"], HOME)
            elif call.name == "views.publish":
                self.out.print("[dim](your App Home was updated: type home to see it)[/]")
        self._home_shown = False
        if not self.buttons:
            self.buttons = earlier

    # -- modals -----------------------------------------------------------------------------

    def _ask(self, prompt: str) -> str | None:
        self.out.print(f"  {escape(prompt)}: ", end="")
        answer = next(self._lines, None)
        if answer is not None and not self.out.is_terminal:
            self.out.print(escape(answer.strip()))  # a piped script shows its answers like typed ones
        return None if answer is None else answer.strip()

    def fill(self, view: dict[str, Any]) -> None:
        title = view.get("title", {}).get("text", "Form")
        self.out.print(f"[bold]┌ {escape(title)}[/] [dim](empty line skips an optional field)[/]")
        for block in view["blocks"]:
            if block["type"] == "context":
                self._block(block, view["blocks"], "modal")
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
                answer = self._ask(label)
                if answer is None:
                    self.error("input ended inside the form; it was not submitted")
                    return
                answers[bid] = answer
            errors = self._submit(view, inputs, answers)
            if errors is None:
                return
            pending = [b for b in inputs if b["block_id"] in errors]

    def _submit(self, view: dict[str, Any], inputs: list[dict[str, Any]], answers: dict[str, str]):
        state: dict[str, Any] = {}
        for block in inputs:
            element, answer = block["element"], answers.get(block["block_id"], "")
            kind = element["type"]
            entry: dict[str, Any] = {"type": kind}
            if kind == "users_select":
                entry["selected_user"] = USER_RE.match(self._mentions(answer)).group(1) if answer else None
            elif kind == "datetimepicker":
                if answer:
                    try:
                        entry["selected_date_time"] = int(parse_when(answer, self.tz).timestamp())
                    except LeadError as exc:
                        return {block["block_id"]: exc.message}
            elif kind == "static_select":
                chosen = answer or (element.get("initial_option") or {}).get("value")
                entry["selected_option"] = {"value": chosen} if chosen else None
            else:
                entry["value"] = None if answer == "-" else answer or element.get("initial_value")
            state[block["block_id"]] = {element["action_id"]: entry}
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": self.user, "name": self.fake.users[self.user]["name"]},
            "view": {**view, "state": {"values": state}},
            "trigger_id": f"console.{secrets.token_hex(4)}",
        }
        status, body = self._dispatch(urlencode({"payload": json.dumps(payload)}))
        ack = json.loads(body) if body else {}
        if status == 200 and ack.get("response_action") == "errors":
            self.failed = True  # a script that needed a second try at a form did not go as written
            return ack["errors"]
        self.out.print("[bold]└ submitted[/]")
        self._after(status, "")
        return None

    # -- drawing Block Kit as text ----------------------------------------------------------

    def mrkdwn(self, text: str) -> str:
        def date(m: re.Match[str]) -> str:
            when = datetime.fromtimestamp(int(m.group(1)), UTC).astimezone(zone(self.tz))
            shown = when.strftime("%a %d %b %Y %H:%M")
            if "{ago}" in m.group(2):
                shown += f" ({_ago(when)})"
            return shown

        def user(m: re.Match[str]) -> str:
            return "@" + self.fake.users.get(m.group(1), {}).get("name", m.group(1))

        text = LINK_RE.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
        text = escape(USER_RE.sub(user, DATE_RE.sub(date, text)))
        for code, glyph in EMOJI.items():
            text = text.replace(code, glyph)
        text = re.sub(r"`([^`]+)`", r"[cyan]\1[/cyan]", text)
        text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"[italic]\1[/italic]", text)
        return re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"[bold]\1[/bold]", text)

    def render(self, message: dict[str, Any], origin: str) -> None:
        blocks = message.get("blocks") or [
            {"type": "section", "text": {"type": "mrkdwn", "text": message.get("text", "")}}
        ]
        if message.get("text", "").startswith(ERROR_MARK) or _home_notice(blocks).startswith(ERROR_MARK):
            self.failed = True
        if message.get("replace_original"):
            self.out.print("[dim](the message above was updated)[/]")
        self.out.rule(style="dim")
        for block in blocks:
            self._block(block, blocks, origin)

    def _block(self, block: dict[str, Any], message: list[dict[str, Any]], origin: str) -> None:
        kind = block["type"]
        if kind == "header":
            self.out.print(f"[bold underline]{escape(block['text']['text'])}[/]")
        elif kind == "context":
            self.out.print("[dim]" + "  ".join(self.mrkdwn(e.get("text", "")) for e in block["elements"]) + "[/]")
        elif kind == "section":
            line = self.mrkdwn(block["text"]["text"]) if block.get("text") else ""
            accessory = block.get("accessory")
            if accessory and accessory.get("type") == "button":
                line += "  " + self._button(accessory, block, message, origin)
            if line:
                self.out.print(line)
            for field in block.get("fields", []):
                label, _, value = field["text"].partition("\n")
                self.out.print(f"  {self.mrkdwn(label)}: {self.mrkdwn(value)}")
        elif kind == "actions":
            self.out.print(
                "  ".join(
                    self._button(e, block, message, origin)
                    for e in block["elements"]
                    if e.get("type") in ("button", "static_select", "users_select")
                )
            )
        elif kind == "divider":
            self.out.rule(style="dim")

    def _button(
        self, element: dict[str, Any], block: dict[str, Any], message: list[dict[str, Any]], origin: str
    ) -> str:
        options = element.get("options") if element.get("type") == "static_select" else None
        picks_user = element.get("type") == "users_select"
        if options is not None:
            current = (element.get("initial_option") or {}).get("text", {}).get("text", "")
            label = f"{element.get('placeholder', {}).get('text', 'Choose')}: {current} ▾"
        elif picks_user:
            label = f"{element.get('placeholder', {}).get('text', 'Pick someone')} ▾"
        else:
            label = element["text"]["text"]
        self.buttons.append(
            Button(
                element["action_id"],
                element.get("value"),
                label,
                block.get("block_id", ""),
                message,
                origin,
                options,
                picks_user,
            )
        )
        return f"[reverse] {len(self.buttons)} [/] [bold]{escape(label)}[/]"


def _home_notice(blocks: list[dict[str, Any]]) -> str:
    """What an App Home says just happened (the outcome of a button pressed on it)."""
    for block in blocks:
        if block.get("block_id") == "notice":
            return block["elements"][0].get("text", "")
    return ""


def _ago(when: datetime) -> str:
    seconds = (when - datetime.now(UTC)).total_seconds()
    future, seconds = seconds > 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            amount = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {amount}" if future else f"{amount} ago"
    return "now"
