"""The AWS CDK (v2, Python) app that deploys referrals as a serverless service."""
