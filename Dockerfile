# Paceline services image: the `paceline` command with all components.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PACELINE_DATA_DIR=/var/lib/paceline

WORKDIR /opt/paceline
COPY pyproject.toml README.md ./
COPY devices devices
COPY ingest ingest
COPY store store
COPY signal signal
COPY pacing pacing
COPY cli cli
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/paceline --create-home paceline

USER paceline
ENTRYPOINT ["paceline"]
CMD ["--help"]
