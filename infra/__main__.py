"""Entry point that `pulumi preview` / `pulumi up` run (see `main: infra/` in Pulumi.yaml)."""

from infra.program import main

main()
