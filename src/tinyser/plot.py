"""One picture of a prediction: waveform, spectrogram and the emotion timeline.

What is drawn is decimated for display, so a picture costs the same time and
memory whatever the recording's length: the waveform as its min/max envelope
in at most :data:`MAX_COLUMNS` columns, the spectrogram as at most
:data:`MAX_FRAMES` short-time spectra. :func:`plot_file` reads the file block
by block, so a long file never sits whole in memory.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cache import atomic_write
from .extras import need

#: Waveform columns drawn (min/max envelope): about one per pixel of the figure
MAX_COLUMNS = 2000
#: Short-time spectra drawn; more would not show at the figure's width
MAX_FRAMES = 800
N_FFT = 512


def plot_prediction(audio: np.ndarray, sample_rate: int, result: dict, out: str | os.PathLike,
                    title: str = "") -> Path:
    """Save a PNG with the waveform (silent windows shaded), a spectrogram in Hz
    and the timeline: a band coloured by each window's winning class, as opaque
    as it is confident, with that confidence as a line.

    >>> m = load_model()                                                    # doctest: +SKIP
    >>> plot_prediction(y, 16000, m.predict(y, 16000), "talk.png")          # doctest: +SKIP
    PosixPath('talk.png')
    """
    y = np.asarray(audio, np.float32)
    view = _View(len(y), sample_rate)
    view.add(y)
    return _draw(view, result, out, title)


def plot_file(path: str | os.PathLike, sample_rate: int, result: dict, out: str | os.PathLike,
              title: str = "") -> Path:
    """:func:`plot_prediction` of a file (``result``: its :meth:`Model.predict_file`),
    read block by block: time and memory stay bounded for any length.

    >>> plot_file("talk.wav", 16000, load_model().predict_file("talk.wav"), "talk.png")  # doctest: +SKIP
    PosixPath('talk.png')
    """
    from .audio import stream

    view = _View(int(round(result["duration"] * sample_rate)), sample_rate)
    for block in stream(path, sample_rate):
        view.add(block)
    return _draw(view, result, out, title)


class _View:
    """The decimated picture of a signal of ``n`` samples, filled block by block."""

    def __init__(self, n: int, sample_rate: int):
        self.n, self.sr = max(int(n), 1), sample_rate
        cols = min(MAX_COLUMNS, self.n)
        self.edges = (np.arange(cols + 1) * self.n) // cols  # sample index where each column starts
        self.lo, self.hi = np.full(cols, np.inf, np.float32), np.full(cols, -np.inf, np.float32)
        frames = max(1, min(MAX_FRAMES, 1 + (self.n - N_FFT) // 256)) if self.n >= N_FFT else 1
        centres = (np.arange(frames) + 0.5) * self.n / frames
        self.starts = np.clip(np.round(centres - N_FFT / 2).astype(np.int64), 0, max(0, self.n - N_FFT))
        self.spec = np.zeros((frames, N_FFT // 2 + 1), np.float32)
        self._done = np.zeros(frames, bool)
        self._pos = 0                        # samples seen so far
        self._tail = np.zeros(0, np.float32)  # the last samples, for frames across blocks
        self._win = np.hanning(N_FFT).astype(np.float32)
        self.pitch = _Pitch(self.n, sample_rate, centres)
        self._keep = max(N_FFT, self.pitch.n) - 1

    def add(self, y: np.ndarray) -> None:
        y = np.asarray(y, np.float32)[: max(0, self.n - self._pos)]
        if y.size == 0:
            return
        a, b = self._pos, self._pos + len(y)
        first = int(np.searchsorted(self.edges, a, side="right") - 1)
        cuts = self.edges[(self.edges > a) & (self.edges < b)] - a
        segs = np.r_[0, cuts].astype(np.int64)
        cols = np.arange(first, first + len(segs))
        self.lo[cols] = np.minimum(self.lo[cols], np.minimum.reduceat(y, segs))
        self.hi[cols] = np.maximum(self.hi[cols], np.maximum.reduceat(y, segs))
        buf = np.concatenate([self._tail, y])
        off = a - len(self._tail)  # sample index of buf[0]
        todo = np.flatnonzero(~self._done & (self.starts >= off) & (self.starts + min(N_FFT, self.n) <= b))
        for i in todo:
            frame = buf[self.starts[i] - off:self.starts[i] - off + N_FFT]
            frame = np.pad(frame, (0, N_FFT - len(frame)))
            self.spec[i] = np.abs(np.fft.rfft(frame * self._win)) ** 2
            self._done[i] = True
        self.pitch.add(buf, off, b)
        self._tail = buf[-self._keep:]
        self._pos = b


def _draw(view: _View, result: dict, out: str | os.PathLike, title: str) -> Path:
    matplotlib = need("matplotlib", "tinyser plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    sr, duration = view.sr, view.n / view.sr
    windows, labels = result["windows"], list(result["probabilities"])
    fig, (ax_w, ax_s, ax_p) = plt.subplots(3, 1, figsize=(12, 7), sharex=True, layout="constrained",
                                           gridspec_kw={"height_ratios": [1, 1.3, 0.9]})
    # waveform: min/max envelope per column, silent windows shaded
    ok = np.isfinite(view.lo)
    x = (view.edges[:-1] + view.edges[1:]) / 2 / sr
    ax_w.fill_between(x[ok], view.lo[ok], view.hi[ok], color="0.2", lw=0.4, step="mid")
    peak = float(max(np.max(np.abs(view.lo[ok]), initial=0), np.max(np.abs(view.hi[ok]), initial=0))) or 1.0
    silent = _merge([(w["start"], w["end"]) for w in windows if not w["voiced"]])
    if silent:
        ax_w.broken_barh([(a, b - a) for a, b in silent], (-2 * peak, 4 * peak), color="0.85", zorder=0)
    ax_w.set_ylim(-1.05 * peak, 1.05 * peak)
    ax_w.set_ylabel("waveform")
    ax_w.legend(handles=[Patch(color="0.85", label="silent window\n(not in the file's label)")],
                loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax_w.set_title(title or (f"{result['label']} ({result['confidence']:.2f})" if result["label"] is not None
                             else result.get("reason", "no label")))

    # spectrogram in Hz (decimated frames, log power)
    db = 10 * np.log10(view.spec.T + 1e-10)
    top = float(db.max()) if db.size else 0.0
    ax_s.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                extent=(0, duration, 0, sr / 2 / 1000), interpolation="nearest")
    ax_s.set_ylabel("frequency (kHz)")
    view.pitch.draw(ax_s, sr)

    # timeline: a band coloured by the winning class, alpha = confidence; the confidence as a line
    colours = {k: plt.get_cmap("tab10")(i % 10) for i, k in enumerate(labels)}
    if windows:
        starts = [w["start"] for w in windows]
        ends = starts[1:] + [windows[-1]["end"]]  # each window shown until the next one starts
        spans, faces = [], []
        for w, a, b in zip(windows, starts, ends):
            r, g, bl, _ = colours.get(w["label"], (0.5, 0.5, 0.5, 1))
            spans.append((a, max(b - a, 1e-6)))
            faces.append((r, g, bl, 0.25 + 0.75 * w["confidence"]) if w["voiced"] else (0.85, 0.85, 0.85, 1))
        ax_p.broken_barh(spans, (0, 1), facecolors=faces, lw=0)
        ax_p.step(starts + [ends[-1]], [w["confidence"] for w in windows] + [windows[-1]["confidence"]],
                  where="post", color="black", lw=1.2)
    ax_p.set_ylim(0, 1.08)  # a confidence of exactly 1.0 stays visible above the band
    ax_p.set_xlim(0, duration)
    ax_p.set_ylabel("confidence")
    ax_p.set_xlabel("time (s); each window drawn from its start to the next window's start")
    handles = [Patch(color=colours[k], label=k) for k in labels]
    handles += [Patch(color="0.85", label="silent window"),
                Line2D([], [], color="black", lw=1.2, label="winner's confidence\n(band: paler = less sure)")]
    ax_p.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.15), fontsize=8, frameon=False)
    out = Path(out)
    try:
        atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return out


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans joined (sorted input).

    >>> _merge([(0, 2), (1, 3), (5, 6)])
    [(0, 3), (5, 6)]
    """
    merged: list[tuple[float, float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


class _Pitch:
    """The pitch contour drawn over the spectrogram: F0 of the prosody analysis
    (:mod:`tinyser.features.prosody`, 64 ms frames at 16 kHz) at the spectrogram's
    decimated frame centres, so its cost is bounded too; NaN where unvoiced."""

    def __init__(self, n: int, sample_rate: int, centres: np.ndarray):
        from .features.cmsis import cmsis_tables
        from .features.prosody import prosody_tables
        from .vad import analysis_config

        try:
            self.cfg = analysis_config(sample_rate)
        except Exception:  # a rate the analysis cannot frame: no contour
            self.cfg, self.n = None, 0
            return
        self.n = self.cfg.frame_length
        self.times = centres / sample_rate
        self.starts = np.clip(np.round(centres - self.n / 2).astype(np.int64), 0, max(0, n - self.n))
        self.f0 = np.full(len(centres), np.nan, np.float32)
        self._done = np.zeros(len(centres), bool) if n >= self.n else np.ones(len(centres), bool)
        self._window, self._tables = cmsis_tables(self.cfg)["window_f32"], prosody_tables(self.cfg)

    def add(self, buf: np.ndarray, off: int, end: int) -> None:
        """Analyse the frames that ``buf`` (stream samples ``off``..``end``) completes."""
        if self.cfg is None:
            return
        from .features.prosody import from_magnitudes, magnitudes

        todo = np.flatnonzero(~self._done & (self.starts >= off) & (self.starts + self.n <= end))
        if len(todo):
            fr = np.stack([buf[s - off:s - off + self.n] for s in self.starts[todo]]).astype(np.float32)
            p = from_magnitudes(magnitudes(fr, self._window), self._tables)
            self.f0[todo] = np.where(p["voiced"], p["f0"], np.nan)
            self._done[todo] = True

    def draw(self, ax, sample_rate: int) -> None:
        """The contour over the spectrogram ``ax`` (kHz), on a log scale of F0 with its
        own axis in Hz on the right: 60 Hz at the bottom, 500 Hz at the top."""
        if self.cfg is None:
            return
        from .features.prosody import F0_MAX, F0_MIN

        top, span = sample_rate / 2 / 1000, np.log(F0_MAX / F0_MIN)

        def to_axis(hz):
            return top * np.log(np.maximum(np.asarray(hz, float), 1e-9) / F0_MIN) / span

        def to_hz(y):
            return F0_MIN * np.exp(np.asarray(y, float) / top * span)

        ax.plot(self.times, to_axis(self.f0), color="#00e5ff", lw=1.6, label="pitch (F0)")
        right = ax.secondary_yaxis("right", functions=(to_hz, to_axis))
        right.set_yticks([60, 100, 200, 300, 500], ["60", "100", "200", "300", "500"])
        right.set_ylabel("pitch F0 (Hz, log)", color="#008ba3")
        ax.legend(loc="upper left", bbox_to_anchor=(1.07, 1), fontsize=8, frameon=False)
