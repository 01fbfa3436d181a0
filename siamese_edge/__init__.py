"""siamese-edge: train, export and deploy Siamese verification models on edge hardware.

Importing the package imports nothing heavy: the runtime (``siamese_edge.runtime``) needs only
numpy, OpenCV and ONNX Runtime; training and export (``siamese_edge.training``,
``siamese_edge.exporting``) need the ``train`` extra (torch, onnx, onnxscript).
"""

__version__ = "0.1.0"
