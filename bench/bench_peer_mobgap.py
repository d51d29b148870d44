"""Peer comparison: our step detector against mobgap's lower-back initial-contact detectors.

Same data, same clip-like resampling and int16 conversion, same one-to-one matching
(strideclip.evaluation.evaluate). mobgap's detectors get the gravity-aligned vertical acceleration (the
mean acceleration direction of the recording) and two horizontal axes, in m/s^2, as their body
frame expects; IcdShinImproved uses the norm. mobgap works offline on whole recordings, so it
has no streaming latency to report. Needs `pip install -e '.[bench]'` (make bench does it).
Run: .venv-bench/bin/python bench/bench_peer_mobgap.py [--rate-hz 208]
"""
import argparse
import time
import warnings

import numpy as np

from strideclip.evaluation import evaluate as ev

G = 9.80665


def mobgap_detector(name: str):
    import pandas as pd
    from mobgap.initial_contacts import IcdIonescu, IcdShinImproved

    def run(counts: np.ndarray, rate_hz: int):
        acc = counts[:, :3].astype(float) * ev.ACCEL_UG_PER_LSB / 1e6
        up = acc.mean(axis=0)
        up /= np.linalg.norm(up)
        h1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
        h1 /= np.linalg.norm(h1)
        h2 = np.cross(up, h1)
        zeros = np.zeros(len(acc))
        df = pd.DataFrame({"acc_is": acc @ up * G, "acc_ml": acc @ h1 * G, "acc_pa": acc @ h2 * G,
                           "gyr_is": zeros, "gyr_ml": zeros, "gyr_pa": zeros})
        algo = IcdIonescu() if name == "IcdIonescu" else IcdShinImproved(axis="norm")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ic = algo.detect(df, sampling_rate_hz=rate_hz).ic_list_["ic"].to_numpy()
        return ic / rate_hz, None, np.full(len(ic), -1)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate-hz", type=int, default=208, choices=(104, 208, 416))
    rate = parser.parse_args().rate_hz
    detectors = {"StrideClip (clipcore)": ev.clipcore_detector(rate)}
    try:
        detectors["mobgap IcdIonescu"] = mobgap_detector("IcdIonescu")
        detectors["mobgap IcdShinImproved"] = mobgap_detector("IcdShinImproved")
    except ImportError:
        print("mobgap is not installed: `pip install -e '.[bench]'` (make bench) for the comparison")
    print(f"Initial-contact detection at {rate} Hz (one-to-one matching; errors = detected - reference)")
    header = f"{'data set':10s} {'detector':24s} {'F1':>6s} {'prec':>6s} {'recall':>6s} {'med|e| ms':>9s} " \
             f"{'mean e ms':>9s} {'cad err':>8s} {'lat p95':>8s} {'s/hour':>7s}"
    print(header)
    for dataset in ("alcantara", "voisard", "adeptdata", "sim"):
        for name, det in detectors.items():
            t0 = time.perf_counter()
            out = ev.evaluate(dataset, rate_hz=rate, detector=det)
            if dataset == "adeptdata":
                print(f"{dataset:10s} {name:24s} {'':>6s} {'':>6s} {'':>6s} {'':>9s} {'':>9s} "
                      f"{out['cadence_abs_error_spm_median']:8.2f} {'':>8s} {out['compute_s_per_hour']:7.2f}")
                continue
            lat = out["latency_ms_p95"]
            print(f"{dataset:10s} {name:24s} {out['f1']:6.3f} {out['precision']:6.3f} {out['recall']:6.3f} "
                  f"{out['median_abs_error_ms'] or float('nan'):9.1f} {out['mean_error_ms'] or float('nan'):9.1f} "
                  f"{out['cadence_abs_error_spm_median'] or float('nan'):8.2f} "
                  f"{lat if lat is not None else float('nan'):8.1f} {out['compute_s_per_hour']:7.2f}"
                  f"   ({time.perf_counter() - t0:.0f} s)")
    print("cad err: median |cadence error| in steps/min (per trial; adeptdata: per 60-s window vs the ankle)")


if __name__ == "__main__":
    main()
