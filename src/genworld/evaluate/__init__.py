"""Evaluation: long-horizon consistency of a world model against simulator ground truth (`genworld eval`).

`evaluator.evaluate(run, data, out, EvalConfig(...))` writes the report; the detectors live in
`objects`, `consistency`, `causality` and `calibrate`; see docs/evaluation.md.
"""
