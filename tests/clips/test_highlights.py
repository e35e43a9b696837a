"""Highlight selection on real speech: windows snapped to sentences (or words, pauses,
cuts), scored 0–10, never overlapping; the prompt steers it; an OpenAI-compatible LLM
(a fake one on loopback) can re-score and name the clips, and is never required."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from reelforge.media import highlights as hl
from reelforge.media.analysis import Analysis, analyse
from reelforge.media.transcript import Transcript, parse_transcript


@pytest.fixture(scope="module")
def talk_analysis(talk, tmp_path_factory) -> Analysis:
    return analyse(talk.path, tmp_path_factory.mktemp("talk_an"))


@pytest.fixture(scope="module")
def words(talk) -> Transcript:
    return parse_transcript(talk.transcript)


def test_windows_start_and_end_on_sentences(talk_analysis: Analysis, words: Transcript) -> None:
    lo, hi = hl.CLIP_LENGTHS["short"]
    found = hl.candidates(talk_analysis, words, lo, hi)
    assert found and all(lo <= w.duration <= hi for w in found)
    starts = {s.start for s in words.sentences}
    ends = {s.end for s in words.sentences}
    cuts = set(talk_analysis.cuts)
    for w in found:
        if w.snap != "sentence":
            continue
        assert any(0 <= s - w.start <= hl.LEAD_S + 1e-6 for s in starts) or \
            any(abs(c - w.start) < 1e-6 for c in cuts)
        assert any(0 <= w.end - e <= hl.TAIL_S + 1e-6 for e in ends) or \
            any(abs(c - 0.01 - w.end) < 1e-6 for c in cuts)
        # no word is cut in half at either edge
        for x in words.words:
            assert not (x.start < w.start < x.end) and not (x.start < w.end < x.end)


def test_scores_run_zero_to_ten_and_picks_do_not_overlap(talk_analysis: Analysis,
                                                          words: Transcript) -> None:
    lo, hi = hl.CLIP_LENGTHS["short"]
    scored = hl.score(hl.candidates(talk_analysis, words, lo, hi), talk_analysis, words)
    assert all(0.0 <= w.score <= 10.0 for w in scored)
    assert all(0.0 <= v <= 1.0 for w in scored for v in w.parts.values())
    chosen = hl.select(scored, 4)
    assert len(chosen) == 4
    assert [w.score for w in chosen] == sorted((w.score for w in chosen), reverse=True)
    spans = sorted((w.start, w.end) for w in chosen)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    best_possible = max(w.score for w in scored)
    assert chosen[0].score == best_possible


def test_the_prompt_steers_the_choice(talk_analysis: Analysis, words: Transcript) -> None:
    lo, hi = hl.CLIP_LENGTHS["short"]
    cands = hl.candidates(talk_analysis, words, lo, hi)
    plain = hl.select(hl.score(cands, talk_analysis, words), 1)[0]
    steered = hl.select(hl.score(cands, talk_analysis, words, prompt="Python engineers"), 1)[0]
    assert "python" in steered.text.lower() and steered.parts["keywords"] > 0.5
    assert "keywords" not in hl.WEIGHTS or plain.parts["keywords"] == 0.0


def test_hooks_questions_beat_mumbled_starts() -> None:
    assert hl._hook("Why does nobody tell you this?") > hl._hook(
        "and so um the weather was mild and the office was quiet that spring and we ordered "
        "lunch from the same place most days as usual.")


def test_without_a_transcript_windows_cut_at_pauses_and_scenes(talk_analysis: Analysis) -> None:
    lo, hi = hl.CLIP_LENGTHS["short"]
    found = hl.score(hl.candidates(talk_analysis, None, lo, hi), talk_analysis, None)
    assert found and {w.snap for w in found} <= {"pause", "scene", "grid"}
    assert "pause" in {w.snap for w in found}
    assert all(0 <= w.score <= 10 for w in found)


def test_metadata_has_clipora_fields(talk_analysis: Analysis, words: Transcript) -> None:
    lo, hi = hl.CLIP_LENGTHS["medium"]
    best = hl.select(hl.score(hl.candidates(talk_analysis, words, lo, hi), talk_analysis,
                              words, prompt="hiring"), 1)[0]
    meta = hl.heuristic_metadata(best, "hiring", "podcast")
    assert set(meta) == {"title", "viral_hook", "key_insight", "dominant_emotion", "hashtags",
                         "viral_score"}
    assert meta["title"] and meta["viral_hook"] and "podcast" in meta["hashtags"]
    assert meta["viral_score"] == best.score


class FakeLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that rates every candidate."""

    requests: list[dict] = []
    broken = False

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeLLM.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                 "body": body})
        if FakeLLM.broken:
            self.send_response(500)
            self.end_headers()
            return
        cands = json.loads(body["messages"][-1]["content"])["candidates"]
        clips = [{"id": c["id"], "score": 10 if "Python" in c["transcript"] else 1,
                  "title": f"Title {c['id']}", "viral_hook": "Hook!", "key_insight": "Insight",
                  "dominant_emotion": "surprise", "hashtags": ["#python", "hiring"]}
                 for c in cands]
        content = "```json\n" + json.dumps({"clips": clips}) + "\n```"
        reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_llm():
    FakeLLM.requests, FakeLLM.broken = [], False
    server = HTTPServer(("127.0.0.1", 0), FakeLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def test_llm_scorer_rescores_and_names_clips(fake_llm: str, talk_analysis: Analysis,
                                             words: Transcript) -> None:
    lo, hi = hl.CLIP_LENGTHS["short"]
    shortlist = hl.select(hl.score(hl.candidates(talk_analysis, words, lo, hi),
                                   talk_analysis, words), 6)
    scorer = hl.LLMScorer(fake_llm, "sk-test", "tiny-model", timeout_s=10)
    rated = hl.apply_llm(shortlist, scorer.rate(shortlist, "python", "podcast"))
    req = FakeLLM.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "tiny-model"
    best = hl.select(rated, 1)[0]
    assert "Python" in best.text and best.parts["llm"] == 1.0
    assert best.meta["hashtags"] == ["python", "hiring"] and best.meta["title"].startswith("Title")
    assert all(0 <= w.score <= 10 for w in rated)


def test_llm_failure_is_an_error_the_engine_can_fall_back_from(fake_llm: str,
                                                               talk_analysis: Analysis,
                                                               words: Transcript) -> None:
    FakeLLM.broken = True
    lo, hi = hl.CLIP_LENGTHS["short"]
    shortlist = hl.select(hl.score(hl.candidates(talk_analysis, words, lo, hi),
                                   talk_analysis, words), 3)
    import httpx

    with pytest.raises(httpx.HTTPStatusError):
        hl.LLMScorer(fake_llm, timeout_s=5).rate(shortlist, "", "auto")
