"""One picture of a prediction: waveform, spectrogram and the emotion timeline."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cache import atomic_write


def plot_prediction(audio: np.ndarray, sample_rate: int, result: dict, out: str | os.PathLike,
                    title: str = "") -> Path:
    """Save a PNG with the waveform (silent windows shaded), a log-mel spectrogram
    and each class's probability per window (a step plot over the timeline).

    >>> m = load_model()                                                    # doctest: +SKIP
    >>> plot_prediction(y, 16000, m.predict(y, 16000), "talk.png")          # doctest: +SKIP
    PosixPath('talk.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .features import get_config

    t = np.arange(len(audio)) / sample_rate
    fig, (ax_w, ax_s, ax_p) = plt.subplots(3, 1, figsize=(11, 7), sharex=True,
                                           gridspec_kw={"height_ratios": [1, 1.3, 1.3]})
    ax_w.plot(t, audio, lw=0.4, color="0.2")
    for w in result["windows"]:
        if not w["voiced"]:
            ax_w.axvspan(w["start"], w["end"], color="0.85", lw=0)
    ax_w.set_ylabel("waveform")
    ax_w.set_title(title or f"{result['label']} ({result['confidence']:.2f})")

    cfg = get_config("logmel", sample_rate=sample_rate)
    mel = cfg.compute(np.asarray(audio, np.float32)[None])[0].T  # (mels, frames)
    ax_s.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                extent=(0, len(audio) / sample_rate, 0, mel.shape[0]))
    ax_s.set_ylabel("mel band")

    labels = list(result["probabilities"])
    edges = [w["start"] for w in result["windows"]]
    for k in labels:
        p = [w["probabilities"][k] for w in result["windows"]]
        ax_p.step(edges + [result["windows"][-1]["end"]], p + p[-1:], where="post", label=k)
    ax_p.set_ylim(0, 1)
    ax_p.set_ylabel("probability")
    ax_p.set_xlabel("time (s); each window plotted from its start")
    ax_p.legend(ncol=len(labels), fontsize=8, loc="upper right")
    fig.tight_layout()
    out = Path(out)
    atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return out
