# The indexer as a container image, for docker-compose.yml (PostgreSQL + `indexer db upgrade` + N x `indexer run`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY abis ./abis
RUN pip install .

# The ABIs are files of the source tree, not of the installed package: tell the indexer where they are.
ENV INDEXER_ABI_DIR=/app/abis

RUN useradd --create-home --uid 10001 indexer
USER indexer
WORKDIR /home/indexer

# `indexer serve` (the api service of docker-compose.yml) listens here.
EXPOSE 8000

CMD ["indexer", "--help"]
