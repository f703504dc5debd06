"""`rlops patchbot`: the security-patch bot. Dry run by default; `--apply` comments, labels, approves and merges."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from patchbot.runner import RunOptions

app = typer.Typer(
    help="Security-patch bot: validate security update PRs on isolated branches, report, merge what is safe.",
    no_args_is_help=True,
)

RepoOption = Annotated[str, typer.Option("--repo", help="OWNER/NAME of the repository")]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="local policy file instead of .github/patchbot.yml on the default branch"),
]
ApiOption = Annotated[
    str,
    typer.Option("--api-url", envvar="GITHUB_API_URL", help="GitHub REST API root (GitHub Enterprise: .../api/v3)"),
]
ToolsOption = Annotated[
    Path, typer.Option("--tools-bin", help="folder with pip-audit, bandit and checkov (then PATH is searched)")
]
PythonOption = Annotated[
    Path | None, typer.Option("--python", help="interpreter that runs pytest on the checkout (default: this one)")
]
BankOption = Annotated[Path | None, typer.Option("--bank", help="memory bank folder (default: nearest memory_bank/)")]
StateOption = Annotated[Path, typer.Option("--state-dir", help="where the per-repository run lock lives")]
IsolationOption = Annotated[
    str,
    typer.Option(
        "--isolation",
        help="how the update's code is isolated: auto (strongest available), namespace (bubblewrap), user "
        "(another user; needs root) or env (clean environment only)",
    ),
]
PipCacheOption = Annotated[
    Path | None,
    typer.Option("--pip-cache", help="pip download cache shared between runs (default: STATE_DIR/pip-cache)"),
]
BotOption = Annotated[
    str | None, typer.Option("--bot-login", help="the bot's GitHub login (default: asked from GitHub)")
]


def _options(
    repo: str,
    *,
    apply: bool,
    policy: Path | None,
    api_url: str,
    tools_bin: Path,
    python: Path | None,
    bank: Path | None,
    state_dir: Path,
    bot_login: str | None,
    isolation: str,
    pip_cache: Path | None = None,
    only_pr: int | None = None,
    read_only: bool = False,
) -> RunOptions:
    from patchbot.runner import RunOptions
    from patchbot.sandbox import Isolation
    from patchbot.validate import ToolConfig
    from rlops_core.errors import RlopsError

    try:
        level = Isolation(isolation)
    except ValueError:
        known = ", ".join(level.value for level in Isolation)
        raise RlopsError(f"--isolation must be one of {known}, got {isolation!r}") from None

    return RunOptions(
        repo=repo,
        apply=apply,
        policy_file=policy,
        api_url=api_url,
        bank=bank,
        state_dir=state_dir,
        tools=ToolConfig(tools_bin, python or Path(sys.executable)),
        bot_login=bot_login,
        only_pr=only_pr,
        isolation=level,
        pip_cache=pip_cache,
        read_only=read_only,
    )


@app.command("run")
def run_command(
    repo: RepoOption,
    apply: Annotated[bool, typer.Option("--apply", help="act: comment, set status, label, approve, merge")] = False,
    policy: PolicyOption = None,
    api_url: ApiOption = "https://api.github.com",
    tools_bin: ToolsOption = Path(".tools/bin"),
    python: PythonOption = None,
    bank: BankOption = None,
    state_dir: StateOption = Path(".rlops/patchbot"),
    bot_login: BotOption = None,
    isolation: IsolationOption = "auto",
    pip_cache: PipCacheOption = None,
) -> None:
    """Check every open security PR; print the decision for each (and act on it with --apply)."""
    from patchbot.cli import summary
    from patchbot.github_api import Credentials
    from patchbot.runner import run

    options = _options(
        repo, apply=apply, policy=policy, api_url=api_url, tools_bin=tools_bin, python=python, bank=bank,
        state_dir=state_dir, bot_login=bot_login, isolation=isolation, pip_cache=pip_cache,
    )  # fmt: skip
    typer.echo(summary(run(options, Credentials.take_from_environ())))


@app.command("explain")
def explain_command(
    pr: Annotated[int, typer.Argument(help="pull request number")],
    repo: RepoOption,
    policy: PolicyOption = None,
    api_url: ApiOption = "https://api.github.com",
    tools_bin: ToolsOption = Path(".tools/bin"),
    python: PythonOption = None,
    bot_login: BotOption = None,
    isolation: IsolationOption = "auto",
) -> None:
    """Validate one PR without writing anything and show every rule that applies and the comment it would get."""
    from patchbot.cli import explanation
    from patchbot.github_api import Credentials
    from patchbot.runner import run

    options = _options(
        repo, apply=False, policy=policy, api_url=api_url, tools_bin=tools_bin, python=python, bank=None,
        state_dir=Path(".rlops/patchbot"), bot_login=bot_login, isolation=isolation, only_pr=pr, read_only=True,
    )  # fmt: skip
    result = run(options, Credentials.take_from_environ())
    typer.echo(explanation(result.results[0]))
