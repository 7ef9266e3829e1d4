"""LocalReportStore: payout reports in a folder, written atomically."""

import io
import os
from pathlib import Path

import pytest

from referrals.adapters.reports.local import LocalReportStore

KEY = "payouts/2026-03/report.csv"
CSV = "text/csv"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "reports"


@pytest.fixture
def reports(root: Path) -> LocalReportStore:
    return LocalReportStore(root)


def temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".tmp-*"))


class FailingStream(io.BytesIO):
    """Yields one chunk, then fails: a report generator that crashes mid-write."""

    def __init__(self, first_chunk: bytes) -> None:
        super().__init__()
        self.first_chunk: bytes | None = first_chunk

    def read(self, size: int | None = -1) -> bytes:
        if self.first_chunk is None:
            raise OSError("report generator crashed")
        chunk, self.first_chunk = self.first_chunk, None
        return chunk


def test_put_then_get_returns_the_same_bytes(reports: LocalReportStore, root: Path) -> None:
    # Binary-safe (every byte value, CRLF kept): the manifest's sha256 covers these exact bytes.
    body = b"referrer_id,amount_cents\r\nreferrer-7,1500\r\n" + bytes(range(256))
    reports.put(KEY, io.BytesIO(body), CSV)

    assert reports.get(KEY) == body
    # The key maps to a path under the root, nested folders created on demand.
    assert (root / KEY).read_bytes() == body


def test_second_put_replaces_the_report_without_leaving_temporary_files(
    reports: LocalReportStore, root: Path
) -> None:
    # A re-run of a payout rewrites the same deterministic key.
    reports.put(KEY, io.BytesIO(b"first version of the report\n"), CSV)
    reports.put(KEY, io.BytesIO(b"second\n"), CSV)

    assert reports.get(KEY) == b"second\n"  # fully replaced, not overwritten in place
    assert temporary_files(root) == []
    assert [p.name for p in (root / KEY).parent.iterdir()] == ["report.csv"]


def test_reader_of_the_old_report_never_sees_a_mix_of_old_and_new(
    reports: LocalReportStore, root: Path
) -> None:
    # Atomic replace = a new file renamed over the old one. A reader that opened the
    # old report keeps reading all of it; truncating and rewriting in place would
    # hand that reader a torn file.
    old = b"old," * 10_000
    reports.put(KEY, io.BytesIO(old), CSV)
    with open(root / KEY, "rb") as reader:
        reports.put(KEY, io.BytesIO(b"new report\n"), CSV)
        assert reader.read() == old
    assert reports.get(KEY) == b"new report\n"


def test_get_of_a_missing_key_is_none(reports: LocalReportStore) -> None:
    # The root folder does not even exist yet: still "no report", not an error.
    assert reports.get(KEY) is None


@pytest.mark.parametrize(
    "key",
    ["../outside.csv", "payouts/../../outside.csv", "payouts/2026-03/../../../outside.csv"],
)
def test_key_that_escapes_the_root_is_refused(
    reports: LocalReportStore, tmp_path: Path, key: str
) -> None:
    # A key built from input must never write (or read) outside the report folder.
    with pytest.raises(ValueError, match="escapes"):
        reports.put(key, io.BytesIO(b"x"), CSV)
    with pytest.raises(ValueError, match="escapes"):
        reports.get(key)
    assert not (tmp_path / "outside.csv").exists()


def test_absolute_key_is_refused(reports: LocalReportStore, tmp_path: Path) -> None:
    # root / "/abs/path" is "/abs/path": an absolute key would bypass the root entirely.
    target = tmp_path / "outside.csv"
    with pytest.raises(ValueError, match="escapes"):
        reports.put(str(target), io.BytesIO(b"x"), CSV)
    assert not target.exists()


def test_symlink_out_of_the_root_is_refused(
    reports: LocalReportStore, root: Path, tmp_path: Path
) -> None:
    # The check is on the resolved path, so a link inside the root cannot be used to escape.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match="escapes"):
        reports.put("link/report.csv", io.BytesIO(b"x"), CSV)
    assert list(outside.iterdir()) == []


def test_dotdot_that_stays_inside_the_root_is_allowed(reports: LocalReportStore) -> None:
    # The rule is "stay inside the root", not "no '..' text".
    reports.put("payouts/../summary.csv", io.BytesIO(b"ok"), CSV)
    assert reports.get("summary.csv") == b"ok"


def test_put_into_an_unwritable_folder_raises_and_leaves_nothing(tmp_path: Path) -> None:
    # The root sits under a regular file, so the folder cannot be created (chmod would
    # not stop root, which the tests may run as). put must raise, so the payout does
    # not complete without its report.
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a regular file")
    reports = LocalReportStore(blocker / "reports")

    with pytest.raises(OSError):
        reports.put(KEY, io.BytesIO(b"report"), CSV)
    assert blocker.read_bytes() == b"a regular file"
    assert sorted(os.listdir(tmp_path)) == ["blocker"]  # no partial or temporary file anywhere


def test_failed_write_keeps_the_previous_report_and_removes_the_temporary_file(
    reports: LocalReportStore, root: Path
) -> None:
    # A crash while streaming the new report must leave the old one whole.
    reports.put(KEY, io.BytesIO(b"previous report\n"), CSV)

    with pytest.raises(OSError, match="crashed"):
        reports.put(KEY, FailingStream(b"half of the new rep"), CSV)

    assert reports.get(KEY) == b"previous report\n"
    assert temporary_files(root) == []


def test_delete_removes_a_staged_report_and_its_empty_folder(
    reports: LocalReportStore, root: Path
) -> None:
    staged = "payouts/staged/2026-03/abc.csv"
    reports.put(staged, io.BytesIO(b"staged"), CSV)
    reports.put(KEY, io.BytesIO(b"published"), CSV)

    reports.delete(staged)

    assert reports.get(staged) is None
    assert not (root / "payouts/staged/2026-03").exists()
    assert reports.get(KEY) == b"published"


def test_delete_of_a_missing_key_or_a_folder_in_use_changes_nothing(
    reports: LocalReportStore, root: Path
) -> None:
    reports.put("payouts/staged/2026-03/a.csv", io.BytesIO(b"a"), CSV)
    reports.delete("payouts/staged/2026-03/b.csv")  # never there
    reports.delete("payouts/staged/2026-03/b.csv")
    assert reports.get("payouts/staged/2026-03/a.csv") == b"a"  # its folder stays


def test_delete_refuses_a_key_outside_the_folder(reports: LocalReportStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"keep")
    with pytest.raises(ValueError, match="escapes"):
        reports.delete("../outside.csv")
    assert outside.read_bytes() == b"keep"
