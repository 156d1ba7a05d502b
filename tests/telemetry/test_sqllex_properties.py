"""Properties of dialect-aware normalization: a canary written in any lexical form of SQLite,
PostgreSQL or MySQL never survives, and statements of one shape share one fingerprint."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from telemetry.fingerprint import fingerprint_of, normalize

Draw = Callable[[st.SearchStrategy[Any]], Any]  # what DataObject.draw is

CANARY = "Zq7canary"
HEX_CANARY = "CAFE"  # in hex literals and blobs; no template holds it
DIGIT_CANARY = "7319"  # templates hold no digit at all

# Characters that fight quoting: quotes of every kind, escapes, comment and placeholder marks.
_CONTENT = st.text(st.sampled_from(list("ab é€'\"`\\*/-#$:?%_;()[]{}\n\r\t")), max_size=8)


def _content(draw: Draw, without: str = "") -> str:
    text = draw(_CONTENT) + CANARY + draw(_CONTENT)
    for unwanted in without:
        text = text.replace(unwanted, "")
    return text


def _number(draw: Draw, forms: list[str]) -> str:
    form = draw(st.sampled_from(forms))
    digits = draw(st.integers(min_value=0, max_value=999))
    literal = {
        "integer": f"{digits}{DIGIT_CANARY}",
        "decimal": f"{digits}.{DIGIT_CANARY}",
        "point": f".{DIGIT_CANARY}",
        "exponent": f"{digits}.{DIGIT_CANARY}e-{digits % 30}",
        "Exponent": f"{DIGIT_CANARY}E+{digits % 30}",
        "separators": f"{digits}_{DIGIT_CANARY}_{digits}",
        "hex": f"0x{digits}{HEX_CANARY}",
        "hex separators": f"0x{DIGIT_CANARY}_{HEX_CANARY}",
        "binary": "0b1_0" + "".join(draw(st.lists(st.sampled_from("01"), max_size=6))),
        "octal": f"0o{digits % 8}_{DIGIT_CANARY.replace('9', '7')}",
    }[form]
    return "-" + literal if draw(st.booleans()) else literal


def _escape_sequences(draw: Draw, text: str, sequences: list[str]) -> str:
    extra = draw(st.lists(st.sampled_from(sequences), max_size=3))
    return "".join(extra) + text + "".join(reversed(extra))


# --- literals of each dialect --------------------------------------------------------------
# `ambiguous` adds the forms that a server setting can read differently (standard_conforming_
# strings off, NO_BACKSLASH_ESCAPES): they must not leak, but they fold the rest of the
# statement, so statements holding them need not share a fingerprint.


def postgresql_string(draw: Draw, ambiguous: bool) -> str:
    form = draw(st.sampled_from(["standard", "E", "U&", "N", "B", "X", "dollar", "tagged"]))
    if form in ("standard", "N"):
        text = _content(draw, without="" if ambiguous else "\\").replace("'", "''")
        return ("N" if form == "N" else "") + f"'{text}'"
    if form == "E":
        text = _content(draw).replace("\\", "\\\\")
        text = text.replace("'", draw(st.sampled_from(["''", "\\'"])))
        text = _escape_sequences(draw, text, ["\\n", "\\x41", "\\101", "\\u0041", "\\\\"])
        return f"E'{text}'"
    if form == "U&":
        return "U&'" + _content(draw).replace("\\", "\\\\").replace("'", "''") + "\\0041'"
    if form == "B":
        return "B'" + "".join(draw(st.lists(st.sampled_from("01"), max_size=8))) + "'"
    if form == "X":
        return f"X'00{HEX_CANARY}'"
    tag = "" if form == "dollar" else draw(st.sampled_from(["q", "tag", "_x"]))
    return f"${tag}$" + _content(draw, without="$") + f"${tag}$"


def sqlite_string(draw: Draw, ambiguous: bool) -> str:
    form = draw(st.sampled_from(["string", "double-quoted", "blob"]))
    if form == "string":
        return "'" + _content(draw).replace("'", "''") + "'"
    if form == "double-quoted":
        # A string in SQLite when no such column exists; only ever in value positions here.
        return '"' + _content(draw).replace('"', '""') + '"'
    return draw(st.sampled_from(["X", "x"])) + f"'00{HEX_CANARY}'"


def mysql_string(draw: Draw, ambiguous: bool) -> str:
    form = draw(st.sampled_from(["string", "double-quoted", "N", "charset", "X", "0x", "b", "0b"]))
    if form in ("string", "N", "charset"):
        text = _content(draw).replace("\\", "\\\\")
        # \' is read as a quote only without NO_BACKSLASH_ESCAPES.
        text = text.replace("'", draw(st.sampled_from(["''", "\\'"] if ambiguous else ["''"])))
        text = _escape_sequences(draw, text, ["\\n", "\\0", "\\Z", "\\%", "\\_", '\\"'])
        prefix = {"string": "", "N": "N", "charset": "_utf8mb4"}[form]
        return f"{prefix}'{text}'"
    if form == "double-quoted":
        text = _content(draw).replace("\\", "\\\\")
        text = text.replace('"', draw(st.sampled_from(['""', '\\"'] if ambiguous else ['""'])))
        return f'"{text}"'
    if form == "X":
        return draw(st.sampled_from(["X", "x"])) + f"'00{HEX_CANARY}'"
    if form == "0x":
        return f"0x00{HEX_CANARY}"
    bits = "".join(draw(st.lists(st.sampled_from("01"), min_size=1, max_size=8)))
    return f"b'{bits}'" if form == "b" else f"0b{bits}"


def postgresql_comment(draw: Draw) -> str:
    if draw(st.booleans()):
        return "-- " + _content(draw, without="\r\n") + "\n"
    inner = "/* " + _content(draw, without="*/") + " */"
    return "/* " + _content(draw, without="*/") + inner + _content(draw, without="*/") + " */"


def sqlite_comment(draw: Draw) -> str:
    if draw(st.booleans()):
        return "--" + _content(draw, without="\n") + "\n"  # a carriage return does not end it
    return "/*" + _content(draw, without="*") + "*/"


def mysql_comment(draw: Draw) -> str:
    form = draw(st.sampled_from(["#", "-- ", "/*", "/*!"]))
    if form in ("#", "-- "):
        return form + _content(draw, without="\n") + "\n"
    return form + _content(draw, without="*") + "*/"


@dataclass(frozen=True)
class Dialect:
    string: Callable[[Draw, bool], str]
    numbers: list[str]
    comment: Callable[[Draw], str]
    quote: str
    placeholders: list[str]


_DECIMAL = ["integer", "decimal", "point", "exponent", "Exponent"]
DIALECTS = {
    "postgresql": Dialect(
        postgresql_string,
        [*_DECIMAL, "separators", "hex", "hex separators", "binary", "octal"],
        postgresql_comment,
        '"',
        ["%s", "%(name)s", "$1"],
    ),
    "sqlite": Dialect(
        sqlite_string,
        [*_DECIMAL, "separators", "hex"],
        sqlite_comment,
        '"',
        ["%s", "?", "?7", ":name", "@name", "$name"],
    ),
    "mysql": Dialect(mysql_string, [*_DECIMAL, "hex"], mysql_comment, "`", ["%s", "%(name)s"]),
}

# Written the way Django or a person writes SQL; <name> is a quoted identifier, {s} a string,
# {n} a number, {v} any value, {in} an IN list, {rows} VALUES rows, {c} a comment.
TEMPLATES = [
    "SELECT <p>.<id>, <p>.<name> FROM <p> {c}WHERE (<p>.<name> = {s} AND <p>.<price> >= {n}) "
    "ORDER BY <p>.<name> ASC LIMIT {n} OFFSET {n}",
    "SELECT <o>.<id> FROM <o> INNER JOIN <c> ON (<o>.<customer> = <c>.<id>) "
    "WHERE (<o>.<status> IN {in} AND <c>.<email> LIKE {s} {c}AND <o>.<total> < {n})",
    "INSERT INTO <o> (<customer>, <total>, <note>) VALUES {rows} {c}",
    "UPDATE <p> SET <stock> = (<p>.<stock> - {n}), <name> = {s}, <active> = {v} "
    "WHERE <p>.<id> = {n}",
    "{c}SELECT p.name, SUM(o.total) AS revenue FROM shop_product p "
    "JOIN shop_order o ON o.product = p.id {c}WHERE o.created >= {s} "
    "AND o.total BETWEEN {n} AND {n} AND o.paid = {v} GROUP BY p.name HAVING SUM(o.total) > {n}",
    "DELETE FROM <r> WHERE (<r>.<body> = {s} OR <r>.<id> IN {in}) {c}",
]
_SLOT = re.compile(r"\{(s|n|v|in|rows|c)\}|<(\w+)>")


def render(template: str, dialect: Dialect, draw: Draw, placeholders: bool, ambiguous: bool) -> str:
    def value(kind: str) -> str:
        if placeholders:
            return draw(st.sampled_from(dialect.placeholders))
        if kind in ("v", "row"):
            # NULL stays a keyword (IS NULL is structure); VALUES rows fold it with the rest.
            kinds = ["s", "n", "TRUE", "false"] + (["NULL"] if kind == "row" else [])
            kind = draw(st.sampled_from(kinds))
        if kind == "n":
            text = _number(draw, dialect.numbers)
        elif kind == "s":
            text = dialect.string(draw, ambiguous)
        else:
            text = kind
        return " " + text if text.startswith("-") else text  # "- -5", never "--5"

    def fill(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if name is not None:
            return f"{dialect.quote}{name}{dialect.quote}"
        if kind == "c":
            return dialect.comment(draw) + " " if draw(st.booleans()) else ""
        if kind == "in":
            size = draw(st.integers(min_value=1, max_value=8))
            items = [value(draw(st.sampled_from(["s", "n"]))) for _ in range(size)]
            return "(" + draw(st.sampled_from([", ", ","])).join(items) + ")"
        if kind == "rows":
            rows = draw(st.integers(min_value=1, max_value=5))
            return ", ".join(
                "(" + ", ".join(value("row") for _ in range(3)) + ")" for _ in range(rows)
            )
        return value(kind)

    return _SLOT.sub(fill, template)


property_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@property_settings
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_no_canary_survives(dialect: str, template: str, data: st.DataObject) -> None:
    sql = render(template, DIALECTS[dialect], data.draw, placeholders=False, ambiguous=True)
    normalized = normalize(sql, dialect)
    assert CANARY not in normalized
    assert HEX_CANARY not in normalized
    assert not re.search(r"[0-9]", normalized), normalized


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@property_settings
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_statements_of_one_shape_share_a_fingerprint(
    dialect: str, template: str, data: st.DataObject
) -> None:
    def shape(placeholders: bool) -> str:
        sql = render(template, DIALECTS[dialect], data.draw, placeholders, ambiguous=False)
        note(f"{sql!r} -> {normalize(sql, dialect)!r}")
        return normalize(sql, dialect)

    first, second, marks = shape(False), shape(False), shape(True)
    assert first == second == marks
    assert fingerprint_of(first) == fingerprint_of(marks)
