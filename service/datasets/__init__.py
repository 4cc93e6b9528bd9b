"""Datasets: endpoints, service and repository."""
