# CPU image that serves one trained movierec artifact (the API and the web page).
#
#   docker build -t movierec .
#   docker run --rm -p 8000:8000 -v "$PWD/artifacts/quickstart:/artifact:ro" movierec
#
# The artifact folder must hold catalogue.parquet (`movierec quickstart` writes it, and so does
# the first `movierec serve --artifact DIR --data-dir DATA`); otherwise also mount the data:
#   -v /path/to/data:/data:ro -e MOVIEREC_DATA=/data
# TMDB posters: -e TMDB_API_KEY=... (read by the server only; poster cache in /cache).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MOVIEREC_CACHE=/cache

WORKDIR /app

# CPU-only torch first (NCF artifacts need it to score), so nothing pulls a CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0

COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[serve]" \
    && useradd --create-home --uid 10001 movierec \
    && mkdir -p /cache \
    && chown movierec /cache

USER movierec
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"

CMD ["movierec", "serve", "--artifact", "/artifact", "--host", "0.0.0.0", "--port", "8000"]
