"""Double-quoted tokens in SQLite and MySQL: kept where the grammar admits a name only.

SQLite reads ``"x"`` as the string ``'x'`` when no column ``x`` exists (its double-quoted
string misfeature, on by default), and MySQL's default sql_mode reads every ``"x"`` as a
string. Nothing in the text tells such a string from a quoted identifier, so in these
dialects a double-quoted token is kept only where a value cannot stand:

- in a dotted name: ``"t"."c"``, ``t."c"``, ``"s"."t"``;
- after ``AS``, ``JOIN``, ``INTO``, ``UPDATE``, ``TABLE``, ``INDEX``, ``VIEW``, ``TRIGGER``,
  ``EXISTS``, ``REFERENCES``, ``COLUMN``, ``CONSTRAINT``, ``TO``, ``SAVEPOINT`` and
  ``RELEASE`` (savepoint names are folded afterwards all the same);
- after ``FROM``, and after a comma of a ``FROM`` list, in a query (not after
  ``IS DISTINCT FROM``, not in a function's parentheses such as ``EXTRACT(YEAR FROM x)``);
- right after a table name kept by the rules above or after ``JOIN``: its alias
  (``FROM "t" "U0"``, as Django 6.1 writes subqueries);
- in the column list of ``INSERT INTO t (...)``, ``CREATE TABLE t (...)``,
  ``REFERENCES t (...)``, ``KEY (...)`` and ``UNIQUE (...)``;
- on the left of ``=`` in the ``SET`` list of an ``UPDATE`` (or an upsert).

Everywhere else (select lists, ``WHERE``, ``ORDER BY``, ``VALUES``, function arguments) it
folds to ``?``: a column name lost there is cosmetic, a string shown would be a leak. The
rule reads statement text whose values are already folded; one pass, linear in its length.
"""

from __future__ import annotations

import re

__all__ = ["fold_double_quoted_values"]

_DOUBLE_QUOTED = r'"[^"]*(?:""[^"]*)*"'
_BACKTICKED = r"`[^`]*(?:``[^`]*)*`"
_BRACKETED = r"\[[^\]]*\]"
_WORD = r"[^\W\d][\w$]*"


def _tokens(quoted: str) -> re.Pattern[str]:
    # Groups: a dotted name (kept whole), a lone double-quoted token, another quoted
    # identifier, a word, any other character.
    part = rf"(?:{_DOUBLE_QUOTED}|{quoted}|{_WORD})"
    return re.compile(rf"({part}(?:\.{part})+)|({_DOUBLE_QUOTED})|({quoted})|({_WORD})|(\S)")


_DOUBLE_QUOTED_GROUP, _WORD_GROUP, _OTHER_GROUP = 2, 4, 5
_TOKEN = _tokens(_BACKTICKED)
_TOKEN_WITH_BRACKETS = _tokens(f"{_BACKTICKED}|{_BRACKETED}")

_NAME_AFTER = frozenset(
    {"AS", "JOIN", "INTO", "UPDATE", "TABLE", "INDEX", "VIEW", "TRIGGER", "EXISTS"}
    | {"REFERENCES", "COLUMN", "CONSTRAINT", "TO", "SAVEPOINT", "RELEASE"}
)
# Keywords followed by a table name whose column list may follow in parentheses.
_TABLE_BEFORE_COLUMNS = frozenset({"INTO", "TABLE", "REFERENCES"})
_SKIPPED_BEFORE_NAME = frozenset({"IF", "NOT", "EXISTS", "ONLY"})
_COLUMNS_AFTER = frozenset({"KEY", "UNIQUE"})
_QUERY_STARTS = frozenset({"SELECT", "WITH", "DELETE", "VALUES", "TABLE"})
_CLAUSES = frozenset(
    {"SELECT", "FROM", "WHERE", "SET", "VALUES", "RETURNING", "ON", "USING", "GROUP"}
    | {"ORDER", "HAVING", "LIMIT", "UNION", "INTERSECT", "EXCEPT", "WINDOW", "INTO"}
    | {"UPDATE", "DO", "JOIN"}
)
_NAME = "\0name"  # marks a quoted or bare name among the previous tokens


class _Level:
    """What is known about one level of parentheses (the statement itself is level 0)."""

    __slots__ = ("clause", "columns", "first", "query")

    def __init__(self, *, query: bool = False, columns: bool = False) -> None:
        self.first: str | None = None  # first word: SELECT makes a subquery
        self.clause = ""  # the clause keyword last seen at this level
        self.columns = columns  # a column list: names only
        self.query = query

    def is_query(self) -> bool:
        return self.query or self.first in _QUERY_STARTS


def fold_double_quoted_values(text: str, brackets: bool) -> str:
    """`text` with each double-quoted token that may be a string folded to ``?``.

    `text` has its literals folded and its whitespace collapsed to single spaces;
    `brackets` says whether ``[name]`` is an identifier (SQLite) that may hold quotes.
    """
    pattern = _TOKEN_WITH_BRACKETS if brackets else _TOKEN
    levels = [_Level(query=True)]
    previous = before_previous = ""
    # A table name after INTO/TABLE/REFERENCES is being read: its "(" opens a column list.
    awaiting_table = reading_table = False
    after_table = False  # the previous token is a table name of a FROM list or a JOIN
    out: list[str] = []
    emit_from = 0
    for match in pattern.finditer(text):
        group = match.lastindex
        level = levels[-1]
        if group == _WORD_GROUP:
            token = match.group(group).upper()
            if level.first is None:
                level.first = token
            if token in _CLAUSES:
                level.clause = "SET" if token == "UPDATE" and previous == "KEY" else token
            if token in _TABLE_BEFORE_COLUMNS:
                awaiting_table, reading_table = True, False
            elif awaiting_table and token not in _SKIPPED_BEFORE_NAME:
                awaiting_table, reading_table = False, True
            elif not awaiting_table:
                reading_table = False
        elif group == _OTHER_GROUP:
            token = match.group(group)
            if token == "(":
                levels.append(_Level(columns=reading_table or previous in _COLUMNS_AFTER))
            elif token == ")" and len(levels) > 1:
                levels.pop()
            if token == "." and reading_table:
                awaiting_table, reading_table = True, False
            else:
                awaiting_table = reading_table = False
        else:
            # A name: dotted, double-quoted or otherwise quoted.
            token = _NAME
            if level.first is None:
                level.first = token
            is_alias = after_table
            after_table = _is_table(previous, before_previous, level)
            if (
                group == _DOUBLE_QUOTED_GROUP
                and not is_alias
                and not _is_name(text, match.end(), previous, before_previous, level)
            ):
                out.append(text[emit_from : match.start()])
                out.append("?")
                emit_from = match.end()
            if awaiting_table:
                awaiting_table, reading_table = False, True
            else:
                reading_table = False
        if token is not _NAME:
            after_table = False
        before_previous, previous = previous, token
    if not out:
        return text
    out.append(text[emit_from:])
    return "".join(out)


def _is_name(text: str, end: int, previous: str, before_previous: str, level: _Level) -> bool:
    following = _next_char(text, end)
    if previous == "." or following == ".":
        return True
    if previous in _NAME_AFTER:
        return True
    if previous == "FROM":
        return before_previous != "DISTINCT" and level.is_query()
    if previous == "(":
        return level.columns
    if previous == ",":
        if level.columns or (level.clause == "FROM" and level.is_query()):
            return True
        return level.clause == "SET" and _assigned(text, end)
    if previous == "SET":
        return _assigned(text, end)
    return False


def _is_table(previous: str, before_previous: str, level: _Level) -> bool:
    """Whether a name after `previous` is a table of a FROM list or of a JOIN."""
    if previous == "JOIN":
        return True
    if previous == "FROM":
        return before_previous != "DISTINCT" and level.is_query()
    return previous == "," and level.clause == "FROM" and level.is_query()


def _next_char(text: str, end: int) -> str:
    if end < len(text) and text[end] == " ":
        end += 1
    return text[end] if end < len(text) else ""


def _assigned(text: str, end: int) -> bool:
    """Whether `=` (not ``==``) follows the token ending at `end`."""
    if end < len(text) and text[end] == " ":
        end += 1
    return text[end : end + 1] == "=" and text[end + 1 : end + 2] != "="
