"""Dry-run estimate core (helpers.estimate.dryrun): warm-up rule, steady state, projection and
its interval on synthetic windows, and the replay of committed H100 runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers.estimate import dryrun
from helpers.estimate.common import NotEstimableError
from helpers.readers.project import read_run

ROOT = Path(__file__).resolve().parents[2]
H100 = ROOT / "data_inputs" / "gpu-h100" / "raw" / "h100"

STEP_S, POWER_W = 0.05, 200.0  # steady time per step and power: 10 J per step
EVAL_STEP_S, EVAL_POWER_W = 0.02, 150.0  # 3 J per evaluation batch


def _windows(seed: int = 0, n: int = 12, warm: int = 3, noise: float = 0.01, steps: int = 20,
             kind: str = dryrun.TRAIN, step_s: float = STEP_S, power_w: float = POWER_W,
             start_s: float = 0.0) -> list[dryrun.Window]:
    """``n`` contiguous windows of ``steps`` steps; the first ``warm`` are slower and draw less
    power (a warm-up that decays), the rest vary by ``noise`` (relative sd) around the steady
    state."""
    rng = np.random.default_rng(seed)
    out, t = [], start_s
    for i in range(n):
        slow = 1.0 + (2.0 / (i + 1) if i < warm else 0.0)
        d = steps * step_s * slow * (1 + noise * rng.standard_normal())
        p = power_w * (0.7 if i < warm else 1.0) * (1 + noise * rng.standard_normal())
        out.append(dryrun.Window(kind, float(steps), t, t + d, p * d))
        t += d
    return out


def test_steady_start_skips_the_warm_up():
    ws = _windows()
    for per_step in ([w.duration_s / w.steps for w in ws], [w.energy_j / w.steps for w in ws]):
        start, rule = dryrun.steady_start(per_step)
        assert start == 3
        assert "within 5%" in rule


def test_steady_start_falls_back_to_the_second_half_when_never_stable():
    start, rule = dryrun.steady_start([1.0, 0.5, 1.5, 0.6, 1.4, 0.7, 1.3, 0.8])
    assert start == 4
    assert "second half" in rule


def test_steady_start_needs_a_window_after_the_rule_warm_up():
    with pytest.raises(NotEstimableError, match="need more than 1"):
        dryrun.steady_start([0.1])


def test_time_and_energy_have_their_own_warm_up():
    """Steps settle at once, power ramps up for 5 windows: the energy's warm-up is longer."""
    ws = [dryrun.Window("train", 10, i, i + 0.5, (150 if i < 5 else 200) * 0.5)
          for i in range(12)]
    st = dryrun.steady_state(ws)
    assert st.time.start == 1
    assert st.energy.start == 5
    assert st.step_j == pytest.approx(10.0)


def test_estimate_recovers_steady_per_step_and_per_epoch_energy():
    ws = _windows(noise=0.01)
    plan = dryrun.Plan(epochs=10, steps_per_epoch=1000)
    est = dryrun.estimate(ws, plan)
    assert est.train.time.start == est.train.energy.start == 3
    assert est.train.step_j == pytest.approx(STEP_S * POWER_W, rel=0.01)
    assert est.train.step_s == pytest.approx(STEP_S, rel=0.01)
    per_epoch_j = est.train.step_j * plan.steps_per_epoch
    assert per_epoch_j == pytest.approx(1000 * STEP_S * POWER_W, rel=0.01)
    # the warm-up windows are counted as measured, the rest at the steady rate
    warm = ws[:3]
    expected = sum(w.energy_j for w in warm) + (10_000 - 60) * est.train.step_j
    assert est.energy_j == pytest.approx(expected)
    assert est.time_low_s <= est.time_s <= est.time_high_s
    assert est.energy_low_j <= est.energy_j <= est.energy_high_j
    assert est.energy_kwh == pytest.approx(est.energy_j / 3.6e6)
    assert est.method == dryrun.METHOD


def test_estimate_adds_the_one_off_segment_and_evaluation():
    train = _windows(noise=0.0)
    evals = _windows(n=4, warm=1, noise=0.0, steps=5, kind=dryrun.EVAL, step_s=EVAL_STEP_S,
                     power_w=EVAL_POWER_W, start_s=train[-1].end_s)
    plan = dryrun.Plan(epochs=5, steps_per_epoch=200, eval_steps_per_epoch=10)
    est = dryrun.estimate(train + evals, plan, once_s=0.4, once_j=50.0)
    assert est.eval is not None and est.eval.energy.start == 1
    assert est.eval.step_j == pytest.approx(EVAL_STEP_S * EVAL_POWER_W)
    train_j = sum(w.energy_j for w in train[:3]) + (1000 - 60) * STEP_S * POWER_W
    eval_j = evals[0].energy_j + (50 - 5) * EVAL_STEP_S * EVAL_POWER_W
    assert est.energy_j == pytest.approx(50.0 + train_j + eval_j)
    train_s = sum(w.duration_s for w in train[:3]) + (1000 - 60) * STEP_S
    eval_s = evals[0].duration_s + (50 - 5) * EVAL_STEP_S
    assert est.time_s == pytest.approx(0.4 + train_s + eval_s)
    assert est.observed_s == pytest.approx(0.4 + evals[-1].end_s)


def test_interval_covers_the_true_energy_in_most_synthetic_runs():
    """95 % intervals from 12 noisy windows (3 % window-to-window noise) against the expected
    energy of the planned run: coverage is checked over 200 independent dry runs."""
    plan = dryrun.Plan(epochs=20, steps_per_epoch=500)
    covered, widths = 0, []
    for seed in range(200):
        ws = _windows(seed=seed, noise=0.03)
        est = dryrun.estimate(ws, plan)
        warm = ws[:est.train.energy.start]
        truth = (sum(w.energy_j for w in warm)
                 + (plan.total_steps(dryrun.TRAIN) - sum(w.steps for w in warm))
                 * STEP_S * POWER_W * (1 + 0.03 ** 2))  # E[d * p] with independent noise
        covered += est.energy_low_j <= truth <= est.energy_high_j
        widths.append((est.energy_high_j - est.energy_low_j) / truth)
    assert covered / 200 >= 0.9
    assert np.median(widths) < 0.15  # and not uselessly wide


def test_short_plan_uses_the_warm_up_rate():
    ws = _windows(noise=0.0)
    est = dryrun.estimate(ws, dryrun.Plan(epochs=1, steps_per_epoch=30))
    warm = ws[:3]
    assert est.energy_j == pytest.approx(sum(w.energy_j for w in warm) * 30 / 60)


def test_few_steady_windows_give_no_interval():
    est = dryrun.estimate(_windows(n=3, warm=1), dryrun.Plan(3, 100))
    assert math.isnan(est.energy_low_j) and math.isnan(est.time_high_s)
    assert any("no energy interval" in n for n in est.notes)
    assert math.isfinite(est.energy_j)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: dryrun.Plan(0, 10), ValueError, "epochs >= 1"),
    (lambda: dryrun.Plan.from_sizes(5, 10, 32), ValueError, "train_size >= batch_size"),
    (lambda: dryrun.estimate([], dryrun.Plan(1, 10)), NotEstimableError, "no windows measured"),
    (lambda: dryrun.estimate(_windows(), dryrun.Plan(1, 10, 2)), NotEstimableError,
     "no evaluation was measured"),
    (lambda: dryrun.estimate(_windows(kind="test"), dryrun.Plan(1, 10)), ValueError,
     "unknown window kind"),
    (lambda: dryrun.estimate(_windows(), dryrun.Plan(1, 10), confidence=95), ValueError,
     "confidence"),
    (lambda: dryrun.estimate([dryrun.Window("train", 0, 0, 1, 5)] * 3, dryrun.Plan(1, 10)),
     NotEstimableError, "steps > 0"),
])
def test_bad_input_is_refused_with_a_reason(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_plan_from_sizes_counts_full_batches_and_partial_evaluation():
    plan = dryrun.Plan.from_sizes(epochs=3, train_size=100, batch_size=32, val_size=40)
    assert plan.steps_per_epoch == 3
    assert plan.eval_steps_per_epoch == pytest.approx(1.25)
    assert plan.total_steps(dryrun.TRAIN) == 9


def test_to_dict_is_strict_json():
    est = dryrun.estimate(_windows(), dryrun.Plan(2, 100))
    data = json.loads(json.dumps(est.to_dict(), allow_nan=False))
    assert data["energy_kwh"] == pytest.approx(est.energy_kwh)
    assert data["train"]["energy"]["start"] == 3
    few = dryrun.estimate(_windows(n=3, warm=1), dryrun.Plan(3, 100)).to_dict()
    assert few["energy_low_j"] is None and json.dumps(few, allow_nan=False)


# ------------------------------------------------------------------ replay of recorded runs
def test_measured_training_matches_the_run_rule_on_an_h100_run():
    run = read_run(H100 / "resnet50" / "000")
    duration_s, energy_j, method = dryrun.measured_training(run)
    assert method == "gpu:nvml_counter"
    ev = run.events.set_index("event")["monotonic_s"]
    assert duration_s == pytest.approx(ev["epoch_end"].max() - ev["warmup_start"])
    assert 10_000 < energy_j < 15_000  # about 530 W for 23 s


def test_replay_of_an_h100_run_from_its_first_30_percent():
    r = dryrun.replay_run(H100 / "resnet50" / "000", observed_fraction=0.3)
    assert r.epochs_observed == 2
    assert r.observed_s == pytest.approx(0.3 * r.actual_time_s)
    time_err, energy_err = r.errors_pct()
    assert abs(time_err) < 2.0
    assert abs(energy_err) < 5.0
    assert r.estimate.train.energy.start >= 4  # epoch 0's four windows are warm-up by rule
    assert r.estimate.eval is not None


def test_replay_needs_a_steady_epoch_and_says_so():
    table = dryrun.replay_table([H100 / "vgg16" / "000"], observed_fraction=0.1)
    assert "a replay needs 2" in table.loc[0, "reason"]
    with pytest.raises(ValueError, match="exactly one"):
        dryrun.replay_run(H100 / "vgg16" / "000", observed_fraction=0.3, observed_s=5.0)
