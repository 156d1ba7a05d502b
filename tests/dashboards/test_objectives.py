"""SLO rules from the SLO file: valid for promtool, and the burn-rate alerts fire when (and only
when) the Google SRE workbook says they should, checked with `promtool test rules` on
synthetic series."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fleetscope.dashboards.build import GENERATED_DIR
from fleetscope.dashboards.cli import app
from fleetscope.dashboards.objectives import (
    ALERT_NAME,
    BURN_ALERTS,
    SLO_RULES_FILE_NAME,
    ObjectivesError,
    le_pattern,
    load_objectives,
    parse_objectives,
    render_slo_rules,
    slo_rule_groups,
)
from tests.dashboards.conftest import promtool

RULES = GENERATED_DIR / SLO_RULES_FILE_NAME
COUNT = "http_server_request_duration_seconds_count"
BUCKET = "http_server_request_duration_seconds_bucket"
PER_MINUTE = 1000  # requests of a busy service


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=300)


def _bare_rules(tmp_path: Path, text: str = "") -> Path:
    """The SLO rules without annotations, so the tests can focus on when alerts fire."""
    groups = yaml.safe_load(text or RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path / "slo-rules.yml"
    path.write_text(yaml.safe_dump(groups, width=100_000))
    return path


def _service(
    job: str, per_minute: int, errors: str, slow: str = "", le: str = "1"
) -> list[dict[str, str]]:
    """A service's request counters, one sample a minute: `errors`/`slow` are promtool
    expanding notations of the cumulative 5xx and slower-than-1s counts."""
    ok = f'job="{job}",http_route="/r/",http_response_status_code'
    slow = slow or "0+0x600"
    return [
        {"series": f'{COUNT}{{{ok}="200"}}', "values": f"0+{per_minute}x600"},
        {"series": f'{COUNT}{{{ok}="503"}}', "values": errors},
        # Every successful request under 1 s except `slow`; 503s are fast too.
        {"series": f'{BUCKET}{{{ok}="200",le="{le}"}}', "values": f"0+{per_minute}x600"},
        {"series": f'{BUCKET}{{{ok}="503",le="{le}"}}', "values": errors},
        {"series": f'{COUNT}{{{ok}="201"}}', "values": slow},
    ]


def _alerts(at: str, *expected: tuple[str, str, str]) -> dict[str, Any]:
    """The burn alerts firing at `at`: (job, slo, long window) each."""
    by_long = {alert.long: alert for alert in BURN_ALERTS}
    return {
        "eval_time": at,
        "alertname": ALERT_NAME,
        "exp_alerts": [
            {
                "exp_labels": {
                    "job": job,
                    "slo": slo,
                    "severity": by_long[long].severity,
                    "long": long,
                    "short": by_long[long].short,
                }
            }
            for job, slo, long in expected
        ],
    }


def _run(tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    spec = {
        "rule_files": [str(_bare_rules(tmp_path))],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    path = tmp_path / "slo-test.yml"
    path.write_text(yaml.safe_dump(spec, width=100_000))
    done = _promtool("test", "rules", str(path))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


# -- the rule file ------------------------------------------------------------------------


def test_promtool_accepts_the_slo_rule_file() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_slo_rule_file_is_the_committed_one() -> None:
    assert RULES.read_text() == render_slo_rules()


def test_burn_rate_factors_follow_the_sre_workbook_for_30_days() -> None:
    assert [(a.long, a.short, a.factor("30d")) for a in BURN_ALERTS] == [
        ("1h", "5m", 14.4),
        ("6h", "30m", 6),
        ("3d", "6h", 1),
    ]
    # Another period scales them: 2 % of a 28-day budget in one hour is 13.44x.
    assert BURN_ALERTS[0].factor("28d") == pytest.approx(13.44)


# -- when the alerts fire ---------------------------------------------------------------------


def test_fast_burn_pages_within_its_window_and_one_x_never_does(tmp_path: Path) -> None:
    # shop: no errors for 2 h, then 1.5 % of requests fail (15x a 99.9 % budget): the 1 h
    # window crosses 14.4x after ~58 minutes. steady: 0.1 % fail all along, exactly on budget.
    # storm: every request fails from 2 h on and pages within minutes.
    series = [
        *_service("shop", PER_MINUTE, f"0+0x120 0+{PER_MINUTE * 15 // 1000}x480"),
        *_service("steady", PER_MINUTE, f"0+{PER_MINUTE // 1000}x600"),
        *_service("storm", PER_MINUTE, f"0+0x120 0+{PER_MINUTE}x480"),
    ]
    _run(
        tmp_path,
        series,
        [
            _alerts("1h50m"),
            _alerts("2h10m", ("storm", "availability", "1h")),
            _alerts("2h50m", ("storm", "availability", "1h"), ("storm", "availability", "6h")),
            _alerts(
                "3h05m",
                ("shop", "availability", "1h"),
                ("storm", "availability", "1h"),
                ("storm", "availability", "6h"),
                ("storm", "availability", "3d"),
            ),
            # By 4 h shop and storm have burnt long enough for every window; steady, at 1x
            # (its budget spent exactly over the period), is in none of them.
            _alerts(
                "4h",
                *[(job, "availability", a.long) for job in ("shop", "storm") for a in BURN_ALERTS],
            ),
        ],
    )


def test_quiet_services_do_not_page_however_bad_their_ratio(tmp_path: Path) -> None:
    # Half of the requests fail on both; quiet serves 2 a minute (0.03/s, under the 0.1/s
    # guard), busy 1000.
    series = [
        *_service("busy", PER_MINUTE, f"0+{PER_MINUTE // 2}x600"),
        *_service("quiet", 2, "0+1x600"),
    ]
    _run(
        tmp_path,
        series,
        [_alerts("30m", ("busy", "availability", "1h"), ("busy", "availability", "6h"))],
    )


def test_latency_objective_burns_on_slow_requests(tmp_path: Path) -> None:
    # 5 % of shop's requests take more than 1 s (5x the 99 % latency budget) from minute 0.
    # The bucket is spelt "1.0", as the collector's exporter and Prometheus 3 write it.
    series = _service("shop", PER_MINUTE, "0+0x600", slow=f"0+{PER_MINUTE * 5 // 95}x600", le="1.0")
    _run(
        tmp_path,
        series,
        [
            _alerts("20m"),  # 5x is under both page thresholds
            _alerts("2h", ("shop", "latency", "3d")),  # ... but over 1x for a ticket
        ],
    )


# -- the SLO file ---------------------------------------------------------------------------


def test_default_slo_file_covers_every_service() -> None:
    objectives = load_objectives()
    assert objectives.period == "30d"
    [objective] = objectives.objectives
    assert objective.service is None and objective.route is None
    assert [(s.kind, s.target, s.threshold) for s in objective.slis] == [
        ("availability", 0.999, None),
        ("latency", 0.99, 1.0),
    ]


def test_a_service_objective_takes_its_service_out_of_the_general_one() -> None:
    objectives = parse_objectives(
        {
            "objectives": [
                {"availability": 99.9},
                {"service": "shop.api", "availability": 99.99},
                {"service": "cart", "route": "/checkout/", "availability": 99.95},
            ]
        }
    )
    general, shop, cart = objectives.objectives
    assert general.selector("x") == 'x{job!~"shop\\\\.api"}'
    assert shop.selector("x") == 'x{job="shop.api"}'
    assert cart.selector("x") == 'x{job="cart", http_route="/checkout/"}'
    assert cart.grouping == ("job", "http_route")
    records = {r.get("record") for g in slo_rule_groups(objectives)["groups"] for r in g["rules"]}
    assert "fleetscope:slo_burn_rate:1h" in records


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"objectives": []}, "non-empty list"),
        ({"objectives": [{"service": "shop"}]}, "give an availability and/or a latency"),
        ({"objectives": [{"availability": 100}]}, "percentage between 0 and 100"),
        ({"objectives": [{"availability": "99.9"}]}, "percentage between 0 and 100"),
        (
            {"objectives": [{"latency": {"threshold": 0.3, "target": 99}}]},
            "0.3 s is not a bucket bound of http_server_request_duration_seconds; use one of",
        ),
        ({"objectives": [{"latency": {"threshold": 1}}]}, "latency must be {threshold"),
        ({"objectives": [{"availability": 99, "colour": "red"}]}, "unknown key(s) colour"),
        ({"period": "2d", "objectives": [{"availability": 99}]}, "shorter than the 3d"),
        ({"period": "a month", "objectives": [{"availability": 99}]}, "not a duration"),
        (
            {
                "objectives": [
                    {"service": "a", "availability": 99},
                    {"service": "a", "availability": 9},
                ]
            },
            "two objectives for a; merge them",
        ),
    ],
)
def test_mistakes_in_the_slo_file_are_named(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ObjectivesError, match=_literal(message)):
        parse_objectives(raw, "slo.yaml")


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_bucket_matchers_accept_prometheus_2_and_3_spellings() -> None:
    import re

    for bound, spellings in ((1.0, ("1", "1.0")), (0.5, ("0.5",)), (10.0, ("10", "10.0"))):
        pattern = re.compile(le_pattern(bound))
        assert all(pattern.fullmatch(s) for s in spellings), bound
    assert not re.fullmatch(le_pattern(1.0), "1.5")


def test_build_with_an_slo_file_writes_its_rules(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives:\n  - service: shop\n    route: /cart/\n    availability: 99.5\n")
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "out"), "--slo", str(slo)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / SLO_RULES_FILE_NAME).read_text()
    assert 'job="shop", http_route="/cart/"' in text
    assert text == render_slo_rules(load_objectives(slo))


def test_build_names_a_broken_slo_file_in_one_line(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives:\n  - availability: 120\n")
    result = CliRunner().invoke(app, ["build", "--out", str(tmp_path / "out"), "--slo", str(slo)])
    assert result.exit_code == 2
    assert "objectives[0]: availability must be a percentage" in result.output
    assert "Traceback" not in result.output
