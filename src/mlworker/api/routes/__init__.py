"""Routers, one module per API family."""
