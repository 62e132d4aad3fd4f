"""On an emulated Cortex-M4F: the shipped default model and `light_sernet`
built as firmware (C frontend + runtime + model + TFLite Micro + CMSIS-NN,
arm-none-eabi-gcc) and run in QEMU mps2-an386 on real clips; measured flash and
RAM by component, instructions per inference, per op and per second of audio,
real-time factor at 64 MHz, beside the arithmetic estimate of `tinyser deploy`.

Writes docs/device.json, the `device` section of docs/results.md and
src/tinyser/assets/device.json (the default model's measurement, by its
SHA-256: `tinyser deploy`/`benchmark` budgets show it for that file only).

    python benchmarks/device.py --data ../shared/data --tflm ../shared/third_party

`light_sernet` here is the architecture at the default model's input and
classes with untrained weights, full-int8 calibrated on the same clips'
features: its size, arena and instruction counts do not depend on training.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from tinyser.cache import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "python benchmarks/device.py --data ../shared/data --tflm ../shared/third_party"


def light_sernet_like(default: Path, clips: list[Path], out: Path) -> Path:
    """`light_sernet` with the default model's input, labels and frontend metadata
    (weights untrained), full-int8 calibrated on ``clips``."""
    from tinyser.deploy.firmware import _clip_pcm
    from tinyser.inference import load_model
    from tinyser.models import build_model, count_macs, count_params
    from tinyser.tflite import LiteRTModel, TensorSpec, TrainingSummary, convert, embed_metadata, read_model

    _, meta = read_model(default)
    m = load_model(default)
    shape = tuple(meta.input.shape[1:])
    feats = []
    for c in clips:
        pcm = _clip_pcm(c, m.sample_rate, 4.0).astype(np.float32) / 32768.0
        feats.append(m.frontend(m.segments.split(pcm, m.sample_rate)))
    rep = np.concatenate(feats).reshape(-1, *shape)
    model = build_model("light_sernet", shape, len(meta.labels))
    lite = convert(model, "int8", rep)
    r = LiteRTModel(lite)
    new = dataclasses.replace(
        meta, model="light_sernet", model_params={}, input=TensorSpec.from_details(r.input_details),
        output=TensorSpec.from_details(r.output_details), macs=count_macs(model), params=count_params(model),
        training=TrainingSummary(note="untrained weights: for size and speed only"))
    atomic_write(out, lambda f: f.write(embed_metadata(lite, new)))
    return out


def measure_fit_of(report: dict) -> dict:
    """A firmware verify built with the board's limits links, so it fits."""
    return {"fits": report["board"] is not None, "overflow": {}, "message": "links within the board's flash and RAM"}


def estimate(model: Path, board: str = "nano33ble") -> dict:
    from tinyser.deploy import load_target
    from tinyser.deploy.budget import target_budget

    b = target_budget(load_target(model), board).to_dict()
    return {k: b[k] for k in ("flash", "ram", "inference_ms", "frontend_ms_per_second", "real_time_factor",
                              "cycles_per_mac", "macs_per_inference", "arena_measured", "fits")}


def kb(n) -> str:
    return f"{n / 1024:.1f} KB"


def table(rows: list[dict]) -> list[str]:
    head = ("| | " + " | ".join(f"`{r['name']}`" for r in rows) + " |", "|---|" + "---|" * len(rows))
    fl = [r["report"]["footprint"]["flash"] for r in rows]
    ram = [r["report"]["footprint"]["ram"] for r in rows]
    ins = [r["report"]["instructions"] for r in rows]
    est = [r["estimate"] for r in rows]

    def line(label, values):
        return f"| {label} | " + " | ".join(values) + " |"

    def tflm(f):
        return f.get("tflm_interpreter", 0) + f.get("tflm_kernels", 0)

    return [*head,
            line("fits the Nano 33 BLE Sense (link with 1 MB flash, 256 KB RAM)",
                 ["yes" if r["fit"]["fits"] else f"**no**: {', '.join(f'{k} over by {v:,} B' for k, v in r['fit']['overflow'].items())}"
                  for r in rows]),
            line("outputs equal to the host, raw audio -> C frontend -> M4", [
                f"{r['report']['pipeline']['equal']}/{r['report']['pipeline']['inferences']}" for r in rows]),
            line("model outputs equal to host `tflite_micro` (same int8 inputs; max diff, same class)", [
                f"{r['report']['model_parity']['equal']}/{r['report']['model_parity']['inputs']} "
                f"({r['report']['model_parity'].get('max_lsb_diff', 0)} LSB; "
                f"{r['report']['model_parity'].get('classes_equal', '?')}/{r['report']['model_parity']['inputs']})"
                for r in rows]),
            line("C frontend's int8 inputs equal to Python's (windows; values off by 1 LSB)", [
                f"{r['report']['pipeline']['inputs_equal']}/{r['report']['pipeline']['inferences']}; "
                f"{r['report']['pipeline']['input_bytes_differing']} of {r['report']['pipeline']['input_bytes']:,}"
                for r in rows]),
            line("**flash, measured** (product, -O2)", [f"**{kb(f['product'])}**" for f in fl]),
            line("&nbsp; model", [kb(f.get("model", 0)) for f in fl]),
            line("&nbsp; frontend tables", [kb(f.get("frontend_tables", 0)) for f in fl]),
            line("&nbsp; frontend code", [kb(f.get("frontend_code", 0)) for f in fl]),
            line("&nbsp; runtime (tinyser_runtime.cpp)", [kb(f.get("runtime", 0)) for f in fl]),
            line("&nbsp; TFLite Micro (interpreter + kernels)", [
                f"{kb(tflm(f))} ({kb(f.get('tflm_interpreter', 0))} + {kb(f.get('tflm_kernels', 0))})" for f in fl]),
            line("&nbsp; CMSIS-NN", [kb(f.get("cmsis_nn", 0)) for f in fl]),
            line("&nbsp; CMSIS-DSP (frontend option)", [kb(f.get("cmsis_dsp", 0)) for f in fl]),
            line("&nbsp; libc, libm, libstdc++, libgcc", [kb(f.get("libc", 0)) for f in fl]),
            line("flash, estimate (model + tables, code not counted)", [kb(e["flash"]["total"]) for e in est]),
            line("**RAM, measured** (product)", [f"**{kb(m['product'])}**" for m in ram]),
            line("&nbsp; tensor arena (allocated / used on the M4)", [
                f"{kb(m.get('arena', 0))} / {r['report']['arena']['used_on_device']:,} B" for m, r in zip(ram, rows)]),
            line("&nbsp; frontend state", [kb(m.get("frontend_state", 0)) for m in ram]),
            line("&nbsp; buffers (input window, frame)", [kb(m.get("buffers", 0)) for m in ram]),
            line("&nbsp; runtime, TFLite Micro, libc", [
                kb(m.get("runtime", 0) + tflm(m) + m.get("libc", 0)) for m in ram]),
            line("&nbsp; stack reserve / high-water mark", [
                f"{kb(m.get('stack', 0))} / {r['report']['stack_bytes']:,} B" for m, r in zip(ram, rows)]),
            line("RAM, estimate (arena + margin, window, frontend; sketch's audio ring left out)", [
                kb(e["ram"]["total"] - e["ram"].get("audio_ring", 0)) for e in est]),
            line("MACs per inference", [f"{r['report']['macs_per_inference'] / 1e6:.2f} M" for r in rows]),
            line("**instructions per inference, measured**", [
                f"**{i['per_inference'] / 1e6:.2f} M** ({i['per_mac']:.2f} per MAC)" for i in ins]),
            line("inference at 64 MHz: measured (1 cycle/instruction, a lower bound) / estimate (2 cycles/MAC)", [
                f"{r['report']['inference_ms']:.0f} ms / {e['inference_ms']:.0f} ms" for r, e in zip(rows, est)]),
            line("**frontend instructions per second of audio, measured**", [
                f"**{i['frontend_per_audio_second'] / 1e6:.2f} M**" for i in ins]),
            line("frontend per second of audio at 64 MHz: measured / estimate", [
                f"{r['report']['frontend_ms_per_second']:.0f} ms / {e['frontend_ms_per_second']:.0f} ms"
                for r, e in zip(rows, est)]),
            line("whole pipeline, instructions per second of audio (measured, streaming)", [
                f"{i['pipeline_per_audio_second'] / 1e6:.2f} M" for i in ins]),
            line("**real-time factor at 64 MHz**: measured (>=) / estimate", [
                f"**{r['report']['real_time_factor']:.2f}** / {e['real_time_factor']:.2f}" for r, e in zip(rows, est)]),
            ]


def op_profile(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        ops = r["report"]["instructions"]["per_op"]
        total = sum(o["instructions"] for o in ops)
        out += ["", f"Per op, `{r['name']}` (one inference, {total / 1e6:.2f} M instructions):", "",
                "| # | op | M instructions | share | M MACs | instructions per MAC |", "|---|---|---|---|---|---|"]
        for i, o in enumerate(ops):
            per = f"{o['instructions_per_mac']:.2f}" if o["instructions_per_mac"] else ""
            out.append(f"| {i} | {o['op']} | {o['instructions'] / 1e6:.2f} | {100 * o['instructions'] / total:.1f} % "
                       f"| {o['macs'] / 1e6:.3f} | {per} |")
        by: dict[str, list[int]] = {}
        for o in ops:
            v = by.setdefault(o["op"], [0, 0])
            v[0] += o["instructions"]
            v[1] += o["macs"]
        out += ["", "By op type: " + "; ".join(
            f"{k} {v[0] / 1e6:.2f} M ({100 * v[0] / total:.0f} %" + (f", {v[0] / v[1]:.2f}/MAC)" if v[1] else ")")
            for k, v in sorted(by.items(), key=lambda kv: -kv[1][0]))]
    return out


def markdown(rows: list[dict], meta: dict) -> str:
    r0 = rows[0]["report"]
    lines = [
        "## On an emulated Cortex-M4F: measured (`benchmarks/device.py`)", "",
        f"Reproduce: `{COMMAND}` ({meta['seconds'] / 60:.0f} min on {meta['machine']} with the TensorFlow Lite "
        "Micro libraries already built; each is built once, 4-13 min on 2 cores, and cached). Firmware: the generated C frontend, `tinyser_runtime.cpp`, the model and "
        f"TFLite Micro {r0['tflm']['version']} + CMSIS-NN, {r0['toolchain']['gcc']}, `{r0['flags']} {r0['opt']}`, "
        "linked with the Nano 33 BLE Sense's 1 MB flash and 256 KB RAM (8 KB stack reserved). Run in "
        f"{r0['toolchain']['qemu']} (`{r0['qemu_command']}`) on {len(r0['clips'])} real clips (EMO-DB, RAVDESS, "
        f"SAVEE, TESS, spread evenly; {r0['audio_seconds']:.0f} s) as 16-bit PCM through `tinyser_push`, compared "
        "bit for bit with the host pipeline (Python frontend, `tflite_micro` interpreter). Instructions: QEMU "
        "`-icount shift=0` with the board's 25 MHz timer (1 tick = 40 instructions); QEMU has no cycle model, so "
        "the measured latency and real-time factor assume **1 cycle per instruction, a lower bound** (a Cortex-M4 "
        "takes 2 cycles for most loads, 2-4 for taken branches, 14 for VDIV/VSQRT, plus flash wait states: expect "
        "1.2-1.5). Inference every half window; flash and RAM leave out the verification harness (its buffers and "
        "heap sit in emulator memory above the board's). The estimate is `tinyser deploy`'s arithmetic.",
        "",
        *table(rows),
        *(["", "`default on Arduino_TensorFlowLite`: the same firmware built against the Arduino_TensorFlowLite library "
            f"({next(r for r in rows if 'Arduino' in r['name'])['report']['tflm']['version']}, its TFLite Micro last synced "
            "2023-02-27), what an Arduino IDE user who installs it gets; the generated sketch refuses it in one "
            "`#error` line."] if any("Arduino" in r["name"] for r in rows) else []),
        "",
        *[f"`{r['name']}` does not fit: linked for the Nano 33 BLE Sense, " + ", ".join(
            f"{k} overflows by {v:,} bytes" for k, v in r["fit"]["overflow"].items()) + " (`tinyser deploy "
          "firmware` says so in one line). Its figures come from the same firmware linked with the emulator's memory "
          "(`--board none`)." for r in rows if not r["fit"]["fits"]],
        "",
        "`default, CMSIS-DSP frontend`: the same firmware with `TINYSER_USE_CMSIS_DSP` (`tinyser deploy verify "
        "--cmsis-dsp`): the frontend computes frames with CMSIS-DSP's `arm_mfcc_f32`, the kernels tinyser's Python "
        "features come from (CMSIS-DSP sources from `cmsis_dsp/`, compiled without fused multiply-adds); its FFT "
        "tables for every size are linked in (`arm_rfft_fast_init_f32`). The default build uses the portable C "
        "frontend (its own FFT), whose int8 inputs differ from Python's in rare values by 1 LSB."
        if any("CMSIS-DSP" in r["name"] for r in rows) else "",
        *op_profile(rows),
    ]
    return "\n".join(lines)


def write_section(markdown_text: str, results: dict) -> None:
    docs = ROOT / "docs"
    atomic_write(docs / "device.json", lambda f: f.write((json.dumps(results, indent=1) + "\n").encode()))
    md = docs / "results.md"
    text = md.read_text() if md.exists() else "# Results\n"
    start, end = "<!-- device:start -->", "<!-- device:end -->"
    block = f"{start}\n{markdown_text.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    atomic_write(md, lambda f: f.write(text.encode()))


def main():
    from tinyser.deploy.firmware import default_clips, measure_fit, verify
    from tinyser.inference import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _report.add_data_argument(ap)
    _report.add_device_arguments(ap)
    ap.add_argument("--no-arduino", action="store_true",
                    help="skip the default model on Arduino_TensorFlowLite (TFLM folder/Arduino_TensorFlowLite)")
    args = ap.parse_args()
    t0 = time.time()
    clips = default_clips(args.clips, args.data)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyser-device-") as tmp:
        tmp = Path(tmp)
        models = [("default", DEFAULT_MODEL), ("light_sernet", light_sernet_like(DEFAULT_MODEL, clips[:12],
                                                                                  tmp / "light_sernet.tflite"))]
        for name, path in models:
            print(f"{name}: link check", flush=True)
            fit = measure_fit(path, tflm=args.tflm, jobs=args.jobs, log=print)
            print(f"{name}: {fit['message']}; QEMU on {len(clips)} clips", flush=True)
            rep = verify(path, clips=clips, tflm=args.tflm, out=tmp / f"fw-{name}", board="nano33ble" if fit["fits"]
                         else None, jobs=args.jobs, log=print)
            rep["fits"] = fit["fits"]
            rows.append({"name": name if name != "default" else f"default ({path.name})", "fit": fit,
                         "report": rep, "estimate": estimate(path)})
        if (args.tflm / "cmsis_dsp" / "Source").is_dir():
            print("default, CMSIS-DSP frontend: QEMU", flush=True)
            rep = verify(DEFAULT_MODEL, clips=clips, tflm=args.tflm, out=tmp / "fw-dsp", cmsis_dsp=True,
                         jobs=args.jobs, log=print)
            rows.insert(1, {"name": "default, CMSIS-DSP frontend", "fit": measure_fit_of(rep), "report": rep,
                            "estimate": estimate(DEFAULT_MODEL)})
        arduino = args.tflm / "Arduino_TensorFlowLite"
        if not args.no_arduino and arduino.is_dir():
            print("default on Arduino_TensorFlowLite: QEMU", flush=True)
            rep = verify(DEFAULT_MODEL, clips=clips, tflm=arduino, out=tmp / "fw-arduino", allow_arduino=True,
                         jobs=args.jobs, log=print)
            rows.append({"name": "default on Arduino_TensorFlowLite", "fit": {"fits": True, "overflow": {},
                                                                               "message": "links"},
                         "report": rep, "estimate": estimate(DEFAULT_MODEL)})
    meta = {"machine": _report.machine(), "seconds": time.time() - t0, "command": COMMAND}
    text = markdown(rows, meta)
    results = {**meta, "models": [{"name": r["name"], "fit": r["fit"], "estimate": r["estimate"], **r["report"]}
                                  for r in rows]}
    write_section(text, results)
    shipped = {"command": COMMAND, "models": [results["models"][0]]}
    atomic_write(ROOT / "src" / "tinyser" / "assets" / "device.json",
                 lambda f: f.write((json.dumps(shipped, indent=1) + "\n").encode()))
    print(text)


if __name__ == "__main__":
    main()
