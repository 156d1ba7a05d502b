"""`python -m fleetscope` runs the CLI."""

from fleetscope.cli import main

main()
