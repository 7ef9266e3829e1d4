import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO


class LocalReportStore:
    """Reports in a folder; a write goes to a temporary file, is fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"report key escapes the report folder: {key!r}")
        return path

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
            _fsync_dir(path.parent)  # and the rename itself survives a power loss
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def scratch(self) -> BinaryIO:
        # On the report folder's own disk, whose room the report needs anyway.
        self.root.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=self.root, prefix=".scratch-")

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty, or gone already
            path.parent.rmdir()  # a staged report's folder, once empty


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
