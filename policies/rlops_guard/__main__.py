"""Starts the policy analyzer; the Pulumi CLI runs this file when given `--policy-pack policies/rlops_guard`."""

from pulumi_policy import PolicyPack

from policies.rlops_guard.pack import ENFORCEMENT, PACK_NAME, all_policies

PolicyPack(name=PACK_NAME, enforcement_level=ENFORCEMENT, policies=all_policies())
