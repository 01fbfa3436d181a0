"""Crash safety, concurrency and a property-based model of the gallery."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.gallery import Gallery

INFO = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=8, threshold=0.5,
                 fingerprint="sha256:" + "c" * 64, name="rel")

# Enrols identity i with 50 templates all equal to e_(i mod 8) + i/1000, forever, pausing
# 10 ms between enrolments as a real enroller does while it embeds the next images. (Two
# writers committing back to back get no fairness from SQLite's busy handler: on a loaded
# 2-core machine one of them can be locked out for seconds.)
ENROLLER = """
import sys, time, numpy as np
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.gallery import Gallery
info = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=8, threshold=0.5,
                 fingerprint="sha256:" + "c" * 64, name="rel")
prefix, start = sys.argv[1], int(sys.argv[3])
with Gallery.open(sys.argv[2], info) as g:
    print("ready", flush=True)
    i = start
    while True:
        v = np.full((50, 8), i / 1000.0, np.float32); v[:, i % 8] += 1
        g.enroll(f"{prefix}{i}", v, sources=[f"{prefix}{i}.png"] * 50)
        i += 1
        time.sleep(0.01)
"""


def spawn(*args):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-c", ENROLLER, *map(str, args)],
                            stdout=subprocess.PIPE, env=env)


def check_intact(path):
    with Gallery.open(path, INFO, create=False) as g:
        counts = g.counts()
        assert set(counts.values()) <= {50}, counts  # no partial enrolment visible
        for name in counts:
            i = int(name.lstrip("abcdefghijklmnopqrstuvwxyz"))
            expected = np.full(8, i / 1000.0, np.float32)
            expected[i % 8] += 1
            expected /= np.linalg.norm(expected)
            ids = [t.id for t in g.templates(name)]
            np.testing.assert_allclose(g.embeddings(ids), np.tile(expected, (50, 1)),
                                       rtol=1e-6)
        return counts


def test_kill_9_during_enrolment_never_loses_or_tears_data(tmp_path):
    path = tmp_path / "g.sqlite"
    rng = np.random.default_rng(0)
    committed = 0
    for round_ in range(10):
        process = spawn("p", path, 1000 * round_)
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.2)))
        process.send_signal(signal.SIGKILL)
        process.wait()
        counts = check_intact(path)
        assert len(counts) >= committed  # every earlier commit survived
        committed = len(counts)
    assert committed > 0


def test_two_enrollers_and_four_verifiers_at_once(tmp_path):
    path = tmp_path / "g.sqlite"
    Gallery.open(path, INFO).close()
    enrollers = [spawn(prefix, path, 0) for prefix in ("a", "b")]
    for process in enrollers:
        assert process.stdout.readline().strip() == b"ready"
    verifier_code = (
        "import sys, time, numpy as np\n"
        "from siamese_edge.runtime.gallery import Gallery\n"
        "from siamese_edge.runtime.matching import MaxScore\n"
        "g = Gallery.open(sys.argv[1], None, create=False, read_only=True)\n"
        "end = time.time() + 2.5; n = 0\n"
        "while time.time() < end:\n"
        "    index = g.index()\n"
        "    if len(index): MaxScore().rank(index, np.ones((2, 8), np.float32), 3)\n"
        "    assert len(index) % 50 == 0, len(index)\n"
        "    n += 1\n"
        "print(n)\n")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    verifiers = [subprocess.Popen([sys.executable, "-c", verifier_code, str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                 for _ in range(4)]
    outputs = [v.communicate(timeout=60) for v in verifiers]
    for process in enrollers:
        process.terminate()
        process.wait()
    assert all(v.returncode == 0 for v in verifiers), [o[1].decode()[-500:] for o in outputs]
    assert all(int(o[0]) > 0 for o in outputs)
    counts = check_intact(path)
    for prefix in "ab":  # every id up to the last committed one is there: no lost write
        ids = sorted(int(n[1:]) for n in counts if n.startswith(prefix))
        assert ids == list(range(len(ids))) and ids


# Waits until the UNIX time argv[3], then creates-or-opens the gallery argv[1] and enrols
# argv[2] into it: many of these at once race to create the same new gallery.
RACER = """
import sys, time, numpy as np
from siamese_edge.errors import SiameseEdgeError
from siamese_edge.model_info import ModelInfo, Preprocessing
from siamese_edge.runtime.gallery import Gallery
info = ModelInfo(Preprocessing(8, 8, 1, (0.5,), (0.5,)), embedding_dim=8, threshold=0.5,
                 fingerprint="sha256:" + "c" * 64, name="rel")
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
try:
    with Gallery.open(sys.argv[1], info) as g:
        g.enroll(sys.argv[2], np.ones((1, 8)))
    print("ok")
except SiameseEdgeError as exc:
    print(exc)
"""


def test_processes_racing_to_create_one_gallery_all_enrol(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for trial in range(3):
        path = tmp_path / f"race{trial}.sqlite"
        start = time.time() + 2  # after every racer has imported numpy
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(path), f"p{i}",
                                    str(start)], stdout=subprocess.PIPE, env=env)
                  for i in range(8)]
        outcomes = [r.communicate(timeout=60)[0].decode().strip() for r in racers]
        assert outcomes == ["ok"] * 8
        with Gallery.open(path, INFO, create=False) as g:
            assert g.counts() == {f"p{i}": 1 for i in range(8)}


names = st.sampled_from(["ann", "bob", "cat", "dan"])
vectors = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=8, max_size=8) \
    .filter(lambda v: np.linalg.norm(v) > 0.1)
operations = st.lists(st.one_of(
    st.tuples(st.just("enroll"), names, st.lists(vectors, min_size=1, max_size=3)),
    st.tuples(st.just("remove"), names, st.just(None)),
    st.tuples(st.just("remove_template"), st.integers(0, 20), st.just(None)),
    st.tuples(st.just("search"), vectors, st.just(None))), max_size=25)


@settings(max_examples=25, deadline=None)
@given(operations)
def test_gallery_behaves_like_a_dict_of_templates(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("prop") / "g.sqlite"
    model: dict[int, tuple[str, np.ndarray]] = {}
    with Gallery.open(path, INFO) as g:
        for op, arg, extra in ops:
            if op == "enroll":
                v = np.asarray(extra, np.float32)
                for template_id, row in zip(g.enroll(arg, v), v):
                    model[template_id] = (arg, row / np.linalg.norm(row))
            elif op == "remove":
                if arg in {n for n, _ in model.values()}:
                    g.remove(arg)
                    model = {i: t for i, t in model.items() if t[0] != arg}
            elif op == "remove_template":
                if model:
                    template_id = sorted(model)[arg % len(model)]
                    g.remove_template(template_id)
                    del model[template_id]
            else:
                query = np.asarray(arg, np.float32)
                query /= np.linalg.norm(query)
                best: dict[str, float] = {}
                for name, row in model.values():
                    best[name] = max(best.get(name, -2.0), float(row @ query))
                ranked = MaxScoreRank(g, query)
                assert [n for n, _ in ranked] == sorted(best, key=lambda n: (-best[n], n)) \
                    or np.allclose([s for _, s in ranked],
                                   sorted(best.values(), reverse=True), atol=1e-5)
            assert sorted(g.index().ids.tolist()) == sorted(model)


def MaxScoreRank(g, query):
    from siamese_edge.runtime.matching import MaxScore

    names = g.label_names()
    return [(names[label], s) for label, s in MaxScore().rank(g.index(), query[None], 10)[0]]
