"""The research pipeline as Argo Workflows (Hera): one module per workflow, rendered into gitops/workflows/."""
