#!/usr/bin/env python3
"""Writes testdata/scan/text/: the configuration and tokenizer files a model repository holds.

tokenizer.model is trained by the real SentencePiece library (Debian python3-sentencepiece)
on a few generated sentences; the JSON and text files are written as transformers writes
them (json.dumps with indent 2, UTF-8).
"""
import io
import json
import os

import sentencepiece as spm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text")
os.makedirs(OUT, exist_ok=True)
for name in os.listdir(OUT):
    os.remove(os.path.join(OUT, name))

words = ["model", "weights", "tensor", "layer", "token", "safe", "scan", "load", "graph", "node"]
sentences = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8)) for i in range(200)]
model = io.BytesIO()
spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=30,
                               model_type="unigram", minloglevel=2)
open(os.path.join(OUT, "tokenizer.model"), "wb").write(model.getvalue())

config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "model_type": "llama",
          "torch_dtype": "float32", "vocab_size": 30}
open(os.path.join(OUT, "config.json"), "w").write(json.dumps(config, indent=2) + "\n")
open(os.path.join(OUT, "tokenizer_config.json"), "w", encoding="utf-8").write(
    json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "added_tokens_decoder": {"0": {"content": "<unk>"}},
                "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}", "sp_model_kwargs": {}},
               indent=2, ensure_ascii=False) + "\n")
open(os.path.join(OUT, "README.md"), "w", encoding="utf-8").write("---\nlicense: apache-2.0\n---\n# Tiny model\n\nCafé ☕ weights.\n")
open(os.path.join(OUT, "merges.txt"), "w").write("#version: 0.2\nm o\nmo del\n")
open(os.path.join(OUT, "two_values.json"), "w").write('{"a": 10}\n{"b": 2}\n')
open(os.path.join(OUT, "latin1.txt"), "wb").write("caf\xe9\n".encode("latin-1"))
open(os.path.join(OUT, "bom.json"), "wb").write(b"\xef\xbb\xbf" + json.dumps(config).encode())
print("wrote", sorted(os.listdir(OUT)))
