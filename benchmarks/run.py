"""Run every benchmark (benchmarks/bench_*.py), print medians, write benchmarks/results/<name>.json.

Each bench module defines `run(quick: bool) -> dict` of named figures (medians, with units in the
names, e.g. `steps_per_s_median`). `python benchmarks/run.py [--quick] [NAME ...]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. bounce data")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for a smoke run)")
    args = ap.parse_args()
    files = sorted(HERE.glob("bench_*.py"))
    if args.names:
        files = [f for f in files if f.stem.removeprefix("bench_") in args.names]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    failed = 0
    for f in files:
        name = f.stem.removeprefix("bench_")
        spec = importlib.util.spec_from_file_location(f.stem, f)
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(mod)
        if getattr(mod, "OPT_IN", False) and name not in args.names:
            print(f"== {name}: skipped (it takes hours; run it by name: python benchmarks/run.py {name})", flush=True)
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            res = mod.run(quick=args.quick)
        except Exception as e:  # one broken benchmark must not hide the others
            print(f"   FAILED: {type(e).__name__}: {e}", flush=True)
            failed += 1
            continue
        res = {"benchmark": name, "seconds": round(time.perf_counter() - t0, 1),
               "date": time.strftime("%Y-%m-%d"),
               "machine": {"cpu_count": __import__("os").cpu_count(), "platform": platform.platform()}, **res}
        for k, v in res.items():
            if k not in ("benchmark", "machine", "date"):
                print(f"   {k:<48} {v}")
        tmp = out_dir / f"{name}.json.tmp"
        tmp.write_text(json.dumps(res, indent=2))
        tmp.replace(out_dir / f"{name}.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
