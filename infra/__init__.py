"""Pulumi program for the rlops AWS environments (dev, staging, prod).

Importing this package creates nothing: resources only exist once `infra.program.main()` runs inside a
Pulumi deployment (or under `pulumi.runtime.set_mocks` in tests).
"""
