"""Corpus detection, scanning and dataset loading on small generated trees that
use each corpus's real naming scheme, plus checks on the real corpora when present."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tinyser.corpora import CORPORA, Dataset, Record, Skipped, detect, load_dataset, scan
from tinyser.errors import ConfigError, CorpusError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TINYSER_DATA") or REPO.parent / "shared" / "data")


# ---------------------------------------------------------------- helpers

def write_tone(path: Path, seconds: float = 0.2, sr: int = 16000) -> Path:
    """A short 440 Hz tone as 16-bit WAV (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr, subtype="PCM_16")
    return path


def make_tree(root: Path, rel_paths) -> Path:
    for rel in rel_paths:
        write_tone(root / rel)
    return root


def make_emodb(root: Path) -> Path:
    return make_tree(root, ["wav/03a01Fa.wav", "wav/03a01Wa.wav", "wav/08b02Lb.wav",
                            "wav/10a04Ec.wav", "wav/16b10Ab.wav", "wav/11a05Td.wav", "wav/14a07Na.wav"])


def make_ravdess(root: Path) -> Path:
    return make_tree(root, ["Actor_01/03-01-05-01-02-01-01.wav", "Actor_01/03-01-02-02-01-02-01.wav",
                            "Actor_02/03-01-08-02-02-02-02.wav", "Actor_02/03-02-03-01-01-01-02.wav",
                            "Actor_24/03-01-01-01-01-01-24.wav"])


def make_tess(root: Path) -> Path:
    return make_tree(root, ["OAF_angry/OAF_back_angry.wav", "OAF_Fear/OAF_bite_fear.wav",
                            "OAF_Pleasant_surprise/OAF_back_ps.wav", "YAF_disgust/YAF_chair_disgust.wav",
                            "YAF_pleasant_surprised/YAF_back_ps.wav", "YAF_neutral/YAF_germ_neutral.wav",
                            "YAF_sad/yaf_dog_sad.wav", "YAF_happy/YAF_dog_happy.wav",
                            "extra/YAF_dog_pleasant_surprise.wav"])


def make_savee_all(root: Path) -> Path:
    return make_tree(root, ["ALL/DC_a01.wav", "ALL/JE_sa02.wav", "ALL/JK_su15.wav", "ALL/KL_n30.wav",
                            "ALL/DC_h03.wav"])


def make_savee_nested(root: Path) -> Path:
    return make_tree(root, ["DC/a01.wav", "JE/d02.wav", "JK/f03.wav", "KL/sa04.wav", "KL/su05.wav"])


def make_cremad(root: Path) -> Path:
    return make_tree(root, ["AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1001_IEO_HAP_HI.wav",
                            "AudioWAV/1045_TIE_SAD_LO.wav", "AudioWAV/1091_WSI_NEU_XX.wav",
                            "AudioWAV/1002_IOM_DIS_MD.wav", "AudioWAV/1003_ITS_FEA_XX.wav"])


IEMOCAP_EVAL = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.0000, 3.5000, 3.5000]

[14.8872 - 18.0175]\tSes01F_impro01_F001\txxx\t[2.5000, 2.5000, 2.5000]

[19.2900 - 20.7875]\tSes01F_impro01_M001\toth\t[2.5000, 2.5000, 2.5000]

[21.3257 - 24.7400]\tSes01F_impro01_F002\thap\t[4.0000, 3.0000, 3.0000]
"""
IEMOCAP_EVAL2 = "[1.0000 - 2.5000]\tSes02M_script01_1_M003\texc\t[4.0, 4.0, 3.0]\n"


def make_iemocap(root: Path) -> Path:
    ev = root / "Session1" / "dialog" / "EmoEvaluation"
    ev.mkdir(parents=True)
    (ev / "Ses01F_impro01.txt").write_text(IEMOCAP_EVAL)
    (ev / "Categorical").mkdir()
    (ev / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text("Ses01F_impro01_F000 :Neutral state; ()\n")
    wav = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    for utt in ("F000", "M000", "F001", "M001"):  # F002 is missing on purpose
        write_tone(wav / f"Ses01F_impro01_{utt}.wav")
    ev2 = root / "Session2" / "dialog" / "EmoEvaluation"
    ev2.mkdir(parents=True)
    (ev2 / "Ses02M_script01_1.txt").write_text(IEMOCAP_EVAL2)
    write_tone(root / "Session2" / "sentences" / "wav" / "Ses02M_script01_1" / "Ses02M_script01_1_M003.wav")
    return root


def make_folders(root: Path) -> Path:
    return make_tree(root, ["angry/a.wav", "angry/spk1/b.flac", "happy/c.wav", "Neutral/d.WAV"])


def labels_of(s) -> dict[str, str]:
    return {Path(r.path).name: r.label for r in s.records}


def skipped_reasons(s) -> dict[str, str]:
    return {Path(k.path).name: k.reason for k in s.skipped}


# ---------------------------------------------------------------- detection

@pytest.mark.parametrize("maker, sub, name", [
    (make_emodb, "", "emodb"), (make_emodb, "wav", "emodb"),
    (make_ravdess, "", "ravdess"), (make_ravdess, "Actor_01", "ravdess"),
    (make_tess, "", "tess"), (make_savee_all, "", "savee"), (make_savee_nested, "", "savee"),
    (make_cremad, "", "cremad"), (make_iemocap, "", "iemocap"), (make_iemocap, "Session1", "iemocap"),
    (make_folders, "", "folders"),
])
def test_detect(tmp_path, maker, sub, name):
    root = maker(tmp_path / "corpus")
    assert detect(root / sub) == name
    assert scan(root / sub).corpus == name


def test_detect_manifest_by_extension(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\n")
    assert detect(tmp_path / "m.csv") == "manifest"


def test_detect_missing_path_names_it(tmp_path):
    with pytest.raises(CorpusError, match="nowhere"):
        detect(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="nowhere"):
        scan(tmp_path / "nowhere")


def test_detect_unknown_layout_is_one_helpful_line(tmp_path):
    make_tree(tmp_path / "x", ["clip1.wav", "clip2.wav", "one_folder/clip3.wav"])
    with pytest.raises(CorpusError) as e:
        detect(tmp_path / "x")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "x") in msg and "--corpus" in msg


def test_detect_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("nothing")
    with pytest.raises(CorpusError, match="no audio files"):
        detect(tmp_path / "empty")


def test_unknown_corpus_name(tmp_path):
    make_emodb(tmp_path)
    with pytest.raises(ConfigError, match="unknown corpus"):
        scan(tmp_path, "nosuch")


def test_corpus_names_accept_spellings(tmp_path):
    root = make_cremad(tmp_path / "c")
    assert scan(root, "CREMA-D").corpus == "cremad"
    assert set(CORPORA) == {"emodb", "ravdess", "tess", "savee", "cremad", "iemocap", "folders", "manifest"}


# ---------------------------------------------------------------- per corpus

def test_emodb(tmp_path):
    s = scan(make_emodb(tmp_path / "emodb"))
    assert labels_of(s) == {"03a01Fa.wav": "happiness", "03a01Wa.wav": "anger", "08b02Lb.wav": "boredom",
                            "10a04Ec.wav": "disgust", "16b10Ab.wav": "fear", "11a05Td.wav": "sadness",
                            "14a07Na.wav": "neutral"}
    r = s.records[0]
    assert (r.speaker, r.corpus, r.canonical, r.extra) == ("03", "emodb", "happy", {"text": "a01", "version": "a"})
    assert r.clip_id == "emodb:wav/03a01Fa.wav" and r.group == "emodb:03"
    assert Path(r.path).is_absolute() and s.skipped == []
    assert [r.path for r in s.records] == sorted(r.path for r in s.records)


def test_ravdess(tmp_path):
    s = scan(make_ravdess(tmp_path / "ravdess"))
    by_name = {Path(r.path).name: r for r in s.records}
    r = by_name["03-01-05-01-02-01-01.wav"]
    assert (r.label, r.speaker, r.canonical) == ("angry", "01", "angry")
    assert r.extra == {"modality": "audio-only", "channel": "speech", "intensity": "normal",
                       "statement": 2, "repetition": 1, "gender": "male"}
    r = by_name["03-01-08-02-02-02-02.wav"]
    assert (r.label, r.canonical, r.extra["intensity"], r.extra["gender"]) == ("surprised", "surprise", "strong",
                                                                                 "female")
    song = by_name["03-02-03-01-01-01-02.wav"]
    assert (song.label, song.extra["channel"]) == ("happy", "song")
    assert by_name["03-01-02-02-01-02-01.wav"].label == "calm"
    assert by_name["03-01-01-01-01-01-24.wav"].speaker == "24"


def test_tess(tmp_path):
    s = scan(make_tess(tmp_path / "tess"))
    assert labels_of(s) == {"OAF_back_angry.wav": "angry", "OAF_bite_fear.wav": "fear", "OAF_back_ps.wav": "ps",
                            "YAF_chair_disgust.wav": "disgust", "YAF_back_ps.wav": "ps",
                            "YAF_germ_neutral.wav": "neutral", "yaf_dog_sad.wav": "sad",
                            "YAF_dog_happy.wav": "happy", "YAF_dog_pleasant_surprise.wav": "ps"}
    assert {r.speaker for r in s.records} == {"OAF", "YAF"}
    assert {r.canonical for r in s.records if r.label == "ps"} == {"surprise"}


@pytest.mark.parametrize("maker", [make_savee_all, make_savee_nested])
def test_savee_layouts(tmp_path, maker):
    s = scan(maker(tmp_path / "savee"))
    assert {r.speaker for r in s.records} == {"DC", "JE", "JK", "KL"}
    assert s.skipped == []
    got = {(r.speaker, r.label) for r in s.records}
    if maker is make_savee_all:
        assert got == {("DC", "anger"), ("JE", "sadness"), ("JK", "surprise"), ("KL", "neutral"), ("DC", "happiness")}
    else:
        assert got == {("DC", "anger"), ("JE", "disgust"), ("JK", "fear"), ("KL", "sadness"), ("KL", "surprise")}


def test_cremad(tmp_path):
    s = scan(make_cremad(tmp_path / "crema"))
    by_name = {Path(r.path).name: r for r in s.records}
    r = by_name["1001_DFA_ANG_XX.wav"]
    assert (r.label, r.speaker, r.canonical) == ("anger", "1001", "angry")
    assert r.extra == {"sentence": "DFA", "level": "unspecified"}
    assert by_name["1001_IEO_HAP_HI.wav"].extra["level"] == "high"
    assert by_name["1045_TIE_SAD_LO.wav"].extra["level"] == "low"
    assert {r.canonical for r in s.records} == {"angry", "happy", "sad", "neutral", "disgust", "fearful"}


def test_iemocap(tmp_path):
    s = scan(make_iemocap(tmp_path / "IEMOCAP"))
    assert labels_of(s) == {"Ses01F_impro01_F000.wav": "neu", "Ses01F_impro01_M000.wav": "fru",
                            "Ses02M_script01_1_M003.wav": "exc"}
    by_name = {Path(r.path).name: r for r in s.records}
    r = by_name["Ses01F_impro01_M000.wav"]
    assert r.speaker == "Ses01M" and r.canonical == "frustrated"
    assert r.extra == {"session": 1, "start": 10.01, "end": 11.3925, "dialog": "Ses01F_impro01"}
    assert by_name["Ses01F_impro01_F000.wav"].speaker == "Ses01F"
    assert by_name["Ses02M_script01_1_M003.wav"].extra["session"] == 2
    reasons = skipped_reasons(s)
    assert "no agreed label" in reasons["Ses01F_impro01_F001.wav"]
    assert "no agreed label" in reasons["Ses01F_impro01_M001.wav"]
    assert "not found" in reasons["Ses01F_impro01_F002.wav"]


def test_folders(tmp_path):
    root = make_folders(tmp_path / "mine")
    write_tone(root / "loose.wav")
    (root / "happy" / "notes.txt").write_text("ignored")
    s = scan(root)
    assert labels_of(s) == {"a.wav": "angry", "b.flac": "angry", "c.wav": "happy", "d.WAV": "Neutral"}
    assert {r.speaker for r in s.records} == {None}
    assert "not inside a label folder" in skipped_reasons(s)["loose.wav"]
    r = next(r for r in s.records if r.path.endswith("b.flac"))
    assert r.clip_id == "folders:angry/spk1/b.flac" and r.canonical == "angry"
    assert next(r for r in s.records if r.label == "Neutral").canonical == "neutral"


def test_manifest(tmp_path):
    clips = make_tree(tmp_path / "clips", ["a.wav", "b.wav"])
    outside = write_tone(tmp_path / "elsewhere" / "c.wav")
    csv = tmp_path / "clips" / "list.csv"
    csv.write_text(f"path,label,speaker,session\na.wav,angry,s1,x\nb.wav,happy,,y\n{outside},sad,s2,z\n"
                   "missing.wav,sad,s3,w\nb.wav,happy,,y\n")
    s = scan(csv)
    assert s.corpus == "manifest"
    assert labels_of(s) == {"a.wav": "angry", "b.wav": "happy", "c.wav": "sad"}
    by_name = {Path(r.path).name: r for r in s.records}
    assert by_name["a.wav"].speaker == "s1" and by_name["b.wav"].speaker is None
    assert by_name["a.wav"].extra == {"session": "x"} and by_name["a.wav"].clip_id == "manifest:a.wav"
    assert by_name["c.wav"].path == str(outside)
    reasons = skipped_reasons(s)
    assert reasons["missing.wav"] == "file not found"
    assert "listed again" in reasons["b.wav"]
    assert clips.is_dir()


def test_manifest_without_speaker_column(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("Path, Label\na.wav,calm\n")
    s = scan(tmp_path / "m.csv")
    assert [(r.label, r.speaker) for r in s.records] == [("calm", None)]


def test_manifest_missing_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,emotion\na.wav,angry\n")
    with pytest.raises(CorpusError, match=r"m\.csv.*path, label"):
        scan(tmp_path / "m.csv")


# ---------------------------------------------------------------- bad files

def add_bad_files(wav_dir: Path, good: Path) -> None:
    (wav_dir / "03a02Wa.wav").write_bytes(b"")
    (wav_dir / "03a04Wa.wav").write_text("this is not audio\n" * 10)
    data = good.read_bytes()
    (wav_dir / "03a05Wa.wav").write_bytes(data[: len(data) // 2])
    write_tone(wav_dir / "03a07Wa.wav", seconds=0.01)
    write_tone(wav_dir / "my_recording.wav")
    (wav_dir / "README.txt").write_text("ignored")
    (wav_dir / "._03a01Fa.wav").write_bytes(b"\0\5\26\7")  # macOS metadata: ignored


def test_bad_files_are_reported_not_raised(tmp_path):
    root = make_emodb(tmp_path / "emodb")
    add_bad_files(root / "wav", root / "wav" / "03a01Fa.wav")
    s = scan(root)
    assert len(s.records) == 7
    reasons = skipped_reasons(s)
    assert set(reasons) == {"03a02Wa.wav", "03a04Wa.wav", "03a05Wa.wav", "03a07Wa.wav", "my_recording.wav"}
    assert "empty" in reasons["03a02Wa.wav"]
    assert "text" in reasons["03a04Wa.wav"]
    assert "truncated" in reasons["03a05Wa.wav"]
    assert "too short" in reasons["03a07Wa.wav"]
    assert reasons["my_recording.wav"].startswith("name does not follow the EMO-DB naming scheme (")
    assert all(isinstance(k, Skipped) for k in s.skipped)


def test_check_audio_false_only_checks_names(tmp_path):
    root = make_emodb(tmp_path / "emodb")
    add_bad_files(root / "wav", root / "wav" / "03a01Fa.wav")
    s = scan(root, check_audio=False)
    assert len(s.records) == 11
    assert list(skipped_reasons(s)) == ["my_recording.wav"]


def test_explicit_wrong_corpus_skips_every_file(tmp_path):
    s = scan(make_emodb(tmp_path / "emodb"), "ravdess")
    assert s.records == [] and len(s.skipped) == 7
    assert all("RAVDESS naming scheme" in k.reason for k in s.skipped)


def test_majority_detection_tolerates_a_few_odd_names(tmp_path):
    root = make_ravdess(tmp_path / "r")
    write_tone(root / "Actor_01" / "take2.wav")
    assert detect(root) == "ravdess"


# ---------------------------------------------------------------- records and datasets

def test_record_eq_and_hash_ignore_extra():
    a = Record("/x/a.wav", "sad", "1", "emodb", {"k": 1})
    b = Record("/x/a.wav", "sad", "1", "emodb", {"k": 2})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.label = "happy"


def test_record_without_speaker_is_its_own_group():
    r = Record("/x/angry/a.wav", "angry", None, "folders", rel="angry/a.wav")
    assert r.group == r.clip_id == "folders:angry/a.wav"


def test_combine_two_corpora(tmp_path):
    emo, rav = make_emodb(tmp_path / "emodb"), make_ravdess(tmp_path / "ravdess")
    ds = load_dataset([emo, rav])
    assert isinstance(ds, Dataset) and ds.corpora == ["emodb", "ravdess"] and len(ds) == 12
    summary = json.loads(json.dumps(ds.summary()))
    assert summary["corpus"] == "emodb+ravdess" and summary["n_files"] == 12
    assert summary["speakers"]["emodb:03"] == 2 and summary["speakers"]["ravdess:01"] == 2
    assert summary["scheme"] == "native" and summary["dropped"] == {}
    assert ds.labels == sorted(ds.labels)


def test_combined_common6(tmp_path):
    ds = load_dataset([make_emodb(tmp_path / "emodb"), make_ravdess(tmp_path / "ravdess")], labels="common6")
    assert ds.dropped == {"boredom": 1, "surprised": 1}
    assert ds.labels == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert ds.class_counts()["neutral"] == 3  # EMO-DB neutral + RAVDESS neutral + calm
    assert ds.summary()["dropped"] == {"boredom": 1, "surprised": 1}


def test_one_corpus_speakers_are_plain_ids(tmp_path):
    summary = load_dataset(make_emodb(tmp_path / "emodb")).summary()
    assert summary["corpus"] == "emodb" and "03" in summary["speakers"]
    assert list(summary["classes"].values()) == sorted(summary["classes"].values(), reverse=True)


def test_same_corpus_given_twice_keeps_files_once(tmp_path):
    rav = make_ravdess(tmp_path / "ravdess")
    ds = load_dataset([rav, rav / "Actor_01"], corpus="ravdess")
    assert len(ds) == 5 and ds.corpora == ["ravdess"]
    assert len(ds.skipped) == 2 and all("found twice" in k.reason for k in ds.skipped)


def test_load_dataset_with_mapping_file(tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("angry: negative\nsad: negative\nhappiness: positive\nboredom: null\n")
    ds = load_dataset(make_emodb(tmp_path / "emodb"), labels=mapping)
    assert ds.class_counts() == {"negative": 2, "positive": 1}
    assert ds.labels == ["negative", "positive"] and ds.scheme == str(mapping)
    assert ds.dropped == {"boredom": 1, "disgust": 1, "fear": 1, "neutral": 1}


def test_load_dataset_bad_files_in_summary(tmp_path):
    root = make_emodb(tmp_path / "emodb")
    add_bad_files(root / "wav", root / "wav" / "03a01Fa.wav")
    summary = load_dataset(root).summary()
    assert summary["n_skipped"] == 5 and summary["n_files"] == 7
    assert {"path", "reason"} == set(summary["skipped"][0])


# ---------------------------------------------------------------- real corpora

def real(name: str) -> Path:
    p = DATA / name
    if not p.is_dir():
        pytest.skip(f"real corpus not found at {p} (set TINYSER_DATA)")
    return p


@pytest.mark.corpus
def test_real_emodb():
    ds = load_dataset(real("emodb"))
    s = ds.summary()
    assert s["corpus"] == "emodb" and s["n_files"] == 535 and s["n_skipped"] == 0
    assert s["classes"] == {"anger": 127, "boredom": 81, "neutral": 79, "happiness": 71,
                            "fear": 69, "sadness": 62, "disgust": 46}
    assert list(s["speakers"]) == ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"]


@pytest.mark.corpus
def test_real_ravdess_native_and_common6():
    native = load_dataset(real("ravdess")).summary()
    assert native["n_files"] == 1194 and native["n_skipped"] == 0
    assert len(native["classes"]) == 8 and len(native["speakers"]) == 20
    c6 = load_dataset(real("ravdess"), labels="common6")
    s = c6.summary()
    assert len(s["classes"]) == 6 and c6.labels == ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
    assert s["classes"]["neutral"] == native["classes"]["neutral"] + native["classes"]["calm"]
    assert s["dropped"] == {"surprised": native["classes"]["surprised"]}
    assert s["n_files"] == 1194 - native["classes"]["surprised"]


@pytest.mark.corpus
def test_real_detect_sub_folders():
    assert detect(real("ravdess") / "Actor_01") == "ravdess"
    assert detect(real("emodb") / "wav") == "emodb"


@pytest.mark.corpus
def test_real_scan_is_fast():
    emodb, ravdess = real("emodb"), real("ravdess")
    t = time.perf_counter()
    load_dataset([emodb, ravdess])
    assert time.perf_counter() - t < 10  # about 0.3 s in practice; generous for slow disks
