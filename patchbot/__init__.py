"""patchbot: finds security update pull requests, validates them on isolated branches, reports, and merges only
what the policy and the evidence allow. Entry points: `rlops patchbot run` and `rlops patchbot explain`."""
