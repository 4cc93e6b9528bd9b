"""Jobs: the queue, the worker and the fit runner."""
