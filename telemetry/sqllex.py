"""Dialect-aware SQL lexing for normalization: which spans of a statement hide values.

`fold_literals(sql, dialect)` returns `sql` with every string, number, blob, boolean and
placeholder replaced by ``?`` and every comment by a space, read with the lexical rules of
the database that runs it. Identifiers, keywords and operators are copied as they are.

A server's own settings can change how it reads the same text (PostgreSQL's
``standard_conforming_strings``, MySQL's ``NO_BACKSLASH_ESCAPES`` and ``ANSI_QUOTES``) and an
unknown vendor could read it like any of the dialects, so a `Dialect` lists every `Reading`
it may be given. Readings that cannot differ on the text at hand (they differ only in how
they read a character it does not hold) are scanned once; otherwise every distinct reading
scans it, and from the first place where two readings disagree on a token the rest of the
statement folds to one ``?``: no reading can then see a value that the output shows.

Every scan is linear in the length of the statement: each regex alternative either matches
(consuming what it scanned) or fails within a bounded number of characters, and the Python
loop does bounded work per token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["DIALECTS", "GENERIC", "Dialect", "Reading", "dialect_for", "fold_literals"]

# Token codes in a scan: what the renderer writes for the token.
COMMENT = 0  # a space
VALUE = 1  # "?"
KEPT = 2  # the token itself (backtick or bracket identifier, "%%")
DOUBLE_QUOTED = 3  # the token itself; may be a string where the dialect says so
PLACEHOLDER_RUN = 4  # "%s, %s" -> "?, ?"
OPEN_QUOTE = 5  # an identifier quote never closed: "?"

Token = tuple[int, int, int]  # start, end, code


@dataclass(frozen=True, slots=True)
class Reading:
    """One way a server may read statement text (one combination of lexical settings)."""

    name: str
    pattern: re.Pattern[str]
    # (feature, value) for every feature in _FEATURES, in that order.
    features: tuple[tuple[str, object], ...]


# A feature can change the tokens only of a text that holds its trigger.
_FEATURES: dict[str, Callable[[str], bool]] = {
    "dashes": lambda sql: "--" in sql,
    "carriage_return": lambda sql: "\r" in sql and "--" in sql,
    "hash": lambda sql: "#" in sql,
    "nested_comments": lambda sql: "/*" in sql,
    "backslashes": lambda sql: "\\" in sql,
    "dollar_quotes": lambda sql: "$" in sql,
    "backticks": lambda sql: "`" in sql,
    "brackets": lambda sql: "[" in sql,
    "q_quotes": lambda sql: "q'" in sql or "Q'" in sql,
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """A database's lexical rules: the readings it may apply, and how to render the result."""

    name: str
    readings: tuple[Reading, ...]
    # SQLite and MySQL (default sql_mode) read some double-quoted tokens as strings.
    double_quotes_may_be_strings: bool
    # SQLite reads [name] as an identifier; elsewhere [ is an operator or a subscript.
    bracket_identifiers: bool


_PG_LINE = r"--[^\r\n]*"
_LF_LINE = r"--[^\n]*"
# MySQL: "--" starts a comment only before whitespace or a control character; "#" always.
_MYSQL_LINE = r"--(?=[\x00-\x20]|\Z)[^\n]*"


def _reading(
    name: str,
    *,
    line_comment: str,
    hash_comments: bool = False,
    nested_comments: bool = False,
    backslash_strings: bool = False,
    backslash_double_quotes: bool = False,
    escape_strings: bool = False,
    dollar_quotes: bool = False,
    backticks: bool = False,
    brackets: bool = False,
    q_quotes: bool = False,
) -> Reading:
    standard = r"'[^']*(?:''[^']*)*(?:'|\Z)"
    backslashed = r"'[^'\\]*(?:(?:\\[\s\S]|'')[^'\\]*)*(?:'|\Z)"
    double_quoted = (
        r'"[^"\\]*(?:(?:\\[\s\S]|"")[^"\\]*)*"'
        if backslash_double_quotes
        else r'"[^"]*(?:""[^"]*)*"'
    )
    starts = "-/'\"$%?:@."
    if hash_comments:
        starts += "#"
        line_comment += r"|\#[^\n]*"
    alternatives = [
        rf"(?P<line_comment>{line_comment})",
        r"(?P<nested_comment>/\*)"
        if nested_comments
        else r"(?P<block_comment>/\*[^*]*(?:\*+[^*/][^*]*)*(?:\*+(?:/|\Z)|\Z))",
    ]
    if q_quotes:
        # Oracle's q'[...]' (any delimiter; brackets pair up): its end is found in code.
        alternatives.append(r"(?P<q_quote>(?<![\w$])[Nn]?[Qq]')")
    if escape_strings:
        alternatives.append(rf"(?P<escape_string>(?<![\w$])[Ee]{backslashed})")
    alternatives.append(rf"(?P<string>{backslashed if backslash_strings else standard})")
    # A dotted name is one token: most of Django's SQL is "table"."column".
    name_part = rf"(?:{double_quoted}|[^\W\d][\w$]*)"
    alternatives.append(rf"(?P<double_quoted>{double_quoted}(?:\.{name_part})*)")
    open_quotes = '"'
    if backticks:
        starts += "`"
        open_quotes += "`"
        alternatives.append(r"(?P<kept>`[^`]*(?:``[^`]*)*`)")
    if brackets:
        starts += "["
        open_quotes += "["
        alternatives.append(r"(?P<bracket>\[[^\]]*\])")
    # A quoted identifier never closed hides the rest (the statement is invalid anyway).
    alternatives.append(rf"(?P<open_quote>[{re.escape(open_quotes)}][\s\S]*)")
    if dollar_quotes:
        alternatives.append(
            r"(?P<dollar_quote>(?<![\w$])\$(?P<tag>(?:[^\W\d]\w*)?)\$"
            r"[^$]*(?:\$(?!(?P=tag)\$)[^$]*)*(?:\$(?P=tag)\$|\Z))"
        )
    alternatives += [
        r"(?P<kept_percent>%%)",
        r"(?P<placeholder_run>%s(?:(?:\s*,\s*|\s*\)\s*,\s*\(\s*)%s)+)",
        r"(?P<placeholder>%\(\w+\)s|%s|\?[0-9]*|\$[0-9]+"
        r"|(?<![:\w$]):[^\W\d][\w$]*|(?<![\w$@])@[^\W\d][\w$]*|(?<![\w$])\$[^\W\d][\w$]*)",
        r"(?P<boolean>(?<![\w$])(?i:TRUE|FALSE)(?![\w$]))",
        # Every base, digit separator, exponent and trailing junk (PostgreSQL 16's 0x3A_DE,
        # 0o17, 0b101, 987_654_321; Oracle's 1.5f; MySQL's 0x41 and 0b01) is one value.
        r"(?P<number>(?<![\w$])(?:[0-9]|\.[0-9])(?:[\w.]|(?<=[eE])[+-](?=[0-9]))*)",
    ]
    # The lookahead lists every way a token can start, so most positions fail after one test.
    lookahead = (
        rf"(?=[{re.escape(starts)}0-9]|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"
        + (r"|[Nn]?[Qq]'" if q_quotes else "")
        + (r"|[Ee]'" if escape_strings else "")
        + ")"
    )
    pattern = re.compile(lookahead + "(?:" + "|".join(alternatives) + ")")
    features = {
        "dashes": "mysql" if line_comment == _MYSQL_LINE else "standard",
        "carriage_return": line_comment == _PG_LINE,
        "hash": hash_comments,
        "nested_comments": nested_comments,
        "backslashes": (backslash_strings, backslash_double_quotes, escape_strings),
        "dollar_quotes": dollar_quotes,
        "backticks": backticks,
        "brackets": brackets,
        "q_quotes": q_quotes,
    }
    return Reading(name, pattern, tuple((feature, features[feature]) for feature in _FEATURES))


POSTGRESQL_STANDARD = _reading(
    "postgresql",
    line_comment=_PG_LINE,
    nested_comments=True,
    escape_strings=True,
    dollar_quotes=True,
)
# standard_conforming_strings = off: backslashes escape in every string.
POSTGRESQL_BACKSLASH = _reading(
    "postgresql-backslash",
    line_comment=_PG_LINE,
    nested_comments=True,
    escape_strings=True,
    dollar_quotes=True,
    backslash_strings=True,
)
SQLITE = _reading("sqlite", line_comment=_LF_LINE, backticks=True, brackets=True)
MYSQL_DEFAULT = _reading(
    "mysql",
    line_comment=_MYSQL_LINE,
    hash_comments=True,
    backticks=True,
    backslash_strings=True,
    backslash_double_quotes=True,
)
# NO_BACKSLASH_ESCAPES; ANSI_QUOTES reads "..." like this too (as an identifier).
MYSQL_NO_BACKSLASH = _reading(
    "mysql-no-backslash", line_comment=_MYSQL_LINE, hash_comments=True, backticks=True
)
ORACLE_LF = _reading("oracle", line_comment=_LF_LINE, q_quotes=True)
# Whether a lone carriage return ends an Oracle "--" comment is not documented: read both.
ORACLE_CR = _reading("oracle-cr", line_comment=_PG_LINE, q_quotes=True)

POSTGRESQL = Dialect(
    "postgresql",
    (POSTGRESQL_STANDARD, POSTGRESQL_BACKSLASH),
    double_quotes_may_be_strings=False,
    bracket_identifiers=False,
)
SQLITE_DIALECT = Dialect(
    "sqlite", (SQLITE,), double_quotes_may_be_strings=True, bracket_identifiers=True
)
MYSQL = Dialect(
    "mysql",
    (MYSQL_DEFAULT, MYSQL_NO_BACKSLASH),
    double_quotes_may_be_strings=True,
    bracket_identifiers=False,
)
ORACLE = Dialect(
    "oracle",
    (ORACLE_LF, ORACLE_CR),
    double_quotes_may_be_strings=False,
    bracket_identifiers=False,
)
# Any vendor Django does not ship: every reading of every dialect above.
GENERIC = Dialect(
    "generic",
    (
        POSTGRESQL_STANDARD,
        POSTGRESQL_BACKSLASH,
        SQLITE,
        MYSQL_DEFAULT,
        MYSQL_NO_BACKSLASH,
        ORACLE_LF,
        ORACLE_CR,
    ),
    double_quotes_may_be_strings=True,
    bracket_identifiers=False,
)

DIALECTS = {
    dialect.name: dialect for dialect in (POSTGRESQL, SQLITE_DIALECT, MYSQL, ORACLE, GENERIC)
}
# Django's connection.vendor, plus OpenTelemetry db.system.name values and common aliases.
_VENDORS = {
    **DIALECTS,
    "postgres": POSTGRESQL,
    "mariadb": MYSQL,
    "oracle.db": ORACLE,
}


def dialect_for(vendor: str | None) -> Dialect:
    """The dialect of a Django vendor name; `GENERIC` (every reading) when it is not known."""
    if vendor is None:
        return GENERIC
    return _VENDORS.get(vendor, GENERIC)


_CODES = {
    "line_comment": COMMENT,
    "block_comment": COMMENT,
    "nested_comment": COMMENT,
    "q_quote": VALUE,
    "escape_string": VALUE,
    "string": VALUE,
    "double_quoted": DOUBLE_QUOTED,
    "kept": KEPT,
    "bracket": KEPT,
    "open_quote": OPEN_QUOTE,
    "dollar_quote": VALUE,
    "kept_percent": KEPT,
    "placeholder_run": PLACEHOLDER_RUN,
    "placeholder": VALUE,
    "boolean": VALUE,
    "number": VALUE,
}
_COMMENT_DELIMITER = re.compile(r"/\*|\*/")
_Q_CLOSERS = {"[": "]", "{": "}", "(": ")", "<": ">"}
# Literal prefixes: E, N, X, B (PostgreSQL, MySQL, SQLite), Q and NQ (Oracle), _charset
# introducers (MySQL), U& (PostgreSQL). They fold with their string.
_PREFIX = re.compile(r"[EeNnXxBbQq]|[Nn][Qq]|_\w+")
_UNARY_AFTER_CHARS = frozenset("(,=<>+-*/%^|&!~[:;")
_UNARY_AFTER_KEYWORDS = frozenset(
    {"ALL", "AND", "ANY", "AS", "BETWEEN", "BY", "CASE", "DEFAULT", "DISTINCT", "ELSE"}
    | {"ESCAPE", "FETCH", "FIRST", "HAVING", "IF", "ILIKE", "IN", "INTERVAL", "IS", "LIKE"}
    | {"LIMIT", "NEXT", "NOT", "OFFSET", "ON", "OR", "RETURN", "RETURNING", "SELECT", "SET"}
    | {"SOME", "THEN", "TOP", "VALUES", "WHEN", "WHERE"}
)
_LONGEST_KEYWORD = max(map(len, _UNARY_AFTER_KEYWORDS))
_TRAILING_WORD = re.compile(r"[\w$]+\Z")


def scan(sql: str, reading: Reading) -> list[Token]:
    """Every token of `sql` that the renderer does not copy as code, in order."""
    return list(_tokens(sql, reading))


def _tokens(sql: str, reading: Reading) -> Iterator[Token]:
    finditer = reading.pattern.finditer
    floor = 0  # end of the previous token
    position = 0
    while True:
        for match in finditer(sql, position):
            kind = match.lastgroup
            start, end = match.span()
            if kind == "string":
                start = _with_prefix(sql, start, floor)
            elif kind == "number":
                start = _with_unary_minus(sql, start, floor)
            elif kind == "nested_comment" or kind == "q_quote":
                # The only tokens whose end no regex finds: scanning resumes after them.
                if kind == "q_quote":
                    position = _q_quote_end(sql, end)
                    yield (start, position, VALUE)
                else:
                    position = _nested_comment_end(sql, end)
                    yield (start, position, COMMENT)
                floor = position
                break
            yield (start, end, _CODES[kind])  # type: ignore[index]  # never None here
            floor = end
        else:
            return


def _nested_comment_end(sql: str, position: int) -> int:
    """Index just past the comment whose ``/*`` ends at `position`; unterminated runs to end."""
    depth = 1
    while depth:
        delimiter = _COMMENT_DELIMITER.search(sql, position)
        if delimiter is None:
            return len(sql)
        depth += 1 if delimiter.group() == "/*" else -1
        position = delimiter.end()
    return position


def _q_quote_end(sql: str, position: int) -> int:
    if position >= len(sql):
        return len(sql)
    opener = sql[position]
    closing = sql.find(_Q_CLOSERS.get(opener, opener) + "'", position + 1)
    return len(sql) if closing == -1 else closing + 2


def _with_prefix(sql: str, start: int, floor: int) -> int:
    """Start of the string literal at `start` including a literal prefix such as N or X."""
    if start - 2 >= floor and sql[start - 1] == "&" and sql[start - 2] in "Uu":
        if start == 2 or not _is_word_char(sql[start - 3]):
            return start - 2
        return start
    word_start = start
    # Linear overall: the walk stays inside the code between the previous token and this one.
    while word_start > floor and _is_word_char(sql[word_start - 1]):
        word_start -= 1
    if word_start == start or not _PREFIX.fullmatch(sql, word_start, start):
        return start
    return word_start


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _with_unary_minus(sql: str, start: int, floor: int) -> int:
    """Start of the number at `start` including a minus sign that belongs to it (``= -5``).

    `floor` is where the previous token ended (0 for none).
    """
    before = sql[floor:start].rstrip()
    if not before.endswith("-"):
        return start
    minus = floor + len(before) - 1
    before = before[:-1].rstrip()
    # Right after a token (a value or a name) it is a binary operator.
    unary = _minus_is_unary(before) if before else floor == 0
    return minus if unary else start


def _minus_is_unary(before: str) -> bool:
    if before[-1] in _UNARY_AFTER_CHARS:
        return True
    tail = before[-(_LONGEST_KEYWORD + 1) :]
    word = _TRAILING_WORD.search(tail)
    if word is None or len(word.group()) > _LONGEST_KEYWORD:
        return False
    return word.group().upper() in _UNARY_AFTER_KEYWORDS


def fold_literals(sql: str, dialect: Dialect) -> str:
    """`sql` with values folded to ``?`` and comments to spaces, read as `dialect` reads it.

    Double-quoted tokens are copied; in dialects where they may be strings the caller
    decides by position which of them are identifiers. A double-quoted token holding a
    backslash is folded there at once (MySQL reads escapes in it).
    """
    first, *others = _distinct_readings(sql, dialect.readings)
    tokens = scan(sql, first)
    common, limit = len(tokens), len(sql)
    for reading in others:
        disagreement = _disagreement(sql, reading, tokens)
        if disagreement is not None:
            common = min(common, disagreement[0])
            limit = min(limit, disagreement[1])
    return _render(sql, tokens[:common], limit, dialect.double_quotes_may_be_strings)


def _distinct_readings(sql: str, readings: tuple[Reading, ...]) -> list[Reading]:
    """One reading for each way `readings` can tokenize `sql`, the first reading first."""
    if len(readings) == 1:
        return list(readings)
    present = {feature for feature, found_in in _FEATURES.items() if found_in(sql)}
    distinct: dict[tuple[object, ...], Reading] = {}
    for reading in readings:
        signature = tuple(value for feature, value in reading.features if feature in present)
        distinct.setdefault(signature, reading)
    return list(distinct.values())


def _disagreement(sql: str, reading: Reading, reference: list[Token]) -> tuple[int, int] | None:
    """(index, position) of the first token on which `reading` differs from `reference`.

    Scans only up to that token, so a reading that disagrees early costs little.
    """
    index = 0
    for token in _tokens(sql, reading):
        if index == len(reference) or token != reference[index]:
            theirs = reference[index][0] if index < len(reference) else len(sql)
            return index, min(token[0], theirs)
        index += 1
    if index < len(reference):
        return index, reference[index][0]
    return None


def _placeholder_run(sql: str, start: int, end: int) -> str:
    """``%s, %s`` as ``?, ?``; a run across rows (``%s), (%s``) as ``?), (?``.

    Rows fold to ``(...)`` after ``VALUES`` and ``IN`` whatever their width, so a bulk
    INSERT's thousand rows need not be written out only to be folded again.
    """
    if sql.find(")", start, end) == -1:
        return sql[start:end].replace("%s", "?")
    return "?), (?"


def _render(sql: str, tokens: list[Token], limit: int, strings_in_double_quotes: bool) -> str:
    out: list[str] = []
    emit_from = 0
    for start, end, code in tokens:
        if code == KEPT or (
            code == DOUBLE_QUOTED
            and not (strings_in_double_quotes and sql.find("\\", start, end) != -1)
        ):
            continue  # copied with the code around it
        out.append(sql[emit_from:start])
        if code == COMMENT:
            out.append(" ")
        elif code == PLACEHOLDER_RUN:
            out.append(_placeholder_run(sql, start, end))
        else:
            out.append("?")
        emit_from = end
    out.append(sql[emit_from:limit])
    if limit < len(sql):
        # The readings disagree from here on: nothing after this point is shown.
        out.append(" ?")
    return "".join(out)
