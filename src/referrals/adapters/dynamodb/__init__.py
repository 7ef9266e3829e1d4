"""DynamoDB store: the same ports on two tables designed for the access patterns."""
