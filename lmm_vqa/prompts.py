"""Load prompt text files from `prompts/` (shipped inside the package) or from a path.

A scoring prompt file holds the question, a line `---`, then the start of the answer that
the level word completes ("The quality of the video is"). Other prompts are plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

@dataclass(frozen=True)
class ScoringPrompt:
    question: str
    answer_prefix: str


def read_prompt(name_or_path: str) -> str:
    """The text of `prompts/<name>.txt`, or of a file path."""
    path = Path(name_or_path)
    if path.suffix and path.is_file():
        return path.read_text().strip()
    package_file = resources.files("lmm_vqa.prompt_texts") / f"{name_or_path}.txt"
    if package_file.is_file():
        return package_file.read_text().strip()
    known = sorted(p.name[:-4] for p in resources.files("lmm_vqa.prompt_texts").iterdir() if p.name.endswith(".txt"))
    raise ValueError(f"no prompt {name_or_path!r}: not a file, and not one of the shipped prompts {known}")


def load_scoring_prompt(name_or_path: str) -> ScoringPrompt:
    text = read_prompt(name_or_path)
    lines = text.splitlines()
    if "---" not in lines:
        raise ValueError(f"scoring prompt {name_or_path!r} needs a line '---' between the question and the answer")
    cut = lines.index("---")
    question, answer = "\n".join(lines[:cut]).strip(), "\n".join(lines[cut + 1:]).strip()
    if not question or not answer:
        raise ValueError(f"scoring prompt {name_or_path!r} has an empty question or answer prefix")
    return ScoringPrompt(question, answer)
