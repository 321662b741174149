"""`genworld eval`: long-horizon consistency report of a trained run against simulator ground truth.

Rolls the model open loop with the true actions on held-out episodes (RUN/split.json "val" first) and
scores it with the copy-last and constant-velocity baselines and the ground truth itself: PSNR/SSIM per
horizon, valid horizon and drift (AUC against a physical-variance run, slope), proprioception and
object-state error, identity (persistence, attribute drift, identity switches, subject consistency),
physics violations (vanish, spawn, teleport, overlap, size, colour, energy, gravity, momentum in free
collisions, Physics-IQ-style motion masks), cross-modal causality (sound/touch onsets without contact),
KD-local between the model's and the world's frames, a violation-of-expectation surprise test and
controllability. Writes REPORT/report.json (schema genworld.report/1), report.md, PNG curves and
side-by-side videos (ground truth | model) of the worst and a typical episode. Also runs the model and the
true world together for --free-steps steps from a few contexts with the same actions, scores the model's
objects against the world's (persistence, spawn, colour and size change, per quarter of the run), and
reports the model's reference-free start-end drift (sharpness, colour KL, palette purity of the first vs the
last 15% of frames) against the ground truth's. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  genworld eval --run runs/bounce --data data/bounce --out report
  genworld eval --run runs/bounce --data data/bounce --out report --episodes 8 --horizon 16
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="consistency report of a run: accuracy per horizon, identity, physics, "
                       "causality, surprise, controllability", description=__doc__, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run directory (genworld train --out)")
    p.add_argument("--data", required=True, help="dataset directory of the same world (genworld collect --out)")
    p.add_argument("--out", required=True, help="report directory (created): report.json, report.md, *.png, *.mp4")
    p.add_argument("--context", type=int, default=4, help="real steps given before predicting (default 4)")
    p.add_argument("--horizon", type=int, default=32, help="open-loop steps predicted (default 32)")
    p.add_argument("--episodes", type=int, default=20,
                   help="episodes to evaluate: held-out ones first, then others (said in the report; default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed for surprise pairs and alternative actions (default 0)")
    p.add_argument("--surprise-pairs", type=int, default=8, help="clip pairs per violation type (default 8)")
    p.add_argument("--free-steps", type=int, default=960,
                   help="steps of each free run beside the world, also scored for start-end drift (default 960; "
                        "0 skips both)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genworld.evaluate.config import EvalConfig
    from genworld.evaluate.evaluator import evaluate
    from genworld.evaluate.report import _fmt

    cfg = EvalConfig(context=args.context, horizon=args.horizon, episodes=args.episodes, seed=args.seed,
                     surprise_pairs=args.surprise_pairs, free_steps=args.free_steps)
    r = evaluate(args.run, args.data, args.out, cfg, progress=not args.quiet, device=args.device)

    def get(section: str, key: str) -> str:
        v = r.get(section, {}).get(key)
        return "n/a" if v is None else _fmt(v)

    ps = r["per_horizon"]["psnr"]
    if r.get("actions") == "latent":
        la = r["latent_actions"]
        print(f"wrote {args.out}/report.json and report.md ({r['episodes']} episodes, horizon {r['horizon']}, "
              f"latent actions K = {la['k']}, {r['seconds']:.0f} s)")
        print(f"  PSNR h=1 {ps['model'][0]:.2f} dB (copy-last {ps['copy_last'][0]:.2f}); valid horizon "
              f"{r['valid_horizon']}; controllability {la['controllability']:.4f}")
        print(f"  latent -> true action probe accuracy {get('latent_actions', 'probe_accuracy')} (majority "
              f"{get('latent_actions', 'majority_accuracy')}), NMI {get('latent_actions', 'nmi')}"
              + (f" ({la['probe_reason']})" if la.get("probe_reason") else ""))
        return 0
    print(f"wrote {args.out}/report.json and report.md ({r['episodes']} episodes, horizon {r['horizon']}, "
          f"{r['timing']['total']:.0f} s)")
    print(f"  PSNR h=1 {ps['model'][0]:.2f} dB (copy-last {ps['copy_last'][0]:.2f}), h={r['horizon']} "
          f"{ps['model'][-1]:.2f} dB (copy-last {ps['copy_last'][-1]:.2f}); valid horizon {r['valid_horizon']}")
    auc = r.get("drift", {}).get("auc", {}).get("psnr", {})
    if auc.get("available") is False:
        print(f"  PSNR drift AUC n/a ({auc['reason']})")
    elif auc:
        cv = f", const-velocity {auc['const_velocity']:.3f}" if "const_velocity" in auc else ""
        print(f"  PSNR drift AUC {auc['model']:.3f} (0 = copy-last, 1 = physical-variance ceiling{cv}); PSNR slope "
              f"{r['drift']['slope']['psnr']['model']:+.3f} dB/step")
    se = r.get("drift", {}).get("start_end", {})
    if se.get("available") is False:
        print(f"  start-end drift n/a ({se['reason']})")
    elif se:
        m, g = se["model"], se["ground_truth"]
        print(f"  start-end drift over {se['steps']} free steps: Δ sharpness {m['delta']['sharpness']:+.3f}, colour KL "
              f"{m['delta']['colour_kl']:+.3f}, palette purity {m['delta']['palette_purity']:+.3f} (GT "
              f"{g['delta']['sharpness']:+.3f} / {g['delta']['colour_kl']:+.3f} / {g['delta']['palette_purity']:+.3f}); "
              f"{m['flagged']:.0%} of {se['contexts']} runs flagged")
    fr = r.get("free_run", {})
    if fr.get("available") is False:
        print(f"  free run beside the world n/a ({fr['reason']})")
    elif fr:
        qp = " / ".join(_fmt(q["persistence"]) for q in fr["quarters"])
        print(f"  free run of {fr['steps']} steps beside the world ({fr['contexts']} runs): persistence "
              f"{get('free_run', 'persistence')} (by quarter {qp}), spawn {get('free_run', 'spawn_rate')}, colour "
              f"change {get('free_run', 'colour_change_rate')}, size change {get('free_run', 'size_change_rate')}")
    print(f"  persistence {get('identity', 'persistence')}, vanish {get('physics', 'vanish_rate')}, "
          f"teleport {get('physics', 'teleport_rate')}, surprise {get('surprise', 'accuracy')}, "
          f"controllability {get('controllability', 'ratio')}")
    d = r["distribution"]
    print(f"  KD-local at h={d['horizons'][0]}..{d['horizons'][1]}: model {get('distribution', 'kd_local')}, "
          f"copy-last {_fmt(d['baselines']['copy_last'])}, floor {get('distribution', 'floor')} (lower is closer to "
          "the world's frames)")
    def num(v: float | None, fmt: str = ".3f") -> str:
        return "n/a" if v is None else f"{v:{fmt}}"

    sc, mo = r.get("subject", {}), r.get("motion", {})
    if "sc_local" in sc:
        piq = (f"physics_iq_local {num(mo['physics_iq_local'], '.1f')} (copy-last "
               f"{num(mo['baselines']['copy_last']['score'], '.1f')}, ground truth 100)"
               if mo.get("physics_iq_local") is not None else "physics_iq_local n/a (no simulator for its physical "
               "variance; raw mask IoUs in the report)")
        print(f"  SC-local {sc['sc_local']:.3f} (ground truth {sc['gt']:.3f}, gap {sc['gap']:+.3f}: below 0 = more "
              f"static than the world); {piq}")
    phys, ref_phys = r.get("physics", {}), r.get("reference", {}).get("physics", {})
    if phys.get("free_collisions"):
        print(f"  momentum: mean change {num(phys['momentum_change'])} over {phys['free_collisions']} free collisions, "
              f"{num(phys['momentum_rate'])} flagged (ground truth through the same estimator: "
              f"{num(ref_phys.get('momentum_change'))})")
    elif "free_collisions" in phys:
        print(f"  momentum: no free collision the prediction shows to check ({ref_phys.get('free_collisions', 0)} in "
              "the ground truth's windows)")
    for n in r.get("notes", []):
        print(f"  note: {n}")
    return 0
