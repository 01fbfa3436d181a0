"""Run while building Dockerfile.jetson: fail the build unless the image is what it claims,
the distribution's cv2 with GStreamer, ONNX Runtime's GPU build only, and no torch.

A file, not a RUN heredoc: heredocs (like COPY --chmod) need BuildKit, which older Docker
engines, as on some JetPack hosts, do not use by default.
"""

import importlib.metadata as md
import importlib.util

import cv2
import onnxruntime

info = cv2.getBuildInformation()
assert any(line.strip().startswith("GStreamer:") and "YES" in line
           for line in info.splitlines()), "cv2 without GStreamer: " + cv2.__file__
assert "dist-packages" in cv2.__file__ and "/usr/" in cv2.__file__, cv2.__file__
for name in ("onnxruntime", "opencv-python", "opencv-python-headless", "torch"):
    try:
        md.version(name)
    except md.PackageNotFoundError:
        continue
    raise SystemExit(f"{name} must not be installed in the Jetson image")
md.version("onnxruntime-gpu")
assert "CUDAExecutionProvider" in onnxruntime.get_available_providers(), \
    onnxruntime.get_available_providers()
assert importlib.util.find_spec("torch") is None
print("cv2", cv2.__version__, "with GStreamer; onnxruntime-gpu", onnxruntime.__version__)
