"""Report stores: a local folder or S3."""
