"""The demo shop app: catalogue, orders and reviews built to exercise every Fleetscope signal."""
