"""The benchmark's Django app: a hello view and views doing 10 SQL queries (and 2 cache calls)."""
