# Two images from one code base:
#   docker build --target api -t market-api .          (gunicorn; also the ingest/default worker)
#   docker build --target gpu-worker -t market-gpu .   (Celery on queue `quality`, QUALITY_DEVICE=cuda)
#
# The project is installed as a package (`pip install /src`, built by pyproject.toml and
# setup.py, which compiles the quality engine's C kernels); the source tree does not stay
# in the image. CI=true makes a failed kernel build fail the image build.

FROM python:3.11-slim AS api
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MARKET_PROFILE=production \
    DJANGO_SETTINGS_MODULE=marketplace.settings QUALITY_NATIVE=required
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
# The CPU build of torch: API nodes and CPU workers never touch a GPU.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt
COPY . /src
# The compiler leaves the image in the same layer.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && CI=true pip install --no-cache-dir --no-deps /src \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /src
RUN SECRET_KEY=build-only-collectstatic-key-000000000000000000000000 MARKET_PROFILE=dev \
    python -m django collectstatic --no-input
RUN useradd --create-home market && chown -R market /app
USER market
EXPOSE 8000
CMD ["gunicorn", "marketplace.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS gpu-worker
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MARKET_PROFILE=production QUALITY_DEVICE=cuda \
    DJANGO_SETTINGS_MODULE=marketplace.settings DEBIAN_FRONTEND=noninteractive QUALITY_NATIVE=required
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip libpq5 \
    && rm -rf /var/lib/apt/lists/* && python3 -m venv /venv
ENV PATH=/venv/bin:$PATH
COPY requirements.txt .
# Same pin as the API image; on this base pip resolves torch's CUDA build.
RUN pip install --no-cache-dir -r requirements.txt
COPY . /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && CI=true pip install --no-cache-dir --no-deps /src \
    && apt-get purge -y gcc libc6-dev python3-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /src
RUN useradd --create-home market && chown -R market /app
USER market
CMD ["celery", "-A", "workers", "worker", "-Q", "quality", "--concurrency", "1", "-l", "INFO"]
