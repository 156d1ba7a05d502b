"""SQL statement normalization and fingerprinting, cached by raw SQL for the per-query hot path.

`normalize` folds every literal and placeholder to ``?`` so that no value ever leaves the
process; `fingerprint_of` hashes the result into a short, process-independent id;
`StatementCatalog.lookup` turns raw SQL into a `Statement` with a plain dict hit once the
string has been seen, and caps the number of distinct fingerprints per process.

Quoting follows standard SQL (PostgreSQL, SQLite, Oracle): ``''`` escapes a quote, a
backslash is an ordinary character except in ``E'...'`` strings, double quotes and
backticks delimit identifiers, block comments nest (as in PostgreSQL, which is also the
reading that hides the most text). MySQL's backslash escapes in ordinary strings, its
double-quoted strings and its ``#`` comments are not recognised: Django itself never
inlines values, so only hand-written raw SQL of that dialect is affected.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "OVERFLOW",
    "Statement",
    "StatementCatalog",
    "fingerprint_of",
    "normalize",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class Statement:
    """One normalized statement, as reported in metric attributes."""

    fingerprint: str
    text: str
    summary: str
    operation: str


OVERFLOW = Statement(fingerprint="other", text="other", summary="other", operation="OTHER")

_SUMMARY_MAX_LENGTH = 255
_ELLIPSIS = "…"

# Interesting tokens only: text between matches (bare words, operators, whitespace) is
# copied in one slice, which keeps a miss cheap for Django's long generated statements.
# Bare identifiers are protected by the (?<![\w$]) guards rather than by being tokens.
# The leading lookahead lists every way a token can start; it lets most positions fail
# after one test instead of trying every alternative (scanning gets three times faster).
_TOKEN = re.compile(
    r"""
    (?=[-/"`'$%?:0-9.]|[EeXxBbNn]'|[Uu]&'|(?i:TRUE|FALSE))
    (?:
      (?P<line_comment>--[^\r\n]*)
    | (?P<block_comment>/\*)
    | (?P<identifier>
          (?:"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`)
          (?:\.(?:"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`))*
      )
    | (?P<escape_string>(?<![\w$])[Ee]'[^'\\]*(?:(?:\\[\s\S]|'')[^'\\]*)*(?:'|\Z))
    | (?P<string>(?:(?<![\w$])(?:[XxBbNn]|[Uu]&))?'[^']*(?:''[^']*)*(?:'|\Z))
    | (?P<dollar_quote>(?<![\w$])\$(?:[^\W\d]\w*)?\$)
    | (?P<percent>%%)
    | (?P<placeholder_run>%s(?:(?:\s*,\s*|\s*\)\s*,\s*\(\s*)%s)+)
    | (?P<placeholder>%\(\w+\)s|%s|\?[0-9]*|\$[0-9]+|(?<![:\w$]):[^\W\d][\w$]*)
    | (?P<boolean>(?<![\w$])(?i:TRUE|FALSE)(?![\w$]))
    | (?P<number>
          (?P<minus>-\s*)?
          (?<![\w$])(?:0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      )
    )
    """,
    re.VERBOSE,
)
_COMMENT_DELIMITER = re.compile(r"/\*|\*/")
_TRAILING_WORD = re.compile(r"[^\W\d][\w$]*\Z")

# A minus directly after one of these belongs to the number (`= -5`, `LIMIT -1`), so
# `x = -5` and `x = 5` share a fingerprint; after a value (`"stock" - 1`) it is an operator.
_UNARY_AFTER_CHARS = frozenset("(,=<>+-*/%^|&!~[:;")
_UNARY_AFTER_KEYWORDS = frozenset(
    {"ALL", "AND", "ANY", "AS", "BETWEEN", "BY", "CASE", "DEFAULT", "DISTINCT", "ELSE"}
    | {"ESCAPE", "FETCH", "FIRST", "HAVING", "IF", "ILIKE", "IN", "INTERVAL", "IS", "LIKE"}
    | {"LIMIT", "NEXT", "NOT", "OFFSET", "ON", "OR", "RETURN", "RETURNING", "SELECT", "SET"}
    | {"SOME", "THEN", "TOP", "VALUES", "WHEN", "WHERE"}
)

_SAVEPOINT = re.compile(
    r"^((?:SAVEPOINT|RELEASE(?: SAVEPOINT)?|ROLLBACK TO(?: SAVEPOINT)?) )"
    r'(?:"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`|[^\W\d][\w$]*)',
    re.IGNORECASE,
)


def _keyword(word: str) -> str:
    """Case-insensitive `word` not inside an identifier, written so the regex engine can skip
    ahead to its first letter in C (re.IGNORECASE or a leading lookbehind would prevent it)."""
    letters = "".join(f"[{c}{c.lower()}]" for c in word)
    return rf"{letters}(?<![\w$]{'.' * len(word)})"


_ITEM = r"\?(?:::\w+(?:\[\])?)?"
_ROW = rf"\( ?{_ITEM}(?: ?, ?{_ITEM})* ?\)"
_IN_LIST = re.compile(
    rf"({_keyword('IN')}) ?\( ?(?:{_ITEM}|{_ROW})(?: ?, ?(?:{_ITEM}|{_ROW}))* ?\)"
)
_VALUE = rf"(?:{_ITEM}|(?i:NULL|DEFAULT))"
_VALUES_ROW = rf"\( ?{_VALUE}(?: ?, ?{_VALUE})* ?\)"
_VALUES_LIST = re.compile(rf"({_keyword('VALUES')}) ?{_VALUES_ROW}(?: ?, ?{_VALUES_ROW})*")
_ARRAY_LIST = re.compile(rf"({_keyword('ARRAY')}) ?\[ ?{_ITEM}(?: ?, ?{_ITEM})* ?\]")


def normalize(sql: str) -> str:
    """Return `sql` with every literal and placeholder folded to ``?`` and lists collapsed.

    Comments are removed and whitespace collapsed; identifiers (quoted or bare) and keyword
    case are kept, except generated savepoint names, which are folded so that Django's
    per-thread ``SAVEPOINT "s140_x1"`` statements share one fingerprint.
    """
    out: list[str] = []
    emit_from = 0
    scan_from = 0
    length = len(sql)
    while True:
        match = _TOKEN.search(sql, scan_from)
        if match is None:
            break
        kind = match.lastgroup
        start, end = match.span()
        if kind == "identifier":
            # Kept verbatim: just let the next slice copy it.
            scan_from = end
            continue
        if kind == "number" and match.start("minus") != -1:
            # Text before the token decides whether the minus is part of the literal.
            before = sql[emit_from:start].rstrip() or _last_output(out)
            if not _minus_is_unary(before):
                start = match.end("minus")
        out.append(sql[emit_from:start])
        if kind == "line_comment":
            out.append(" ")
        elif kind == "block_comment":
            end = _block_comment_end(sql, end)
            out.append(" ")
        elif kind == "dollar_quote":
            closing = sql.find(match.group(), end)
            end = length if closing == -1 else closing + len(match.group())
            out.append("?")
        elif kind == "percent":
            out.append("%%")
        elif kind == "placeholder_run":
            # One token for Django's `IN (%s, %s, ...)` and bulk `VALUES (%s, %s), (%s, %s)`.
            out.append(match.group().replace("%s", "?"))
        else:
            out.append("?")
        emit_from = scan_from = end
    out.append(sql[emit_from:])
    # str.split() knows the same whitespace as \s and is several times faster than re.sub.
    text = " ".join("".join(out).split())
    if text[:1] in ("S", "s", "R", "r"):
        text = _SAVEPOINT.sub(r"\1?", text, count=1)
    if "?" in text:
        text = _IN_LIST.sub(r"\1 (...)", text)
        text = _ARRAY_LIST.sub(r"\1[...]", text)
    # Not inside the test above: rows may be all NULL or DEFAULT.
    return _VALUES_LIST.sub(r"\1 (...)", text)


def _block_comment_end(sql: str, position: int) -> int:
    """Index just past the comment whose ``/*`` ends at `position`; unterminated runs to end."""
    depth = 1
    while depth:
        delimiter = _COMMENT_DELIMITER.search(sql, position)
        if delimiter is None:
            return len(sql)
        depth += 1 if delimiter.group() == "/*" else -1
        position = delimiter.end()
    return position


def _last_output(out: list[str]) -> str:
    for piece in reversed(out):
        stripped = piece.rstrip()
        if stripped:
            return stripped
    return ""


def _minus_is_unary(before: str) -> bool:
    if not before or before[-1] in _UNARY_AFTER_CHARS:
        return True
    word = _TRAILING_WORD.search(before)
    return word is not None and word.group().upper() in _UNARY_AFTER_KEYWORDS


def fingerprint_of(normalized: str) -> str:
    """Sixteen hex digits of BLAKE2b over the normalized text: the same in every process."""
    data = normalized.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


_SUMMARY_TOKEN = re.compile(r'"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`|[^\W\d][\w$]*|\S')
_OPERATION_WORD = re.compile(r"[A-Za-z_]+")
_MAIN_OPERATIONS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
_DDL_OPERATIONS = frozenset({"CREATE", "ALTER", "DROP"})
_DDL_MODIFIERS = frozenset(
    {"OR", "REPLACE", "UNIQUE", "TEMP", "TEMPORARY", "UNLOGGED", "GLOBAL", "LOCAL"}
    | {"MATERIALIZED", "VIRTUAL", "RECURSIVE"}
)
_NAME_PREFIXES = frozenset(
    {"ONLY", "LATERAL", "TABLE", "IF", "NOT", "EXISTS", "CONCURRENTLY", "LOW_PRIORITY"}
    | {"IGNORE", "OR", "REPLACE", "ROLLBACK", "ABORT", "FAIL", "QUICK"}
)


def summarize(normalized: str) -> tuple[str, str]:
    """Return ``(operation, summary)`` for a normalized statement, e.g. ``("SELECT", "SELECT t")``.

    The operation is the leading keyword (the main statement's for ``WITH`` queries),
    ``OTHER`` when there is none; the summary adds the first table the statement reads
    or writes, capped at 255 characters.
    """
    tokens = _SUMMARY_TOKEN.findall(normalized)
    first = 0
    while first < len(tokens) and tokens[first] == "(":
        first += 1
    if first == len(tokens) or not _OPERATION_WORD.fullmatch(tokens[first]):
        return "OTHER", "OTHER"
    operation = tokens[first].upper()
    main = first
    if operation == "WITH":
        found = _main_statement(tokens, first + 1)
        if found is None:
            return "WITH", "WITH"
        main = found
        operation = tokens[main].upper()
    target = _target(operation, tokens, main)
    summary = f"{operation} {target}" if target else operation
    return operation, _cap(summary, _SUMMARY_MAX_LENGTH)


def _main_statement(tokens: list[str], start: int) -> int | None:
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token.upper() in _MAIN_OPERATIONS:
            return index
    return None


def _target(operation: str, tokens: list[str], main: int) -> str | None:
    if operation in ("SELECT", "DELETE"):
        return _table_after_from(tokens, main + 1) or (
            _name_at(tokens, main + 1) if operation == "DELETE" else None
        )
    if operation in ("INSERT", "MERGE", "REPLACE"):
        for index in range(main + 1, len(tokens)):
            if tokens[index].upper() == "INTO":
                return _name_at(tokens, index + 1)
        return None
    if operation in ("UPDATE", "TRUNCATE"):
        return _name_at(tokens, main + 1)
    if operation in _DDL_OPERATIONS:
        index = main + 1
        while index < len(tokens) and tokens[index].upper() in _DDL_MODIFIERS:
            index += 1
        if index == len(tokens) or not _OPERATION_WORD.fullmatch(tokens[index]):
            return None
        kind = tokens[index].upper()
        name = _name_at(tokens, index + 1)
        return f"{kind} {name}" if name else kind
    return None


def _table_after_from(tokens: list[str], start: int) -> str | None:
    """First table of the statement's own FROM; inside its subquery if it selects from one."""
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and token.upper() == "FROM":
            name = _name_at(tokens, index + 1)
            if name is not None:
                return name
            for inner in range(index + 1, len(tokens)):
                if tokens[inner].upper() == "FROM":
                    name = _name_at(tokens, inner + 1)
                    if name is not None:
                        return name
            return None
    return None


def _name_at(tokens: list[str], index: int) -> str | None:
    """Dotted table name starting at `index`, quotes removed; None if there is none."""
    while index < len(tokens) and tokens[index].upper() in _NAME_PREFIXES:
        index += 1
    parts: list[str] = []
    while index < len(tokens):
        part = _identifier(tokens[index])
        if part is None:
            break
        parts.append(part)
        if index + 1 < len(tokens) and tokens[index + 1] == ".":
            index += 2
        else:
            break
    return ".".join(parts) if parts else None


def _identifier(token: str) -> str | None:
    if token[0] == '"' and len(token) > 1:
        return token[1:-1].replace('""', '"')
    if token[0] == "`" and len(token) > 1:
        return token[1:-1].replace("``", "`")
    if token[0].isalpha() or token[0] == "_":
        return token
    return None


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + _ELLIPSIS


class StatementCatalog:
    """Raw SQL to `Statement`, with a bounded raw-SQL cache and a per-process fingerprint cap.

    Thread safety without a lock: every mutation is a single dict operation, atomic under
    the GIL (keys are str, so hashing and comparison never run Python code). Two threads
    missing at once may both pass the cap check before either inserts, so the number of
    fingerprints can exceed `max_fingerprints` by at most the number of threads that are
    inside a miss at the same moment, minus one; ``setdefault`` makes racing threads that
    found the same fingerprint share one `Statement`. Clearing the raw-SQL cache while
    another thread reads it only turns that read into a miss.
    """

    __slots__ = ("_by_fingerprint", "_by_sql", "_max_cached_sql", "_max_fingerprints", "_max_text")

    def __init__(
        self, max_fingerprints: int = 500, max_cached_sql: int = 5000, max_text_length: int = 2048
    ) -> None:
        _require_at_least("max_fingerprints", max_fingerprints, 0)
        _require_at_least("max_cached_sql", max_cached_sql, 1)
        _require_at_least("max_text_length", max_text_length, 1)
        self._max_fingerprints = max_fingerprints
        self._max_cached_sql = max_cached_sql
        self._max_text = max_text_length
        self._by_sql: dict[str, Statement] = {}
        self._by_fingerprint: dict[str, Statement] = {}

    def lookup(self, sql: str) -> Statement:
        """The `Statement` for `sql`; `OVERFLOW` once the fingerprint cap is reached."""
        try:
            return self._by_sql[sql]
        except (KeyError, TypeError):
            return self._miss(sql)

    def _miss(self, sql: str) -> Statement:
        if not isinstance(sql, str):
            # bytes and psycopg's sql.Composed reach execute wrappers too: never break the
            # query, and never render an object whose repr may hold its parameter values.
            if not isinstance(sql, bytes | bytearray):
                return OVERFLOW
            sql = sql.decode("utf-8", "replace")
        normalized = normalize(sql)
        fingerprint = fingerprint_of(normalized)
        statement = self._by_fingerprint.get(fingerprint)
        if statement is None:
            if len(self._by_fingerprint) >= self._max_fingerprints:
                statement = OVERFLOW
            else:
                operation, summary = summarize(normalized)
                candidate = Statement(
                    fingerprint, _cap(normalized, self._max_text), summary, operation
                )
                statement = self._by_fingerprint.setdefault(fingerprint, candidate)
        if len(self._by_sql) >= self._max_cached_sql:
            # Cheaper than LRU bookkeeping on every hit; the fingerprints survive it.
            self._by_sql.clear()
        self._by_sql[sql] = statement
        return statement

    def reconfigure(self, max_fingerprints: int, max_text_length: int) -> None:
        """New limits (settings changed): known statements are kept unless the text cap moved."""
        _require_at_least("max_fingerprints", max_fingerprints, 0)
        _require_at_least("max_text_length", max_text_length, 1)
        self._max_fingerprints = max_fingerprints
        if max_text_length != self._max_text:
            self._max_text = max_text_length
            self.clear()

    def statements(self) -> list[Statement]:
        """Distinct known statements (never `OVERFLOW`), for the statement-info gauge."""
        while True:
            try:
                return list(self._by_fingerprint.values())
            except RuntimeError:
                # Another thread inserted mid-copy (free-threaded builds); copy again.
                continue

    @property
    def cached_sql_count(self) -> int:
        """How many raw SQL strings are cached right now (at most `max_cached_sql`)."""
        return len(self._by_sql)

    def clear(self) -> None:
        """Forget every cached string and fingerprint, which also resets the cap."""
        self._by_sql.clear()
        self._by_fingerprint.clear()


def _require_at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"StatementCatalog {name} must be an integer of at least {minimum}, got {value!r}"
        )
