"""Checks of experiments.py's logic that decides verdicts, sweeps and cache keys, on synthetic
runs (no dlion-train): python3 -m unittest discover -s benchmarks -p 'test_*.py'."""
import dataclasses
import math
import pathlib
import tempfile
import unittest

import experiments
from experiments import ACCURACY, LOSS, BY_NAME, Budget, Row, Runs, better_verdict, paired_interval


def summary(loss=2.0, accuracy=0.5, **fields):
    """A dlion-train summary with the fields the report reads."""
    return dict(test_loss=loss, test_accuracy=accuracy, steps=100, parameters=1000, bytes_sent_per_rank=1000,
                bytes_received_per_rank=1000, synchronizations=100, wall_seconds=1.0, elapsed_seconds=1.0,
                dgc_steady_bits_per_parameter_step=0.1, dgc_steady_steps=10, **fields)


def row(name, losses, metric=LOSS):
    return Row(BY_NAME[name], 4, {}, 1, [summary(loss=v, accuracy=v) for v in losses], metric)


class FakeRuns:
    """Runs whose tuning-seed loss is a parabola in log3(factor), least at `best`; above `diverge` they diverge."""

    def __init__(self, best, diverge=math.inf):
        self.best, self.diverge, self.asked = best, diverge, []

    def get(self, method, factor, ranks, seed):
        self.asked.append(factor)
        if factor > self.diverge:
            return {"diverged": True, "elapsed_seconds": 1.0}
        return summary(loss=2 + (math.log(factor / self.best, 3)) ** 2)


class Verdicts(unittest.TestCase):
    def test_a_lower_loss_is_better(self):
        self.assertEqual(better_verdict(-0.05, 0.01, metric=LOSS), "holds")
        self.assertEqual(better_verdict(+0.05, 0.01, metric=LOSS), "does not hold")
        self.assertEqual(better_verdict(-0.005, 0.01, metric=LOSS), "not resolved at this noise")

    def test_a_higher_accuracy_is_better(self):
        self.assertEqual(better_verdict(+0.5, 0.1), "holds")
        self.assertEqual(better_verdict(-0.5, 0.1), "does not hold")

    def test_within_a_margin(self):
        # 0.015 nats worse, ± 0.004: within 0.02 of the better method, outside 0.01.
        self.assertEqual(better_verdict(0.015, 0.004, margin=0.02, metric=LOSS), "holds")
        self.assertEqual(better_verdict(0.015, 0.004, margin=0.01, metric=LOSS), "does not hold")

    def test_paired_interval(self):
        a, b = row("D-Lion (MaVo)", [2.0, 2.1, 2.2]), row("TernGrad", [2.1, 2.1, 2.1])
        mean, half = paired_interval(a, b)
        self.assertAlmostEqual(mean, 0.0)
        self.assertAlmostEqual(half, 4.303 * 0.1 / math.sqrt(3))


class Sweeps(unittest.TestCase):
    def study(self, factors=(1 / 3, 1, 3)):
        return dataclasses.replace(experiments.studies(arguments())["gpt"], lr_factors=factors)

    def test_widens_past_the_top_edge_until_bracketed(self):
        runs = FakeRuns(best=9)
        sweep, best = experiments.tune(runs, BY_NAME["Global AdamW"], 4, self.study(), arguments(widen=2))
        self.assertEqual(best, 9)
        self.assertEqual(sorted(sweep), [1 / 3, 1, 3, 9, 27])

    def test_widens_past_the_bottom_edge(self):
        sweep, best = experiments.tune(FakeRuns(best=1 / 9), BY_NAME["D-Lion (MaVo)"], 4, self.study(), arguments(widen=2))
        self.assertAlmostEqual(best, 1 / 9)
        self.assertEqual(len(sweep), 5)

    def test_stops_at_the_widen_limit_and_at_a_bracketed_optimum(self):
        sweep, best = experiments.tune(FakeRuns(best=1000), BY_NAME["Global AdamW"], 4, self.study(), arguments(widen=1))
        self.assertEqual(sorted(sweep), [1 / 3, 1, 3, 9])
        sweep, _ = experiments.tune(FakeRuns(best=1), BY_NAME["Global AdamW"], 4, self.study(), arguments(widen=2))
        self.assertEqual(sorted(sweep), [1 / 3, 1, 3])

    def test_a_diverged_run_is_never_best(self):
        sweep, best = experiments.tune(FakeRuns(best=9, diverge=2), BY_NAME["DGC, warm-up 4/90 of the run"], 4,
                                       self.study(), arguments(widen=2))
        self.assertEqual(best, 1)
        self.assertTrue(sweep[3]["diverged"])


class Budgets(unittest.TestCase):
    def test_the_mlp_keeps_its_cache_keys(self):
        # The flags of a run cached before the GPT study existed: the same key must come out.
        with tempfile.TemporaryDirectory() as directory:
            runs = Runs(pathlib.Path(directory) / "r.json", True, Budget(epochs=2))
            captured = []
            runs.run = lambda name, flags, ranks: captured.append(flags) or summary()
            runs.get(BY_NAME["Global AdamW"], 1 / 3, 4, 0)
        self.assertEqual(captured, [["--optimizer", "global-adamw", "--lr", "0.000333333", "--weight-decay", "0.03",
                                     "--seed", "0", "--epochs", "2"]])

    def test_gpt_tokens_are_the_same_at_every_rank_count(self):
        budget = Budget(tokens=2 * 2**20)
        self.assertEqual(budget.flags(4), ["--steps", "1024", "--warmup-steps", "102"])
        self.assertEqual(budget.flags(16), ["--steps", "256", "--warmup-steps", "25"])

    def test_dgc_warm_up_is_a_share_of_the_steps(self):
        with tempfile.TemporaryDirectory() as directory:
            runs = Runs(pathlib.Path(directory) / "r.json", True, Budget(tokens=2 * 2**20), ("--model", "gpt"))
            captured = []
            runs.run = lambda name, flags, ranks: captured.append(flags) or summary()
            runs.get(BY_NAME["DGC, warm-up 4/90 of the run"], 1, 8, 0)
        self.assertEqual(captured[0][:2], ["--model", "gpt"])
        self.assertEqual(captured[0][-2:], ["--dgc-warmup-steps", str(round(4 / 90 * 512))])


class Report(unittest.TestCase):
    def test_gpt_claims_read_as_losses(self):
        study = experiments.studies(arguments())["gpt"]
        losses = {name: 2.0 for name in study.methods}
        losses.update({"Global AdamW": 1.90, "Global Lion": 1.95, "D-Lion (MaVo)": 1.96, "TernGrad": 2.05})
        rows = {(name, 4): Row(BY_NAME[name], 4, {1: summary(loss=loss)}, 1,
                               [summary(loss=loss + d) for d in (0.0, 0.004, -0.004)], LOSS)
                for name, loss in losses.items()}
        text = "\n".join(experiments.claims(rows, 4, study))
        # 0.06 nats behind Global AdamW: not within 0.02.
        self.assertIn("within 0.02 nats/char of the better global method, at ~1/30 of its bytes:** does not hold", text)
        self.assertIn("MaVo − Global AdamW: +0.060 [+0.060, +0.060] nats/char", text)
        # 0.09 nats below TernGrad, with the same (synthetic) bits: lower loss, but not fewer bits.
        self.assertIn("lower in validation loss than TernGrad with fewer bits:** does not hold", text)
        lines = experiments.section(dataclasses.replace(study, ranks=(4,)), rows, arguments())
        self.assertTrue(any(line.startswith("| D-Lion (MaVo) | 4 | 0.0003 (×1) | 3 | 1.960 ± 0.004 |") for line in lines))


def arguments(*flags, **overrides):
    """experiments.py's command line, with `overrides`."""
    parsed = experiments.command_line().parse_args(list(flags))
    for name, value in overrides.items():
        setattr(parsed, name, value)
    return parsed


if __name__ == "__main__":
    unittest.main()
