"""The device cost of the prosody channels (issue 17, item 4): the C frontend
on an emulated Cortex-M4F (QEMU mps2-an386, ``-icount``; the harness of
``benchmarks/device.py`` / ``tinyser deploy verify``) with and without the
prosody channels (log-F0 in semitones, voicing strength, loudness; optionally
their deltas), portable C and CMSIS-DSP frontends, on the same real clips.

Writes docs/prosody_device.json and the ``prosody_device`` section of
docs/results.md.

    python benchmarks/prosody_device.py --data ../shared/data --tflm ../shared/third_party

The prosody models are the default model's architecture (``tiny``, same
parameters, window and classes) with untrained weights at the wider input
(43 or 46 features a frame), full-int8 calibrated on the clips' features, the
default model's frontend metadata with ``prosody`` (and ``prosody_deltas``) on:
its MFCC statistics and adaptive standardisation unchanged, the prosody
channels' statistics fitted on the same clips. The frontend's cost does not
depend on the weights.

The per-frame pitch/voicing/loudness analysis (``tinyser_frontend_prosody``)
also feeds the voice activity (``TINYSER_VAD``, on by default), so the shipped
default firmware already runs it; the cost of the channels is therefore
measured against both the shipped build (voice activity on) and a plain MFCC
build (``TINYSER_VAD 0``, no analysis at all).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from tinyser.cache import atomic_write  # noqa: E402

COMMAND = "python benchmarks/prosody_device.py --data ../shared/data --tflm ../shared/third_party"
GOAL = 2e6  # instructions per second of audio for the extra channels (issue 17)


def prosody_model(default: Path, clips: list[Path], out: Path, deltas: bool = False) -> Path:
    """The default model's architecture, labels, window and frontend with the prosody
    channels on (and their deltas): untrained weights, full-int8 calibrated on
    ``clips``' features; MFCC statistics and adaptive settings as the default's."""
    from tinyser.deploy.firmware import _clip_pcm
    from tinyser.features.base import Frontend, Standardizer
    from tinyser.models import build_model, count_macs, count_params
    from tinyser.tflite import LiteRTModel, TensorSpec, TrainingSummary, convert, embed_metadata, read_model

    _, meta = read_model(default)
    fe = meta.frontend
    cfg = fe.config.replace(prosody=True, prosody_deltas=deltas)
    sr = cfg.sample_rate
    raw = np.concatenate([cfg.compute(meta.segments.split(
        _clip_pcm(c, sr, 4.0).astype(np.float32) / np.float32(32768.0), sr)) for c in clips])
    n = fe.config.n_features
    fitted = Standardizer.fit(raw)
    std = Standardizer(fe.standardizer.mean + fitted.mean[n:], fe.standardizer.std + fitted.std[n:])
    new_fe = Frontend(cfg, std, fe.adaptive)
    shape = (int(meta.input.shape[1]), cfg.n_features)
    model = build_model(meta.model, shape, len(meta.labels), **meta.model_params)
    lite = convert(model, "int8", new_fe.standardize(raw).reshape(-1, *shape))
    r = LiteRTModel(lite)
    new = dataclasses.replace(
        meta, frontend=new_fe, input=TensorSpec.from_details(r.input_details),
        output=TensorSpec.from_details(r.output_details), macs=count_macs(model), params=count_params(model),
        training=TrainingSummary(note="untrained weights: for size and speed only"), evaluation=None)
    atomic_write(out, lambda f: f.write(embed_metadata(lite, new)))
    return out


def row_of(name: str, channels: str, vad: bool, dsp: bool, rep: dict) -> dict:
    ins = rep["instructions"]
    return {"name": name, "channels": channels, "vad": vad, "cmsis_dsp": dsp, "n_features": rep["n_features"],
            "frontend_per_audio_second": ins["frontend_per_audio_second"],
            "per_inference": ins["per_inference"],
            # the scored push beyond a plain one: model input (fill deltas, adaptive update, standardise,
            # quantise) + the inference; less the inference measured alone = building the model input
            "input_build_per_inference": ins["scored_push_extra"] - ins["per_inference"],
            "hop_seconds": rep["hop_seconds"], "pipeline_per_audio_second": ins["pipeline_per_audio_second"],
            "flash_frontend_code": rep["footprint"]["flash"].get("frontend_code", 0),
            "flash_frontend_tables": rep["footprint"]["flash"].get("frontend_tables", 0),
            "ram_frontend_state": rep["footprint"]["ram"].get("frontend_state", 0),
            "ram_buffers": rep["footprint"]["ram"].get("buffers", 0),
            "pipeline": rep["pipeline"], "report": rep}


CONFIGS = [  # (key, label, model, vad)
    ("mfcc", "40 MFCC, no analysis (`TINYSER_VAD 0`)", "default", False),
    ("default", "40 MFCC + voice activity (shipped build: the analysis runs for the VAD)", "default", True),
    ("prosody_novad", "40 MFCC + 3 prosody channels, `TINYSER_VAD 0`", "prosody", False),
    ("prosody", "40 MFCC + 3 prosody channels + voice activity", "prosody", True),
    ("deltas_novad", "40 MFCC + 3 prosody channels + 3 deltas, `TINYSER_VAD 0`", "deltas", False),
    ("deltas", "40 MFCC + 3 prosody channels + 3 deltas + voice activity", "deltas", True),
]


def trace_profile(elf: Path, pcm: np.ndarray, run: Path) -> dict[str, int]:
    """Instructions executed per function while the firmware harness pushes ``pcm``
    (16-bit, shorter than a model window: the frontend only, no inference) through
    ``tinyser_push``: QEMU's translation-block log (``-d in_asm,exec,nochain``; each
    executed block counts its instructions), functions from the ELF's symbols."""
    import bisect
    import collections
    import re
    import struct
    import subprocess

    from tinyser.deploy.firmware import QEMU_COMMAND

    run.mkdir(parents=True, exist_ok=True)
    (run / "tinyser_in.bin").write_bytes(b"TSIN" + struct.pack("<III", 0, 1, len(pcm)) + pcm.astype("<i2").tobytes())
    log = run / "qemu.trace"
    proc = subprocess.run([*QEMU_COMMAND, "-d", "in_asm,exec,nochain", "-D", str(log), "-kernel", str(elf.resolve())],
                          cwd=run, capture_output=True, text=True, timeout=1800)
    if "DONE" not in proc.stdout.split():
        raise RuntimeError(f"{elf}: the profiling run failed: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    blocks: dict[int, int] = {}  # block start -> instructions (the latest translation of it)
    counts: collections.Counter = collections.Counter()
    start = size = None
    ins = re.compile(r"^0x([0-9a-f]{8}):\s")
    with open(log) as f:
        for line in f:
            if line.startswith("Trace"):
                pc = int(line.split("[", 1)[1].split("/")[1], 16)
                counts[pc] += blocks.get(pc, 0)
            elif line.startswith("IN:"):
                start = None
            else:
                hit = ins.match(line)
                if hit:
                    if start is None:
                        start, size = int(hit.group(1), 16), 0
                    size += 1
                    blocks[start] = size
    log.unlink()
    nm = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)], capture_output=True, text=True).stdout
    syms = sorted((int(a, 16) & ~1, int(n, 16), name) for a, n, kind, name in
                  (ln.split(None, 3) for ln in nm.splitlines() if len(ln.split()) == 4) if kind.lower() == "t")
    starts = [a for a, _, _ in syms]
    out: collections.Counter = collections.Counter()
    for pc, n in counts.items():
        i = bisect.bisect_right(starts, pc) - 1
        name = syms[i][2] if i >= 0 and pc < syms[i][0] + max(syms[i][1], 1) else "?"
        out[name] += n
    return dict(out)


def profile(models: dict, clip: Path, tflm: Path, folder: Path, dsp: list[bool], jobs: int) -> dict:
    """Per function, the instructions per frame the analysis adds: the prosody firmware
    (``TINYSER_VAD 0``) against the plain MFCC one, on the first second of ``clip``."""
    from tinyser.deploy.firmware import _clip_pcm, build_firmware

    pcm = _clip_pcm(clip, 16000, 1.0)
    frames = (len(pcm) - 1024) // 256 + 1
    out = {"clip": str(clip), "samples": len(pcm), "frames": frames}
    for d in dsp:
        got = {}
        for key, model in (("mfcc", "default"), ("prosody", "prosody")):
            fw = build_firmware(models[model], folder / f"prof-{key}-{int(d)}", tflm=tflm, overwrite=True, jobs=jobs,
                                cmsis_dsp=d, vad=False)
            got[key] = trace_profile(fw.elf, pcm, fw.folder / "run")
        delta = {f: got["prosody"].get(f, 0) - got["mfcc"].get(f, 0) for f in set(got["prosody"]) | set(got["mfcc"])}
        if "real_fft" in delta:  # with one caller (no analysis) GCC inlines the portable FFT into the MFCC
            delta["real_fft"] += delta.pop("tinyser_frontend_mfcc", 0)
        out["CMSIS-DSP" if d else "portable C"] = {"per_frame": {f: v / frames for f, v in delta.items() if v},
                                                   "total_per_frame": sum(delta.values()) / frames}
    return out


FFT_PARTS = {"real_fft": "the analysis's real FFT of N/4 = 256 points (`real_fft`, for the DCT-I of the band's "
                         "power; counted as `real_fft` + `tinyser_frontend_mfcc` of the prosody build minus "
                         "`tinyser_frontend_mfcc` of the plain one, where the compiler inlines a call)",
             "arm_rfft_fast_f32": "`arm_rfft_fast_f32` (real-FFT split step)",
             "arm_radix8_butterfly_f32": "`arm_radix8_butterfly_f32` (complex FFT)",
             "arm_bitreversal_32": "`arm_bitreversal_32` (complex FFT)",
             "tinyser_frontend_prosody": "`tinyser_frontend_prosody` itself (band power, the DCT-I's pre- and "
                                         "post-processing, normalise, peak search, the two odd-lag sums, "
                                         "interpolation)",
             "__ieee754_logf": "`logf` (loudness, semitones)", "logf": "`logf` wrapper"}


def profile_markdown(prof: dict) -> list[str]:
    frames_per_second = 16000 / 256
    lines = ["", f"**Where the analysis goes** (`--profile`; QEMU's translation-block log, each executed block "
             f"counting its instructions, over the first {prof['samples'] / 16000:.0f} s of `{Path(prof['clip']).name}` "
             f"({prof['frames']} frames, no inference): the prosody firmware minus the plain MFCC one, both "
             "`TINYSER_VAD 0`, per function):", "",
             "| frontend | function | instructions per frame | M per second of audio | share |", "|---|---|---|---|---|"]
    for name in ("portable C", "CMSIS-DSP"):
        p = prof.get(name)
        if not p:
            continue
        total = p["total_per_frame"]
        shown = 0.0
        for f, v in sorted(p["per_frame"].items(), key=lambda kv: -kv[1]):
            if abs(v) < 0.01 * total:
                continue
            shown += v
            lines.append(f"| {name} | {FFT_PARTS.get(f, f'`{f}`')} | {v:,.0f} | {v * frames_per_second / 1e6:.2f} | "
                         f"{100 * v / total:.0f} % |")
        lines.append(f"| {name} | other (each under 1 %) | {total - shown:,.0f} | "
                     f"{(total - shown) * frames_per_second / 1e6:.2f} | {100 * (total - shown) / total:.0f} % |")
        lines.append(f"| {name} | **analysis, total** | **{total:,.0f}** | **{total * frames_per_second / 1e6:.2f}** | "
                     "100 % |")
    return lines


def m(v: float) -> str:
    return f"{v / 1e6:.2f} M"


def signed(v: float) -> str:
    return f"{'+' if v >= 0 else '-'}{abs(v) / 1e6:.2f} M"


def markdown(results: dict) -> str:
    rows = {(r["key"], r["cmsis_dsp"]): r for r in results["rows"]}
    flavours = [d for d in (False, True) if ("mfcc", d) in rows]
    names = {False: "portable C", True: "CMSIS-DSP"}
    r0 = results["rows"][0]["report"]
    lines = [
        "## Prosody channels on an emulated Cortex-M4F: measured cost (`benchmarks/prosody_device.py`)", "",
        f"Reproduce: `{COMMAND}` ({results['seconds'] / 60:.0f} min on {results['machine']}). The firmware and "
        f"emulator of the device section (`tinyser deploy verify`; {r0['toolchain']['gcc']}, `{r0['flags']} "
        f"{r0['opt']}`, {r0['toolchain']['qemu']} with `-icount shift=0`, 1 tick = 40 instructions) on "
        f"{len(r0['clips'])} real clips ({r0['audio_seconds']:.0f} s, EMO-DB, RAVDESS, SAVEE, TESS) pushed as "
        "16-bit PCM through `tinyser_push`. Frontend instructions are those of the pushes that run no model "
        "(one frame each: ring, MFCC, analysis, window push), per second of audio. The prosody models are the "
        "default model's architecture (`tiny`, same parameters and window) at 43 / 46 input features with "
        "untrained weights, full-int8 calibrated on the clips, and the default model's frontend metadata with "
        "`prosody` (`prosody_deltas`) on: the frontend's cost does not depend on the weights. Goal (issue 17): "
        f"at most {GOAL / 1e6:.0f} M instructions per second of audio for the extra channels.", "",
        "The pitch/voicing/loudness analysis (`tinyser_frontend_prosody`: the band's power spectrum, its "
        "autocorrelation at even lags as a DCT-I through a real FFT of 256 points, the peak search, two odd lags "
        "summed, two `logf`) also feeds the voice activity "
        "(`TINYSER_VAD`, on by default), so **the shipped firmware already runs it for every frame**: against "
        "that build the channels cost only their place in the window and the model input. Against a plain MFCC "
        "build (`TINYSER_VAD 0`, no analysis) they cost the analysis itself.", "",
        "| frontend | features a frame | voice activity | **frontend, instructions per second of audio** | "
        "vs plain MFCC | vs shipped build | model input build per inference (standardise, quantise, deltas) | "
        "C inputs equal to Python's (windows; values off by 1 LSB) | outputs equal (raw audio -> M4 vs host) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in flavours:
        base, shipped = rows[("mfcc", d)], rows[("default", d)]
        for key, label, _, vad in CONFIGS:
            r = rows.get((key, d))
            if r is None:
                continue
            p = r["pipeline"]
            lines.append(
                f"| {names[d]} | {label} | {'on' if vad else 'off'} | **{m(r['frontend_per_audio_second'])}** | "
                f"{signed(r['frontend_per_audio_second'] - base['frontend_per_audio_second'])} | "
                f"{signed(r['frontend_per_audio_second'] - shipped['frontend_per_audio_second'])} | "
                f"{r['input_build_per_inference'] / 1e3:.0f} k | "
                f"{p['inputs_equal']}/{p['inferences']}; {p['input_bytes_differing']} of {p['input_bytes']:,} | "
                f"{p['equal']}/{p['inferences']} |")
    lines += ["", "**Cost of the extra channels**, instructions per second of audio: the frontend's, plus "
              "building the model input (once per inference, every "
              f"{results['rows'][0]['hop_seconds']:.2f} s; each window is built whether or not the VAD scores it):",
              "", "| frontend | channels | against | frontend | + model input | **extra, total** | goal <= 2 M |",
              "|---|---|---|---|---|---|---|"]
    for name, items in results["summary"].items():
        for s in items:
            goal = "met" if s["total"] <= GOAL else f"**not met** (over by {m(s['total'] - GOAL)})"
            lines.append(f"| {name} | {s['channels']} | {s['against_label']} | {signed(s['frontend'])} | "
                         f"{signed(s['input_build'])} | **{signed(s['total'])}** | {goal} |")
    if results.get("profile"):
        lines += profile_markdown(results["profile"])
    lines += ["", *verdict(results)]
    return "\n".join(lines)


FFT_FUNCTIONS = ("real_fft", "arm_rfft_fast_f32", "arm_radix8_butterfly_f32", "arm_bitreversal_32")


def verdict(results: dict) -> list[str]:
    """The goal against each baseline, where the analysis goes, and how the analysis got there."""
    summ, prof = results["summary"], results.get("profile") or {}
    out = []
    for name, items in summ.items():
        plain = next((s for s in items if s["with"] == "prosody_novad"), None)
        shipped = next((s for s in items if s["with"] == "prosody"), None)
        if plain is None or shipped is None:
            continue
        text = (f"**{name}**: the three channels add **{signed(shipped['total'])}** instructions per second of audio "
                f"to the shipped build (goal met: the analysis runs there already for the voice activity; what is "
                f"left is three more values a frame in the window and the model input), and "
                f"**{signed(plain['total'])}** to a build without voice activity (goal "
                + ("met" if plain["total"] <= GOAL else f"**not met**, {m(plain['total'] - GOAL)} over") + ")")
        p = prof.get(name)
        if p:
            fft = sum(v for f, v in p["per_frame"].items() if f in FFT_FUNCTIONS)
            text += (f"; {100 * fft / p['total_per_frame']:.0f} % of the analysis is its real FFT of 256 points "
                     f"({fft:,.0f} instructions a frame)")
        out += [text + ".", ""]
    if out:
        out += ["How the analysis got there: at first it took the autocorrelation as a 1024-point real FFT of "
                "the band's power spectrum mirrored to the frame's length, measured by this script at commit 9e51ed3 at "
                "+3.56 M (CMSIS-DSP) and +6.37 M (portable C) per second of audio against the plain MFCC build, 83-91 % of it that "
                "transform. The band ends at 4 kHz, a quarter of the sample rate, so the even lags are a DCT-I "
                "of 257 points, computed through a real FFT of 256 points with O(N) pre- and post-processing; the "
                "peak search runs on the even lags (each local maximum weighed by its parabolic height, so a "
                "sharp peak between two even lags is not missed), and the two odd lags beside the chosen peak "
                "are summed directly before the full-resolution interpolation. The reference checks (F0 within "
                "1 % on tones and glides, gross pitch error and voicing agreement against pyin) were measured "
                "again on the new analysis (previous section)."]
    return out


COMPARISONS = [  # (channels, with, against, against's label)
    ("3 prosody channels", "prosody_novad", "mfcc", "plain MFCC build, VAD off (no analysis)"),
    ("3 prosody + 3 deltas", "deltas_novad", "mfcc", "plain MFCC build, VAD off (no analysis)"),
    ("3 prosody channels", "prosody", "default", "shipped build, VAD on (the analysis runs already)"),
    ("3 prosody + 3 deltas", "deltas", "default", "shipped build, VAD on (the analysis runs already)"),
]


def summary(rows: list[dict]) -> dict:
    """Per frontend flavour: the extra instructions per second of audio of each comparison:
    the frontend's, and the frontend's plus building the model input once per hop."""
    out = {}
    for d, name in ((False, "portable C"), (True, "CMSIS-DSP")):
        by = {r["key"]: r for r in rows if r["cmsis_dsp"] == d}

        def total(r):
            return r["frontend_per_audio_second"] + r["input_build_per_inference"] / r["hop_seconds"]

        out[name] = [{"channels": ch, "with": a, "against": b, "against_label": label,
                      "frontend": by[a]["frontend_per_audio_second"] - by[b]["frontend_per_audio_second"],
                      "input_build": (by[a]["input_build_per_inference"] - by[b]["input_build_per_inference"])
                      / by[a]["hop_seconds"],
                      "total": total(by[a]) - total(by[b])}
                     for ch, a, b, label in COMPARISONS if a in by and b in by]
    return {k: v for k, v in out.items() if v}


def main():
    from tinyser.deploy.firmware import default_clips, verify
    from tinyser.inference import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _report.add_data_argument(ap)
    _report.add_device_arguments(ap)
    ap.add_argument("--no-dsp", action="store_true", help="only the portable C frontend")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-function profile of the analysis")
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite the results.md section from docs/prosody_device.json, measuring nothing")
    args = ap.parse_args()
    if args.markdown_only:
        results = json.loads((_report.DOCS / "prosody_device.json").read_text())
        text = markdown(results)
        _report.write("prosody_device", results, text, page="results.md")
        print(text)
        return
    t0 = time.time()
    clips = default_clips(args.clips, args.data)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyser-prosody-device-") as tmp:
        tmp = Path(tmp)
        models = {"default": DEFAULT_MODEL,
                  "prosody": prosody_model(DEFAULT_MODEL, clips[:12], tmp / "prosody.tflite"),
                  "deltas": prosody_model(DEFAULT_MODEL, clips[:12], tmp / "prosody_deltas.tflite", deltas=True)}
        dsp = [False] + ([True] if not args.no_dsp and (args.tflm / "cmsis_dsp" / "Source").is_dir() else [])
        for d in dsp:
            for key, label, model, vad in CONFIGS:
                print(f"{key}{' (CMSIS-DSP)' if d else ''}: firmware + QEMU on {len(clips)} clips", flush=True)
                rep = verify(models[model], clips=clips, tflm=args.tflm, out=tmp / f"fw-{key}-{int(d)}",
                             board="nano33ble", jobs=args.jobs, cmsis_dsp=d, vad=vad)
                r = row_of(label, key, vad, d, rep)
                r["key"] = key
                rows.append(r)
                print(f"  frontend {m(r['frontend_per_audio_second'])} per s of audio; input build "
                      f"{r['input_build_per_inference'] / 1e3:.0f} k per inference; inputs equal "
                      f"{rep['pipeline']['inputs_equal']}/{rep['pipeline']['inferences']}", flush=True)
        prof = None if args.no_profile else profile(models, clips[0], args.tflm, tmp, dsp, args.jobs)
    results = {"machine": _report.machine(), "seconds": time.time() - t0, "command": COMMAND, "goal": GOAL,
               "rows": [{k: v for k, v in r.items() if k != "report"} | {"report": _slim(r["report"])}
                        for r in rows]}
    results["summary"] = summary(rows)
    if prof:
        results["profile"] = prof
    text = markdown(results)
    _report.write("prosody_device", results, text, page="results.md")
    print(text)


def _slim(rep: dict) -> dict:
    """The verify report without its per-op list (docs/device.json has it)."""
    out = dict(rep)
    out["instructions"] = {k: v for k, v in rep["instructions"].items() if k != "per_op"}
    return out


if __name__ == "__main__":
    main()
