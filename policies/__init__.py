"""Pulumi CrossGuard policy packs that guard the infrastructure in `infra/`."""
