"""rlops-research-nightly: rlops-research every night on the day's data.

The dataset parameter names the store that ingestion refreshes; the data stage's key includes the data's
fingerprint, and every run writes under its own name, so each night is a full, separate run.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow, Parameter
from hera.workflows import models as m

from workflows import common, research

NAME = "rlops-research-nightly"
SCHEDULE = "30 2 * * *"  # after the US close has been ingested
TIMEZONE = "America/New_York"


def template() -> CronWorkflow:
    return CronWorkflow(
        name=NAME,
        namespace=common.NAMESPACE,
        labels=common.LABELS,
        schedules=[SCHEDULE],
        timezone=TIMEZONE,
        concurrency_policy="Forbid",  # a night that overruns is not joined by the next one
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=7,
        failed_jobs_history_limit=14,
        workflow_template_ref=m.WorkflowTemplateRef(name=research.NAME),
        arguments=[
            Parameter(
                name="dataset",
                description="the market-data store that ingestion refreshes each day",
                value_from=m.ValueFrom(
                    config_map_key_ref=m.ConfigMapKeySelector(name=common.CONFIG_MAP, key="nightly-dataset")
                ),
            )
        ],
        # A reference carries the template's settings; these keep the run's own pod, user and lifetime explicit.
        service_account_name=common.SERVICE_ACCOUNT,
        security_context=common.POD_SECURITY,
        active_deadline_seconds=research.DEADLINE_S,
        pod_gc=common.POD_GC,
        ttl_strategy=common.TTL,
    )
