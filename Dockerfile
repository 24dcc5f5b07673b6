FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# Static files into the image (WhiteNoise serves them); settings need some values to import, none is used.
RUN SECRET_KEY=collectstatic DATABASE_URL=postgresql://unused/unused REDIS_URL=redis://unused:6379/0 \
    python manage.py collectstatic --noinput --verbosity 0
RUN useradd --system --uid 10001 --home-dir /app app
USER app

# prometheus_client's multiprocess mode: gunicorn's workers write their metrics here, /metrics adds
# them up. It starts empty with each container start (files of an earlier run would count again).
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
EXPOSE 8000
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec gunicorn hybridsite.wsgi -c python:hybridsite.gunicorn_conf --bind 0.0.0.0:8000 --workers 2 --access-logfile -"]
