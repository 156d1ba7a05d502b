"""Tests for telemetry.fingerprint: no literal survives normalization, fingerprints are stable
and bounded, and the catalog serves repeated SQL from its cache."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from telemetry.fingerprint import (
    OVERFLOW,
    Statement,
    StatementCatalog,
    fingerprint_of,
    normalize,
    summarize,
)

PRODUCT_COLUMNS = '"shop_product"."id", "shop_product"."name", "shop_product"."price"'


# --- folding rules ---------------------------------------------------------------------


# PostgreSQL's rules unless a case says otherwise; tests/telemetry/test_sqllex.py covers the
# forms that differ between dialects.
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            f'SELECT {PRODUCT_COLUMNS} FROM "shop_product" '
            "WHERE \"shop_product\".\"name\" = 'O''Brien'",
            f'SELECT {PRODUCT_COLUMNS} FROM "shop_product" WHERE "shop_product"."name" = ?',
            id="single-quoted string with doubled quote",
        ),
        pytest.param(
            "SELECT E'it\\'s \\\\ here', N'nvarchar', X'DEADBEEF', B'0101', U&'d\\0061t'",
            "SELECT ?, ?, ?, ?, ?",
            id="prefixed strings",
        ),
        pytest.param(
            'SELECT $$it\'s $secret$$, $fn$ body $$ nested $fn$ FROM "t"',
            'SELECT ?, ? FROM "t"',
            id="dollar-quoted strings",
        ),
        pytest.param(
            'SELECT "t"."a" FROM "t" WHERE "t"."qty" = 42 AND "t"."price" >= 19.99 '
            'AND "t"."ratio" < 1.5e-10 AND "t"."big" > 6.02E+23 AND "t"."half" = .5',
            'SELECT "t"."a" FROM "t" WHERE "t"."qty" = ? AND "t"."price" >= ? '
            'AND "t"."ratio" < ? AND "t"."big" > ? AND "t"."half" = ?',
            id="integers decimals scientific",
        ),
        pytest.param(
            'SELECT "t"."a" FROM "t" WHERE "t"."delta" = -5 AND "t"."x" BETWEEN -1.5 AND - 2',
            'SELECT "t"."a" FROM "t" WHERE "t"."delta" = ? AND "t"."x" BETWEEN ? AND ?',
            id="negative literals",
        ),
        pytest.param(
            'UPDATE "shop_product" SET "stock" = ("shop_product"."stock" - 1) WHERE "id" = 7',
            'UPDATE "shop_product" SET "stock" = ("shop_product"."stock" - ?) WHERE "id" = ?',
            id="binary minus stays an operator",
        ),
        pytest.param(
            'SELECT "t"."a" FROM "t" '
            'WHERE "t"."flags" = 0x1F AND "t"."on" = TRUE OR "t"."off" = false',
            'SELECT "t"."a" FROM "t" WHERE "t"."flags" = ? AND "t"."on" = ? OR "t"."off" = ?',
            id="hex and booleans",
        ),
        pytest.param(
            'SELECT "t"."a" FROM "t" WHERE "t"."a" = %s AND "t"."b" = %(name)s AND "t"."c" = ? '
            'AND "t"."d" = $1 AND "t"."e" = :when AND "t"."f" = ?3',
            'SELECT "t"."a" FROM "t" WHERE "t"."a" = ? AND "t"."b" = ? AND "t"."c" = ? '
            'AND "t"."d" = ? AND "t"."e" = ? AND "t"."f" = ?',
            id="placeholders of every paramstyle",
        ),
        pytest.param(
            'SELECT "t"."a"::text, ("t"."n" %% 2) FROM "t" WHERE "t"."a" IS NULL',
            'SELECT "t"."a"::text, ("t"."n" %% ?) FROM "t" WHERE "t"."a" IS NULL',
            id="casts, escaped percent and IS NULL are structure",
        ),
        pytest.param(
            f'SELECT {PRODUCT_COLUMNS} FROM "shop_product" '
            'ORDER BY "shop_product"."name" ASC LIMIT 21 OFFSET 40',
            f'SELECT {PRODUCT_COLUMNS} FROM "shop_product" '
            'ORDER BY "shop_product"."name" ASC LIMIT ? OFFSET ?',
            id="limit and offset",
        ),
    ],
)
def test_normalize_folds_literals_and_placeholders(raw: str, expected: str) -> None:
    assert normalize(raw, "postgresql") == expected


@pytest.mark.parametrize(
    "raw",
    [
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (%s)',
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (%s, %s, %s)',
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (1,2,  3 ,4)',
        'SELECT "shop_product"."id" FROM "shop_product" '
        'WHERE "shop_product"."id" IN (\'a\', -2, 3.5, %s)',
    ],
)
def test_in_lists_of_any_length_fold_to_one_form(raw: str) -> None:
    assert normalize(raw) == (
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (...)'
    )


def test_not_in_and_tuple_in_lists_fold_too() -> None:
    assert normalize(
        'SELECT 1 FROM "t" WHERE "t"."a" NOT IN (1, 2) AND ("a", "b") IN ((1, 2), (3, 4))',
        "postgresql",
    ) == ('SELECT ? FROM "t" WHERE "t"."a" NOT IN (...) AND ("a", "b") IN (...)')


@pytest.mark.parametrize("rows", [1, 2, 17])
def test_multi_row_values_fold_to_one_form(rows: int) -> None:
    values = ", ".join(["(%s, %s, NULL)"] * rows)
    columns = '"shop_order" ("customer_id", "total", "note")'
    raw = f'INSERT INTO {columns} VALUES {values} RETURNING "shop_order"."id"'
    assert normalize(raw) == f'INSERT INTO {columns} VALUES (...) RETURNING "shop_order"."id"'


def test_literal_values_rows_fold_like_placeholder_rows() -> None:
    literal = (
        'INSERT INTO "shop_order" ("total", "note") VALUES (1.5, \'a\'), (-2, NULL), (3, DEFAULT)'
    )
    placeholders = 'INSERT INTO "shop_order" ("total", "note") VALUES (%s, %s)'
    assert normalize(literal) == normalize(placeholders)


def test_comments_are_removed_including_sqlcommenter_tags() -> None:
    raw = (
        "-- monthly report\n"
        'SELECT /* hint */ "shop_order"."id"\n'
        "  FROM \"shop_order\" -- trailing note with 'quote'\n"
        '  WHERE "shop_order"."total" > %s '
        "/*controller='orders',route='%%2Forders%%2F',traceparent='00-4bf92f3577b34da6-00f067aa0ba902b7-01'*/"
    )
    assert (
        normalize(raw)
        == 'SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."total" > ?'
    )


def test_nested_and_unterminated_comments_hide_their_text() -> None:
    nested = "SELECT 1 /* outer /* inner */ still secret */ FROM t"
    assert normalize(nested, "postgresql") == "SELECT ? FROM t"
    assert normalize("SELECT 1 FROM t /* never closed secret") == "SELECT ? FROM t"


def test_unterminated_strings_hide_the_rest_of_the_statement() -> None:
    assert normalize("SELECT * FROM t WHERE a = 'secret and more") == "SELECT * FROM t WHERE a = ?"
    assert normalize("SELECT $$ secret") == "SELECT ?"


@pytest.mark.parametrize("vendor", ["sqlite", "mysql"])
def test_identifiers_are_never_touched(vendor: str) -> None:
    raw = (
        'SELECT "shop_product"."id", `legacy`.`col9`, t1.col2, shop_order_2024.x_1 '
        'FROM "shop_product", `legacy`, t1, shop_order_2024 '
        'WHERE "weird ""name"" 42"."c" = 3'
    )
    assert normalize(raw, vendor) == (
        'SELECT "shop_product"."id", `legacy`.`col9`, t1.col2, shop_order_2024.x_1 '
        'FROM "shop_product", `legacy`, t1, shop_order_2024 '
        'WHERE "weird ""name"" 42"."c" = ?'
    )


def test_whitespace_collapses_and_keyword_case_is_kept() -> None:
    raw = '\n\t select   "a"\n\n  FROM\t"t"  where "a" =   1  \n'
    assert normalize(raw, "postgresql") == 'select "a" FROM "t" where "a" = ?'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('SAVEPOINT "s140234567_x1"', "SAVEPOINT ?"),
        ('RELEASE SAVEPOINT "s140234567_x12"', "RELEASE SAVEPOINT ?"),
        ('ROLLBACK TO SAVEPOINT "s99_x3"', "ROLLBACK TO SAVEPOINT ?"),
    ],
)
def test_generated_savepoint_names_share_one_fingerprint(raw: str, expected: str) -> None:
    # Django names savepoints after the thread id and a counter: kept, they would fill the cap.
    assert normalize(raw) == expected


# --- summaries -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "operation", "summary"),
    [
        (
            f'SELECT {PRODUCT_COLUMNS} FROM "shop_product" WHERE "shop_product"."id" = %s',
            "SELECT",
            "SELECT shop_product",
        ),
        (
            'SELECT "shop_order"."id" FROM "shop_order" INNER JOIN "shop_customer" '
            'ON ("shop_order"."customer_id" = "shop_customer"."id")',
            "SELECT",
            "SELECT shop_order",
        ),
        (
            'SELECT COUNT(*) FROM (SELECT DISTINCT "shop_review"."id" AS "col1" '
            'FROM "shop_review") subquery',
            "SELECT",
            "SELECT shop_review",
        ),
        (
            'SELECT EXTRACT(YEAR FROM "shop_order"."created") FROM "shop_order"',
            "SELECT",
            "SELECT shop_order",
        ),
        (
            'SELECT 1 AS "a" FROM "public"."shop_product" LIMIT 1',
            "SELECT",
            "SELECT public.shop_product",
        ),
        ("SELECT 1", "SELECT", "SELECT"),
        (
            'INSERT INTO "shop_order" ("total") VALUES (%s) RETURNING "shop_order"."id"',
            "INSERT",
            "INSERT shop_order",
        ),
        (
            'UPDATE "shop_product" SET "stock" = %s WHERE "shop_product"."id" = %s',
            "UPDATE",
            "UPDATE shop_product",
        ),
        (
            'DELETE FROM "shop_review" WHERE "shop_review"."id" IN (%s, %s)',
            "DELETE",
            "DELETE shop_review",
        ),
        ("BEGIN", "BEGIN", "BEGIN"),
        ("COMMIT", "COMMIT", "COMMIT"),
        ('SAVEPOINT "s1_x1"', "SAVEPOINT", "SAVEPOINT"),
        ('RELEASE SAVEPOINT "s1_x1"', "RELEASE", "RELEASE"),
        ("PRAGMA foreign_keys = ON", "PRAGMA", "PRAGMA"),
        (
            'CREATE TABLE "shop_tag" ("id" integer NOT NULL PRIMARY KEY)',
            "CREATE",
            "CREATE TABLE shop_tag",
        ),
        ('DROP TABLE IF EXISTS "shop_tag"', "DROP", "DROP TABLE shop_tag"),
        (
            'WITH recent AS (SELECT "id" FROM "shop_order" WHERE "total" > 1) '
            'UPDATE "shop_product" SET "hot" = true WHERE "id" IN (SELECT "id" FROM recent)',
            "UPDATE",
            "UPDATE shop_product",
        ),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "SELECT", "SELECT x"),
        ('(SELECT "a" FROM "t1") UNION (SELECT "a" FROM "t2")', "SELECT", "SELECT t1"),
        ("", "OTHER", "OTHER"),
        ("? + ?", "OTHER", "OTHER"),
    ],
)
def test_summarize_names_operation_and_first_table(raw: str, operation: str, summary: str) -> None:
    assert summarize(normalize(raw)) == (operation, summary)


def test_summary_is_capped_in_utf8_bytes() -> None:
    table = "t" * 400
    operation, summary = summarize(f'SELECT * FROM "{table}"')
    assert operation == "SELECT"
    assert len(summary.encode()) == 255
    assert summary.startswith("SELECT ttt") and summary.endswith("…")


# --- fingerprints ----------------------------------------------------------------------


def test_fingerprint_is_blake2b_of_the_normalized_text() -> None:
    raw = (
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (1, 2) LIMIT 5'
    )
    normalized = (
        'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" IN (...) LIMIT ?'
    )
    expected = hashlib.blake2b(normalized.encode(), digest_size=8).hexdigest()
    assert normalize(raw) == normalized
    assert fingerprint_of(normalized) == expected
    assert re.fullmatch(r"[0-9a-f]{16}", expected)


def test_fingerprint_is_the_same_in_another_process_with_another_hash_seed() -> None:
    statement = 'SELECT "shop_order"."id" FROM "shop_order" WHERE "shop_order"."total" > ?'
    code = (
        "import sys; from telemetry.fingerprint import fingerprint_of; "
        "print(fingerprint_of(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code, statement], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == fingerprint_of(statement)


def test_fingerprint_accepts_lone_surrogates() -> None:
    assert fingerprint_of("SELECT \ud800") != fingerprint_of("SELECT \ud801")


# --- catalog ---------------------------------------------------------------------------


def _select(table: str, value: int = 1) -> str:
    return f'SELECT "{table}"."id" FROM "{table}" WHERE "{table}"."id" = {value}'


def test_lookup_returns_the_normalized_statement_and_caches_it() -> None:
    catalog = StatementCatalog()
    raw = _select("shop_product", 5)
    statement = catalog.lookup(raw)
    normalized = normalize(raw)
    assert statement == Statement(
        fingerprint=fingerprint_of(normalized),
        text=normalized,
        summary="SELECT shop_product",
        operation="SELECT",
    )
    assert catalog.lookup(raw) is statement
    assert catalog.lookup(_select("shop_product", 99)) is statement
    assert catalog.statements() == [statement]


def test_fingerprints_past_the_cap_overflow_and_known_ones_keep_theirs() -> None:
    catalog = StatementCatalog(max_fingerprints=3)
    known = [catalog.lookup(_select(f"table_{n}")) for n in range(3)]
    assert OVERFLOW not in known
    assert catalog.lookup(_select("table_new")) is OVERFLOW
    assert catalog.lookup(_select("table_newer")) is OVERFLOW
    # Same statements with other literals and a cold raw-SQL cache still map to their own.
    assert [catalog.lookup(_select(f"table_{n}", 77)) for n in range(3)] == known
    assert catalog.statements() == known
    assert Statement("other", "other", "other", "OTHER", repeatable=False) == OVERFLOW


def test_raw_sql_cache_is_bounded_and_clearing_it_keeps_fingerprints_and_cap() -> None:
    catalog = StatementCatalog(max_fingerprints=2, max_cached_sql=10)
    first = catalog.lookup(_select("a"))
    second = catalog.lookup(_select("b"))
    for value in range(50):
        assert catalog.lookup(_select("a", value)) is first
        assert catalog.cached_sql_count <= 10
    assert catalog.lookup(_select("c")) is OVERFLOW
    assert catalog.lookup(_select("b", 1234)) is second
    assert catalog.statements() == [first, second]


def test_statement_text_is_capped_with_an_ellipsis() -> None:
    catalog = StatementCatalog(max_text_length=40)
    raw = 'SELECT "' + "c" * 100 + '" FROM "shop_product" WHERE "id" = 1'
    statement = catalog.lookup(raw, "postgresql")
    assert len(statement.text.encode()) == 40  # the ellipsis takes three bytes
    assert statement.text == normalize(raw, "postgresql")[:37] + "…"
    # The hash covers the full text, so statements sharing a long prefix stay apart.
    assert statement.fingerprint == fingerprint_of(normalize(raw, "postgresql"))
    assert (
        catalog.lookup(raw.replace("shop_product", "shop_order"), "postgresql").fingerprint
        != statement.fingerprint
    )


def test_clear_forgets_statements_and_resets_the_cap() -> None:
    catalog = StatementCatalog(max_fingerprints=1)
    catalog.lookup(_select("a"))
    assert catalog.lookup(_select("b")) is OVERFLOW
    catalog.clear()
    assert catalog.statements() == []
    assert catalog.cached_sql_count == 0
    assert catalog.lookup(_select("b")).summary == "SELECT b"


def test_non_string_sql_does_not_break_the_query() -> None:
    catalog = StatementCatalog()
    assert catalog.lookup(b"SELECT 1 FROM t WHERE a = 'x'").text == "SELECT ? FROM t WHERE a = ?"  # type: ignore[arg-type]
    # Objects such as psycopg's sql.Composed may show parameter values in their repr.
    assert catalog.lookup(["unhashable", "secret"]) is OVERFLOW  # type: ignore[arg-type]
    assert catalog.statements()[0].summary == "SELECT t"


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("max_fingerprints", -1),
        ("max_cached_sql", 0),
        ("max_text_length", 0),
        ("max_cached_sql", "10"),
    ],
)
def test_invalid_limits_are_rejected_with_a_message_naming_them(
    keyword: str, value: object
) -> None:
    with pytest.raises(ValueError, match=keyword):
        StatementCatalog(**{keyword: value})  # type: ignore[arg-type]


def test_concurrent_lookups_never_raise_and_stay_near_the_cap() -> None:
    cap, threads, per_thread = 20, 8, 300
    catalog = StatementCatalog(max_fingerprints=cap, max_cached_sql=50)
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                catalog.lookup(_select(f"t_{(n * 7 + worker) % 60}", n))
                catalog.statements()
        except BaseException as error:  # any failure must reach the assertion below
            errors.append(error)

    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert errors == []
    known = catalog.statements()
    assert cap <= len(known) <= cap + threads - 1
    assert len({statement.fingerprint for statement in known}) == len(known)
    for statement in known:
        assert catalog.lookup(_select(statement.summary.split()[1], 1)) is statement


# --- real Django SQL -------------------------------------------------------------------


def test_querysets_differing_only_in_values_share_a_fingerprint() -> None:
    from django.contrib.auth.models import User

    first = User.objects.filter(username="alice", pk__in=[1, 2, 3], is_active=True)[5:26]
    second = User.objects.filter(username="bob", pk__in=[9], is_active=True)[40:61]
    first_sql, _ = first.query.sql_with_params()
    second_sql, _ = second.query.sql_with_params()
    assert first_sql != second_sql
    catalog = StatementCatalog()
    statement = catalog.lookup(first_sql)
    assert catalog.lookup(second_sql) is statement
    assert statement.summary == "SELECT auth_user"
    assert '"auth_user"."id" IN (...)' in statement.text
    assert statement.text.endswith("LIMIT ? OFFSET ?")


@pytest.mark.django_db
def test_values_django_inlines_for_logging_never_survive() -> None:
    from django.contrib.auth.models import User
    from django.db import connection

    canary = "O'Brien -- /* QXCANARYQX */ 'x'"
    captured: list[tuple[str, tuple[object, ...]]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        list(User.objects.filter(username=canary, pk__in=[424242, 434343]).exclude(email=canary))
    sql, params = captured[-1]
    with connection.cursor() as cursor:
        inlined = connection.ops.last_executed_query(cursor, sql, params)
    assert "QXCANARYQX" in inlined and "424242" in inlined
    normalized = normalize(inlined)
    assert "QXCANARYQX" not in normalized
    assert "424242" not in normalized
    assert normalized == normalize(sql)


# --- properties: no literal survives ---------------------------------------------------

CANARY = "QXCANARYQX"

# Templates written the way Django (or a person writing raw SQL) would; {s} is a string
# literal, {n} a number, {v} either or a boolean, {in} an IN-list, {rows} VALUES rows.
TEMPLATES = [
    'SELECT "shop_product"."id", "shop_product"."name" FROM "shop_product" '
    'WHERE ("shop_product"."name" = {s} AND "shop_product"."price" >= {n}) '
    'ORDER BY "shop_product"."name" ASC LIMIT {n} OFFSET {n}',
    'SELECT "shop_order"."id" FROM "shop_order" INNER JOIN "shop_customer" '
    'ON ("shop_order"."customer_id" = "shop_customer"."id") '
    'WHERE ("shop_order"."status" IN {in} AND "shop_customer"."email" LIKE {s} '
    'AND "shop_order"."total" < {n}) LIMIT {n}',
    'INSERT INTO "shop_order" ("customer_id", "total", "note") VALUES {rows} '
    'RETURNING "shop_order"."id"',
    'UPDATE "shop_product" SET "stock" = ("shop_product"."stock" - {n}), "name" = {s}, '
    '"active" = {v} WHERE "shop_product"."id" = {n}',
    'DELETE FROM "shop_review" WHERE ("shop_review"."body" = {s} OR "shop_review"."id" IN {in})',
    "/* nightly revenue report */\n"
    "SELECT p.name, SUM(o.total) AS revenue\n"
    "  FROM shop_product p\n"
    "  JOIN shop_order o ON o.product_id = p.id -- only paid orders\n"
    " WHERE o.created >= {s}\n"
    "   AND o.total BETWEEN {n} AND {n}\n"
    "   AND o.paid = {v}\n"
    " GROUP BY p.name HAVING SUM(o.total) > {n}",
    "SELECT t1.col2, shop_order_2024.x FROM t1 "
    "JOIN shop_order_2024 ON t1.id = shop_order_2024.t1_id "
    "WHERE t1.col2 = {v} AND t1.note <> {s} AND shop_order_2024.code IN {in}",
]
DIGIT_FREE_TEMPLATES = [template for template in TEMPLATES if not re.search(r"\d", template)]
SLOT = re.compile(r"\{(s|n|v|in|rows)\}")

any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@st.composite
def string_literals(draw: st.DrawFn) -> str:
    text = draw(any_text) + CANARY + draw(any_text)
    style = draw(st.sampled_from(["plain", "E", "N", "X", "dollar", "tagged"]))
    if style == "E":
        return (
            "E'"
            + text.replace("\\", "\\\\").replace("'", draw(st.sampled_from(["''", "\\'"])))
            + "'"
        )
    if style in ("dollar", "tagged"):
        tag = "" if style == "dollar" else "q"
        return f"${tag}$" + text.replace("$", "") + f"${tag}$"
    prefix = "" if style == "plain" else style
    return prefix + "'" + text.replace("'", "''") + "'"


numbers = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=0).map(hex),
)
values = st.one_of(string_literals(), numbers, st.sampled_from(["TRUE", "FALSE", "true"]))


def render(template: str, data: st.DataObject, placeholders: bool = False) -> str:
    def fill(match: re.Match[str]) -> str:
        kind = match.group(1)
        if kind == "in":
            size = data.draw(st.integers(min_value=1, max_value=12))
            items = ["%s"] * size if placeholders else [data.draw(values) for _ in range(size)]
            return "(" + data.draw(st.sampled_from([", ", ",", " , "])).join(items) + ")"
        if kind == "rows":
            count = data.draw(st.integers(min_value=1, max_value=6))
            row_values = st.one_of(values, st.just("NULL"))
            rows = [
                "("
                + ", ".join("%s" if placeholders else data.draw(row_values) for _ in range(3))
                + ")"
                for _ in range(count)
            ]
            return ", ".join(rows)
        if placeholders:
            return "%s"
        strategy: Callable[[], str] = {
            "s": lambda: data.draw(string_literals()),
            "n": lambda: data.draw(numbers),
            "v": lambda: data.draw(values),
        }[kind]
        literal = strategy()
        # `- -5` must not become the comment `--5`.
        return " " + literal if literal.startswith("-") else literal

    return SLOT.sub(fill, template)


property_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@property_settings
@given(template=st.sampled_from(TEMPLATES), data=st.data())
def test_no_string_literal_survives(template: str, data: st.DataObject) -> None:
    sql = render(template, data)
    assume(CANARY in sql)  # VALUES rows may happen to hold numbers only
    assert CANARY not in normalize(sql)


@property_settings
@given(template=st.sampled_from(DIGIT_FREE_TEMPLATES), data=st.data())
def test_no_number_survives(template: str, data: st.DataObject) -> None:
    sql = render(template, data)
    assert not re.search(r"[0-9]", normalize(sql))


@property_settings
@given(
    comment=st.text(st.characters(exclude_categories=["Cs"]), max_size=40).filter(
        lambda text: "*/" not in text and "/*" not in text
    ),
    line=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=40),
)
def test_no_comment_text_survives(comment: str, line: str) -> None:
    sql = (
        f'SELECT "shop_product"."id" FROM "shop_product" -- {line}{CANARY}\n'
        f'WHERE "shop_product"."id" = %s /*{comment}{CANARY}{comment}*/'
    )
    assert (
        normalize(sql)
        == 'SELECT "shop_product"."id" FROM "shop_product" WHERE "shop_product"."id" = ?'
    )


@property_settings
@given(sql=st.text(max_size=200))
def test_normalize_and_summarize_accept_any_text(sql: str) -> None:
    operation, summary = summarize(normalize(sql))
    assert re.fullmatch(r"[A-Z_]+", operation)
    assert len(summary) <= 255


# --- dialects, bounds and repeatable statements (catalog) ------------------------------------


def test_lookup_caches_per_vendor_and_normalizes_with_its_rules() -> None:
    catalog = StatementCatalog()
    raw = 'SELECT "t"."a" FROM "t" WHERE "t"."b" = "secret"'
    sqlite = catalog.lookup(raw, "sqlite")
    postgresql = catalog.lookup(raw, "postgresql")
    assert sqlite.text == 'SELECT "t"."a" FROM "t" WHERE "t"."b" = ?'
    assert postgresql.text == raw  # a quoted identifier in PostgreSQL
    assert catalog.lookup(raw, "sqlite") is sqlite
    assert catalog.lookup(raw, "postgresql") is postgresql
    assert catalog.cached_sql_count == 2


def test_oversize_statements_are_folded_without_being_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telemetry import fingerprint

    def never(sql: str, vendor: str | None = None) -> str:
        raise AssertionError("an oversize statement was scanned")

    monkeypatch.setattr(fingerprint, "normalize", never)
    catalog = StatementCatalog()
    rows = ", ".join(["(%s, %s, 'secret')"] * 10_000)
    bulk = f'  INSERT INTO "shop_order" ("a", "b", "c") VALUES {rows}'
    assert len(bulk) > fingerprint.MAX_SQL_LENGTH
    statement = catalog.lookup(bulk, "postgresql")
    assert statement == Statement("oversize", "INSERT", "INSERT", "INSERT", repeatable=False)
    assert catalog.lookup("/* x */ SELECT " + "1, " * 30_000, "sqlite").operation == "OTHER"
    assert catalog.lookup(bulk.encode(), "postgresql") is statement  # type: ignore[arg-type]
    # Neither counted against the fingerprint cap, nor exported as statement info, nor cached.
    assert catalog.statements() == []
    assert catalog.cached_sql_count == 0


def test_raw_sql_cache_holds_at_most_its_byte_budget() -> None:
    import tracemalloc

    from telemetry.fingerprint import MAX_CACHED_SQL_BYTES

    catalog = StatementCatalog()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1_500):  # 1,500 distinct statements of 20 KB: 30 MB of raw SQL
            catalog.lookup(f"SELECT {n} /* {'x' * 20_000} */ FROM t")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= MAX_CACHED_SQL_BYTES * 1.1
    assert catalog.lookup("SELECT 2 /* y */ FROM t").text == "SELECT ? FROM t"


def test_byte_budget_and_entry_count_clear_the_cache_but_keep_fingerprints() -> None:
    catalog = StatementCatalog(max_cached_bytes=100_000)
    first = catalog.lookup("SELECT 1 FROM a")
    for n in range(50):
        catalog.lookup(f"SELECT {n} /* {'x' * 10_000} */ FROM a")
        assert catalog.cached_sql_bytes <= 100_000
    assert catalog.cached_sql_count < 50
    assert catalog.lookup("SELECT 1 FROM a") is first
    assert catalog.statements() == [first]


@pytest.mark.parametrize(
    "raw",
    [
        "BEGIN",
        "BEGIN IMMEDIATE",
        "START TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK",
        'SAVEPOINT "s140_x1"',
        'RELEASE SAVEPOINT "s140_x1"',
        'ROLLBACK TO SAVEPOINT "s140_x1"',
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "XA START 'x'",
    ],
)
def test_transaction_control_is_not_repeatable(raw: str) -> None:
    statement = StatementCatalog().lookup(raw, "postgresql")
    assert statement.fingerprint != "other"
    assert not statement.repeatable


@pytest.mark.parametrize(
    "raw",
    [
        'SELECT "t"."a" FROM "t" WHERE "t"."id" = %s',
        "BEGIN dbms_output.put_line(:arg0); END;",  # a PL/SQL block, not a transaction
        "UPDATE t SET began = 1",
    ],
)
def test_other_statements_are_repeatable(raw: str) -> None:
    assert StatementCatalog().lookup(raw, "oracle").repeatable


def test_overflow_statements_are_not_repeatable() -> None:
    catalog = StatementCatalog(max_fingerprints=1)
    catalog.lookup("SELECT 1 FROM a")
    assert catalog.lookup("SELECT 1 FROM b") is OVERFLOW
    assert catalog.lookup(object()) is OVERFLOW  # type: ignore[arg-type]
    assert not OVERFLOW.repeatable


def test_text_and_summary_are_capped_in_utf8_bytes_between_characters() -> None:
    catalog = StatementCatalog()  # MAX_STATEMENT_LENGTH's default: 2,048
    table = "tàblé_€_" * 200  # 2,400 characters, 3,800 bytes
    statement = catalog.lookup(f'SELECT "{table}"."id" FROM "{table}" WHERE "id" = 1', "sqlite")
    text, summary = statement.text.encode(), statement.summary.encode()
    assert 2_040 < len(text) <= 2_048
    assert len(summary) <= 255
    assert statement.text.endswith("…") and statement.summary.endswith("…")
    assert statement.text.startswith('SELECT "tàblé_€_')
    assert statement.summary.startswith("SELECT tàblé_€_")
    # Never cut inside a character: the bytes decode back to the same text.
    assert (text.decode(), summary.decode()) == (statement.text, statement.summary)


def test_lone_surrogates_never_reach_an_exported_label() -> None:
    statement = StatementCatalog().lookup('SELECT "a\ud800" FROM "t\udfff"', "postgresql")
    assert statement.text == 'SELECT "a?" FROM "t?"'  # UTF-8 can carry it
    assert statement.summary == "SELECT t?"
