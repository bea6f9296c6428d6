"""``leadbot console``, driven by piping a script into it.

The README's example runs the installed command in a subprocess; the rest
drive the same ``Console`` in this process (the command is a thin wrapper),
which is much faster.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console as RichConsole

from bot.config import load_settings
from bot.console import Console

LEADBOT = shutil.which("leadbot", path=str(Path(sys.executable).parent)) or shutil.which("leadbot")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEADBOT_"))}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str = ""


def console_process(script: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    assert LEADBOT, "the leadbot console script is not installed"
    result = subprocess.run(
        [LEADBOT, "console", *args],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, **(env or {}), "LEADBOT_DB": str(tmp_path / "console.db"), "COLUMNS": "120"},
        cwd=tmp_path,
    )
    return Ran(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def console(monkeypatch):
    """Run a console script in this process, as `leadbot console` would (``admin``, ``user``, ``tz``, env)."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)

    def run(script: str, tmp_path: Path, *, env: dict[str, str] | None = None, **options) -> Ran:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        settings = load_settings(leadbot_db=tmp_path / "console.db")
        buffer = io.StringIO()
        out = RichConsole(file=buffer, width=120, force_terminal=False, highlight=False)
        session = Console(settings, out=out, **options)
        try:
            code = session.run(iter(script.splitlines(keepends=True)))
        finally:
            session.close()
        return Ran(code, buffer.getvalue())

    return run


def test_the_readme_example_prints_both_results_and_exits_0(tmp_path):
    result = console_process("/lead new Ada Lovelace ada@example.com\n/lead list\n", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Ada Lovelace" in out and "local:1 · Local store" in out and "Contact: ada@example.com" in out
    assert "Open leads on Local store · 1–1 of 1" in out
    assert "Traceback" not in out + result.stderr


def test_a_failing_line_makes_the_exit_status_non_zero(tmp_path):
    result = console_process("/lead new Ada\n/lead help\n", tmp_path)
    assert result.returncode == 1
    assert "Give the lead's email or phone after the name" in result.stdout
    assert "/lead whoami" in result.stdout  # the later line still ran


def test_buttons_can_be_pressed_and_modals_filled(console, tmp_path):
    script = (
        "\n".join(
            [
                "/lead new",  # the New lead modal, answered field by field:
                "Grace Hopper",  # name
                "grace@",  # email (wrong: asked again after the submission)
                "+1 202 555 0143",  # phone
                "COBOL",
                "",
                "referral",  # for, type, source
                "",  # owner: me
                "tomorrow 10am",  # next follow-up
                "contacted",  # status
                "met at the conference",  # note
                "grace@navy.mil",  # email, asked again with the error shown
                "/lead show 1",
                "press 6",  # Refresh (no Assign to me: the lead is the console user's own)
                "press 4 qualified",  # the Status select
                "press 2",  # Log follow-up: notes, done at (empty: now), next
                "called back",
                "",
                "fri 3pm",
                "/lead list",
                "press 1",  # Open
                "press 1 @ada",  # Assign… on the opened card: already hers
            ]
        )
        + "\n"
    )
    result = console(script, tmp_path, user_name="ada", tz="Asia/Kolkata")
    out = result.stdout
    assert "is not a valid email address" in out
    assert "└ submitted" in out
    assert "Grace Hopper" in out and "Contact: grace@navy.mil · +12025550143" in out
    assert "Status: ● Contacted" in out and "Owner: @ada" in out
    assert "10:00" in out  # tomorrow 10am in the console user's zone
    assert "(pressed Refresh)" in out and "(the message above was updated)" in out
    assert "@ada set the status to Qualified" in out and "Status: ● Qualified" in out
    assert "(pressed Log follow-up)" in out and "@ada logged a follow-up · next: Fri" in out
    assert "follow-up: called back" in out
    assert "(pressed Open)" in out
    assert "Nothing changed: local:1 is already assigned to @ada" in out
    assert result.returncode == 1  # the form needed a second try, so the script did not go as written


def test_as_a_non_admin(console, tmp_path):
    result = console("/lead link @bob bob\n", tmp_path, admin=False, user_name="eve")
    assert result.returncode == 1
    assert "Only Leadbot admins can link or unlink other people" in result.stdout


@pytest.mark.parametrize("line", ["press 9", "frobnicate"])
def test_console_mistakes(console, tmp_path, line):
    result = console(line + "\n", tmp_path)
    assert result.returncode == 1
    assert "⚠" in result.stdout


def test_a_select_needs_a_choice(console, tmp_path):
    result = console("/lead new Ada ada@example.com\npress 4\n", tmp_path)
    assert result.returncode == 1
    assert "choose one of: New, Contacted, Qualified, Won, Lost (e.g. press 4 New)" in result.stdout


def test_the_assign_picker_needs_a_person(console, tmp_path):
    result = console("/lead new Ada ada@example.com\npress 1\n", tmp_path)
    assert result.returncode == 1
    assert "say whom to pick, e.g. press 1 @you" in result.stdout


def test_the_app_home_can_be_opened_and_worked_from(console, tmp_path):
    from datetime import UTC, datetime, timedelta

    from bot.stores.sqlite import SqliteStore
    from services.models import NewLead

    # An overdue lead, as yesterday left it (a next follow-up typed now must lie ahead).
    store = SqliteStore(tmp_path / "console.db")
    now = datetime.now(UTC)
    lead = NewLead(name="Ada Lovelace", email="ada@example.com", next_follow_up=now - timedelta(days=1))
    store.local.insert(lead, status="new", owner="you", by="you", at=now - timedelta(days=2))
    store.close()
    script = "\n".join(
        [
            "/lead new Bob Smith bob@example.com",
            "home",
            "press 2",  # Log follow-up on Ada, the overdue one, listed first
            "called her",
            "",
            "",
            "press 4 won",  # Status on the lead now listed first
            "/lead note local:1 a note",
            "",
        ]
    )
    result = console(script, tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    home = out.split("> home", 1)[1]
    assert "Your leads" in home and "2 open · ⏰ 1 due or overdue · New 2" in home
    assert home.index("Ada Lovelace local:1") < home.index("Bob Smith local:2")
    assert "local:1: @you logged a follow-up" in home
    assert "local:2: @you set the status to Won" in home and "1 open · New 1" in home
    assert "(your App Home was updated: type home to see it)" in out.split("> /lead note", 1)[1]


def test_a_lead_from_a_message_with_the_form_filled_in(console, tmp_path):
    script = "lead-from New inquiry from Jane Doe, jane@acme.example, +1 415 555 0132\n" + "\n" * 10
    result = console(script, tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Name (required) (empty keeps “Jane Doe”, - clears it)" in out
    assert "this message (https://leadbot-test.slack.com/archives/CCONSOLE/p" in out
    assert "made a lead of this message: Jane Doe (local:1)" in out
    assert "Contact: jane@acme.example · +14155550132" in out


def test_the_console_works_against_the_fake_capillary(console, tmp_path):
    from tests.fakes.capillary import PASSWORD, USERNAME, FakeCapillary

    fake = FakeCapillary().start()
    config = tmp_path / "leadbot.toml"
    config.write_text("[backends.capillary]\ntill_id = 4242\n")
    env = {
        "LEADBOT_CONFIG": str(config),
        "LEADBOT_CAPILLARY_URL": fake.url,
        "LEADBOT_CAPILLARY_USERNAME": USERNAME,
        "LEADBOT_CAPILLARY_PASSWORD": PASSWORD,
    }
    script = "\n".join(
        [
            "/lead link ana.s/28812689 backend=capillary",
            "/lead new Tom Sawyer tom@example.com for=item001 backend=capillary",
            "press 4 on_hold",
            "2",
            "YetToDecide",
            "",
        ]
    )
    try:
        result = console(script, tmp_path, env=env)
    finally:
        fake.stop()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "capillary:1 · Capillary" in out and "2 = Best price availabe at another store" in out
    assert "Status: ● On hold · YetToDecide" in out
    assert fake.leads[1]["status"] == "ON_HOLD"


def test_the_owner_field_takes_me_a_select_asks_again_and_a_form_can_be_cancelled(console, tmp_path):
    script = "\n".join(
        [
            "/lead new",
            "Grace Hopper",
            "grace@navy.mil",
            "",
            "",
            "",
            "",
            "me",  # owner: the console user (was a crash)
            "",
            "sleeping",  # not a status: asked again, the form kept
            "Contacted",  # a label does as well as a value
            "",
            "/lead new",
            "Nobody",
            "/cancel",
            "/lead list",
        ]
    )
    result = console(script + "\n", tmp_path, user_name="ada")
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert "choose one of: new, contacted, qualified, won, lost" in out
    assert "Status: ● Contacted" in out and "Owner: @ada" in out
    assert "└ cancelled (nothing was sent)" in out
    assert "Nobody" not in out.split("/lead list", 1)[1]
    assert "Open leads on Local store · 1–1 of 1" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--tz", "Asia/Kolkatta"), "leadbot: --tz 'Asia/Kolkatta' is not a time zone: expected a name such as"),
        (("--user", "two words"), "leadbot: --user 'two words' is not a user name"),
        (("--user", ""), "leadbot: --user '' is not a user name"),
    ],
)
def test_bad_console_options_are_one_line_and_exit_2(tmp_path, args, expected):
    result = console_process("", tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(expected) and len(result.stderr.strip().splitlines()) == 1


def test_a_dm_to_someone_else_is_labelled_as_theirs(console, tmp_path):
    result = console("/lead link @bob bob\n/lead new Ada ada@example.com owner=@bob\n", tmp_path, user_name="ada")
    out = result.stdout
    assert "(a DM to @bob, not to you:)" in out
    assert out.count("not to you") == 1  # the lead's card in the channel is not labelled
    mine = console(
        '/lead new Grace Hopper grace@example.com next="in 2 minutes"\n/lead remind now\n', tmp_path, user_name="ada"
    )
    assert "1 due today" in mine.stdout and "not to you" not in mine.stdout  # the digest is a DM to you


def test_typed_lines_are_read_with_line_editing(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("SLACK_", "LEADBOT_")):
            monkeypatch.delenv(name)
    typed = iter(["/lead new", "Grace Hopper", "\x1b", "/lead list"])
    prompts = []

    def fake_input(prompt: str = "") -> str:  # what readline's input() returns for each line typed
        prompts.append(prompt)
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    buffer = io.StringIO()
    session = Console(
        load_settings(leadbot_db=tmp_path / "c.db"),
        out=RichConsole(file=buffer, width=120, force_terminal=False, highlight=False),
    )
    try:
        session.run(iter(()), interactive=True, typed=True)
    finally:
        session.close()
    assert prompts[0] == "> " and prompts[1].strip().startswith("Name") and len(prompts) == 5
    assert "└ cancelled" in buffer.getvalue() and "No leads" in buffer.getvalue()
