"""demo_fleet package."""
