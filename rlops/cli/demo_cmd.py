"""`rlops demo`: the main job on one machine. Today: data -> validation -> baselines on the untouched test split."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from rlops.cli.split_options import Embargo, SplitFractions, TestStart, ValidationStart, split_from_flags


def demo(
    dataset: Annotated[str, typer.Option("--dataset", help="named dataset, file, store or s3:// URL")] = "sp500",
    period: Annotated[str, typer.Option("--split", help="train, validation or test")] = "test",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    validation_start: ValidationStart = None,
    test_start: TestStart = None,
    split_fractions: SplitFractions = None,
    embargo: Embargo = None,
) -> None:
    """Load and validate the dataset, then run the baseline policies through the environment."""
    from ml.backtest.engine import BacktestConfig, backtest
    from ml.data.fingerprint import labelled
    from ml.data.splits import SplitConfig
    from ml.envs import EnvConfig, EnvSpec

    console = Console()
    chosen = split_from_flags(validation_start, test_start, split_fractions, embargo) or SplitConfig()
    spec = EnvSpec(dataset=dataset, period=period, env=EnvConfig(), split=chosen)
    data = spec.data()
    bars = data.bars
    console.rule(f"[bold]1. data[/bold]: {bars.name}")
    console.print(
        f"{len(bars.frame)} bars validated, symbols {', '.join(bars.symbols)}, {len(bars.gaps)} gap(s) reported "
        f"(never filled); {labelled(data.fingerprint, with_features=True)}"
    )
    for gap in bars.gaps:
        console.print(f"  gap {gap}")
    stamps = data.panel.timestamps
    console.rule(
        f"[bold]2. split[/bold] ({chosen.describe()}: {data.split.embargo} bars; features normalised on train only)"
    )
    for name in ("train", "validation", "test"):
        span = data.split.part(name)
        console.print(f"{name:>10}: {stamps[span.start].date()} .. {stamps[span.stop - 1].date()} ({len(span)} bars)")
    console.rule(f"[bold]3. baselines[/bold] on the {period} split (decide at close t, fill at open t+1)")
    table = Table("total return", "CAGR", "volatility", "Sharpe", "Sharpe 95% CI", "max drawdown", "costs ($)")
    table.columns.insert(0, Column("policy", no_wrap=True, min_width=12))
    for name in ("buy_and_hold", "flat", "random", "ma_crossover"):
        result = backtest(f"baseline:{name}", dataset, BacktestConfig(period=period, seed=seed, split=chosen.to_dict()))
        m = result.metrics
        low, high = result.sharpe_ci
        table.add_row(
            name,
            f"{m['total_return']:+.2%}",
            f"{m['cagr']:+.2%}",
            f"{m['annual_volatility']:.2%}",
            f"{m['sharpe']:.2f}",
            f"[{low:.2f}, {high:.2f}]",
            f"{m['max_drawdown']:.2%}",
            f"{result.costs.total:,.0f}",
        )
    console.print(table)
    console.print(
        f"initial cash ${spec.env.initial_cash:,.0f}; costs: {spec.env.commission_bps} bps commission, "
        f"{spec.env.slippage_bps} bps slippage + volume impact, {spec.env.borrow_rate:.0%} borrow"
    )
