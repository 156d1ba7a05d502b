"""wrk's figures are read from the Lua done() hook, exactly and with errors counted."""

from __future__ import annotations

import pytest

from benchmarks import wrk

LINE = (
    'FLEETSCOPE_WRK {"requests": 2400, "duration_us": 2000000, "bytes": 1, '
    '"connect_errors": 0, "read_errors": 1, "write_errors": 0, "status_errors": 2, '
    '"timeouts": 0, "mean_us": 1500.5, "max_us": 9000, "p50_us": 1200, "p90_us": 2500, '
    '"p99_us": 4800}'
)


def test_parse_reads_the_done_hook_line_among_wrk_output() -> None:
    result = wrk.parse(f"Running 2s test @ http://127.0.0.1:1/\n{LINE}\nRequests/sec: 1200\n")
    assert result.requests == 2400
    assert result.rps == pytest.approx(1200.0)
    assert (result.p50_ms, result.p90_ms, result.p99_ms) == (1.2, 2.5, 4.8)
    assert result.errors == 3  # non-2xx/3xx answers and read failures both count


def test_parse_without_a_result_line_says_what_wrk_printed() -> None:
    with pytest.raises(wrk.WrkError, match="no result line"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_script_rotates_the_paths_given_as_arguments() -> None:
    # The warm-up hits every view in turn; a measurement passes a single path.
    assert "function init(args)" in wrk.SCRIPT
    assert "paths[next_path]" in wrk.SCRIPT
    assert wrk.MARKER in wrk.SCRIPT
