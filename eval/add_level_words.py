"""Give a base model's tokenizer the level words it lacks, each one new token that starts between the known
level words nearest to it in value. For small bases whose tokenizer was trained on the five Q-Align words only
(the bundled demo model): there HIVE's finer words ("mediocre", "decent", ...) are four to six rare pieces
each, which a short LoRA run must first learn to spell (a fine-level model's first loss ~45 against ~2 for the
5-level one). A real LMM's tokenizer and language model already know these words; this gives the demo base
what they have, so that an ablation measures the fusion, not the spelling.

    python eval/add_level_words.py lmm_vqa/demo_model runs/demo_base_fine

A word that is already one token is left alone. A new word's input and output embedding rows start at the mean
of its anchors' rows: the known level words (the base's scorer.json levels, Q-Align's five by default) whose
value is nearest the new word's (both neighbours on a tie: "mediocre", 2.5 -> "poor" 2 and "fair" 3). The known
words' probabilities do not change, so a 5-level scorer on the new base scores exactly as on the old one.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from lmm_vqa.levels import FINE_LEVELS, LevelSet
from lmm_vqa.scoring import SCORER_FILE, ScorerConfig, resolve_level_tokens


def anchors_of(word_value: float, known: LevelSet) -> list[str]:
    """The known level words nearest `word_value` (every one at the nearest distance)."""
    dist = [abs(v - word_value) for v in known.values]
    return [w for w, d in zip(known.words, dist) if d - min(dist) < 1e-9]


def add_level_words(model, tokenizer, levels: LevelSet, known: LevelSet, answer_prefix: str = "") -> dict:
    """Add each word of `levels` that is not already one token after `answer_prefix` to `tokenizer` and to
    `model`'s embeddings, started at the mean of its anchors' rows (anchors_of). The known words must be one
    token each. Returns {new word: anchors}."""
    from tokenizers import AddedToken

    known_ids = resolve_level_tokens(tokenizer, answer_prefix, known.words)
    if any(len(ids) != 1 for ids in known_ids):
        raise ValueError(f"the known level words must be one token each, got {dict(zip(known.words, known_ids))}")
    row = {w: ids[0] for w, ids in zip(known.words, known_ids)}
    current = resolve_level_tokens(tokenizer, answer_prefix, levels.words)
    new = {w: anchors_of(v, known) for w, v, ids in zip(levels.words, levels.values, current) if len(ids) > 1}
    if not new:
        return {}
    # lstrip: the token takes the space before it, as the known words' tokens hold theirs (decoding drops that
    # space: harmless for scoring, which reads probabilities); single_word: never inside another word
    tokenizer.add_tokens([AddedToken(w, single_word=True, lstrip=True, normalized=False) for w in new])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():
        for emb in {id(e): e for e in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
            for word, anchors in new.items():
                emb.weight[tokenizer.convert_tokens_to_ids(word)] = emb.weight[[row[a] for a in anchors]].mean(0)
    after = resolve_level_tokens(tokenizer, answer_prefix, list(new))
    if any(len(ids) != 1 for ids in after):
        raise RuntimeError(f"the added words did not become one token each: {dict(zip(new, after))}")
    return new


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("base", help="a model folder (a scorer folder's scorer.json gives the known levels)")
    p.add_argument("out")
    p.add_argument("--levels", default="fine", help="'fine' (HIVE's nine) or a JSON object {word: value}")
    args = p.parse_args(argv)
    from transformers import AutoProcessor

    from lmm_vqa.checkpoints import from_pretrained

    base, out = Path(args.base), Path(args.out)
    levels = FINE_LEVELS if args.levels == "fine" else LevelSet.from_json(json.loads(args.levels))
    scorer = ScorerConfig.load(base)  # the base's scorer.json, or the defaults: Q-Align's five words
    model = from_pretrained(str(base), dtype="auto")  # saved back in the dtype it was stored in
    processor = AutoProcessor.from_pretrained(base)
    new = add_level_words(model, processor.tokenizer, levels, LevelSet.from_json(scorer.levels),
                          scorer.answer_prefix)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if (base / SCORER_FILE).is_file():
        shutil.copy(base / SCORER_FILE, out / SCORER_FILE)
    for word, anchors in new.items():
        print(f"{word}: one new token, started at the mean of {anchors}")
    print(f"wrote {out} ({len(new)} new words)")


if __name__ == "__main__":
    main()
