"""The READMEs' shell blocks run as pasted, in order, against a real `referrals serve`.

How README.md and infra/README.md are read (the conventions a README author follows):

- Every ```sh block runs, in document order (README.md, then infra/README.md), in one
  bash session with `set -euo pipefail` and `inherit_errexit`, so a variable set in one
  block is there in the next and the first failing command stops the run.
- A block that cannot run here is marked on the line right before its fence:
  `<!-- readme-test: skip (the reason) -->`. SKIPPED lists exactly those blocks, so a
  new block runs unless someone marks it and adds it there, saying why.
- The working directory is a fresh folder holding a `.venv` link to this venv, so
  `.venv/bin/referrals`, `./referrals.db` and `./reports` resolve there; the server
  serves that database. The shell has the caller's environment minus REFERRALS_*.
- The only text substituted is SUBSTITUTIONS: the admin key the server printed and
  the server's address (it listens on a free port, not 8000).
- `curl` is a shell function that runs the real curl with the README's arguments and
  records each answer's status and body (instrumentation, not a substitution). A
  curl's answer must be 2xx or 3xx, unless the README documents another status.
- Documented output, after a command that runs curl once:
  `# -> [STATUS] JSON [prose]`, the JSON continuing on the next comment lines until
  its brackets close. STATUS, when given, is the answer's status (without it: 2xx).
  The JSON is matched against the answer's body:
    - an object must have exactly the keys shown, unless `...` stands among its
      members: then it may have others;
    - a list matches element by element; a `...` element matches any run of elements;
    - in a string, `...` matches any characters (`"/r/ALICE?token=..."`, `"..."`);
    - anything else is a literal and must be equal.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ServerFactory

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "infra/README.md")
RUN_TIMEOUT_S = 600.0

# The blocks marked `readme-test: skip`, as (document, section heading, n-th sh block
# of that section); the reason is in the marker.
SKIPPED = {
    ("README.md", "The two commands", 1),  # `make run` serves port 8000; `make test` is all
    ("README.md", "On several machines (PostgreSQL)", 1),  # a server at db.internal
    ("README.md", "On AWS (serverless)", 1),  # an AWS account
    ("infra/README.md", "Deploy", 1),  # an AWS account
    ("infra/README.md", "Deploy", 2),  # the deployed tables (run on moto by tests/infra)
    ("infra/README.md", "Program settings", 1),  # an AWS account
    ("infra/README.md", "Tear down", 1),  # an AWS account
}

SKIP_MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>.+)\)\s*-->$")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$")
OUTPUT = re.compile(r"^#\s*->\s*(?:(?P<status>[1-5]\d\d)\b)?\s*(?P<rest>.*)$")
# Bare `...` in documented JSON, in the parsed value (as a key in objects, an element in lists).
ELLIPSIS = "\u2026readme-test-ellipsis"
# The substitutions, each replacing text that appears exactly once in README.md.
ADMIN_KEY_LINE = "KEY=rk_..."
API_LINE = "API=http://127.0.0.1:8000"

# Before the README's first line. The curl function is instrumentation, not a
# substitution: the real curl with the README's own arguments, printing the body as
# it would, and recording the status and body under the number of the command.
PRELUDE = r"""
set -euo pipefail
shopt -s inherit_errexit
curl() {
  local body status
  body=$(mktemp "$README_TEST_LOG/body.XXXXXX")
  status=$(command curl "$@" --output "$body" --write-out '%{http_code}')
  printf '%s\t%s\t%s\n' "$README_TEST_COMMAND" "$status" "$body" >> "$README_TEST_LOG/curls.tsv"
  cat "$body"
}
"""
MARK = "@@readme-test@@"


@dataclass(frozen=True)
class Expected:
    status: int | None
    body: Any  # the documented JSON with ELLIPSIS markers; None: not documented


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str
    expected: Expected | None


@dataclass(frozen=True)
class Block:
    document: str
    section: str
    index: int  # 1 for the first sh block of its section
    line: int  # of its first line of code
    code: str
    skip: str | None  # the marker's reason

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.document, self.section, self.index)


def sh_blocks(document: str) -> Iterator[Block]:
    lines = (REPO / document).read_text().splitlines()
    counts: dict[str, int] = {}
    section, last_text = "", ""
    n = 0
    while n < len(lines):
        line = lines[n]
        if line.startswith("```"):
            language = line[3:].strip()
            end = next(i for i in range(n + 1, len(lines)) if lines[i].startswith("```"))
            if language == "sh":
                counts[section] = counts.get(section, 0) + 1
                marker = SKIP_MARKER.match(last_text)
                code = "\n".join(lines[n + 1 : end])
                reason = marker.group("reason") if marker else None
                yield Block(document, section, counts[section], n + 2, code, reason)
            else:
                assert language not in ("bash", "shell", "console", "zsh"), (
                    f"{document}:{n + 1}: shell blocks are ```sh, so that this test runs them"
                )
            n, last_text = end + 1, ""
            continue
        if heading := HEADING.match(line):
            section = heading.group("title")
        if line.strip():
            last_text = line.strip()
        n += 1


def is_complete(text: str) -> bool:
    if text.endswith("\\"):
        return False
    checked = subprocess.run(["bash", "-n", "-c", text], capture_output=True, check=False)
    return checked.returncode == 0


def commands(block: Block, code: str) -> list[Command]:
    """The block's commands (a command may span lines), each with its documented output."""
    found: list[Command] = []
    lines = code.splitlines()
    n = 0
    while n < len(lines):
        stripped = lines[n].strip()
        if not stripped:
            n += 1
        elif output := OUTPUT.match(stripped):
            end, body = documented_json(lines, n, output.group("rest"))
            status = int(output.group("status")) if output.group("status") else None
            location = f"{block.document}:{block.line + n}"
            assert found, f"{location}: documented output before any command"
            assert found[-1].expected is None, f"{location}: a second output for one command"
            expected = Expected(status, body)
            found[-1] = Command(found[-1].document, found[-1].line, found[-1].text, expected)
            n = end
        elif stripped.startswith("#"):
            n += 1  # prose
        else:
            start = n
            while not is_complete("\n".join(lines[start : n + 1])):
                n += 1
                assert n < len(lines), f"{block.document}:{block.line + start}: unfinished"
            text = "\n".join(lines[start : n + 1])
            found.append(Command(block.document, block.line + start, text, None))
            n += 1
    return found


def documented_json(lines: list[str], n: int, rest: str) -> tuple[int, Any]:
    """The JSON that starts `rest` (line n), continued on comment lines; (next line, value)."""
    if not rest.startswith(("{", "[")):
        return n + 1, None
    text = rest
    while (fragment := with_ellipses(text)) is None:
        n += 1
        assert n < len(lines) and lines[n].lstrip().startswith("#"), f"unclosed: {rest}"
        text += "\n" + lines[n].lstrip()[1:]
    return n + 1, json.loads(fragment)


def with_ellipses(text: str) -> str | None:
    """The JSON value `text` starts with, a bare `...` made a marker member (in objects)
    or element (in lists); None while its brackets are not closed yet."""
    out: list[str] = []
    stack: list[str] = []
    in_string, escaped, i = False, False, 0
    while i < len(text):
        char = text[i]
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            stack.pop()
            if not stack:
                return "".join(out) + char
        elif text.startswith("...", i):
            marker = json.dumps(ELLIPSIS)
            out.append(f"{marker}: null" if stack[-1] == "{" else marker)
            i += 3
            continue
        out.append(char)
        i += 1
    return None


def mismatches(documented: Any, real: Any, where: str = "$") -> list[str]:
    """How the answer differs from the documented JSON (see the module's docstring)."""
    if isinstance(documented, dict):
        if not isinstance(real, dict):
            return [f"{where}: documented an object, got {real!r}"]
        found = [f"{where}: no key {key!r}" for key in documented.keys() - real.keys() - {ELLIPSIS}]
        for key in documented.keys() & real.keys():
            found += mismatches(documented[key], real[key], f"{where}.{key}")
        extra = real.keys() - documented.keys()
        if extra and ELLIPSIS not in documented:
            found.append(f"{where}: keys not documented (add `...`?): {sorted(extra)}")
        return found
    if isinstance(documented, list):
        if isinstance(real, list) and list_matches(documented, real):
            return []
        return [f"{where}: documented {documented!r}, got {real!r}"]
    if isinstance(documented, str) and "..." in documented:
        pattern = ".*".join(re.escape(part) for part in documented.split("..."))
        if isinstance(real, str) and re.fullmatch(pattern, real, re.DOTALL):
            return []
        return [f"{where}: documented {documented!r}, got {real!r}"]
    if isinstance(real, bool) == isinstance(documented, bool) and real == documented:
        return []  # 10 is 10.0, but True is not 1
    return [f"{where}: documented {documented!r}, got {real!r}"]


def list_matches(documented: list[Any], real: list[Any]) -> bool:
    if not documented:
        return not real
    head, rest = documented[0], documented[1:]
    if head == ELLIPSIS:
        return any(list_matches(rest, real[i:]) for i in range(len(real) + 1))
    return bool(real) and not mismatches(head, real[0]) and list_matches(rest, real[1:])


def substituted(code: str, key: str, base_url: str) -> str:
    return code.replace(ADMIN_KEY_LINE, f"KEY={key}").replace(API_LINE, f"API={base_url}")


def all_blocks() -> list[Block]:
    return [block for document in DOCUMENTS for block in sh_blocks(document)]


def test_the_skipped_blocks_are_exactly_the_listed_ones() -> None:
    blocks = all_blocks()
    skipped = {block.key for block in blocks if block.skip is not None}
    assert skipped == SKIPPED
    assert all(block.skip.strip() for block in blocks if block.skip is not None)
    assert len(blocks) > len(skipped), "no block runs"


def test_each_substitution_replaces_one_line_of_a_block_that_runs() -> None:
    running = [block.code for block in all_blocks() if block.skip is None]
    for text in (ADMIN_KEY_LINE, API_LINE):
        assert sum(code.count(text) for code in running) == 1, text
    readme = (REPO / "README.md").read_text()
    assert readme.count(ADMIN_KEY_LINE) == 1 and readme.count(API_LINE) == 1


def test_documented_output_is_matched_by_the_convention() -> None:
    # The checker itself: a README drifting from the answers must be caught.
    fragment = with_ellipses('{"a": 1, "s": "/r/A?t=...", "l": [1, ...], ...}: prose...')
    assert fragment is not None
    documented = json.loads(fragment)
    real = {"a": 1, "s": "/r/A?t=xyz", "l": [1, 2, 3], "other": None}
    assert mismatches(documented, real) == []
    assert mismatches(documented, {**real, "a": 2}) == ["$.a: documented 1, got 2"]
    assert mismatches(documented, {**real, "a": True}) == ["$.a: documented 1, got True"]
    assert mismatches(documented, {**real, "s": "/r/B?t=xyz"})
    assert mismatches(documented, {**real, "l": [2, 1]})
    exact = json.loads('{"a": 1}')
    assert mismatches(exact, {"a": 1, "b": 2}) == ["$: keys not documented (add `...`?): ['b']"]


def test_the_readme_runs_as_pasted(servers: ServerFactory, tmp_path: Path, pycache: Path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    server = servers.start(tmp_path / "referrals.db")  # ./referrals.db for the shell too
    assert server.printed_key is not None, server.output()
    log = tmp_path / "readme-test"
    log.mkdir()

    script = [PRELUDE]
    ran: list[Command] = []
    for block in all_blocks():
        if block.skip is not None:
            continue
        for command in commands(
            block, substituted(block.code, server.printed_key, server.base_url)
        ):
            script.append(f"README_TEST_COMMAND={len(ran)}; printf '\\n{MARK} {len(ran)}\\n'")
            script.append(command.text)
            ran.append(command)
    script.append(f"printf '\\n{MARK} done\\n'")
    (tmp_path / "readme.sh").write_text("\n".join(script) + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {"PYTHONPYCACHEPREFIX": str(pycache), "README_TEST_LOG": str(log)}
    with (tmp_path / "readme.out").open("wb") as out:
        done = subprocess.run(
            ["bash", str(tmp_path / "readme.sh")],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    outputs = split_output((tmp_path / "readme.out").read_text(errors="replace"))
    problems = check_answers(ran, log, outputs)
    if "done" not in outputs:
        last = max((int(k) for k in outputs if k.isdigit()), default=0)
        failed = ran[last]
        problems.append(
            f"{failed.document}:{failed.line}: exit status {done.returncode}, the run stopped:"
            f"\n{failed.text}\n{outputs.get(str(last), '')[-3000:]}"
        )
    assert not problems, "\n\n".join(problems) + f"\n\n{server.output()[-3000:]}"


def split_output(text: str) -> dict[str, str]:
    """Each command's output (stdout and stderr), by its number; `done` once all ran."""
    parts = re.split(rf"\n?{re.escape(MARK)} (\d+|done)\n", text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def check_answers(ran: list[Command], log: Path, outputs: dict[str, str]) -> list[str]:
    """What differs between the curls' answers and what the README shows (or implies)."""
    answers: dict[int, list[tuple[int, str]]] = {}
    curls = log / "curls.tsv"
    for row in curls.read_text().splitlines() if curls.exists() else []:
        command_number, status_code, body_file = row.split("\t")
        answer = (int(status_code), Path(body_file).read_text())
        answers.setdefault(int(command_number), []).append(answer)
    problems = []
    for number, command in enumerate(ran):
        if str(number) not in outputs:
            break  # the run stopped before it
        where = f"{command.document}:{command.line}: {command.text}"
        calls = answers.get(number, [])
        expected = command.expected
        if expected is None:
            problems += [
                f"{where}\n  -> {status} {body[:500]}"
                for status, body in calls
                if not 200 <= status < 400
            ]
            continue
        if len(calls) != 1:
            problems.append(f"{where}\n  documented output, but {len(calls)} curl answers")
            continue
        [(status, body)] = calls
        documented = expected.status
        if status != documented if documented is not None else not 200 <= status < 300:
            problems.append(
                f"{where}\n  -> {status} {body[:500]}, documented {documented or '2xx'}"
            )
        elif expected.body is not None:
            try:
                answer = json.loads(body)
            except ValueError:
                problems.append(f"{where}\n  documented JSON, got {body[:500]!r}")
                continue
            problems += [f"{where}\n  {m}" for m in mismatches(expected.body, answer)]
    return problems
