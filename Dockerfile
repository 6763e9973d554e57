# The engine's image for docker-compose: the `loyalty` CLI and its processes.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LOYALTY_LOG_FORMAT=json
WORKDIR /app
COPY pyproject.toml README.md ./
COPY loyalty ./loyalty
COPY processors ./processors
COPY projections ./projections
COPY schemas ./schemas
COPY scripts ./scripts
RUN pip install --no-cache-dir .
ENTRYPOINT ["loyalty"]
