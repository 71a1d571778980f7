"""Metrics and challenge protocols, checked against the organisers' procedures.

The AIM 2024 / MSU benchmark figures come from the organisers' notebook, which computes
per-group correlations with pandas' `DataFrame.corr` (pairwise-complete, scipy's kendalltau
for KROCC), keeps groups of >= 3 rows with size >= 15 (SROCC) or >= 6 (KROCC), replaces
arctanh(+-1) by arctanh(+-0.99), averages with statsmodels' size-weighted mean, applies tanh,
abs, and reports 0.99 as 1. `_official` below replays exactly those pandas steps on the real
CVQAD table of 67 published metrics.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import cvqad_file
from scipy import stats

from lmm_vqa import metrics

CVQAD = cvqad_file("Metric_scores_example.csv")
needs_cvqad = pytest.mark.skipif(not CVQAD.is_file(), reason="../shared/data/cvqad not beside the checkout")


def _official(df: pd.DataFrame, cols, corr: str, min_samples: int) -> pd.Series:
    rows = []
    for seq in df.sequence.unique():
        for preset in df.preset.unique():
            subj = df[(df.sequence == seq) & (df.preset == preset)][list(cols) + ["subjective_score"]]
            if subj.shape[0] < 3:
                continue
            method = (lambda x, y: stats.kendalltau(x, y)[0]) if corr == "kendall" else corr
            # The notebook takes column 'subjective' of subj.corr(method); corrwith computes just that
            # column, with the same pairwise-complete rows (Series.corr), 67x faster.
            rows.append({"sample_size": subj.shape[0],
                         **subj[list(cols)].corrwith(subj.subjective_score, method=method)})
    corrs = pd.DataFrame(rows)
    corrs = corrs[corrs.sample_size >= min_samples]
    z = corrs[list(cols)].apply(np.arctanh).replace([np.inf, -np.inf], [np.arctanh(0.99), np.arctanh(-0.99)])
    w = corrs.sample_size.astype(float)
    mean = z.apply(lambda col: (col * w).sum(skipna=False) / w.sum())  # DescrStatsW(col, weights=w).mean
    return mean.apply(np.tanh).abs().replace([0.99], 1)


@needs_cvqad
@pytest.mark.parametrize("name,corr,min_samples", [("srocc", "spearman", 15), ("krocc", "kendall", 6)])
def test_aim2024_reproduces_the_official_figures_for_67_metrics(name, corr, min_samples):
    df = pd.read_csv(CVQAD)
    cols = list(df.columns[7:-1])
    assert len(cols) == 67
    official = _official(df, cols, corr, min_samples)
    groups = list(zip(df.sequence, df.preset))
    compared = 0
    for col in cols:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metrics with constant groups warn, as they should
            ours = metrics.aim2024_score(df[col].to_numpy(), df.subjective_score.to_numpy(), groups)[name]
        if np.isnan(official[col]):
            assert np.isnan(ours), col
        else:
            assert ours == pytest.approx(official[col], abs=1e-12), col
            compared += 1
    assert compared >= 60
    # The pooled figures are real correlations, not degenerate: the best metrics are strong.
    assert 0.8 < official.max() <= 1.0


def test_aim2024_groups_thresholds_and_edge_cases():
    rng = np.random.default_rng(0)
    mos = rng.normal(size=40)
    groups = ["a"] * 20 + ["b"] * 10 + ["c"] * 8 + ["d"] * 2  # d (< 3) is skipped everywhere
    perfect = mos.copy()
    res = metrics.aim2024_score(perfect, mos, groups)
    # Rank correlations of identical data are exactly 1: z(1) -> z(0.99), pooled 0.99 -> reported as 1.
    assert res["srocc"] == 1.0
    # Pearson and Kendall land a rounding error below 1, whose arctanh is finite and not replaced,
    # exactly as in the official code; they still pool to ~1.
    assert res["krocc"] == pytest.approx(1, abs=1e-5) and res["plcc"] == pytest.approx(1, abs=1e-4)
    # SROCC uses only group a (size >= 15); KROCC and PLCC use a, b, c weighted by size.
    pred = mos + rng.normal(scale=1.0, size=40)
    per = {g["group"]: g for g in metrics.group_correlations(pred, mos, groups)}
    assert set(per) == {"a", "b", "c"}
    res = metrics.aim2024_score(pred, mos, groups)
    assert res["srocc"] == pytest.approx(abs(per["a"]["srocc"]), abs=1e-12)
    z = sum(np.arctanh(per[g]["krocc"]) * per[g]["size"] for g in "abc") / 38
    assert res["krocc"] == pytest.approx(abs(np.tanh(z)), abs=1e-12)
    # A negatively correlated metric reports its absolute value.
    assert metrics.aim2024_score(-pred, mos, groups)["plcc"] == pytest.approx(res["plcc"])


def test_aim2024_constant_group_is_nan_with_a_named_warning():
    mos = np.arange(20.0)
    pred = np.r_[np.arange(10.0), np.ones(10)]
    with pytest.warns(RuntimeWarning, match="'flat'"):
        res = metrics.aim2024_score(pred, mos, ["ok"] * 10 + ["flat"] * 10)
    assert np.isnan(res["krocc"]) and np.isnan(res["final"])


def test_correlations_match_scipy_and_the_definitions():
    rng = np.random.default_rng(1)
    mos = rng.uniform(0, 100, 60)
    pred = np.round(mos / 10 + rng.normal(size=60), 1)  # ties on purpose
    assert metrics.srcc(pred, mos) == pytest.approx(stats.spearmanr(pred, mos)[0])
    assert metrics.krcc(pred, mos) == pytest.approx(stats.kendalltau(pred, mos, variant="b")[0])
    assert metrics.plcc(pred, mos) == pytest.approx(stats.pearsonr(pred, mos)[0])
    fitted = np.polyval(np.polyfit(pred, mos, 3), pred)
    assert metrics.plcc_poly3(pred, mos) == pytest.approx(stats.pearsonr(fitted, mos)[0])
    # A monotone non-linear prediction: the fits recover a near-perfect PLCC, the raw PLCC does not.
    curved = np.exp(mos / 20)
    assert metrics.plcc(curved, mos) < 0.95 < metrics.plcc_logistic(curved, mos)
    assert metrics.plcc(curved, mos) < metrics.plcc_poly3(curved, mos)


def test_ntire2023_main_score():
    rng = np.random.default_rng(2)
    mos = rng.uniform(0, 100, 50)
    pred = -(mos + rng.normal(scale=20, size=50))  # sign does not matter
    res = metrics.ntire2023_score(pred, mos)
    assert res["srcc"] < 0
    assert res["main"] == pytest.approx((abs(res["srcc"]) + abs(res["plcc"])) / 2)
    assert res["plcc"] == pytest.approx(metrics.plcc_poly3(pred, mos))


def test_constant_predictions_are_nan_and_bad_shapes_fail():
    assert np.isnan(metrics.srcc(np.ones(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="one length"):
        metrics.plcc(np.ones(3), np.ones(4))


def test_bootstrap_ci_brackets_the_estimate():
    rng = np.random.default_rng(3)
    mos = rng.normal(size=200)
    pred = mos + rng.normal(size=200)
    lo, hi = metrics.bootstrap_ci(metrics.srcc, pred, mos, n_boot=300)
    assert lo < metrics.srcc(pred, mos) < hi and hi - lo < 0.3


def _pooled(rs, sizes):
    """The benchmark's pooling written out for the tests: Fisher z, size-weighted mean, tanh."""
    z = [np.arctanh(0.99 * np.sign(r)) if abs(r) == 1 else np.arctanh(r) for r in rs]
    return abs(np.tanh(np.dot(z, sizes) / sum(sizes)))


@pytest.mark.parametrize("name,threshold", [("srocc", 15), ("krocc", 6), ("plcc", 6)])
def test_aim2024_group_size_thresholds(name, threshold):
    """A group one short of the threshold is left out of that metric; one at the threshold counts."""
    rng = np.random.default_rng(4)
    corr = {"srocc": stats.spearmanr, "krocc": stats.kendalltau, "plcc": stats.pearsonr}[name]
    big_mos = rng.normal(size=30)
    big_pred = big_mos + rng.normal(scale=0.5, size=30)  # a positively correlated group of 30
    for size in (threshold - 1, threshold):
        mos = rng.normal(size=size)
        pred = -mos + rng.normal(scale=0.1, size=size)  # a strongly anti-correlated small group
        res = metrics.aim2024_score(np.r_[big_pred, pred], np.r_[big_mos, mos], ["big"] * 30 + ["small"] * size)
        r_big, r_small = corr(big_pred, big_mos)[0], corr(pred, mos)[0]
        want = _pooled([r_big], [30]) if size < threshold else _pooled([r_big, r_small], [30, size])
        assert res[name] == pytest.approx(want, abs=1e-9), (size, res)


def test_selection_keeps_the_sign_and_never_prefers_an_anti_correlated_part():
    """The challenges report |correlation|, so an anti-correlated prediction scores high there; choosing a
    checkpoint or fusion weights must not fall for it."""
    rng = np.random.default_rng(5)
    mos = rng.uniform(0, 100, 120)
    groups = [f"g{i // 20}" for i in range(120)]  # six (sequence, preset) groups of 20
    good = mos + rng.normal(scale=40, size=120)  # weakly right
    anti = -mos + rng.normal(scale=5, size=120)  # strongly wrong
    assert metrics.aim2024_score(anti, mos, groups)["final"] > metrics.aim2024_score(good, mos, groups)["final"]
    assert metrics.ntire2023_score(anti, mos)["main"] > metrics.ntire2023_score(good, mos)["main"]
    for g in (groups, None):
        assert metrics.selection_score(anti, mos, g) < 0 < metrics.selection_score(good, mos, g)
    signed = metrics.aim2024_score(anti, mos, groups, signed=True)
    assert signed["srocc"] == pytest.approx(-metrics.aim2024_score(anti, mos, groups)["srocc"])
