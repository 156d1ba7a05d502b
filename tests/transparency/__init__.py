"""The transparency job: Django's own test suites, with and without Fleetscope, compared per test.

Run it with `make test-transparency` (or `python -m tests.transparency`); docs/transparency.md
says what it proves and how. Only `test_*.py` here are pytest modules (the job's own unit
tests); the job itself is not collected by pytest.
"""
