"""Finding the work: the repository's open Dependabot alerts and the open pull requests that are security updates.

A pull request counts when it carries the security label, is a Renovate `[SECURITY]` update, or changes a
package that has an open alert. Whether its author can be trusted is `decide`'s question, not this module's:
a spoofed "Bump x from 1 to 2" must be found so that it can be held and explained.
"""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_name

from patchbot.models import Advisory, Bump, Severity
from patchbot.policy import Policy


def _severity(value: Any) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        # GitHub's scale has only these four; anything else is treated as the most urgent, never the least.
        return Severity.CRITICAL


def advisory_from_alert(alert: Any) -> Advisory:
    advisory = alert.security_advisory
    vulnerability = alert.security_vulnerability
    patched = vulnerability.first_patched_version or {}
    return Advisory(
        alert_number=int(alert.number),
        ghsa_id=str(advisory.ghsa_id),
        cve_id=str(advisory.cve_id) if advisory.cve_id else None,
        severity=_severity(vulnerability.severity or advisory.severity),
        package=str(vulnerability.package.name),
        ecosystem=str(vulnerability.package.ecosystem),
        vulnerable_range=str(vulnerability.vulnerable_version_range or ""),
        first_patched=str(patched.get("identifier")) if patched.get("identifier") else None,
        manifest_path=str(alert.dependency.manifest_path or ""),
    )


def open_alerts(repo: Any) -> tuple[Advisory, ...]:
    return tuple(advisory_from_alert(alert) for alert in repo.get_dependabot_alerts(state="open"))


def match_advisories(bumps: tuple[Bump, ...], alerts: tuple[Advisory, ...]) -> tuple[Advisory, ...]:
    """Alerts on a package the PR changes (whether the new version is really outside the range is validated)."""
    names = {canonicalize_name(b.package) for b in bumps}
    return tuple(a for a in alerts if canonicalize_name(a.package) in names)


def is_security_update(title: str, labels: tuple[str, ...], advisories: tuple[Advisory, ...], policy: Policy) -> bool:
    return bool(advisories) or policy.security_label in labels or "[security]" in title.lower()
