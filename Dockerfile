# One image for the API and the worker:
#   docker run IMAGE serve --host 0.0.0.0 --no-worker      # API replicas
#   docker run IMAGE worker                                # scheduler + webhook relay
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install ".[postgres]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    REFUNDWATCH_ENVIRONMENT=production \
    REFUNDWATCH_DATABASE_URL=sqlite:////data/refundwatch.db
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home /data refundwatch && mkdir -p /data && chown refundwatch /data
USER refundwatch
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
ENTRYPOINT ["refundwatch"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
