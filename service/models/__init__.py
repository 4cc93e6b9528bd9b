"""Models: endpoints, service and repository."""
