# siamese-edge runtime for x86-64 servers and CI: CPU ONNX Runtime, no torch.
#
#   docker build -t siamese-edge:cpu .
#   docker run --rm -v "$PWD/models:/models:ro" -v se-data:/data siamese-edge:cpu \
#       verify --model /models/fashion-mnist.onnx --gallery /data/gallery.sqlite /data/probe.png
#
# Docs: docker/README.md
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    SIAMESE_EDGE_CACHE=/cache \
    SIAMESE_EDGE_ENGINES=/engines \
    SIAMESE_EDGE_GALLERY=/data/gallery.sqlite

WORKDIR /opt/siamese-edge
COPY pyproject.toml README.md ./
COPY siamese_edge ./siamese_edge
COPY export ./export
# The runtime install only: numpy, onnxruntime (CPU), opencv-python-headless, click.
# No [train] extra, so no torch.
RUN python -m pip install --no-cache-dir . \
    && python -c "import onnxruntime, cv2, importlib.util as u; assert u.find_spec('torch') is None; print(onnxruntime.get_available_providers())"

# COPY then chmod, not COPY --chmod: that needs BuildKit, which older Docker engines
# (as on some JetPack hosts) do not use by default
COPY docker/entrypoint.sh /usr/local/bin/siamese-edge-entrypoint
RUN chmod 0755 /usr/local/bin/siamese-edge-entrypoint
RUN useradd --create-home --uid 1000 edge \
    && mkdir -p /engines /cache /data && chown edge:edge /engines /cache /data
USER 1000

VOLUME ["/engines", "/cache", "/data"]
ENTRYPOINT ["/usr/local/bin/siamese-edge-entrypoint"]
CMD ["doctor"]
