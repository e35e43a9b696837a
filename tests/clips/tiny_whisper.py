"""A tiny Whisper model with random weights, built here from numpy (ctranslate2's model
specs) with a byte-level BPE tokenizer carrying Whisper's special tokens: enough for
faster-whisper to load it from a folder and run its whole transcription path (VAD,
decoding, word alignment) without any download. Its words are gibberish; the tests
check the structure around them, not their text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def _tokenizer(out: Path):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["here is the thing nobody tells you about hiring"] * 4, trainer)
    # timestamps must follow <|notimestamps|> directly: timestamp_begin = its id + 1
    tok.add_special_tokens(SPECIALS + [f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    tok.save(str(out / "tokenizer.json"))
    return tok


def build_tiny_whisper(out: Path, d: int = 64, ffn: int = 128, heads: int = 2,
                       seed: int = 0) -> Path:
    """Write a loadable faster-whisper model folder (model.bin, config, vocabulary,
    tokenizer.json) into ``out``; an English-only model, so no language tokens."""
    from ctranslate2.specs import whisper_spec

    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(out)
    vocab = tok.get_vocab_size()
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def norm(spec) -> None:  # type: ignore[no-untyped-def]
        spec.gamma, spec.beta = np.ones(d, np.float32), np.zeros(d, np.float32)

    def linear(spec, n_out: int, n_in: int) -> None:  # type: ignore[no-untyped-def]
        spec.weight, spec.bias = w(n_out, n_in), np.zeros(n_out, np.float32)

    def ffn_and_self(layer) -> None:  # type: ignore[no-untyped-def]
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        norm(layer.ffn.layer_norm)
        linear(layer.ffn.linear_0, ffn, d)
        linear(layer.ffn.linear_1, d, ffn)

    spec = whisper_spec.WhisperSpec(1, heads, 1, heads)
    enc = spec.encoder
    enc.conv1.weight, enc.conv1.bias = w(d, 80, 3), np.zeros(d, np.float32)
    enc.conv2.weight, enc.conv2.bias = w(d, d, 3), np.zeros(d, np.float32)
    enc.position_encodings.encodings = w(1500, d)
    norm(enc.layer_norm)
    for layer in enc.layer:
        ffn_and_self(layer)
    dec = spec.decoder
    dec.embeddings.weight = w(vocab, d)
    dec.position_encodings.encodings = w(448, d)
    dec.projection.weight = dec.embeddings.weight
    norm(dec.layer_norm)
    for layer in dec.layer:
        ffn_and_self(layer)
        norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], d, d)
        linear(layer.attention.linear[1], 2 * d, d)
        linear(layer.attention.linear[2], d, d)
    spec.register_vocabulary([tok.id_to_token(i) for i in range(vocab)])
    spec.config.suppress_ids = []
    spec.config.suppress_ids_begin = [tok.token_to_id("<|endoftext|>")]
    spec.config.lang_ids = []
    spec.config.alignment_heads = [(0, h) for h in range(heads)]
    spec.validate()
    spec.optimize(quantization=None)
    spec.save(str(out))
    return out
