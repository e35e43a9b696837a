"""Highlight selection: candidate windows snapped to sentence, word and scene
boundaries, scored 0–10, chosen without overlap; an optional LLM re-scores them and
writes the titles, hooks and hashtags.

Scoring (each part 0..1, weighted by genre, scaled to 0..10):

speech     words per second (or, without a transcript, the share of time with speech)
energy     how loud the window is against the rest of the source
keywords   the ``prompt``'s words found in the window (dropped when there is no prompt)
hook       how well the first sentence opens: a question, "you", a number, a strong
           word; a start on "and/so/but/um" or a very long sentence counts against it
faces      the share of the window in which a face is on screen
complete   ends on a sentence end (1), a word (0.5), or a pause/grid line (0.3)

Without a transcript the windows are cut at pauses in the speech and at scene cuts.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .analysis import HOP_S, Analysis
from .transcript import Transcript, join_words

log = logging.getLogger("reelforge.highlights")

CLIP_LENGTHS = {"short": (3.0, 15.0), "medium": (20.0, 45.0), "long": (45.0, 90.0)}
GENRES = ("auto", "podcast", "interview", "vlog", "tutorial")
LEAD_S, TAIL_S = 0.15, 0.35  # breathing room before the first word and after the last
SCENE_SNAP_S = 0.6
MIN_GAP_S = 0.5  # between chosen clips
WEIGHTS = {"speech": 0.2, "energy": 0.15, "keywords": 0.2, "hook": 0.2, "faces": 0.15,
           "complete": 0.1}
GENRE_WEIGHTS = {
    "podcast": {"speech": 0.25, "faces": 0.1},
    "interview": {"speech": 0.25, "hook": 0.25},
    "vlog": {"faces": 0.25, "energy": 0.2},
    "tutorial": {"keywords": 0.3, "hook": 0.15},
}
STOPWORDS = frozenset("""a an the and or but so if then than that this these those to of in on
at by for with from as is are was were be been being it its it's i me my we our you your he
she they them their his her not no do does did have has had will would can could should
about into over just like really very what which who whom whose when where why how there
here also more most some any all one up out get got make made let focus on moments clip
clips video find want please show me us""".split())
HOOK_WORDS = frozenset("""secret secrets nobody never stop mistake mistakes truth why how
crazy best worst biggest hidden wrong myth myths actually imagine surprising shocking
warning nobody's everyone everybody thing nothing always""".split())
WEAK_STARTS = frozenset("and so but um uh because or also anyway like well".split())
EMOTIONS = {
    "excitement": "amazing incredible crazy huge love awesome wow best exciting insane".split(),
    "curiosity": "why how what secret nobody hidden imagine wonder question".split(),
    "inspiration": "dream believe courage learn grow future change possible hope".split(),
    "humor": "funny laugh joke hilarious ridiculous silly".split(),
    "surprise": "surprising shocking unexpected suddenly actually turns".split(),
    "frustration": "wrong mistake problem hate stop never fail failed broken".split(),
    "fear": "afraid scared risk danger dangerous died die worried".split(),
}


@dataclass(frozen=True)
class Window:
    start: float  # source seconds
    end: float
    snap: str  # sentence | word | pause | scene | grid | whole
    text: str = ""
    opening: str = ""  # the first sentence
    parts: dict[str, float] = field(default_factory=dict)
    score: float = 0.0  # 0..10
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.end - self.start


def keywords(prompt: str) -> list[str]:
    return [_stem(w) for w in _tokens(prompt) if w not in STOPWORDS and len(w) > 2]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# --- candidates -------------------------------------------------------------------------

def candidates(analysis: Analysis, transcript: Transcript | None, lo: float,
               hi: float) -> list[Window]:
    """Windows of lo..hi seconds inside the analysed range, edges on boundaries."""
    start, end = analysis.start, analysis.end
    if end - start <= lo:
        return [Window(start, end, "whole")]
    if transcript is not None and transcript.words:
        found = _sentence_windows(analysis, transcript, lo, hi)
        if found:
            return found
    return _pause_windows(analysis, lo, hi)


def _sentence_windows(analysis: Analysis, tr: Transcript, lo: float,
                      hi: float) -> list[Window]:
    out: list[Window] = []
    sents = [s for s in tr.sentences if analysis.start <= s.start and s.end <= analysis.end]
    words = tr.words
    for i, first in enumerate(sents):
        a = _lead(first.start, words, first.first, analysis)
        for j in range(i, len(sents)):
            b = _tail(sents[j].end, words, sents[j].last, analysis)
            if b - a > hi:
                if j == i:  # one sentence longer than a clip: end it on a word
                    out.extend(_word_window(analysis, tr, first.first, a, lo, hi))
                break
            if b - a >= lo:
                out.append(Window(a, b, "sentence"))
    return out


def _word_window(analysis: Analysis, tr: Transcript, first: int, a: float, lo: float,
                 hi: float) -> list[Window]:
    words = tr.words
    k = first
    while k + 1 < len(words) and words[k + 1].end + TAIL_S - a <= hi:
        k += 1
    b = _tail(words[k].end, words, k, analysis)
    return [Window(a, b, "word")] if lo <= b - a <= hi else []


def _lead(t: float, words: Sequence[Any], index: int, analysis: Analysis) -> float:
    floor = words[index - 1].end if index > 0 else analysis.start
    a = max(analysis.start, floor, t - LEAD_S)
    for cut in analysis.cuts:  # start on the cut just before, if no word is in between
        if a - SCENE_SNAP_S <= cut <= a and cut >= floor:
            return cut
    return a


def _tail(t: float, words: Sequence[Any], index: int, analysis: Analysis) -> float:
    ceiling = words[index + 1].start if index + 1 < len(words) else analysis.end
    b = min(analysis.end, ceiling, t + TAIL_S)
    for cut in analysis.cuts:
        if b <= cut <= b + SCENE_SNAP_S and cut <= ceiling:
            return cut - 0.01
    return b


def _pause_windows(analysis: Analysis, lo: float, hi: float) -> list[Window]:
    """Without words: cut at pauses in speech and at scene cuts (else on a grid)."""
    speech = analysis.speech
    bounds = {analysis.start: "grid", analysis.end: "grid"}
    k = 0
    while k < len(speech):
        if not speech[k]:
            j = k
            while j < len(speech) and not speech[j]:
                j += 1
            if (j - k) * HOP_S >= 0.25:
                bounds[analysis.start + (k + j) / 2 * HOP_S] = "pause"
            k = j
        else:
            k += 1
    for cut in analysis.cuts:
        bounds[cut] = "scene"
    times = sorted(bounds)
    out: list[Window] = []
    for i, a in enumerate(times):
        for b in times[i + 1:]:
            if b - a > hi:
                break
            if b - a >= lo:
                kind = "pause" if "pause" in (bounds[a], bounds[b]) else bounds[b]
                out.append(Window(a, b, "scene" if kind == "scene" else kind))
    if not out:  # no usable boundary: fixed steps of the middle length
        length = (lo + hi) / 2
        t = analysis.start
        while t + lo <= analysis.end:
            out.append(Window(t, min(t + length, analysis.end), "grid"))
            t += length / 2
    return out


# --- scoring ------------------------------------------------------------------------------

def score(windows: list[Window], analysis: Analysis, transcript: Transcript | None,
          prompt: str = "", genre: str = "auto",
          avoid_speakers: frozenset[str] = frozenset()) -> list[Window]:
    """Score every window (0..10) and fill in its text and opening sentence."""
    if not windows:
        return []
    keys = keywords(prompt)
    weights = dict(WEIGHTS, **GENRE_WEIGHTS.get(genre, {}))
    if not keys:
        weights.pop("keywords")
    total = sum(weights.values())
    energies = np.array([_mean_energy(analysis, w) for w in windows])
    ranks = _ranks(energies)
    out = []
    for w, energy_rank in zip(windows, ranks):
        words = transcript.window(w.start, w.end) if transcript is not None else []
        text = join_words(x.text for x in words)
        opening = _opening(transcript, w) if transcript is not None else ""
        parts = {
            "speech": _speech(analysis, w, len(words), transcript is not None),
            "energy": float(energy_rank),
            "keywords": _keyword_score(text, keys),
            "hook": _hook(opening) if opening else 0.3,
            "faces": analysis.face_fraction(w.start, w.end),
            "complete": {"sentence": 1.0, "whole": 1.0, "word": 0.5}.get(w.snap, 0.3),
        }
        value = sum(weights[k] * parts[k] for k in weights) / total
        if avoid_speakers and words:
            share = sum(1 for x in words if _is_avoided(x.speaker, avoid_speakers)) / len(words)
            parts["avoided_speaker_share"] = share
            value *= 1.0 - 0.7 * share
        out.append(replace(w, text=text, opening=opening,
                           parts={k: round(v, 3) for k, v in parts.items()},
                           score=round(10.0 * value, 1)))
    return out


def _is_avoided(speaker: str | None, avoid: frozenset[str]) -> bool:
    return bool(speaker) and any(a in speaker.lower() for a in avoid)  # type: ignore[union-attr]


def _mean_energy(analysis: Analysis, w: Window) -> float:
    a, b = analysis.hop_index(w.start), analysis.hop_index(w.end)
    seg = analysis.energy_db[a:b]
    return float(np.mean(seg)) if seg.size else -90.0


def _ranks(values: np.ndarray) -> np.ndarray:
    if len(values) == 1:
        return np.array([0.5])
    order = values.argsort().argsort()
    return order / (len(values) - 1)


def _speech(analysis: Analysis, w: Window, n_words: int, has_words: bool) -> float:
    a, b = analysis.hop_index(w.start), analysis.hop_index(w.end)
    active = float(analysis.speech[a:b].mean()) if b > a else 0.0
    if not has_words:
        return active
    wps = n_words / max(w.duration, 1e-6)
    return 0.5 * float(np.clip((wps - 0.8) / 2.2, 0.0, 1.0)) + 0.5 * active


def _keyword_score(text: str, keys: list[str]) -> float:
    if not keys:
        return 0.0
    found = Counter(_stem(t) for t in _tokens(text))
    hits = sum(min(found[k], 3) for k in set(keys))
    distinct = sum(1 for k in set(keys) if found[k])
    return float(min(1.0, 0.6 * distinct / len(set(keys)) + 0.4 * (1 - np.exp(-hits / 3))))


def _opening(tr: Transcript, w: Window) -> str:
    for s in tr.sentences:
        if s.end > w.start + 0.05 and s.start < w.end:
            return s.text
    return ""


def _hook(sentence: str) -> float:
    tokens = _tokens(sentence)
    if not tokens:
        return 0.0
    value = 0.35
    if sentence.rstrip().endswith("?"):
        value += 0.25
    if {"you", "your", "you're"} & set(tokens):
        value += 0.15
    if any(t.isdigit() for t in tokens) or {"one", "two", "three", "five", "ten"} & set(tokens):
        value += 0.1
    if HOOK_WORDS & set(tokens):
        value += 0.25
    if len(tokens) <= 12:
        value += 0.1
    elif len(tokens) > 25:
        value -= 0.2
    if tokens[0] in WEAK_STARTS:
        value -= 0.3
    return float(np.clip(value, 0.0, 1.0))


# --- choosing -------------------------------------------------------------------------------

def select(windows: list[Window], count: int) -> list[Window]:
    """The best ``count`` windows that do not overlap, best first."""
    chosen: list[Window] = []
    for w in sorted(windows, key=lambda w: (-w.score, w.start)):
        if all(w.end + MIN_GAP_S <= c.start or c.end + MIN_GAP_S <= w.start for c in chosen):
            chosen.append(w)
            if len(chosen) == count:
                break
    return chosen


def heuristic_metadata(w: Window, prompt: str = "", genre: str = "auto") -> dict[str, Any]:
    """Title, hook, insight, emotion and hashtags from the window's own words."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", w.text) if s.strip()]
    hook = w.opening or (sentences[0] if sentences else "")
    keys = set(keywords(prompt))
    content = [t for t in _tokens(w.text) if t not in STOPWORDS and len(t) > 3]
    common = [t for t, _ in Counter(content).most_common(6)]
    insight = max(sentences, key=lambda s: _insight(s, keys), default=hook)
    tokens = set(_tokens(w.text))
    emotion = max(EMOTIONS, key=lambda e: len(tokens & set(EMOTIONS[e])))
    if not tokens & set(EMOTIONS[emotion]):
        emotion = "calm" if w.parts.get("energy", 0.5) < 0.5 else "excitement"
    tags = list(dict.fromkeys([*(k for k in keys if k in tokens), *common]))[:4]
    if genre != "auto":
        tags.append(genre)
    title = _title(hook or insight or "Highlight")
    return {"title": title, "viral_hook": _clip(hook, 120), "key_insight": _clip(insight, 160),
            "dominant_emotion": emotion, "hashtags": tags, "viral_score": w.score}


def _insight(sentence: str, keys: set[str]) -> float:
    toks = _tokens(sentence)
    content = [t for t in toks if t not in STOPWORDS]
    hits = sum(1 for t in toks if _stem(t) in keys)
    return len(content) + 3 * hits - 0.2 * max(0, len(toks) - 20)


def _title(text: str) -> str:
    text = text.strip().rstrip(".!")
    words = text.split()
    if len(words) > 9:
        text = " ".join(words[:9]) + "…"
    return text[:1].upper() + text[1:] if text else "Highlight"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


# --- the optional LLM scorer ----------------------------------------------------------------

LLM_SYSTEM = (
    "You pick viral short-form clips from transcripts. For each candidate, rate 0-10 how "
    "likely it is to do well as a standalone vertical short (strong hook in the first "
    "sentence, one clear idea, emotional or surprising payoff, makes sense without "
    "context). Answer with JSON only: {\"clips\": [{\"id\": <id>, \"score\": <0-10>, "
    "\"title\": str, \"viral_hook\": str, \"key_insight\": str, \"dominant_emotion\": str, "
    "\"hashtags\": [str]}]}.")


class LLMScorer:
    """Re-scores candidates with an OpenAI-compatible chat completions endpoint."""

    def __init__(self, base_url: str, api_key: str = "", model: str = "",
                 timeout_s: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key, self.model, self.timeout_s = api_key, model or "gpt-4o-mini", timeout_s

    def rate(self, windows: list[Window], prompt: str, genre: str) -> dict[int, dict[str, Any]]:
        """{index into windows: {"score", "title", ...}}; raises on any failure."""
        import httpx

        items = [{"id": i, "start": round(w.start, 1), "end": round(w.end, 1),
                  "transcript": _clip(w.text, 1500)} for i, w in enumerate(windows)]
        user = json.dumps({"focus": prompt, "genre": genre, "candidates": items})
        body = {"model": self.model, "temperature": 0.2,
                "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": LLM_SYSTEM},
                             {"role": "user", "content": user}]}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
            response = client.post(self.url, json=body, headers=headers)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        data = json.loads(_strip_fences(content))
        out: dict[int, dict[str, Any]] = {}
        for clip in data.get("clips", []):
            i = int(clip["id"])
            if 0 <= i < len(windows):
                out[i] = clip
        return out


def _strip_fences(text: str) -> str:
    text = text.strip()
    match = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    return match.group(1) if match else text


def apply_llm(windows: list[Window], rated: dict[int, dict[str, Any]],
              weight: float = 0.6) -> list[Window]:
    """Blend the LLM's score into the heuristic one and keep its metadata."""
    out = []
    for i, w in enumerate(windows):
        clip = rated.get(i)
        if clip is None:
            out.append(w)
            continue
        try:
            llm = float(np.clip(float(clip.get("score", w.score)), 0.0, 10.0))
        except (TypeError, ValueError):
            llm = w.score
        meta = {k: clip[k] for k in ("title", "viral_hook", "key_insight", "dominant_emotion")
                if isinstance(clip.get(k), str) and clip[k].strip()}
        tags = clip.get("hashtags")
        if isinstance(tags, list):
            meta["hashtags"] = [str(t).lstrip("#") for t in tags][:8]
        parts = dict(w.parts, llm=round(llm / 10, 3))
        out.append(replace(w, score=round((1 - weight) * w.score + weight * llm, 1),
                           parts=parts, meta=meta))
    return out
