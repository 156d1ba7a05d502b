"""SQL statement normalization and fingerprinting, cached by raw SQL for the per-query hot path.

`normalize` folds every literal and placeholder to ``?`` under the lexical rules of the
database that runs the statement (`telemetry.sqllex`, `telemetry.sqlquotes`), so that no
value ever leaves the process; `fingerprint_of` hashes the result into a short,
process-independent id; `StatementCatalog.lookup` turns raw SQL into a `Statement` with a
plain dict hit once the string has been seen, caps the number of distinct fingerprints per
process and keeps its raw-SQL cache within a byte budget. Statements longer than
`MAX_SQL_LENGTH` are never scanned: they all share one `oversize` statement per operation.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass

from .sqllex import dialect_for, fold_literals
from .sqlquotes import fold_double_quoted_values

__all__ = [
    "MAX_CACHED_SQL_BYTES",
    "MAX_SQL_LENGTH",
    "OVERFLOW",
    "OVERSIZE_FINGERPRINT",
    "Statement",
    "StatementCatalog",
    "fingerprint_of",
    "normalize",
    "oversize_statement",
    "summarize",
]

# Longer statements are not normalized. A miss costs 1-2 µs per literal, comment or quoted
# name, so the densest 64 KiB statement (32,000 inline numbers) takes ~60 ms once, while
# Django's bulk_create of 1,000 rows of 10 columns (45 KB) or an IN list of 15,000 ids
# (60 KB) still fits and takes a few ms (docs/telemetry.md has the figures).
MAX_SQL_LENGTH = 64 * 1024  # characters
# Raw SQL strings the catalog keeps (sys.getsizeof, plus an estimate of the dict entry).
MAX_CACHED_SQL_BYTES = 16 * 1024 * 1024
_ENTRY_OVERHEAD = 100


@dataclass(frozen=True, slots=True)
class Statement:
    """One normalized statement, as reported in metric attributes.

    `repeatable` is False where executing the statement several times in one request says
    nothing about the code (transaction control, and the shared `OVERFLOW` and oversize
    statements, which stand for many different statements): those never count as an N+1.
    """

    fingerprint: str
    text: str
    summary: str
    operation: str
    repeatable: bool = True


OVERFLOW = Statement(
    fingerprint="other", text="other", summary="other", operation="OTHER", repeatable=False
)
OVERSIZE_FINGERPRINT = "oversize"

_SUMMARY_MAX_BYTES = 255
_ELLIPSIS = "…"

_SAVEPOINT = re.compile(
    r"^((?:SAVEPOINT|RELEASE(?: SAVEPOINT)?|ROLLBACK TO(?: SAVEPOINT)?) )"
    r'(?:"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`|\[[^\]]*\]|\?|[^\W\d][\w$]*)',
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
# "..." is a run of rows folded before double-quoted values were (see normalize).
_VALUE = rf"(?:{_ITEM}|(?i:NULL|DEFAULT)|\.\.\.)"
_VALUES_ROW = rf"\( ?{_VALUE}(?: ?, ?{_VALUE})* ?\)"
_VALUES_LIST = re.compile(rf"({_keyword('VALUES')}) ?{_VALUES_ROW}(?: ?, ?{_VALUES_ROW})*")
_ARRAY_LIST = re.compile(rf"({_keyword('ARRAY')}) ?\[ ?{_ITEM}(?: ?, ?{_ITEM})* ?\]")


def normalize(sql: str, vendor: str | None = None) -> str:
    """Return `sql` with every literal and placeholder folded to ``?`` and lists collapsed.

    `vendor` is Django's ``connection.vendor`` (``postgresql``, ``sqlite``, ``mysql``,
    ``oracle``); any other value, or None, folds with the rules of all of them at once.
    Comments are removed and whitespace collapsed; identifiers and keyword case are kept,
    except generated savepoint names, which are folded so that Django's per-thread
    ``SAVEPOINT "s140_x1"`` statements share one fingerprint.
    """
    dialect = dialect_for(vendor)
    # str.split() knows the same whitespace as \s and is several times faster than re.sub.
    text = " ".join(fold_literals(sql, dialect).split())
    if dialect.double_quotes_may_be_strings and '"' in text:
        # Lists first: a bulk INSERT's thousand rows become one token for the next pass.
        text = fold_double_quoted_values(_fold_lists(text), dialect.bracket_identifiers)
    if text[:1] in ("S", "s", "R", "r"):
        text = _SAVEPOINT.sub(r"\1?", text, count=1)
    return _fold_lists(text)


def _fold_lists(text: str) -> str:
    if "?" in text:
        text = _IN_LIST.sub(r"\1 (...)", text)
        text = _ARRAY_LIST.sub(r"\1[...]", text)
    # Not inside the test above: rows may be all NULL or DEFAULT.
    return _VALUES_LIST.sub(r"\1 (...)", text)


_TRANSACTION_CONTROL = re.compile(
    r"(?:SAVEPOINT|RELEASE|ROLLBACK|COMMIT|ABORT|XA)(?![\w$])"
    r"|(?:START|PREPARE) TRANSACTION(?![\w$])"
    r"|SET (?:SESSION CHARACTERISTICS AS )?TRANSACTION(?![\w$])"
    r"|(?:BEGIN|END)(?: ?;)?$"
    r"|(?:BEGIN|END) (?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE|ISOLATION|READ|NOT"
    r"|DEFERRABLE)(?![\w$])",
    re.IGNORECASE,
)


def is_transaction_control(normalized: str) -> bool:
    """Whether a normalized statement begins, ends or marks a transaction (not PL/SQL BEGIN)."""
    return _TRANSACTION_CONTROL.match(normalized) is not None


_LEADING_WORD = re.compile(r"\s*([A-Za-z]+)(?![\w$])")
_OVERSIZE_OPERATIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "WITH", "VALUES", "CALL"}
    | {"CREATE", "ALTER", "DROP", "TRUNCATE", "COPY", "EXPLAIN", "DO", "UPSERT"}
)
_OVERSIZE: dict[str, Statement] = {}


def oversize_statement(sql: str) -> Statement:
    """The statement standing for every statement longer than the cap, per operation.

    Only the first 256 characters are read: the operation is the leading keyword when it
    is a plain word that starts statements (``INSERT``), else ``OTHER``; nothing else of
    the text is kept.
    """
    match = _LEADING_WORD.match(sql, 0, 256)
    word = match.group(1).upper() if match is not None else ""
    operation = word if word in _OVERSIZE_OPERATIONS else "OTHER"
    statement = _OVERSIZE.get(operation)
    if statement is None:
        statement = _OVERSIZE.setdefault(
            operation,
            Statement(OVERSIZE_FINGERPRINT, operation, operation, operation, repeatable=False),
        )
    return statement


def fingerprint_of(normalized: str) -> str:
    """Sixteen hex digits of BLAKE2b over the normalized text: the same in every process."""
    data = normalized.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


# A bracketed name stops at the next `[` too: outside SQLite `[` is an operator, and a
# statement of unclosed ones (`a[1 a[1 ...`) must not make each of them scan to the end.
_SUMMARY_TOKEN = re.compile(r'"[^"]*(?:""[^"]*)*"|`[^`]*(?:``[^`]*)*`|\[[^\][]*\]|[^\W\d][\w$]*|\S')
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
    or writes, capped at 255 UTF-8 bytes.
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
    return operation, _cap(summary, _SUMMARY_MAX_BYTES)


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
    if token[0] == "[" and len(token) > 1:
        return token[1:-1]
    if token[0].isalpha() or token[0] == "_":
        return token
    return None


def _cap(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut between characters, with an ellipsis.

    Lone surrogates (which UTF-8 cannot carry, so an exporter would fail on them) become
    ``?``.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    if limit < len(_ELLIPSIS.encode()) + 1:
        return data[:limit].decode("utf-8", "ignore")
    # "ignore" drops only the partial character at the cut: the rest is valid UTF-8.
    return data[: limit - len(_ELLIPSIS.encode())].decode("utf-8", "ignore") + _ELLIPSIS


class StatementCatalog:
    """Raw SQL to `Statement`, with a bounded raw-SQL cache and a per-process fingerprint cap.

    The raw-SQL cache is kept per vendor (one text can hide different values in different
    dialects) and bounded both in entries and in bytes; it is cleared whole when either
    bound would be passed, which is cheaper than LRU bookkeeping on every hit (the
    fingerprints survive it). Statements longer than `max_sql_length` are not cached.

    Thread safety without a lock: every mutation of a dict is a single dict operation,
    atomic under the GIL (keys are str, so hashing and comparison never run Python code).
    Two threads missing at once may both pass the cap check before either inserts, so the
    number of fingerprints can exceed `max_fingerprints` by at most the number of threads
    that are inside a miss at the same moment, minus one; ``setdefault`` makes racing
    threads that found the same fingerprint share one `Statement`. The byte count of the
    raw-SQL cache is a plain counter: a race can miss one entry's bytes until the next
    clear. Clearing the cache while another thread reads it only turns that read into a
    miss.
    """

    __slots__ = (
        "_by_fingerprint",
        "_by_sql",
        "_cached_bytes",
        "_cached_count",
        "_max_cached_bytes",
        "_max_cached_sql",
        "_max_fingerprints",
        "_max_sql_length",
        "_max_text",
    )

    def __init__(
        self,
        max_fingerprints: int = 500,
        max_cached_sql: int = 5000,
        max_text_length: int = 2048,
        max_cached_bytes: int = MAX_CACHED_SQL_BYTES,
        max_sql_length: int = MAX_SQL_LENGTH,
    ) -> None:
        _require_at_least("max_fingerprints", max_fingerprints, 0)
        _require_at_least("max_cached_sql", max_cached_sql, 1)
        _require_at_least("max_text_length", max_text_length, 1)
        _require_at_least("max_cached_bytes", max_cached_bytes, 1)
        _require_at_least("max_sql_length", max_sql_length, 1)
        self._max_fingerprints = max_fingerprints
        self._max_cached_sql = max_cached_sql
        self._max_text = max_text_length  # UTF-8 bytes of Statement.text
        self._max_cached_bytes = max_cached_bytes
        self._max_sql_length = max_sql_length
        self._by_sql: dict[str | None, dict[str, Statement]] = {}
        self._cached_count = 0
        self._cached_bytes = 0
        self._by_fingerprint: dict[str, Statement] = {}

    def lookup(self, sql: str, vendor: str | None = None) -> Statement:
        """The `Statement` for `sql` run by `vendor` (Django's ``connection.vendor``).

        `OVERFLOW` once the fingerprint cap is reached, and for objects that are not SQL
        text; the oversize statement for text longer than `max_sql_length`.
        """
        try:
            return self._by_sql[vendor][sql]
        except (KeyError, TypeError):
            return self._miss(sql, vendor)

    def _miss(self, sql: str, vendor: str | None) -> Statement:
        if not isinstance(sql, str):
            # bytes and psycopg's sql.Composed reach execute wrappers too: never break the
            # query, and never render an object whose repr may hold its parameter values.
            if not isinstance(sql, bytes | bytearray):
                return OVERFLOW
            if len(sql) > self._max_sql_length:
                return oversize_statement(bytes(sql[:256]).decode("utf-8", "replace"))
            sql = sql.decode("utf-8", "replace")
        if len(sql) > self._max_sql_length:
            return oversize_statement(sql)
        normalized = normalize(sql, vendor)
        fingerprint = fingerprint_of(normalized)
        statement = self._by_fingerprint.get(fingerprint)
        if statement is None:
            if len(self._by_fingerprint) >= self._max_fingerprints:
                statement = OVERFLOW
            else:
                operation, summary = summarize(normalized)
                candidate = Statement(
                    fingerprint,
                    _cap(normalized, self._max_text),
                    summary,
                    operation,
                    repeatable=not is_transaction_control(normalized),
                )
                statement = self._by_fingerprint.setdefault(fingerprint, candidate)
        self._remember(sql, vendor, statement)
        return statement

    def reconfigure(self, max_fingerprints: int, max_text_length: int) -> None:
        """New limits (settings changed): known statements are kept unless the text cap moved."""
        _require_at_least("max_fingerprints", max_fingerprints, 0)
        _require_at_least("max_text_length", max_text_length, 1)
        self._max_fingerprints = max_fingerprints
        if max_text_length != self._max_text:
            self._max_text = max_text_length
            self.clear()

    def _remember(self, sql: str, vendor: str | None, statement: Statement) -> None:
        size = sys.getsizeof(sql) + _ENTRY_OVERHEAD
        if (
            self._cached_count >= self._max_cached_sql
            or self._cached_bytes + size > self._max_cached_bytes
        ):
            self._by_sql = {}
            self._cached_count = self._cached_bytes = 0
        by_vendor = self._by_sql.get(vendor)
        if by_vendor is None:
            by_vendor = self._by_sql.setdefault(vendor, {})
        by_vendor[sql] = statement
        self._cached_count += 1
        self._cached_bytes += size

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
        return sum(len(by_vendor) for by_vendor in list(self._by_sql.values()))

    @property
    def cached_sql_bytes(self) -> int:
        """Bytes held by the cached raw SQL strings (at most `max_cached_bytes`)."""
        return self._cached_bytes

    def clear(self) -> None:
        """Forget every cached string and fingerprint, which also resets the cap."""
        self._by_sql = {}
        self._cached_count = self._cached_bytes = 0
        self._by_fingerprint.clear()


def _require_at_least(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"StatementCatalog {name} must be an integer of at least {minimum}, got {value!r}"
        )
