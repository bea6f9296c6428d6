# Leadbot in one container: `leadbot run`, over HTTP on PORT (Socket Mode when SLACK_APP_TOKEN is set),
# its SQLite database on the /data volume. README.md, "Running it in a container", has the docker run line.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# What `pip install .` needs, and nothing more; the sources go once installed.
COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY services /src/services
RUN pip install /src && rm -rf /src

# A user of its own, owning nothing but the database's directory.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin leadbot \
    && mkdir /data && chown leadbot:leadbot /data
USER leadbot
WORKDIR /data

# Leadbot listens on 127.0.0.1 unless told: in a container, every interface, for the published port.
ENV LEADBOT_DB=/data/leadbot.db \
    LEADBOT_HOST=0.0.0.0 \
    PORT=3000
VOLUME ["/data"]
EXPOSE 3000

# slim has no curl: Python's own urllib asks /healthz (a 503, store unavailable, fails it too).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["leadbot", "run"]
