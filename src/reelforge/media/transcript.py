"""Transcripts: word timings, sentences, the parsers for transcripts sent with a request
(SRT, WebVTT, JSON words), and the transcriber interface with its faster-whisper
implementation.

Word-level timings drive captions and highlight boundaries. Cue-level formats (SRT,
plain VTT, JSON segments without words) are spread over their words in proportion to
each word's length, and marked ``timed="cue"``; WebVTT inline timestamps
(``<00:00:01.500>``) and JSON words keep their own times (``timed="word"``).
"""

from __future__ import annotations

import abc
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Invalid

log = logging.getLogger("reelforge.transcript")

MAX_TRANSCRIPT_CHARS = 5_000_000
SENTENCE_END = re.compile(r"[.!?…。！？]['\")\]]*$")
SENTENCE_GAP_S = 1.2  # a pause this long ends a sentence even without punctuation
_FIX = ("Send SRT, WebVTT, or JSON words: [{\"word\": \"Hello\", \"start\": 0.0, "
        "\"end\": 0.4}, ...] (or {\"words\": [...]}, or whisper's {\"segments\": [...]}).")


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str
    first: int  # index of its first word in Transcript.words
    last: int  # index of its last word (inclusive)


@dataclass(frozen=True)
class Transcript:
    words: tuple[Word, ...]
    language: str | None = None
    source: str = "provided"  # provided | faster-whisper
    timed: str = "word"  # word | cue (word times spread over cues)
    _sentences: list[Sentence] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sentences", _split_sentences(self.words))

    @property
    def sentences(self) -> list[Sentence]:
        return self._sentences

    @property
    def text(self) -> str:
        return join_words(w.text for w in self.words)

    def window(self, start: float, end: float) -> list[Word]:
        """The words whose middle falls in [start, end)."""
        return [w for w in self.words if start <= (w.start + w.end) / 2 < end]

    def shifted(self, offset: float) -> Transcript:
        """The same transcript on a timeline moved by ``offset`` seconds."""
        words = tuple(replace(w, start=w.start + offset, end=w.end + offset)
                      for w in self.words)
        return Transcript(words, self.language, self.source, self.timed)

    def clipped(self, start: float, end: float) -> Transcript:
        return Transcript(tuple(self.window(start, end)), self.language, self.source,
                          self.timed)


def join_words(words: Iterable[str]) -> str:
    text = " ".join(w for w in words if w)
    return re.sub(r"\s+([,.!?;:…])", r"\1", text).strip()


def _split_sentences(words: Sequence[Word]) -> list[Sentence]:
    out: list[Sentence] = []
    first = 0
    for i, word in enumerate(words):
        last = i == len(words) - 1
        gap = (not last) and words[i + 1].start - word.end >= SENTENCE_GAP_S
        if last or gap or SENTENCE_END.search(word.text):
            chunk = words[first:i + 1]
            out.append(Sentence(chunk[0].start, chunk[-1].end,
                                join_words(w.text for w in chunk), first, i))
            first = i + 1
    return out


# --- parsing a transcript sent with a request ------------------------------------------

def parse_transcript(text: Any) -> Transcript:
    """Parse SRT, WebVTT or JSON words; raise ``Invalid`` with a fix when it is neither."""
    if isinstance(text, (list, dict)):
        return _from_json(text)
    if not isinstance(text, str) or not text.strip():
        raise Invalid("transcript must be non-empty text (SRT, WebVTT or JSON words).",
                      fix=_FIX, field="transcript")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise Invalid(f"transcript is longer than {MAX_TRANSCRIPT_CHARS} characters.",
                      fix="Send the transcript of the trimmed part only.", field="transcript")
    body = text.lstrip("\ufeff").strip()
    if body[:1] in "[{":
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise Invalid(f"transcript looks like JSON but does not parse: {exc.msg} "
                          f"(line {exc.lineno}).", fix=_FIX, field="transcript") from None
        return _from_json(data)
    if body.startswith("WEBVTT"):
        return _from_cues(_vtt_cues(body))
    if "-->" in body:
        return _from_cues(_srt_cues(body))
    raise Invalid("transcript is not SRT, WebVTT or JSON words.", fix=_FIX,
                  field="transcript")


_TS = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIME = re.compile(rf"{_TS}\s*-->\s*{_TS}")
_INLINE_TS = re.compile(rf"<{_TS}>")
_TAG = re.compile(r"<[^>]*>")
_VOICE = re.compile(r"<v(?:\.[^ >]*)?\s+([^>]+)>")


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


@dataclass(frozen=True)
class _Cue:
    start: float
    end: float
    text: str  # may hold VTT inline timestamps and tags


def _blocks_to_cues(body: str, skip: tuple[str, ...] = ()) -> list[_Cue]:
    """Cues of an SRT or WebVTT body: per blank-line block, the timing line and its text.

    Blocks whose first line starts with one of ``skip`` (WebVTT headers) are passed over.
    """
    cues = []
    for block in re.split(r"\n\s*\n", body.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        if not lines or (skip and lines[0].startswith(skip)):
            continue
        for k, line in enumerate(lines):
            match = _CUE_TIME.search(line)
            if match:
                g = match.groups()
                cues.append(_Cue(_seconds(*g[:4]), _seconds(*g[4:]), " ".join(lines[k + 1:])))
                break
    return cues


def _srt_cues(body: str) -> list[_Cue]:
    cues = _blocks_to_cues(body)
    if not cues:
        raise Invalid("transcript: no SRT cue ('00:00:01,000 --> 00:00:02,000') found.",
                      fix=_FIX, field="transcript")
    return cues


def _vtt_cues(body: str) -> list[_Cue]:
    cues = _blocks_to_cues(body, skip=("WEBVTT", "NOTE", "STYLE", "REGION"))
    if not cues:
        raise Invalid("transcript: the WebVTT file has no cues.", fix=_FIX, field="transcript")
    return _dedupe_rolling(cues)


def _dedupe_rolling(cues: list[_Cue]) -> list[_Cue]:
    """Auto-captions repeat the previous line in each cue; keep each word once."""
    out: list[_Cue] = []
    for cue in cues:
        plain = _TAG.sub("", cue.text).strip()
        if out and not _INLINE_TS.search(cue.text):
            prev = _TAG.sub("", out[-1].text).strip()
            if plain == prev or (cue.end - cue.start) < 0.05:
                continue
            if prev and plain.startswith(prev):
                cue = _Cue(cue.start, cue.end, plain[len(prev):].strip())
        out.append(cue)
    return out


def _from_cues(cues: list[_Cue]) -> Transcript:
    words: list[Word] = []
    exact = False
    for cue in cues:
        if cue.end < cue.start:
            raise Invalid(f"transcript: a cue ends ({cue.end:.3f} s) before it starts "
                          f"({cue.start:.3f} s).", fix="Correct the cue's times.",
                          field="transcript")
        speaker_match = _VOICE.search(cue.text)
        speaker = speaker_match.group(1).strip() if speaker_match else None
        if _INLINE_TS.search(cue.text):
            exact = True
            words.extend(_inline_words(cue, speaker))
        else:
            words.extend(_spread(cue.start, cue.end, _TAG.sub("", cue.text).split(), speaker))
    words.sort(key=lambda w: w.start)
    return _checked(Transcript(tuple(words), timed="word" if exact else "cue"))


def _inline_words(cue: _Cue, speaker: str | None) -> list[Word]:
    """Words of a cue with ``<00:00:01.500>`` timestamps before some of them."""
    out: list[Word] = []
    t = cue.start
    pos = 0
    pending: list[tuple[float, str]] = []
    for match in _INLINE_TS.finditer(cue.text + "<99:00:00.000>"):
        chunk = _TAG.sub("", cue.text[pos:match.start()]).split()
        pending.extend((t, w) for w in chunk)
        t = min(_seconds(*match.groups()), cue.end)
        pos = match.end()
    # times mark starts; each word ends where the next starts (or at the cue's end)
    for i, (start, word) in enumerate(pending):
        end = pending[i + 1][0] if i + 1 < len(pending) else cue.end
        out.append(Word(start, max(start, end), word, speaker))
    return out


def _spread(start: float, end: float, tokens: list[str], speaker: str | None) -> list[Word]:
    if not tokens:
        return []
    weights = np.array([len(t) + 1 for t in tokens], dtype=float)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return [Word(float(edges[i]), float(edges[i + 1]), t, speaker) for i, t in enumerate(tokens)]


def _from_json(data: Any) -> Transcript:
    if isinstance(data, dict):
        if isinstance(data.get("words"), list):
            data = data["words"]
        elif isinstance(data.get("segments"), list):
            segments = data["segments"]
            if all(isinstance(s, dict) and isinstance(s.get("words"), list) for s in segments):
                data = [w for s in segments for w in s["words"]]
            else:
                return _from_cues([_Cue(_time(s, "start"), _time(s, "end"),
                                        str(s.get("text", ""))) for s in segments])
        else:
            raise Invalid("transcript JSON needs a 'words' or 'segments' list.", fix=_FIX,
                          field="transcript")
    if not isinstance(data, list):
        raise Invalid("transcript JSON must be a list of words.", fix=_FIX, field="transcript")
    words = []
    for item in data:
        if not isinstance(item, dict):
            raise Invalid("transcript JSON words must be objects with word, start, end.",
                          fix=_FIX, field="transcript")
        text = item.get("word", item.get("text"))
        if not isinstance(text, str):
            raise Invalid("transcript JSON word without 'word' (or 'text').", fix=_FIX,
                          field="transcript")
        if not text.strip():
            continue
        start, end = _time(item, "start"), _time(item, "end")
        if end < start:
            raise Invalid(f"transcript word {text.strip()!r} ends before it starts.",
                          fix="Correct its times.", field="transcript")
        speaker = item.get("speaker")
        words.append(Word(start, end, text.strip(), str(speaker) if speaker else None))
    words.sort(key=lambda w: w.start)
    return _checked(Transcript(tuple(words)))


def _time(item: dict[str, Any], key: str) -> float:
    value = item.get(key)
    scale = 1.0
    if value is None and item.get(f"{key}_ms") is not None:
        value, scale = item[f"{key}_ms"], 1000.0
    try:
        seconds = float(value) / scale  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise Invalid(f"transcript JSON: {key!r} must be a number of seconds, got {value!r}.",
                      fix=_FIX, field="transcript") from None
    if not 0 <= seconds < 1e6:
        raise Invalid(f"transcript JSON: {key} {seconds} is out of range.", fix=_FIX,
                      field="transcript")
    return seconds


def _checked(t: Transcript) -> Transcript:
    if not t.words:
        raise Invalid("transcript has no words.", fix=_FIX, field="transcript")
    return t


# --- transcribers -----------------------------------------------------------------------

TranscribeProgress = Callable[[float], None]


class Transcriber(abc.ABC):
    """Turns 16 kHz mono speech into a word-timed transcript."""

    name: str

    @abc.abstractmethod
    def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                   progress: TranscribeProgress | None = None) -> Transcript:
        """``audio``: float32 samples at 16 kHz, mono. ``progress`` gets 0..1 and may
        raise to stop."""


class FasterWhisperTranscriber(Transcriber):
    """faster-whisper (CTranslate2) on the CPU, int8, with word timestamps.

    ``model`` is a local directory holding a converted model, or a model name
    (tiny, base, small, medium, large-v3, distil-…) that faster-whisper downloads into
    its cache on this machine when ``download`` is allowed.
    """

    name = "faster-whisper"
    # greedy first, sampling hotter only when a window decodes badly (faster-whisper's own)
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    _cache: dict[tuple[str, int], Any] = {}
    _lock = threading.Lock()

    def __init__(self, model: str, *, download: bool = True, cpu_threads: int = 0,
                 compute_type: str = "int8") -> None:
        self.model_ref = model
        self.download = download
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type

    def _model(self) -> Any:
        from faster_whisper import WhisperModel  # optional extra

        key = (self.model_ref, self.cpu_threads)
        with self._lock:
            model = self._cache.get(key)
            if model is None:
                local = Path(self.model_ref).expanduser()
                ref = str(local) if local.is_dir() else self.model_ref
                model = WhisperModel(ref, device="cpu", compute_type=self.compute_type,
                                     cpu_threads=self.cpu_threads,
                                     local_files_only=not self.download or local.is_dir())
                self._cache[key] = model
            return model

    def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                   progress: TranscribeProgress | None = None) -> Transcript:
        model = self._model()
        total = max(1e-6, len(audio) / 16000)
        segments, info = model.transcribe(
            audio.astype(np.float32, copy=False), language=language, word_timestamps=True,
            vad_filter=True, beam_size=1, condition_on_previous_text=False,
            temperature=list(self.temperatures))
        words: list[Word] = []
        for segment in segments:  # a generator: decoding happens as it is consumed
            for w in segment.words or ():
                if w.word.strip():
                    words.append(Word(float(w.start), float(max(w.start, w.end)),
                                      w.word.strip()))
            if progress is not None:
                progress(min(1.0, float(segment.end) / total))
        return Transcript(tuple(words), language=getattr(info, "language", None),
                          source=self.name)


def make_transcriber(kind: str, model: str, download: bool,
                     cpu_threads: int = 0) -> tuple[Transcriber | None, str]:
    """The transcriber the settings ask for, or (None, why there is none)."""
    if kind == "none":
        return None, ("transcription is turned off (transcriber = none); send a transcript "
                      "with the job, or set REELFORGE_TRANSCRIBER=faster-whisper")
    if kind not in ("auto", "faster-whisper"):
        return None, f"unknown transcriber {kind!r}; use auto, faster-whisper or none"
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return None, ("faster-whisper is not installed; `pip install 'reelforge[whisper]'` "
                      "or send a transcript with the job")
    local = Path(model).expanduser()
    if not local.is_dir() and not download and not _cached(model):
        return None, (f"whisper model {model!r} is neither a local folder nor in the cache, "
                      "and whisper_download is off; point REELFORGE_WHISPER_MODEL at a "
                      "converted model folder or allow the download")
    return FasterWhisperTranscriber(model, download=download, cpu_threads=cpu_threads), ""


def _cached(model: str) -> bool:
    try:
        from faster_whisper.utils import download_model

        download_model(model, local_files_only=True)
        return True
    except Exception:
        return False
