import io
import tempfile
from typing import Any, BinaryIO

from botocore.exceptions import ClientError


class _Lent(io.RawIOBase):
    """The caller's file, lent to boto3: s3transfer closes what it uploads, this stays open."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._inner.seekable()

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()


class S3ReportStore:
    """Reports in an S3 bucket under a prefix. S3 writes are atomic per object."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        # upload_fileobj switches to a multipart upload for large reports.
        self.client.upload_fileobj(
            _Lent(data),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
        )

    def scratch(self) -> BinaryIO:
        return tempfile.TemporaryFile()  # on Lambda, its /tmp

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return body

    def delete(self, key: str) -> None:
        # On a versioned bucket every DeleteObject leaves a delete marker, even for a
        # key that is not there: look first (HeadObject needs only s3:GetObject).
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return
            raise
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
