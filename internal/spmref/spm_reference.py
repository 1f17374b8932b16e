#!/usr/bin/python3
"""SentencePiece reference for engine/tokenizer_parity_test.go.

The test runs this with Debian's python3-sentencepiece (the reference C++
library). Two commands, JSON on stdin and stdout:

  train:  {"corpus": PATH, "prefix": PATH, "vocab_size": N}
          trains a Unigram model with nmt_nfkc normalisation (as XLM-R's) and
          prints its pieces, the precompiled charsmap and normaliser flags.
  encode: {"model": PATH, "texts": [...]}
          prints SentencePiece's piece ids for every text.
"""
import base64
import json
import sys

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb


def train(req):
    spm.SentencePieceTrainer.train(
        input=req["corpus"],
        model_prefix=req["prefix"],
        vocab_size=req["vocab_size"],
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        character_coverage=req.get("character_coverage", 0.9995),
        # XLM-R's sentencepiece.bpe.model: <unk> 0, <s> 1, </s> 2, no pad piece.
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    m = pb.ModelProto()
    with open(req["prefix"] + ".model", "rb") as f:
        m.ParseFromString(f.read())
    n = m.normalizer_spec
    return {
        "pieces": [p.piece for p in m.pieces],
        "scores": [p.score for p in m.pieces],
        "types": [int(p.type) for p in m.pieces],
        "charsmap": base64.b64encode(n.precompiled_charsmap).decode(),
        "add_dummy_prefix": n.add_dummy_prefix,
        "remove_extra_whitespaces": n.remove_extra_whitespaces,
        "escape_whitespaces": n.escape_whitespaces,
    }


def encode(req):
    sp = spm.SentencePieceProcessor(model_file=req["model"])
    return {"ids": [sp.encode(t) for t in req["texts"]]}


def main():
    req = json.load(sys.stdin)
    out = {"train": train, "encode": encode}[sys.argv[1]](req)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
