"""POST /v1/act/bars and the observation contract: raw bars in, the environment's observation and the backtest's
action out, bit for bit; bad bars named field by field; checkpoints without a contract still serve."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.agents.checkpoint import load_checkpoint
from ml.backtest.engine import BacktestConfig, resolve_period
from ml.backtest.policies import as_batch_actions, resolve_policy
from ml.data.bars import Panel
from ml.envs.config import EnvConfig
from ml.envs.factory import prepared
from ml.envs.trading_env import TradingEnv

from .conftest import Checkpoints, Trading
from .serve_helpers import RunningServer, serving


@dataclass(frozen=True)
class Decision:
    bar: int
    obs: np.ndarray
    action: np.ndarray
    cash: float
    shares: np.ndarray
    basis: np.ndarray


def backtest_decisions(checkpoint: Path, dataset: str, steps: set[int]) -> tuple[Panel, list[Decision]]:
    """Run the backtest's own loop (the engine's env, policy resolution and action checks) over the test
    period, keeping the observation, action and account at the chosen steps."""
    resolved = resolve_policy(str(checkpoint))
    config = EnvConfig.from_dict(resolved.env_settings)
    data = prepared(dataset, load_policy_features(resolved.feature_settings))
    market = data.market(resolve_period(data, BacktestConfig().period), config.window)
    env = TradingEnv(market, config, record=False)
    act = resolved.build(env.sim)
    obs, _ = env.reset(seed=0)
    kept = []
    for step in range(max(steps) + 1):
        actions = as_batch_actions(act(obs[None, :]), 1)
        if step in steps:
            state = env.sim.state
            kept.append(
                Decision(
                    int(state.t[0]), obs.copy(), actions[0], float(state.cash[0]), state.shares[0].copy(),
                    state.basis[0].copy(),
                )
            )  # fmt: skip
        obs, _, terminated, truncated, _ = env.step(actions[0])
        assert not (terminated or truncated)
    return data.panel, kept


def load_policy_features(settings: dict[str, Any]) -> Any:
    from ml.data.features import FeatureConfig

    values = dict(settings)
    values["ma_windows"] = tuple(values["ma_windows"])
    return FeatureConfig(**values)


def bars_request(panel: Panel, bar: int, count: int, decision: Decision | None = None) -> dict[str, Any]:
    bars = {}
    for a, symbol in enumerate(panel.symbols):
        bars[symbol] = [
            {
                "timestamp": panel.timestamps[t].isoformat(),
                "open": float(panel.open[t, a]),
                "high": float(panel.high[t, a]),
                "low": float(panel.low[t, a]),
                "close": float(panel.close[t, a]),
                "volume": float(panel.volume[t, a]),
            }
            for t in range(bar - count + 1, bar + 1)
        ]
    account: dict[str, Any] = {"cash": 100_000.0}
    if decision is not None:
        account = {
            "cash": decision.cash,
            "positions": {
                symbol: {"shares": float(decision.shares[a]), "entry_price": float(decision.basis[a])}
                for a, symbol in enumerate(panel.symbols)
            },
        }
    return {"bars": bars, "account": account, "return_observation": True}


@pytest.mark.parametrize("kind", ["multi", "continuous"])
def test_bars_give_the_environments_observation_and_the_backtests_action(
    kind: str, trading: Trading, multi_server: RunningServer
) -> None:
    checkpoint = getattr(trading, kind)
    dataset = "us_indices" if kind == "multi" else "sp500"
    panel, decisions = backtest_decisions(checkpoint, dataset, {0, 1, 57, 203, 390})
    contract = load_checkpoint(checkpoint).observation_contract
    assert contract is not None
    needed = contract["warmup"] + contract["window"]
    server_context = serving(checkpoint) if kind == "continuous" else nullcontext(multi_server)
    with server_context as server, server.client() as client:
        for i, decision in enumerate(decisions):
            # Exactly the bars needed, or more history: features depend on their own window only.
            response = client.post("/v1/act/bars", json=bars_request(panel, decision.bar, needed + 37 * i, decision))
            assert response.status_code == 200, response.text
            body = response.json()
            served = np.asarray(body["observation"], dtype=np.float32)
            assert served.view(np.uint32).tolist() == decision.obs.view(np.uint32).tolist()  # bit for bit
            assert np.asarray(body["action"]).tolist() == decision.action.tolist()
            assert body["decision_bar"] == panel.timestamps[decision.bar].isoformat()
            assert body["decision_bar"] in body["fills_at"] and body["symbols"] == list(panel.symbols)
    assert len({d.cash for d in decisions}) > 1  # the account moved: positions and cash were exercised


def test_model_endpoint_returns_the_contract(trading: Trading, multi_server: RunningServer) -> None:
    with multi_server.client() as client:
        info = client.get("/v1/model").json()
    contract = info["contract"]
    assert info["lacks"] == []
    assert contract["symbols"] == ["IXIC", "SPX"]
    assert contract["feature_names"][:2] == ["return", "log_return"] and contract["window"] == 32
    assert contract["bars_needed"] == contract["warmup"] + contract["window"] == 82
    assert contract["obs_dim"] == info["observation_space"]["shape"][0] == 32 * 2 * 7 + 4
    assert contract["account_features"] == ["weight:IXIC", "weight:SPX", "cash_weight", "unrealised_pnl"]
    assert len(contract["normalizer_mean"]) == len(contract["normalizer_std"]) == 7
    assert contract["normalizer_fitted_on"][1] == contract["training_period"][1]  # fitted on train only
    assert contract["dataset_fingerprint"] == info["dataset_fingerprint"]
    assert contract["bar_frequency"] == "P1DT0H0M0S" and contract["periods_per_year"] == 252
    assert contract["env"]["levels"] == [-1.0, 0.0, 1.0] and "index 0 -> -1" in contract["action_meaning"]
    assert "open of bar t+1" in contract["execution"]


def _broken(request: dict[str, Any], change: str) -> dict[str, Any]:
    bars = request["bars"]
    if change == "too few":
        bars["SPX"] = bars["SPX"][-10:]
    elif change == "unknown symbol":
        bars["DAX"] = bars.pop("SPX")
    elif change == "unsorted":
        bars["SPX"][5], bars["SPX"][6] = bars["SPX"][6], bars["SPX"][5]
    elif change == "high below close":
        bars["IXIC"][3]["high"] = bars["IXIC"][3]["close"] / 2
    elif change == "misaligned":
        bars["SPX"] = [*bars["SPX"][1:], dict(bars["SPX"][-1], timestamp="2031-01-01T00:00:00+00:00")]
    elif change == "no entry price":
        request["account"]["positions"] = {"SPX": {"shares": 10.0}}
    elif change == "string price":
        bars["SPX"][0]["close"] = "12.5"
    return request


BAD_BARS = [
    ("too few", "bars.SPX", "has 10 bars; the model needs at least 82"),
    ("unknown symbol", "bars.DAX", "unknown symbol 'DAX'"),
    ("unsorted", "bars.SPX[6].timestamp", "earlier than the row before it"),
    ("high below close", "bars.IXIC[3].high", "is below max(open"),
    ("misaligned", "bars.SPX[0].timestamp", "must share timestamps"),
    ("no entry price", "account.positions.SPX.entry_price", "needs its average entry price"),
    ("string price", "bars.SPX[0].close", "valid number"),
]


@pytest.mark.parametrize(("change", "field", "phrase"), BAD_BARS, ids=[case[0] for case in BAD_BARS])
def test_bad_bars_get_422_naming_the_field(
    trading: Trading, multi_server: RunningServer, change: str, field: str, phrase: str
) -> None:
    panel = prepared("us_indices", load_policy_features(load_checkpoint(trading.multi).env_source["features"])).panel
    request = _broken(bars_request(panel, 4000, 82), change)
    with multi_server.client() as client:
        response = client.post("/v1/act/bars", json=request)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "invalid_request"
        assert any(item["field"] == field and phrase in item["message"] for item in body["fields"]), body
        assert client.post("/v1/act/bars", json=bars_request(panel, 4000, 82)).status_code == 200


@pytest.mark.parametrize("token", ["NaN", "Infinity"])
def test_non_finite_bars_are_rejected(multi_server: RunningServer, token: str) -> None:
    # json.dumps never writes these tokens; Python's and JavaScript's encoders can.
    bar = '{"timestamp": "2018-01-02", "open": 1, "high": 2, "low": 0.5, "close": ' + token + ', "volume": 3}'
    raw = '{"bars": {"SPX": [' + bar + '], "IXIC": [' + bar + ']}, "account": {"cash": 1000}}'
    with multi_server.client() as client:
        response = client.post("/v1/act/bars", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert {item["field"] for item in response.json()["fields"]} == {"bars.SPX[0].close", "bars.IXIC[0].close"}


def test_checkpoints_without_a_contract_still_serve_and_say_what_they_lack(
    trading: Trading, checkpoints: Checkpoints, tmp_path: Path
) -> None:
    # A checkpoint as rlops wrote them before the contract: the same payload without the key.
    payload_before = torch.load(trading.multi, weights_only=True)
    del payload_before["observation_contract"]
    path = tmp_path / "old.pt"
    torch.save(payload_before, path)
    assert load_checkpoint(path).observation_contract is None
    payload = {"bars": {"SPX": []}, "account": {"cash": 1.0}}
    for checkpoint, phrase in ((path, "predates it"), (checkpoints.discrete, "trained on CartPole-v1")):
        with serving(checkpoint) as server, server.client() as client:
            info = client.get("/v1/model").json()
            assert info["contract"] is None and phrase in info["lacks"][0]
            obs_dim = info["observation_space"]["shape"][0]
            assert client.post("/v1/act", json={"observations": [[0.0] * obs_dim]}).status_code == 200
            refused = client.post("/v1/act/bars", json=payload)
            assert refused.status_code == 409 and refused.json()["error"] == "no_observation_contract"
            assert phrase in refused.json()["message"]
