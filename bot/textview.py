"""Block Kit drawn as text for the console: what a Slack client would show, buttons numbered.

Slack's markup is read the way Slack reads it: ``<@U…>`` mentions by name,
``<!date^…>`` in the viewer's time zone, ``<url|label>`` links, then the
entities ``&amp;``, ``&lt;`` and ``&gt;`` as the characters they stand for,
so escaped text shows exactly as it was typed. Status colours become
coloured dots.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from rich.console import Console as RichConsole
from rich.markup import escape

from handlers.render import ERROR_MARK
from services.when import zone

DATE_RE = re.compile(r"<!date\^(\d+)\^([^|>]*)(?:\|([^>]*))?>")
LINK_RE = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
USER_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
COLOURS = MappingProxyType(
    {
        ":large_blue_circle:": "blue",
        ":large_green_circle:": "green",
        ":red_circle:": "red",
        ":large_yellow_circle:": "yellow",
        ":large_orange_circle:": "dark_orange",
        ":large_purple_circle:": "purple",
        ":large_brown_circle:": "orange4",
        ":black_circle:": "black",
        ":white_circle:": "white",
    }
)
EMOJI = MappingProxyType(
    {
        ":warning:": "⚠",
        ":alarm_clock:": "⏰",
        ":hourglass_flowing_sand:": "⏳",
        ":white_check_mark:": "✅",
        ":information_source:": "ℹ",
        ":inbox_tray:": "📥",
        ":no_entry_sign:": "🚫",
        ":x:": "✗",
        ":tada:": "🎉",
    }
)


@dataclass
class Button:
    action_id: str
    value: str | None
    text: str
    block_id: str
    message: list[dict[str, Any]]
    origin: str  # where the message it sits on came from (a response-URL key, or the App Home)
    options: list[dict[str, Any]] | None = None  # a select: press N CHOICE
    picks_user: bool = False  # a users_select: press N @name


class TextView:
    def __init__(self, out: RichConsole, name_of: Callable[[str], str], tz: str) -> None:
        self.out = out
        self.name_of = name_of  # a Slack user ID's name, for mentions
        self.tz = tz
        self.buttons: list[Button] = []

    def mrkdwn(self, text: str) -> str:
        """Slack mrkdwn as rich markup."""

        def date(m: re.Match[str]) -> str:
            when = datetime.fromtimestamp(int(m.group(1)), UTC).astimezone(zone(self.tz))
            shown = when.strftime("%a %d %b %Y %H:%M")
            if "{ago}" in m.group(2):
                shown += f" ({_ago(when)})"
            return shown

        parts: list[str] = []
        for piece in re.split(r"(<[^<>]*>)", text):
            if piece.startswith("<") and piece.endswith(">"):
                piece = DATE_RE.sub(date, piece)
                piece = USER_RE.sub(lambda m: "@" + self.name_of(m.group(1)), piece)
                piece = LINK_RE.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), piece)
            for entity, char in ENTITIES:
                piece = piece.replace(entity, char)
            parts.append(escape(piece))
        shown = "".join(parts)
        for code, colour in COLOURS.items():
            shown = shown.replace(code, f"[{colour}]●[/{colour}]")
        for code, glyph in EMOJI.items():
            shown = shown.replace(code, glyph)
        shown = re.sub(r"`([^`]+)`", r"[cyan]\1[/cyan]", shown)
        shown = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"[italic]\1[/italic]", shown)
        return re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"[bold]\1[/bold]", shown)

    def render(self, message: dict[str, Any], origin: str) -> bool:
        """Draw a message; True when it says something went wrong."""
        blocks = message.get("blocks") or [
            {"type": "section", "text": {"type": "mrkdwn", "text": message.get("text", "")}}
        ]
        failed = str(message.get("text", "")).startswith(ERROR_MARK) or home_notice(blocks).startswith(ERROR_MARK)
        if message.get("replace_original"):
            self.out.print("[dim](the message above was updated)[/]")
        self.out.rule(style="dim")
        for block in blocks:
            self.block(block, blocks, origin)
        return failed

    def block(self, block: dict[str, Any], message: list[dict[str, Any]], origin: str) -> None:
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


def home_notice(blocks: list[dict[str, Any]]) -> str:
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
