# gaitpose edge service: ONNX Runtime inference + FastAPI, no torch.
# Multi-stage: the virtual environment is built and trimmed in `builder` (same base image, so the
# same Python path), then copied whole into a clean runtime. Trimming keeps every feature: debug
# symbols stripped from the bundled native libraries (each checked to still load, see
# scripts/trim_venv.py), the packages' own test suites, pip and setuptools removed, and matplotlib
# with its own dependencies (only training plots use it; the report's charts are drawn with Pillow,
# and training needs torch, which this image does not have) (bytecode is kept: the service runs as a user who cannot write it, and every
# analysis worker process would otherwise compile its imports again). Every dependency ships
# aarch64 wheels (onnxruntime, opencv-python-headless, av, numpy, scipy), so the same file builds
# on arm64 boxes.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# binutils for `strip`; only in this stage (not pinned: any version strips, and the base image decides the suite)
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends binutils && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --upgrade "pip>=24" "setuptools>=68" wheel
COPY pyproject.toml README.md ./
COPY gaitpose ./gaitpose
COPY service ./service
COPY scripts/trim_venv.py ./scripts/
# serve extra + rosbags (pure Python) so RealSense .bag depth uploads can be read
RUN /opt/build/bin/pip wheel --wheel-dir /wheels ".[serve]" "rosbags>=0.9"
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links=/wheels "gaitpose[serve]" rosbags \
    && /opt/venv/bin/pip uninstall -y matplotlib fonttools kiwisolver contourpy cycler pyparsing \
    && /opt/venv/bin/pip uninstall -y pip setuptools \
    && python3 scripts/trim_venv.py /opt/venv \
    && /opt/venv/bin/python -c "import service.app, onnxruntime, cv2, av, scipy.signal, scipy.interpolate, rosbags.highlevel; import gaitpose.analyze, gaitpose.report.plots, gaitpose.gait.analysis" \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gaitpose-serve" \
      org.opencontainers.image.description="Gait keypoints and metrics from walk videos (ONNX Runtime, no torch)" \
      org.opencontainers.image.licenses="BSD-3-Clause"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    GAITPOSE_MODEL_DIR=/app/models GAITPOSE_DATA_DIR=/data GAITPOSE_HOST=0.0.0.0 GAITPOSE_PORT=8000 \
    GAITPOSE_WORKERS=1 OMP_NUM_THREADS=1
COPY --from=builder /opt/venv /opt/venv
RUN /opt/venv/bin/python -c "import service.app, onnxruntime, cv2, av" \
    && groupadd --system --gid 10001 gaitpose \
    && useradd --system --uid 10001 --gid gaitpose --home-dir /app --no-create-home gaitpose \
    && mkdir -p /app /data && chown gaitpose:gaitpose /data
WORKDIR /app
COPY --chown=root:root models/ /app/models/
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GAITPOSE_PORT', '8000'), timeout=4)"]
# Binding 0.0.0.0 needs GAITPOSE_API_KEYS (or an explicit --insecure-no-auth): the CLI refuses otherwise.
ENTRYPOINT ["gaitpose-serve"]
CMD ["--host", "0.0.0.0"]
