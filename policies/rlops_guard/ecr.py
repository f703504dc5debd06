"""ECR: images are scanned on push and tags are immutable (a tag always names the image that was tested)."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.rlops_guard.props import dig, known

REPOSITORY = "aws:ecr/repository:Repository"


def _scan_on_push(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    if dig(args.props, "imageScanningConfiguration", "scanOnPush") is not True:
        report(f"repository '{args.name}': imageScanningConfiguration.scanOnPush must be true", None)


def _immutable_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != REPOSITORY:
        return
    mutability = known(args.props, "imageTagMutability")
    if mutability != "IMMUTABLE":
        report(
            f"repository '{args.name}': imageTagMutability is {mutability or 'MUTABLE (default)'}, not IMMUTABLE", None
        )


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="ecr-scan-on-push",
            description="ECR repositories scan every image on push.",
            validate=_scan_on_push,
        ),
        ResourceValidationPolicy(
            name="ecr-immutable-tags",
            description="ECR repositories have immutable image tags.",
            validate=_immutable_tags,
        ),
    ]
