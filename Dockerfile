# CPU image that serves one trained movierec artifact (the API and the web page), as a non-root
# user, with no data folder: the artifact carries its movie table (catalogue.parquet).
#
#   docker build -t movierec .                              # iALS / EASE / ItemKNN artifacts
#   docker build -t movierec:torch --build-arg EXTRAS=torch .   # also GMF / MLP / NeuMF
#   docker run --rm -p 8000:8000 -v "$PWD/artifacts/quickstart:/artifact:ro" movierec
#   docker run --rm movierec --help                         # any other movierec command
#
# An artifact without catalogue.parquet needs its data too:
#   -v /path/to/data:/data:ro -e MOVIEREC_DATA=/data
# TMDB posters: -e TMDB_API_KEY=... (read by the server only; poster cache in /cache).
#
# Build arguments:
#   BASE             any image with Python >= 3.11 and its venv module (python:3.11-slim, or
#                    Debian bookworm with python3 + python3-venv: scripts/build_local_base.sh)
#   EXTRAS=torch     add CPU-only torch (about 880 MB more) to serve neural (NCF) artifacts
#   TORCH_INDEX_URL  where CPU torch comes from (default: PyTorch's CPU wheel index)
#
# Offline (or through a mirror) with podman: mount a wheel folder and a pip.conf saying where to
# look, e.g. `[global]` `no-index = true` `find-links = /wheels`:
#   podman build -v "$PWD/wheels:/wheels:ro" -v "$PWD/pip.conf:/etc/pip.conf:ro" ...
# (tests/serving/test_docker.py builds this way, with the wheels `pip download`ed on the host).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/movierec/bin:$PATH \
    MOVIEREC_CACHE=/cache

RUN python3 -m venv /opt/movierec \
    && useradd --create-home --uid 10001 movierec \
    && mkdir -p /cache /opt/movierec-build \
    && chown movierec /cache

# Dependencies first, from pyproject.toml alone, so editing src/ rebuilds only the last layer.
COPY pyproject.toml scripts/image_requirements.py /opt/movierec-build/
ARG EXTRAS=
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN set -e; cd /opt/movierec-build; \
    case "$EXTRAS" in \
      "") ;; \
      torch) python3 image_requirements.py --torch > torch.txt; \
             pip install --index-url "$TORCH_INDEX_URL" -r torch.txt ;; \
      *) echo "error: unknown EXTRAS=$EXTRAS (known: torch, or empty)" >&2; exit 1 ;; \
    esac; \
    python3 image_requirements.py > requirements.txt; \
    pip install -r requirements.txt

COPY README.md /opt/movierec-build/
COPY src /opt/movierec-build/src
RUN pip install --no-deps /opt/movierec-build && rm -rf /opt/movierec-build
COPY scripts/docker_entrypoint.py /opt/movierec/entrypoint.py

USER movierec
WORKDIR /home/movierec
EXPOSE 8000
# Used by Docker (podman keeps it only with `--format docker`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python3 -c "import urllib.request as r; r.urlopen('http://127.0.0.1:8000/health', timeout=4)"

# `docker run IMAGE ARGS...` runs `movierec ARGS...`, e.g.
# `serve --artifact /artifact --host 0.0.0.0 --access-log`.
ENTRYPOINT ["python3", "/opt/movierec/entrypoint.py"]
CMD ["serve", "--artifact", "/artifact", "--host", "0.0.0.0", "--port", "8000"]
