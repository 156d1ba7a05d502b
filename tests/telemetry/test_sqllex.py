"""Dialect-aware normalization (telemetry.sqllex, telemetry.sqlquotes): no literal survives
under the lexical rules of the database that runs the statement, Django's identifiers stay
readable, and normalization time grows linearly with the statement."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest

from telemetry.fingerprint import normalize, summarize

SECRET = "Zq7secret"

# --- values that survived the dialect-blind normalizer ----------------------------------
# (vendor, statement, text that must not survive). Each of these leaked before.
LEAKS = [
    pytest.param(
        "sqlite",
        f'SELECT "t"."a" FROM "t" WHERE "t"."b" = "{SECRET}"',
        SECRET,
        id="sqlite double-quoted string in a value position",
    ),
    pytest.param(
        "sqlite",
        f'SELECT "{SECRET}", "t"."a" FROM "t" ORDER BY "{SECRET}"',
        SECRET,
        id="sqlite double-quoted string in the select list and ORDER BY",
    ),
    pytest.param(
        "sqlite",
        f"SELECT 1 /* /* */ 'x */ {SECRET}' */ FROM t",
        SECRET,
        id="sqlite comments do not nest",
    ),
    pytest.param(
        "sqlite",
        f"SELECT 1 -- note\r{SECRET}\nFROM t",
        SECRET,
        id="sqlite line comment runs past a carriage return",
    ),
    pytest.param(
        "sqlite",
        f"SELECT [it's], [t].[a] FROM [t] WHERE [b] = '{SECRET}'",
        SECRET,
        id="sqlite bracket identifier holding a quote",
    ),
    pytest.param(
        "sqlite", "SELECT 1 FROM t WHERE a = 987_654_321", "654", id="sqlite digit separators"
    ),
    pytest.param(
        "mysql",
        f"SELECT 'it\\'s {SECRET}' FROM t",
        SECRET,
        id="mysql backslash-escaped quote",
    ),
    pytest.param(
        "mysql",
        f"SELECT a FROM t WHERE b = 'C:\\' AND c = '{SECRET}'",
        SECRET,
        id="mysql NO_BACKSLASH_ESCAPES reading",
    ),
    pytest.param(
        "mysql",
        f'SELECT a FROM t WHERE b = "{SECRET}" AND c = "it\\"s"',
        SECRET,
        id="mysql double-quoted string under the default sql_mode",
    ),
    pytest.param(
        "mysql",
        f"SELECT a FROM t # {SECRET}\nWHERE b = 1",
        SECRET,
        id="mysql hash comment",
    ),
    pytest.param(
        "mysql",
        f"SELECT 1--'\n{SECRET}'\nFROM t",
        SECRET,
        id="mysql double dash without a space is two minus signs",
    ),
    pytest.param(
        "mysql",
        f"SELECT 1 /* /* */ 'x */ {SECRET}' */ FROM t",
        SECRET,
        id="mysql comments do not nest",
    ),
    pytest.param("mysql", "SELECT 0b0101101", "b0101101", id="mysql 0b bit literal"),
    pytest.param("postgresql", "SELECT 987_654_321", "654", id="postgresql 16 digit separators"),
    pytest.param("postgresql", "SELECT 0b101101", "b101101", id="postgresql 16 binary"),
    pytest.param("postgresql", "SELECT 0o17777", "o17777", id="postgresql 16 octal"),
    pytest.param("postgresql", "SELECT 0x3A_DE", "DE", id="postgresql 16 hex with separator"),
    pytest.param(
        "postgresql",
        f"SELECT a FROM t WHERE b = 'C:\\' AND c = '{SECRET}'",
        SECRET,
        id="postgresql standard_conforming_strings off",
    ),
    pytest.param(
        "oracle",
        f"SELECT q'[it's {SECRET}]' FROM dual",
        SECRET,
        id="oracle q-quote",
    ),
    pytest.param(
        "oracle",
        f"SELECT nq'{{it's {SECRET}}}' FROM dual",
        SECRET,
        id="oracle nq-quote with braces",
    ),
    pytest.param("oracle", "SELECT 1.5f, 7.25D FROM dual", "f", id="oracle float suffix"),
    pytest.param(
        None,
        f"SELECT [it's] FROM t WHERE b = '{SECRET}'",
        SECRET,
        id="unknown vendor: any dialect's reading",
    ),
    pytest.param(
        None,
        f"SELECT a FROM t WHERE b = 'it\\'s {SECRET}'",
        SECRET,
        id="unknown vendor: backslash escapes",
    ),
]


@pytest.mark.parametrize(("vendor", "sql", "secret"), LEAKS)
def test_no_value_survives_under_the_vendors_rules(
    vendor: str | None, sql: str, secret: str
) -> None:
    assert secret not in normalize(sql, vendor)


# --- each dialect's own reading -----------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "sql", "expected"),
    [
        ("postgresql", "SELECT 1 /* a /* b */ c */ FROM t", "SELECT ? FROM t"),
        ("sqlite", "SELECT 1 /* a /* b */ c */ FROM t", "SELECT ? c */ FROM t"),
        ("postgresql", "SELECT 1 -- a\rb FROM t", "SELECT ? b FROM t"),
        ("sqlite", "SELECT 1 -- a\rb\nFROM t", "SELECT ? FROM t"),
        ("mysql", "SELECT 5--1 FROM t", "SELECT ?-? FROM t"),
        ("mysql", "SELECT 5 -- 1\nFROM t", "SELECT ? FROM t"),
        ("postgresql", "SELECT a # b FROM t", "SELECT a # b FROM t"),
        ("postgresql", "SELECT $1, $tag$ it's $$ $tag$, $$x$$", "SELECT ?, ?, ?"),
        (
            "postgresql",
            "SELECT E'it\\'s', U&'d\\0061t', B'01', X'1F', N'x'",
            "SELECT ?, ?, ?, ?, ?",
        ),
        ("sqlite", "SELECT X'1F', ?3, :name, @name, $name", "SELECT ?, ?, ?, ?, ?"),
        ("sqlite", 'SELECT \'C:\\\' AS p, "t"."x" FROM "t"', 'SELECT ? AS p, "t"."x" FROM "t"'),
        ("mysql", "SELECT _utf8mb4'x', N'y', x'1F', 0x1F, b'01'", "SELECT ?, ?, ?, ?, ?"),
        ("mysql", "SELECT `a`.`it's` FROM `t`", "SELECT `a`.`it's` FROM `t`"),
        ("oracle", "SELECT :arg0, :1 FROM dual", "SELECT ?, :? FROM dual"),
        ("postgresql", 'SELECT "it\'s" FROM "t"', 'SELECT "it\'s" FROM "t"'),
        ("postgresql", 'SELECT "secret" FROM "t"', 'SELECT "secret" FROM "t"'),
    ],
)
def test_each_dialect_reads_its_own_syntax(vendor: str, sql: str, expected: str) -> None:
    assert normalize(sql, vendor) == expected


def test_readings_that_disagree_fold_the_rest_of_the_statement() -> None:
    # MySQL with NO_BACKSLASH_ESCAPES ends the string at \' and shows what follows: the
    # statement is folded from the first token on which the two readings disagree.
    sql = "SELECT a FROM t WHERE b = 'it\\'s' AND c = 1"
    assert normalize(sql, "mysql") == "SELECT a FROM t WHERE b = ?"
    # Without a backslash both readings agree and nothing more is folded.
    assert normalize("SELECT a FROM t WHERE b = 'its' AND c = 1", "mysql") == (
        "SELECT a FROM t WHERE b = ? AND c = ?"
    )


# --- SQLite and MySQL: double-quoted tokens kept only where a name must stand ------------------


@pytest.mark.parametrize("vendor", ["sqlite", "mysql", None])
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            'SELECT "t"."a", "t"."b" AS "x" FROM "t" INNER JOIN "u" ON ("t"."id" = "u"."t_id")',
            'SELECT "t"."a", "t"."b" AS "x" FROM "t" INNER JOIN "u" ON ("t"."id" = "u"."t_id")',
        ),
        (
            'INSERT INTO "t" ("a", "b") VALUES (%s, %s) RETURNING "t"."id"',
            'INSERT INTO "t" ("a", "b") VALUES (...) RETURNING "t"."id"',
        ),
        (
            'UPDATE "t" SET "a" = %s, "b" = "x" WHERE "t"."id" IN (%s, %s)',
            'UPDATE "t" SET "a" = ?, "b" = ? WHERE "t"."id" IN (...)',
        ),
        (
            'SELECT "x", "y" FROM "t", "u" WHERE "z" = "w" ORDER BY "v"',
            'SELECT ?, ? FROM "t", "u" WHERE ? = ? ORDER BY ?',
        ),
        (
            'SELECT 1 IS DISTINCT FROM "x", TRIM("a" FROM "b"), EXTRACT(YEAR FROM "c") FROM "t"',
            'SELECT ? IS DISTINCT FROM ?, TRIM(? FROM ?), EXTRACT(YEAR FROM ?) FROM "t"',
        ),
        (
            'SELECT COUNT(*) FROM (SELECT DISTINCT "a"."id" AS "col1" FROM "a") subquery',
            'SELECT COUNT(*) FROM (SELECT DISTINCT "a"."id" AS "col1" FROM "a") subquery',
        ),
        (
            # Django 6.1 aliases the tables of a subquery without AS.
            'DELETE FROM "b" WHERE "b"."id" IN (SELECT "U0"."id" FROM "b" "U0" '
            'INNER JOIN "a" "U1" ON ("U0"."a_id" = "U1"."id") WHERE "U1"."n" = %s)',
            'DELETE FROM "b" WHERE "b"."id" IN (SELECT "U0"."id" FROM "b" "U0" '
            'INNER JOIN "a" "U1" ON ("U0"."a_id" = "U1"."id") WHERE "U1"."n" = ?)',
        ),
        (
            'SELECT "x" "y" FROM "t" "u", "v" "w" WHERE "z" = "s" "r"',
            'SELECT ? ? FROM "t" "u", "v" "w" WHERE ? = ? ?',
        ),
        (
            'CREATE TABLE "t" ("id" integer NOT NULL PRIMARY KEY, "b" text DEFAULT "x", '
            'CONSTRAINT "k" FOREIGN KEY ("c") REFERENCES "u" ("id"))',
            'CREATE TABLE "t" ("id" integer NOT NULL PRIMARY KEY, "b" text DEFAULT ?, '
            'CONSTRAINT "k" FOREIGN KEY ("c") REFERENCES "u" ("id"))',
        ),
    ],
)
def test_double_quoted_tokens_are_kept_only_in_name_positions(
    vendor: str | None, sql: str, expected: str
) -> None:
    assert normalize(sql, vendor) == expected


@pytest.mark.django_db
def test_identifiers_django_generates_stay_readable_on_sqlite() -> None:
    from django.db import connection
    from django.db.models import Count

    from tests.telemetry.testapp.models import Author, Book

    captured: list[str] = []

    def capture(execute, sql, params, many, context):
        captured.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        author = Author.objects.create(name="x")
        Book.objects.create(author=author, title="y")
        list(Book.objects.select_related("author").filter(title__in=["a", "b"]))
        list(Author.objects.annotate(n=Count("book")).order_by("name"))
        Author.objects.filter(pk=author.pk).update(name="z")
        Book.objects.filter(author__name="z").delete()
    texts = [normalize(sql, "sqlite") for sql in captured]
    assert 'INSERT INTO "testapp_author" ("name") VALUES (...)' in texts[0]
    select = next(text for text in texts if "INNER JOIN" in text)
    assert '"testapp_book"."title" IN (...)' in select
    assert summarize(select) == ("SELECT", "SELECT testapp_book")
    assert any('UPDATE "testapp_author" SET "name" = ?' in text for text in texts)
    assert any('COUNT("testapp_book"."id") AS "n"' in text for text in texts)
    assert all(
        text == normalize(sql, "postgresql") for text, sql in zip(texts, captured, strict=True)
    )


# --- linear time -------------------------------------------------------------------------

PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "long quoted name then a minus": lambda n: 'SELECT "' + "a" * n + '" -1',
    "long bare word then a minus": lambda n: "SELECT " + "a" * n + " -1",
    "unterminated string": lambda n: "SELECT '" + "a" * n,
    "unterminated quoted name": lambda n: 'SELECT "' + "a" * n,
    "nested comment openers": lambda n: "SELECT " + "/*" * (n // 2),
    "dollar quote openers": lambda n: "SELECT " + "$a$ " * (n // 4),
    "minus signs": lambda n: "SELECT " + "- 1 " * (n // 4),
    "in list never closed": lambda n: "SELECT 1 WHERE a IN (" + "%s, " * (n // 4),
    "values rows never closed": lambda n: "INSERT INTO t VALUES " + "(%s, " * (n // 4),
    "quotes": lambda n: "SELECT " + "\"'" * (n // 2),
    "backslashes and quotes": lambda n: "SELECT '" + "\\'" * (n // 2),
    "dotted names": lambda n: "SELECT " + '"a".' * (n // 4) + "b",
    "from lists": lambda n: 'SELECT 1 FROM "a"' + ', "b"' * (n // 5),
    "parentheses": lambda n: "SELECT " + "(" * n,
    # `[` is an operator outside SQLite: a bracket-name pattern scanning to the end from
    # each one made the summary quadratic (tests/resilience/test_bad_input.py).
    "brackets never closed": lambda n: "SELECT " + "a[1 " * (n // 4),
}


def _cpu_seconds(short: Callable[[], object], long: Callable[[], object]) -> tuple[float, float]:
    """Least CPU time of five interleaved runs of each (process time: other processes on a
    shared machine do not count; the collector is paused so it lands in neither)."""
    best_short = best_long = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            for work, is_long in ((short, False), (long, True)):
                start = time.process_time()
                work()
                elapsed = time.process_time() - start
                if is_long:
                    best_long = min(best_long, elapsed)
                else:
                    best_short = min(best_short, elapsed)
    finally:
        gc.enable()
    return best_short, best_long


@pytest.mark.parametrize("vendor", ["postgresql", "sqlite", "mysql", "oracle", None])
@pytest.mark.parametrize("shape", sorted(PATHOLOGICAL))
def test_normalization_time_grows_linearly(vendor: str | None, shape: str) -> None:
    make = PATHOLOGICAL[shape]
    short, long = make(10_000), make(40_000)

    def run(sql: str) -> Callable[[], object]:
        return lambda: summarize(normalize(sql, vendor))

    # Four times the text may take at most eight times as long (a quadratic scan: sixteen).
    short_seconds, long_seconds = _cpu_seconds(run(short), run(long))
    ratio = long_seconds / max(short_seconds, 1e-6)
    assert ratio < 8, f"{shape}: 4x input took {ratio:.1f}x as long"
