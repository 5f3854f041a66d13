# Paceline services image: the `paceline` command. The server services
# (docker-compose.yml) build it with the dashboard extra; the gateway image is
# built with INSTALL_EXTRAS="" so that a Raspberry Pi does not pull Streamlit,
# pandas and pyarrow.
FROM python:3.11-slim

ARG INSTALL_EXTRAS=dashboard

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PACELINE_DATA_DIR=/var/lib/paceline

WORKDIR /opt/paceline
COPY pyproject.toml constraints.txt README.md ./
COPY devices devices
COPY ingest ingest
COPY store store
COPY signal signal
COPY pacing pacing
COPY cli cli
COPY dashboard dashboard
# The versions the test suite last passed with (constraints.txt, `python3 dev.py lock`).
# (".[dashboard]", or "." when INSTALL_EXTRAS is empty: pip refuses ".[]".)
RUN pip install --no-cache-dir -c constraints.txt ".${INSTALL_EXTRAS:+[$INSTALL_EXTRAS]}" \
    && useradd --system --uid 10001 --home-dir /var/lib/paceline --create-home paceline

USER paceline
ENTRYPOINT ["paceline"]
CMD ["--help"]
