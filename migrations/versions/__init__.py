"""Alembic revision scripts (a package so that a wheel installs them)."""
