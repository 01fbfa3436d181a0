"""Writing outputs whole or not at all, through a temporary file nobody could have planted."""

from __future__ import annotations

import os
import stat

import pytest

from siamese_edge.runtime.atomic_file import replaced_on_success


def test_a_planted_symlink_at_the_old_temporary_name_is_not_written_through(tmp_path):
    # out.partial was a fixed name: a symlink there sent the export into the gallery
    victim = tmp_path / "gallery.sqlite"
    victim.write_bytes(b"SQLite format 3\x00 precious")
    (tmp_path / "out.npz.partial").symlink_to(victim)
    with replaced_on_success(tmp_path / "out.npz") as handle:
        handle.write(b"PK\x03\x04 export")
    assert victim.read_bytes() == b"SQLite format 3\x00 precious"
    assert (tmp_path / "out.npz").read_bytes() == b"PK\x03\x04 export"


def test_the_output_gets_the_permissions_of_a_new_file_and_failures_leave_nothing(tmp_path):
    old = os.umask(0o022)
    try:
        with replaced_on_success(tmp_path / "a.bin") as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    with pytest.raises(RuntimeError):
        with replaced_on_success(tmp_path / "b.bin") as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_name_near_the_file_system_limit_still_fits(tmp_path):
    name = "n" * 247 + ".npz"  # 251 bytes: the temporary name once added 18 more
    with replaced_on_success(tmp_path / name) as handle:
        handle.write(b"x")
    assert (tmp_path / name).read_bytes() == b"x"
