#!/bin/sh
# Entry point of the siamese-edge images (Dockerfile, Dockerfile.jetson).
#
# At start, when SIAMESE_EDGE_MODEL names an ONNX model and TensorRT is importable, make sure
# a fresh engine for it is in $SIAMESE_EDGE_ENGINES (a mounted volume): build it with
# `siamese-edge engine` if it is missing or stale (another model, TensorRT version or GPU --
# the engine's sidecar JSON says which). An engine only loads on the TensorRT and GPU that
# built it, so it is built here, on the device, once, and reused by later starts.
#
# Then run `siamese-edge ARGS...` (or ARGS itself when it is another program, e.g. bash).
#
# Environment:
#   SIAMESE_EDGE_MODEL       ONNX model (e.g. /models/fashion-mnist.onnx); unset: no engine step
#   SIAMESE_EDGE_ENGINES     engine cache folder            [/engines]
#   SIAMESE_EDGE_TARGET      a target profile (export/*.json, e.g. jetson-orin-nano-fp16):
#                            its batch profile, workspace and precision   [none]
#   SIAMESE_EDGE_PRECISION   fp32 | fp16 | int8             [the target's, else fp16]
#   SIAMESE_EDGE_CALIB       int8 only: a folder of calibration images like the deployment's
#                            (mount it; 500 or so are plenty)
#   SIAMESE_EDGE_BUILD_ENGINE  0 to skip the engine step    [1]
set -eu

ENGINES="${SIAMESE_EDGE_ENGINES:-/engines}"
TARGET="${SIAMESE_EDGE_TARGET:-}"
PRECISION="${SIAMESE_EDGE_PRECISION:-}"
MODEL="${SIAMESE_EDGE_MODEL:-}"
CALIB="${SIAMESE_EDGE_CALIB:-}"

engine_reasons() {
    # Prints why "$2" is not a fresh engine of model "$1" (nothing when fresh).
    python3 - "$1" "$2" <<'PY' 2>/dev/null || echo "freshness check failed"
import sys
from pathlib import Path
model, engine = sys.argv[1], Path(sys.argv[2])
if not engine.is_file():
    print("no engine yet"); raise SystemExit
from siamese_edge.runtime.model_file import read_model_info
from siamese_edge.tensorrt.sidecar import check_engine_fresh, current_runtime_facts
print("; ".join(check_engine_fresh(engine, read_model_info(model), current_runtime_facts())))
PY
}

if [ -n "$MODEL" ] && [ "${SIAMESE_EDGE_BUILD_ENGINE:-1}" != "0" ]; then
    if [ ! -f "$MODEL" ]; then
        echo "siamese-edge: SIAMESE_EDGE_MODEL=$MODEL does not exist (mount it)" >&2
        exit 2
    fi
    target_args=""
    if [ -n "$TARGET" ]; then
        case "$TARGET" in
            *[!A-Za-z0-9._-]*)
                echo "siamese-edge: SIAMESE_EDGE_TARGET=$TARGET is not a target name" >&2
                exit 2 ;;
        esac
        if [ -z "$PRECISION" ]; then
            # the profile's error names the known targets
            PRECISION="$(python3 -c 'import sys
from siamese_edge.tensorrt.targets import load_target
try:
    print(load_target(sys.argv[1]).precision)
except Exception as exc:
    sys.exit(f"siamese-edge: SIAMESE_EDGE_TARGET={sys.argv[1]}: {exc}")' "$TARGET")" \
                || exit 2
        fi
        target_args="--target $TARGET"
    fi
    PRECISION="${PRECISION:-fp16}"
    case "$PRECISION" in
        fp32|fp16) ;;
        int8)
            if [ -z "$CALIB" ] || [ ! -d "$CALIB" ]; then
                echo "siamese-edge: SIAMESE_EDGE_PRECISION=int8 needs SIAMESE_EDGE_CALIB," \
                     "a mounted folder of calibration images (got '$CALIB')" >&2
                exit 2
            fi ;;
        *)
            echo "siamese-edge: SIAMESE_EDGE_PRECISION=$PRECISION: use fp32, fp16 or int8" >&2
            exit 2 ;;
    esac
    if python3 -c "import tensorrt" 2>/dev/null; then
        mkdir -p "$ENGINES"
        name="$(basename "$MODEL" .onnx)"
        ENGINE="$ENGINES/$name.${TARGET:+$TARGET.}$PRECISION.engine"
        reasons="$(engine_reasons "$MODEL" "$ENGINE")"
        if [ -n "$reasons" ]; then
            echo "siamese-edge: building $ENGINE ($reasons); first start takes minutes" >&2
            # $target_args unquoted: empty, or --target and a name checked above
            if [ "$PRECISION" = int8 ]; then
                siamese-edge engine "$MODEL" --out "$ENGINE" --precision int8 --calib "$CALIB" \
                    $target_args
            else
                siamese-edge engine "$MODEL" --out "$ENGINE" --precision "$PRECISION" \
                    $target_args
            fi
        fi
        export SIAMESE_EDGE_ENGINE="$ENGINE"
    else
        echo "siamese-edge: TensorRT not importable; ONNX Runtime will run $MODEL" >&2
    fi
fi

case "${1:-doctor}" in
    -*|train|export|enroll|gallery|verify|compare|embed|evaluate|engine|doctor|bench)
        exec siamese-edge "$@" ;;
    *)
        exec "$@" ;;
esac
