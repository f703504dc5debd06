"""rlops-guard: the mandatory CrossGuard pack run with `pulumi preview/up --policy-pack policies/rlops_guard`.

Importing this package only defines policies; the gRPC analyzer starts in `__main__.py`.
"""
