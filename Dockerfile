# One image for every role: the API (`mixedfit serve --no-worker`), workers (`mixedfit
# worker`) and the one-shot migration (`mixedfit migrate`). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip install . \
    && useradd --create-home --uid 10001 mixedfit

USER mixedfit
EXPOSE 8000
CMD ["mixedfit", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
