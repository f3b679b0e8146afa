# One image for the five Hotline services; docker-compose picks the subcommand
# (`command: ["intake"]`, ...). Health checks are defined in docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A container's loopback is its own: listen on its interface, and let the host
# (compose's `ports:`) decide what is published where.
ENV HOTLINE_HTTP_HOST=0.0.0.0

WORKDIR /build

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; \
print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY shared/ shared/
COPY services/ services/
RUN pip install --no-cache-dir . \
    && cd / && rm -rf /build

RUN groupadd --system --gid 10001 hotline \
    && useradd --system --uid 10001 --gid hotline --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin hotline

WORKDIR /app
USER 10001:10001

EXPOSE 8001 8002 8003 8004 8005
ENTRYPOINT ["hotline"]
