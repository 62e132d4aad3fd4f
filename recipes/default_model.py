"""Reproduce tinyser's shipped default model (``tinyser.load_model("default")``).

    python recipes/default_model.py [--data ../shared/data] [--force]

1. The `tiny` frontier (``benchmarks/frontier.py``): candidate shapes within the
   Nano 33 BLE Sense budget, each cross-validated speaker-independently
   (speaker:5) on EMO-DB + RAVDESS actors 1-20, ``common6`` labels,
   ``cmsis_mfcc`` features. The shape with the best mean *validation* UA wins.
2. That shape is trained once more on every speaker (protocol ``final``: all
   but ~15 % of the speakers train, those choose the best epoch).
3. Its full-int8 export, with the cross-validation scores added to its
   metadata, becomes ``src/tinyser/assets/default.tflite``; ``docs/model-card.md``
   is written from the same runs.

Runs are resumable (``runs/frontier``, ``runs/default``); an existing default
model is replaced only with ``--force``. About 30 min on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _report  # noqa: E402
import frontier  # noqa: E402

from tinyser.cache import atomic_write  # noqa: E402
from tinyser.experiment import load_report  # noqa: E402
from tinyser.export import embed_metadata, export_run, read_metadata  # noqa: E402
from tinyser.inference import DEFAULT_MODEL  # noqa: E402
from tinyser.tflite import find_arena_size  # noqa: E402

LICENCES = {"emodb": "EMO-DB (Burkhardt et al., Interspeech 2005): distributed freely for research",
            "ravdess": "RAVDESS (Livingstone & Russo, PLoS ONE 2018): CC BY-NC-SA 4.0"}


def train_final(row: dict, data: Path, runs: Path) -> Path:
    out = runs / f"final-{row['name']}"
    if not (out / "report.json").exists():
        _report.timed_training(frontier.run_config(data, row["model"], row["model_params"], "final"), out)
    return out


def export_default(final_run: Path, cv: dict, row: dict, target: Path, force: bool) -> dict:
    if target.exists() and not force:
        raise SystemExit(f"{target}: already exists; pass --force to replace it")
    with tempfile.TemporaryDirectory() as tmp:
        (path, *_) = export_run(final_run, ["int8"], out=tmp)
        blob = path.read_bytes()
    meta = read_metadata(blob)
    meta["name"] = "tinyser-default"
    meta["evaluation"] = {
        "protocol": f"{frontier.PROTOCOL} (speaker-independent), {len(cv['folds'])} folds, same data, labels, "
                    "features and model shape; best epoch by validation UA",
        **{k: cv[k] for k in ("ua", "ua_std", "wa", "wa_std", "f1", "f1_std")},
        "per_class": cv["per_class"]}
    meta["licences"] = [LICENCES[c] for c in frontier.CORPORA]
    blob = embed_metadata(blob, meta)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda f: f.write(blob))
    return meta


def model_card(meta: dict, cv: dict, row: dict, final: dict, size: int, arena: int) -> str:
    ev = meta["evaluation"]
    win = float(meta["segments"]["window"])
    pc = "\n".join(f"| {k} | {100 * v['precision']:.1f} | {100 * v['recall']:.1f} | {100 * v['f1']:.1f} "
                   f"| {v['support']} |" for k, v in ev["per_class"].items())
    conf = "\n".join(f"| {lab} | " + " | ".join(map(str, r)) + " |"
                     for lab, r in zip(cv["labels"], cv["confusion"]["counts"]))
    val = final["folds"][0]["speakers"]["val"]
    return f"""# Model card: tinyser default model

`tinyser.load_model("default")`, and what `tinyser predict` / `tinyser listen` use unless `--model` is given.
File: `src/tinyser/assets/default.tflite` ({size / 1024:.1f} KB, full-int8, self-describing: labels,
frontend, standardisation, segments and these scores are in its `tinyser` metadata).
Reproduce: `python recipes/default_model.py --force` ({datetime.date.today().isoformat()}, tinyser {meta['tinyser']}).

## Model
- Architecture: `{row['model']}` {json.dumps(row['model_params'])} (Light-SERNet topology scaled down),
  {meta['params']:,} parameters, {meta['macs'] / 1e6:.1f} M MACs per {win:g} s window
  ({meta['macs'] / win / 1e6:.1f} M per second of audio).
- Input: {win:g} s windows at 16 kHz (this EMO-DB copy's clips are cut or zero-padded to exactly 2.0 s;
  RAVDESS clips are 2.4 s, whose last 0.4 s is dropped in training), `cmsis_mfcc` features (CMSIS-DSP `arm_mfcc_f32` definition: 1024-sample
  Hann frames every 256 samples, 40 HTK-mel bands 40-7600 Hz, natural log, 40 DCT coefficients),
  standardised per coefficient with training statistics, quantised to int8
  (scale {meta['input']['scale']:.5f}, zero point {meta['input']['zero_point']}).
- Output: 6 classes, `common6`: {', '.join(meta['labels'])}.
- Runs on TFLite Micro: {size / 1024:.1f} KB file, {arena:,} B arena (measured on this file with the
  TFLite Micro interpreter); see `docs/results.md` for the device budget.

## Training data
- EMO-DB (10 German actors, 535 clips; boredom dropped under `common6`) and RAVDESS speech actors 1-20
  (1,194 clips; calm merged into neutral, surprised dropped), as described in `../shared/data/README.md`.
  In all {final['n_clips']} clips.
- Final model: protocol `final`: every speaker trains except the validation speakers
  ({', '.join(val)}), which choose the best epoch ({final['folds'][0]['best_epoch'] + 1} of
  {final['folds'][0]['epochs_run']}). No augmentation.

## Evaluation (speaker-independent)
The final model has no test set. Its scores are those of the same configuration under **{frontier.PROTOCOL}**
cross-validation (five folds grouped by speaker, so no test speaker is ever heard in training; best epoch by
validation UA on speakers carved from the training part): **UA {100 * ev['ua']:.1f} ± {100 * ev['ua_std']:.1f}**,
WA {100 * ev['wa']:.1f} ± {100 * ev['wa_std']:.1f}, macro-F1 {100 * ev['f1']:.1f} ± {100 * ev['f1_std']:.1f} %
(mean ± std over folds; chance is 16.7 %). Its shape was chosen among the candidates in `docs/results.md`
by validation UA, not test UA.

Per class (all test folds pooled):

| class | precision % | recall % | F1 % | clips |
|---|---:|---:|---:|---:|
{pc}

Confusion (rows true, columns predicted):

| | {' | '.join(cv['labels'])} |
|---|{'---:|' * len(cv['labels'])}
{conf}

## Licences
{chr(10).join('- ' + v for v in meta['licences'])}

The model weights are derived from these corpora. Because RAVDESS is CC BY-NC-SA 4.0, treat the default model
as **non-commercial, share-alike**; train your own model (`tinyser train`) on data you may use commercially.

## Intended use and limits
- Intended: demos, research and prototyping of on-device emotion recognition; a starting point to fine-tune
  or retrain on your own data.
- Acted speech only: 30 actors (10 German, 20 North-American English) reading fixed sentences, in
  quiet studios. Spontaneous speech, other languages, children, far-field or noisy microphones will score
  lower, probably much lower.
- Six coarse acted categories; real emotion is graded and mixed. Do not use it to make decisions about people
  (hiring, policing, health, education): emotion recognition from voice is unreliable for individuals.
- Scores per window are not calibrated probabilities.
"""


def main():
    ap = argparse.ArgumentParser()
    _report.add_data_argument(ap)
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--force", action="store_true", help="replace the existing default model")
    args = ap.parse_args()
    rows = frontier.run_candidates(args.data, args.runs / "frontier", reference=False)
    row = frontier.choose(rows)
    print(f"chosen by validation UA: {row['name']} (val UA {100 * row['val_ua']:.1f})")
    cv = load_report(row["run"])
    final_run = train_final(row, args.data, args.runs / "default")
    meta = export_default(final_run, cv, row, DEFAULT_MODEL, args.force)
    blob = DEFAULT_MODEL.read_bytes()
    card = model_card(meta, cv, row, load_report(final_run), len(blob), find_arena_size(blob))
    atomic_write(ROOT / "docs" / "model-card.md", lambda f: f.write(card.encode()))
    print(f"{DEFAULT_MODEL}: written; docs/model-card.md updated")


if __name__ == "__main__":
    main()
