"""Reference checks of the prosody channels (``cmsis_mfcc`` with ``prosody=True``):
F0 on synthetic harmonic tones and glides against the truth, and F0 / voicing on
real clips of the four shared corpora against ``librosa.pyin``.

    python benchmarks/prosody.py [--data ../shared/data] [--clips-per-corpus 60]

Writes docs/prosody.json and the ``prosody`` section of docs/results.md.

Real clips: ``--clips-per-corpus`` clips drawn (seed 0) from each corpus; both
trackers see the same un-centred 64 ms frames every 16 ms (pyin: ``fmin`` 60,
``fmax`` 500 Hz, ``frame_length`` 1024, ``center=False``). Gross pitch error:
frames both call voiced whose F0 differs from pyin's by more than 20 %, over
those frames; voicing agreement: frames on which both make the same voiced /
unvoiced decision, over all frames.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _report  # noqa: E402

from tinyser.audio import load  # noqa: E402
from tinyser.corpora import iter_audio  # noqa: E402
from tinyser.features import get_config  # noqa: E402
from tinyser.features.prosody import analyse  # noqa: E402

SR = 16000
CORPORA = ("emodb", "ravdess", "tess", "savee")
CMD = "python benchmarks/prosody.py --data ../shared/data"


def harmonic(f0: np.ndarray, seconds: float = 2.0, n_harmonics: int = 8, tilt: float = 1.0,
             noise_db: float | None = None, seed: int = 0) -> np.ndarray:
    """A harmonic signal with instantaneous F0 ``f0`` (Hz, scalar or per sample), amplitudes 1/k^tilt."""
    n = int(seconds * SR)
    f = np.broadcast_to(np.asarray(f0, np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SR
    y = sum(np.sin(k * phase) / k ** tilt for k in range(1, n_harmonics + 1) if k * f.max() < SR / 2)
    y = 0.3 * y / np.max(np.abs(y))
    if noise_db is not None:
        rng = np.random.default_rng(seed)
        y = y + rng.standard_normal(n) * np.sqrt(np.mean(y ** 2)) * 10 ** (noise_db / 20)
    return y.astype(np.float32)


def frame_truth(f0: np.ndarray, cfg, n_frames: int) -> np.ndarray:
    """The true F0 at each frame's centre."""
    f = np.broadcast_to(np.asarray(f0, np.float64), (int(2.0 * SR),))
    return f[np.arange(n_frames) * cfg.hop_length + cfg.frame_length // 2]


def synthetic(cfg) -> dict:
    n = int(2.0 * SR)
    cases = {}
    for f0 in (60, 70, 85, 100, 120, 150, 180, 220, 260, 300, 350, 400, 450, 500):
        cases[f"tone {f0} Hz"] = np.full(n, float(f0))
    cases["glide 80->400 Hz"] = np.geomspace(80, 400, n)
    cases["glide 400->80 Hz"] = np.geomspace(400, 80, n)
    cases["glide 120->240 Hz"] = np.geomspace(120, 240, n)
    t = np.arange(n) / SR
    cases["vibrato 200 Hz +-6 %"] = 200 * (1 + 0.06 * np.sin(2 * np.pi * 5 * t))
    rows, worst = [], 0.0
    for name, f0 in cases.items():
        for variant, kw in (("1/k", {}), ("flat", {"tilt": 0.0}), ("1/k, 20 dB SNR", {"noise_db": -20.0})):
            p = analyse(harmonic(f0, **kw), cfg)
            truth = frame_truth(f0, cfg, len(p["f0"]))
            v = p["voiced"]
            err = np.abs(p["f0"][v] / truth[v] - 1) if v.any() else np.array([np.inf])
            rows.append({"signal": name, "spectrum": variant, "voiced_fraction": float(v.mean()),
                         "max_rel_error": float(err.max()), "median_rel_error": float(np.median(err))})
            worst = max(worst, float(err.max()))
    return {"cases": rows, "max_rel_error": worst,
            "min_voiced_fraction": min(r["voiced_fraction"] for r in rows)}


def noise_cases(cfg) -> dict:
    n, rng = int(2.0 * SR), np.random.default_rng(0)
    t = np.arange(n) / SR
    white = rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    freq = np.fft.rfftfreq(n, 1 / SR)
    spec[1:] /= np.sqrt(freq[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    out = {}
    for name, y in {"white noise": 0.1 * white / white.std(), "pink noise": 0.1 * pink / pink.std(),
                    "silence": np.zeros(n), "DC 0.5": np.full(n, 0.5),
                    "hum 50 Hz + 4 harmonics": sum(0.1 / k * np.sin(2 * np.pi * 50 * k * t) for k in range(1, 6))}.items():
        out[name] = float(analyse(y.astype(np.float32), cfg)["voiced"].mean())
    return out


def pick_clips(data: Path, per_corpus: int) -> list[Path]:
    rng = np.random.default_rng(0)
    picked = []
    for corpus in CORPORA:
        files = sorted(iter_audio(data / corpus))
        picked += [files[i] for i in sorted(rng.choice(len(files), min(per_corpus, len(files)), replace=False))]
    return picked


def real(data: Path, per_corpus: int, cfg) -> dict:
    import librosa

    # frames, agree, pyin voiced, both voiced, gross errors, frames away from pyin's voicing changes, agree there
    totals = {c: np.zeros(7) for c in CORPORA}
    table, target, group = [], [], []  # per frame: what a learned voicing rule may read; pyin's decision; clip
    for clip, path in enumerate(pick_clips(data, per_corpus)):
        corpus = path.relative_to(data).parts[0]
        y = load(path, SR)
        p = analyse(y, cfg)
        f0, flag, _ = librosa.pyin(y.astype(np.float64), fmin=60, fmax=500, sr=SR, frame_length=cfg.frame_length,
                                   hop_length=cfg.hop_length, center=False)
        k = min(len(f0), len(p["f0"]))
        ours, theirs, v_ours, v_theirs = p["f0"][:k], f0[:k], p["voiced"][:k], flag[:k]
        both = v_ours & v_theirs
        gross = np.abs(ours[both] / theirs[both] - 1) > 0.2
        change = np.flatnonzero(np.diff(v_theirs.astype(int)) != 0)
        near = np.zeros(k, bool)
        for c in change:  # within 2 frames (32 ms) of a voicing change: the 64 ms frame straddles it
            near[max(0, c - 1):c + 3] = True
        totals[corpus] += [k, np.sum(v_ours == v_theirs), v_theirs.sum(), both.sum(), gross.sum(), np.sum(~near),
                           np.sum((v_ours == v_theirs) & ~near)]
        s, loud = p["strength"][:k], p["loudness"][:k]
        sp = np.pad(s, 2, mode="edge")
        table.append(np.stack([s, loud, loud - loud.max(), sp[:-4], sp[1:-3], sp[3:-1], sp[4:]], 1))
        target.append(v_theirs)
        group.append(np.full(k, clip))
    per = {}
    for name, (frames, agree, pv, both, gross, far, agree_far) in {**totals, "all": sum(totals.values())}.items():
        per[name] = {"frames": int(frames), "voicing_agreement": float(agree / frames),
                     "voicing_agreement_away_from_changes": float(agree_far / max(far, 1)),
                     "pyin_voiced": int(pv), "both_voiced": int(both),
                     "gross_pitch_error": float(gross / max(both, 1)),
                     "pyin_voiced_we_call_unvoiced": float((pv - both) / max(pv, 1))}
    return {"clips": len(pick_clips(data, per_corpus)), "per_corpus": per,
            "learned_rule_agreement": learned_rule(np.concatenate(table), np.concatenate(target),
                                                   np.concatenate(group))}


def learned_rule(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Voicing agreement with pyin of the best rule a small learner finds on our own per-frame
    values (voicing strength, loudness, loudness below the clip's loudest frame, the strengths
    of the two frames either side; a non-causal rule the device could not run): a depth-6
    decision tree fitted to pyin's decisions, scored on held-out clips (4 folds by clip)."""
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=50, random_state=0)
    return float(cross_val_score(tree, x, y, groups=groups, cv=GroupKFold(4)).mean())


def markdown(r: dict) -> str:
    s, rl = r["synthetic"], r["real"]["per_corpus"]
    worst = max(s["cases"], key=lambda c: c["max_rel_error"])
    lines = [
        "## Prosody channels: reference checks",
        "",
        "`cmsis_mfcc` with `prosody=True` appends per frame log-F0 in semitones above 50 Hz (0 when unvoiced), "
        "the voicing strength (window-corrected normalised autocorrelation peak; the autocorrelation of the "
        "frame's 50-4000 Hz power spectrum at even lags as a DCT-I through a real FFT of 256 points, the two odd "
        "lags beside the chosen peak summed directly) and the loudness in dB (`tinyser.features.prosody`).",
        "",
        f"Reproduce: `{CMD}` ({r['machine']}, {r['seconds']:.0f} s).",
        "",
        f"**Synthetic** (2 s harmonic tones 60-500 Hz and glides, 1/k and flat spectra, also with noise at 20 dB "
        f"SNR; {len(s['cases'])} signals): largest F0 error over voiced frames "
        f"**{100 * s['max_rel_error']:.2f} %** (goal 1 %; worst: {worst['signal']}, {worst['spectrum']}); "
        f"at least {100 * s['min_voiced_fraction']:.1f} % of each signal's frames voiced.",
        "",
        "Noise and silence, share of frames called voiced: " + ", ".join(
            f"{k} {100 * v:.1f} %" for k, v in r["noise"].items()) + ".",
        "",
        f"**Real speech** against `librosa.pyin` on {r['real']['clips']} clips (seeded draw, same frames):",
        "",
        "| corpus | frames | voicing agreement | agreement > 2 frames from a pyin voicing change | "
        "gross pitch error (> 20 %, frames both call voiced) | pyin-voiced frames we call unvoiced |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {name} | {v['frames']:,} | {100 * v['voicing_agreement']:.1f} % | "
          f"{100 * v['voicing_agreement_away_from_changes']:.1f} % | "
          f"{100 * v['gross_pitch_error']:.2f} % | {100 * v['pyin_voiced_we_call_unvoiced']:.1f} % |"
          for name, v in rl.items()),
        "",
        f"Goals: F0 within 1 % on synthetic signals ({'met' if s['max_rel_error'] <= 0.01 else 'NOT met'}); "
        f"gross pitch error < 5 % ({'met' if rl['all']['gross_pitch_error'] < 0.05 else 'NOT met'}, "
        f"{100 * rl['all']['gross_pitch_error']:.2f} %); voicing agreement >= 90 % "
        f"({'met' if rl['all']['voicing_agreement'] >= 0.9 else 'NOT met'}, "
        f"{100 * rl['all']['voicing_agreement']:.1f} %).",
        "",
        "About the voicing gap: most disagreements are frames we call voiced and pyin does not (pyin's HMM "
        "ends voicing earlier at onsets and offsets; our 64 ms frame straddles them): away from pyin's voicing "
        "changes agreement is a few points higher (table). Tuning on these clips (a 50-4000 Hz band, voicing "
        "threshold 0.45-0.7, octave ratio 0.85-0.9, level floor -70 to -45 dB, YIN's cumulative-mean "
        "normalised difference instead of the window-corrected autocorrelation, a lag-dependent threshold) "
        "moved agreement between 81 and 85 %; no frame-local rule reached 90 %. Nor does a learned one: a "
        "depth-6 decision tree fitted to pyin's decisions on our own values (each frame's voicing strength and "
        "loudness, its loudness below the clip's loudest frame, the strengths of the two frames either side: "
        "more than the device could use, as it looks ahead) agrees on "
        f"{100 * r['real']['learned_rule_agreement']:.1f} % of the frames of held-out clips (4 folds by clip): "
        "the gap is in what a 64 ms autocorrelation sees, not in the threshold. The channels keep the "
        "voicing strength itself, so a model is not bound to the threshold.",
        "",
        "On the device: the C frontend computes the same channels in the same float32 order (its portable "
        "FFT differs from CMSIS-DSP's by rounding). Streaming every EMO-DB clip with prosody and adaptive "
        "standardisation on, 94 of 6,578,484 int8 model inputs differ by 1 LSB, no frame's voicing differs "
        "(0 of 65,270) and no voiced frame's pitch moves by half a semitone "
        "(`pytest -s tests/test_deploy.py -k prosody_and_adaptive_on_emodb`). Its cost on the emulated "
        "Cortex-M4, instructions per second of audio with and without the channels: the next section "
        "(`benchmarks/prosody_device.py`).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _report.add_data_argument(ap)
    ap.add_argument("--clips-per-corpus", type=int, default=60)
    args = ap.parse_args()
    cfg = get_config("cmsis_mfcc", prosody=True)
    start = time.perf_counter()
    results = {"synthetic": synthetic(cfg), "noise": noise_cases(cfg),
               "real": real(args.data, args.clips_per_corpus, cfg)}
    results.update(seconds=time.perf_counter() - start, machine=_report.machine(), command=CMD)
    _report.write("prosody", results, markdown(results), page="results.md")
    print(markdown(results))


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown-only"]:  # re-render docs from docs/prosody.json
        import json

        r = json.loads((_report.DOCS / "prosody.json").read_text())
        _report.write("prosody", r, markdown(r), page="results.md")
    else:
        main()
